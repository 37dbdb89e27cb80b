package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
)

// AuditFilter selects audit entries. Empty fields match everything; Target matches entries
// that touched that DLQ record / event document id. Since inclusive, Until exclusive.
type AuditFilter struct {
	Actor  string
	Action string
	Target string
	Since  time.Time
	Until  time.Time
}

// newAuditRef is a fresh audit entry, so a transaction can write it together with the change
// it records.
func (s *Store) newAuditRef() *firestore.DocumentRef {
	return s.ops.Collection(collAudit).NewDoc()
}

// AppendAudit writes one audit entry and returns its id. At defaults to now.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) (string, error) {
	ref := s.newAuditRef()
	if e.At.IsZero() {
		e.At = s.Now()
	}
	if _, err := ref.Create(ctx, e); err != nil {
		return "", fmt.Errorf("append audit: %w", classify(err))
	}
	LogAudit(ctx, ref.ID, e)
	return ref.ID, nil
}

// UpdateAuditOutcome sets the outcome and detail of an entry written earlier (for example
// when a replay's publish was deferred to the outbox after the entry was committed).
func (s *Store) UpdateAuditOutcome(ctx context.Context, id, outcome, detail string) error {
	_, err := s.ops.Collection(collAudit).Doc(id).Update(ctx, []firestore.Update{
		{Path: "outcome", Value: outcome},
		{Path: "detail", Value: detail},
	})
	if err != nil {
		return fmt.Errorf("update audit %s: %w", id, classify(err))
	}
	return nil
}

// AuditPage is one page of audit entries and the token of the next one ("" on the last page).
type AuditPage struct {
	Entries       []*AuditEntry
	NextPageToken string
}

// ListAudit returns up to pageSize entries matching f, newest first, after pageToken.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter, pageSize int, pageToken string) (*AuditPage, error) {
	if pageSize <= 0 {
		pageSize = 50
	}
	col := s.ops.Collection(collAudit)
	q := col.Query
	if f.Actor != "" {
		q = q.Where("actor", "==", f.Actor)
	}
	if f.Action != "" {
		q = q.Where("action", "==", f.Action)
	}
	if f.Target != "" {
		q = q.Where("targets", "array-contains", f.Target)
	}
	if !f.Since.IsZero() {
		q = q.Where("at", ">=", f.Since)
	}
	if !f.Until.IsZero() {
		q = q.Where("at", "<", f.Until)
	}
	q = q.OrderBy("at", firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc)
	if pageToken != "" {
		c, err := decodeCursor(pageToken)
		if err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		q = q.StartAfter(c.At, col.Doc(c.ID))
	}
	it := q.Limit(pageSize + 1).Documents(ctx)
	defer it.Stop()
	page := &AuditPage{}
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list audit: %w", classify(err))
		}
		if len(page.Entries) == pageSize {
			last := page.Entries[len(page.Entries)-1]
			page.NextPageToken = encodeCursor(last.At, last.ID)
			break
		}
		var e AuditEntry
		if err := snap.DataTo(&e); err != nil {
			return nil, fmt.Errorf("decode audit %s: %w", snap.Ref.ID, err)
		}
		e.ID = snap.Ref.ID
		page.Entries = append(page.Entries, &e)
	}
	return page, nil
}
