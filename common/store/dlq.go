package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"

	"github.com/leadpipe/leadpipe/common/failure"
)

// ErrBadPageToken: a page token that this store did not hand out.
var ErrBadPageToken = errors.New("invalid page token")

// DLQFilter selects DLQ records. Empty fields match everything. Since and Until bound the
// record's creation time (when the event first reached the DLQ): Since inclusive, Until
// exclusive.
type DLQFilter struct {
	Source       string        `firestore:"source,omitempty" json:"source,omitempty"`
	FailureClass failure.Class `firestore:"failure_class,omitempty" json:"failure_class,omitempty"`
	Status       DLQStatus     `firestore:"status,omitempty" json:"status,omitempty"`
	Since        time.Time     `firestore:"since,omitempty" json:"since,omitzero"`
	Until        time.Time     `firestore:"until,omitempty" json:"until,omitzero"`
}

// dlqRef is the DLQ record of an event document id.
func (s *Store) dlqRef(id string) *firestore.DocumentRef {
	return s.ops.Collection(collDLQ).Doc(id)
}

// decodeDLQ reads a DLQ record from a snapshot.
func decodeDLQ(snap *firestore.DocumentSnapshot) (*DLQRecord, error) {
	var r DLQRecord
	if err := snap.DataTo(&r); err != nil {
		return nil, fmt.Errorf("decode dlq %s: %w", snap.Ref.ID, err)
	}
	r.ID = snap.Ref.ID
	return &r, nil
}

// GetDLQ reads one DLQ record; ErrNotFound when there is none.
func (s *Store) GetDLQ(ctx context.Context, id string) (*DLQRecord, error) {
	return get(ctx, s.dlqRef(id), "get dlq", decodeDLQ)
}

// DLQCursor is the page token that continues a ListDLQ listing right after r, so a bulk job
// can checkpoint after every record.
func DLQCursor(r *DLQRecord) string { return encodeCursor(r.CreatedAt, r.ID) }

// DLQPage is one page of DLQ records and the token of the next one ("" on the last page).
type DLQPage struct {
	Records       []*DLQRecord
	NextPageToken string
}

// pageCursor is the opaque page token: the last record's order-by value and id.
type pageCursor struct {
	At time.Time `json:"t"`
	ID string    `json:"i"`
}

func encodeCursor(at time.Time, id string) string {
	b, _ := json.Marshal(pageCursor{At: at, ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(tok string) (*pageCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, ErrBadPageToken
	}
	var c pageCursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return nil, ErrBadPageToken
	}
	return &c, nil
}

// ListDLQ returns up to pageSize records matching f, newest first (by created_at, then id),
// starting after pageToken. Equality filters combined with the created_at range need a
// composite index in Cloud Firestore (infra declares them).
func (s *Store) ListDLQ(ctx context.Context, f DLQFilter, pageSize int, pageToken string) (*DLQPage, error) {
	if pageSize <= 0 {
		pageSize = 50
	}
	q := s.dlqQuery(f).OrderBy("created_at", firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc)
	if pageToken != "" {
		c, err := decodeCursor(pageToken)
		if err != nil {
			return nil, fmt.Errorf("list dlq: %w", err)
		}
		q = q.StartAfter(c.At, s.dlqRef(c.ID))
	}
	it := q.Limit(pageSize + 1).Documents(ctx)
	defer it.Stop()
	page := &DLQPage{}
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list dlq: %w", classify(err))
		}
		if len(page.Records) == pageSize {
			last := page.Records[len(page.Records)-1]
			page.NextPageToken = encodeCursor(last.CreatedAt, last.ID)
			break
		}
		r, err := decodeDLQ(snap)
		if err != nil {
			return nil, err
		}
		page.Records = append(page.Records, r)
	}
	return page, nil
}

// DLQCount is the number of records with one failure class and source.
type DLQCount struct {
	FailureClass string `json:"failure_class"`
	Source       string `json:"source"`
	Count        int    `json:"count"`
}

// CountDLQ groups the records with the given status ("" for all) by failure class and source.
// It reads at most limit records (only the grouped fields) and reports whether it stopped
// there, so a huge backlog cannot make the triage page slow.
func (s *Store) CountDLQ(ctx context.Context, statusFilter DLQStatus, limit int) ([]DLQCount, bool, error) {
	q := s.ops.Collection(collDLQ).Select("failure_class", "source")
	if statusFilter != "" {
		q = q.Where("status", "==", statusFilter)
	}
	it := q.Limit(limit + 1).Documents(ctx)
	defer it.Stop()
	type key struct{ class, source string }
	counts := map[key]int{}
	var order []key
	n := 0
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("count dlq: %w", classify(err))
		}
		n++
		if n > limit {
			break
		}
		var r struct {
			FailureClass string `firestore:"failure_class"`
			Source       string `firestore:"source"`
		}
		if err := snap.DataTo(&r); err != nil {
			return nil, false, fmt.Errorf("decode dlq %s: %w", snap.Ref.ID, err)
		}
		k := key{r.FailureClass, r.Source}
		if _, ok := counts[k]; !ok {
			order = append(order, k)
		}
		counts[k]++
	}
	out := make([]DLQCount, 0, len(order))
	for _, k := range order {
		out = append(out, DLQCount{FailureClass: k.class, Source: k.source, Count: counts[k]})
	}
	return out, n > limit, nil
}

// dlqQuery is the query of the DLQ records f matches, shared by the list and its count.
func (s *Store) dlqQuery(f DLQFilter) firestore.Query {
	q := s.ops.Collection(collDLQ).Query
	if f.Source != "" {
		q = q.Where("source", "==", f.Source)
	}
	if f.FailureClass != "" {
		q = q.Where("failure_class", "==", f.FailureClass)
	}
	if f.Status != "" {
		q = q.Where("status", "==", f.Status)
	}
	if !f.Since.IsZero() {
		q = q.Where("created_at", ">=", f.Since)
	}
	if !f.Until.IsZero() {
		q = q.Where("created_at", "<", f.Until)
	}
	return q
}
