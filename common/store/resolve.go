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

// ResolvedBy is the status_changed_by of records the pipeline resolved on its own.
const ResolvedBy = "pipeline"

var errNotResolvable = errors.New("not resolvable")

// ResolveDLQ marks a `replayed` DLQ record `resolved` when its event has since succeeded, in one
// transaction over both documents. It reports whether it did; a record in any other status, or
// whose event has not succeeded (yet), is left as it is.
func (s *Store) ResolveDLQ(ctx context.Context, id string) (bool, error) {
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		recSnap, err := tx.Get(s.DLQRef(id))
		if err != nil {
			return err
		}
		rec, err := DecodeDLQ(recSnap)
		if err != nil {
			return err
		}
		if rec.Status != DLQReplayed {
			return errNotResolvable
		}
		evSnap, err := tx.Get(s.EventRef(id))
		if err != nil {
			return err
		}
		ev, err := decodeEvent(evSnap)
		if err != nil {
			return err
		}
		if ev.State != StateSucceeded {
			return errNotResolvable
		}
		return tx.Update(s.DLQRef(id), DLQStatusUpdates(DLQResolved, ResolvedBy, s.Now()))
	})
	switch {
	case errors.Is(err, errNotResolvable), status.Code(err) == codes.NotFound:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("resolve dlq %s: %w", id, Classify(err))
	}
	return true, nil
}

// DLQStatusUpdates are the field updates that move a DLQ record to status, by whom and when.
func DLQStatusUpdates(status, by string, now time.Time) []firestore.Update {
	return []firestore.Update{
		{Path: "status", Value: status},
		{Path: "status_changed_at", Value: now},
		{Path: "status_changed_by", Value: by},
		{Path: "updated_at", Value: now},
	}
}
