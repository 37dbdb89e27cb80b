package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrOutboxClaimed: the event document changed since it was read (another instance claimed its
// publish, or it was published); the caller must not publish it.
var ErrOutboxClaimed = errors.New("outbox entry claimed or changed")

// ClaimOutbox claims the publish of an unpublished event read as doc: it moves outbox_due_at to
// until, on the precondition that the document is unchanged since the read (doc.UpdateTime).
// Of several concurrent claimers exactly one wins; the others get ErrOutboxClaimed. If the
// winner dies before MarkPublished, the event is due again at until.
func (s *Store) ClaimOutbox(ctx context.Context, doc *EventDoc, until time.Time) error {
	if doc.UpdateTime.IsZero() {
		return fmt.Errorf("claim outbox %s: document read without update time", doc.DocID)
	}
	_, err := s.EventRef(doc.DocID).Update(ctx, []firestore.Update{
		{Path: "outbox_due_at", Value: until.UTC()},
		{Path: "updated_at", Value: s.Now()},
	}, firestore.LastUpdateTime(doc.UpdateTime))
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.FailedPrecondition, codes.NotFound, codes.Aborted:
		return fmt.Errorf("claim outbox %s: %w", doc.DocID, ErrOutboxClaimed)
	}
	return fmt.Errorf("claim outbox %s: %w", doc.DocID, Classify(err))
}
