package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
)

// ErrOutboxClaimed: the event's outbox entry changed since it was read (another instance
// claimed its publish, or it was published, or its state moved); the caller must not publish.
var ErrOutboxClaimed = errors.New("outbox entry claimed or changed")

// ClaimOutbox claims the publish of an unpublished event read as doc: in one transaction it
// checks that the event is still in the state doc was read in with the same outbox due time,
// and moves the due time to until. Of several concurrent claimers exactly one wins (the
// others see the moved due time, or lose the transaction); they get ErrOutboxClaimed. If the
// winner dies before MarkPublished, the event is due again at until.
//
// The claim compares the due time the caller read rather than the document's update time:
// Google's emulator cuts update times to milliseconds, so two writes in one millisecond
// would look unchanged to an update-time precondition.
func (s *Store) ClaimOutbox(ctx context.Context, doc *EventDoc, until time.Time) error {
	if doc.OutboxDueAt == nil {
		return fmt.Errorf("claim outbox %s: %w", doc.DocID, ErrOutboxClaimed)
	}
	read := doc.OutboxDueAt.UTC()
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		cur, err := txEvent(tx, s.eventRef(doc.DocID))
		if err != nil {
			return err
		}
		if cur == nil || cur.State != doc.State || cur.OutboxDueAt == nil || !cur.OutboxDueAt.Equal(read) {
			return ErrOutboxClaimed
		}
		return tx.Update(s.eventRef(doc.DocID), []firestore.Update{
			{Path: fOutboxDueAt, Value: until.UTC()},
			{Path: fUpdatedAt, Value: s.Now()},
		})
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrOutboxClaimed), errors.Is(err, ErrContended):
		return fmt.Errorf("claim outbox %s: %w", doc.DocID, ErrOutboxClaimed)
	}
	return fmt.Errorf("claim outbox %s: %w", doc.DocID, classify(err))
}
