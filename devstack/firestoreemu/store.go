package firestoreemu

import (
	"sync"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// historyRetention bounds how far back read_time reads and read-only
// transactions can look. Real Firestore keeps an hour of versions.
const historyRetention = time.Hour

// version is one committed state of a document. Stored *pb.Document values
// are immutable: a write builds a new one, so readers may share them and a
// transaction can detect a change by pointer comparison.
type version struct {
	at  time.Time
	doc *pb.Document // nil: the document did not exist from at on
}

type docEntry struct {
	name     docName
	full     string
	versions []version
}

// at returns the document as of snap (zero snap: the latest state).
func (e *docEntry) at(snap time.Time) *pb.Document {
	if snap.IsZero() {
		return e.versions[len(e.versions)-1].doc
	}
	for i := len(e.versions) - 1; i >= 0; i-- {
		if !e.versions[i].at.After(snap) {
			return e.versions[i].doc
		}
	}
	return nil
}

func (e *docEntry) push(v version) {
	horizon := v.at.Add(-historyRetention)
	drop := 0
	for drop+1 < len(e.versions) && e.versions[drop+1].at.Before(horizon) {
		drop++
	}
	if drop > 0 {
		e.versions = append(e.versions[:0:0], e.versions[drop:]...)
	}
	e.versions = append(e.versions, v)
}

type database struct {
	docs   map[string]*docEntry            // full name -> entry
	byColl map[string]map[string]*docEntry // collection full name -> docs in it
}

func newDatabase() *database {
	return &database{docs: map[string]*docEntry{}, byColl: map[string]map[string]*docEntry{}}
}

func (d *database) entry(n docName, full string) *docEntry {
	if e, ok := d.docs[full]; ok {
		return e
	}
	e := &docEntry{name: n, full: full}
	d.docs[full] = e
	c := n.collection()
	if d.byColl[c] == nil {
		d.byColl[c] = map[string]*docEntry{}
	}
	d.byColl[c][full] = e
	return e
}

// store holds every database. One RWMutex guards it; readers share it and
// commits hold it exclusively only while validating and applying, never
// while waiting for anything.
type store struct {
	mu         sync.RWMutex
	dbs        map[string]*database
	lastCommit time.Time
}

func newStore() *store { return &store{dbs: map[string]*database{}} }

func (s *store) reset() {
	s.mu.Lock()
	s.dbs = map[string]*database{}
	s.mu.Unlock()
}

// dbLocked returns the database, or nil. Callers hold s.mu.
func (s *store) dbLocked(name string) *database { return s.dbs[name] }

// get reads one document at snap. Callers hold s.mu (read or write).
func (s *store) getLocked(db string, full string, snap time.Time) *pb.Document {
	d := s.dbs[db]
	if d == nil {
		return nil
	}
	e := d.docs[full]
	if e == nil {
		return nil
	}
	return e.at(snap)
}

// readTimeLocked is the time reported for a read of the latest state.
func (s *store) readTimeLocked() time.Time {
	now := time.Now().Truncate(time.Microsecond)
	if s.lastCommit.After(now) {
		return s.lastCommit
	}
	return now
}

// commitResult is what a successful commit reports.
type commitResult struct {
	at      time.Time
	results []*pb.WriteResult
}

// commit applies writes atomically. validate, if non-nil, runs under the
// exclusive lock before anything is applied (transaction validation).
func (s *store) commit(dbName string, writes []*preparedWrite, validate func() error) (commitResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if validate != nil {
		if err := validate(); err != nil {
			return commitResult{}, err
		}
	}
	at := time.Now().Truncate(time.Microsecond)
	if !at.After(s.lastCommit) {
		at = s.lastCommit.Add(time.Microsecond)
	}
	d := s.dbs[dbName]
	if d == nil {
		d = newDatabase()
	}
	ts := timestamppb.New(at)
	orig := map[string]*pb.Document{}
	work := map[string]*pb.Document{}
	res := make([]*pb.WriteResult, len(writes))
	for i, w := range writes {
		cur, seen := work[w.full]
		if !seen {
			if e := d.docs[w.full]; e != nil {
				cur = e.at(time.Time{})
			}
			orig[w.full] = cur
		}
		next, wr, err := w.apply(cur, ts)
		if err != nil {
			return commitResult{}, err
		}
		work[w.full] = next
		res[i] = wr
	}
	changed := false
	for i, w := range writes {
		next, before := work[w.full], orig[w.full]
		if sameDoc(before, next) {
			// Unchanged: keep the stored version and its update_time.
			work[w.full] = before
			if before != nil && res[i].UpdateTime != nil {
				res[i].UpdateTime = before.UpdateTime
			}
			continue
		}
		if next != nil {
			next.UpdateTime = ts
		}
		res[i].UpdateTime = ts
	}
	for full, next := range work {
		if next == orig[full] {
			continue
		}
		changed = true
		var n docName
		for _, w := range writes {
			if w.full == full {
				n = w.name
				break
			}
		}
		d.entry(n, full).push(version{at: at, doc: next})
	}
	s.dbs[dbName] = d
	if changed {
		s.lastCommit = at
	} else if at.After(s.lastCommit) {
		// Commit times strictly increase even for no-op commits.
		s.lastCommit = at
	}
	return commitResult{at: at, results: res}, nil
}

func sameDoc(a, b *pb.Document) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if len(a.Fields) != len(b.Fields) {
		return false
	}
	for k, v := range a.Fields {
		w, ok := b.Fields[k]
		if !ok || !proto.Equal(v, w) {
			return false
		}
	}
	return true
}
