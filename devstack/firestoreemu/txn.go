package firestoreemu

import (
	"crypto/rand"
	"sync"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
)

// maxTxnLifetime is Firestore's hard limit on a transaction's age.
const maxTxnLifetime = 270 * time.Second

// txn is an open transaction. Read-write transactions are optimistic: they
// read from a snapshot fixed at their first read and remember what they saw;
// Commit re-checks every read document and re-runs every query under the
// store's exclusive lock and aborts if anything differs. That yields
// serializable commits without holding any lock while the client thinks.
type txn struct {
	id       string
	db       string
	readOnly bool

	mu       sync.Mutex
	snap     time.Time // zero until the first read of a read-write transaction
	begun    time.Time
	lastUsed time.Time
	reads    map[string]*pb.Document // full name -> version seen (nil: absent)
	queries  []queryRead
}

type queryRead struct {
	q    *compiledQuery
	docs []*pb.Document
}

// txnTable tracks open transactions.
type txnTable struct {
	mu   sync.Mutex
	m    map[string]*txn
	idle time.Duration
}

func newTxnTable(idle time.Duration) *txnTable {
	return &txnTable{m: map[string]*txn{}, idle: idle}
}

func (tt *txnTable) reset() {
	tt.mu.Lock()
	tt.m = map[string]*txn{}
	tt.mu.Unlock()
}

func (tt *txnTable) expired(t *txn, now time.Time) bool {
	return now.Sub(t.lastUsed) > tt.idle || now.Sub(t.begun) > maxTxnLifetime
}

// begin opens a transaction. snap is the read snapshot of a read-only
// transaction (zero for read-write ones).
func (tt *txnTable) begin(db string, readOnly bool, snap time.Time, retry []byte) *txn {
	var b [16]byte
	_, _ = rand.Read(b[:])
	now := time.Now()
	t := &txn{id: string(b[:]), db: db, readOnly: readOnly, snap: snap, begun: now, lastUsed: now, reads: map[string]*pb.Document{}}
	tt.mu.Lock()
	if retry != nil {
		delete(tt.m, string(retry))
	}
	tt.m[t.id] = t
	tt.mu.Unlock()
	return t
}

// get returns the open transaction id of database db and marks it used.
func (tt *txnTable) get(id []byte, db string) (*txn, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.m[string(id)]
	if !ok {
		return nil, errTxnExpired
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if tt.expired(t, now) {
		delete(tt.m, t.id)
		return nil, errTxnExpired
	}
	if t.db != db {
		return nil, invalidArg("transaction belongs to database %q, not %q", t.db, db)
	}
	t.lastUsed = now
	return t, nil
}

// take removes the transaction for Commit or Rollback.
func (tt *txnTable) take(id []byte, db string) (*txn, error) {
	t, err := tt.get(id, db)
	if err != nil {
		return nil, err
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if _, ok := tt.m[t.id]; !ok {
		return nil, errTxnExpired // a concurrent Commit or Rollback won
	}
	delete(tt.m, t.id)
	return t, nil
}

// sweep drops expired transactions so abandoned ones do not pile up.
func (tt *txnTable) sweep() {
	now := time.Now()
	tt.mu.Lock()
	defer tt.mu.Unlock()
	for id, t := range tt.m {
		t.mu.Lock()
		if tt.expired(t, now) {
			delete(tt.m, id)
		}
		t.mu.Unlock()
	}
}

// snapshotLocked fixes the transaction's snapshot on first use. Callers
// hold t.mu and s.mu.
func (t *txn) snapshotLocked(s *store) time.Time {
	if t.snap.IsZero() {
		t.snap = s.snapshotLocked()
	}
	return t.snap
}

// snapshotLocked is a non-zero time that includes every commit so far.
func (s *store) snapshotLocked() time.Time {
	if s.lastCommit.IsZero() {
		return time.Unix(0, 1000)
	}
	return s.lastCommit
}

// validateLocked reports ABORTED if anything the transaction read has
// changed. Callers hold s.mu exclusively.
func (t *txn) validateLocked(s *store) error {
	for full, seen := range t.reads {
		if s.getLocked(t.db, full, time.Time{}) != seen {
			return aborted("Too much contention on these documents. Please try again.")
		}
	}
	for _, qr := range t.queries {
		now := qr.q.runLocked(s, time.Time{})
		if len(now) != len(qr.docs) {
			return aborted("Too much contention on these documents. Please try again.")
		}
		for i := range now {
			if now[i] != qr.docs[i] {
				return aborted("Too much contention on these documents. Please try again.")
			}
		}
	}
	return nil
}
