package store

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
)

// Classify exposes classify to the external tests.
var Classify = classify

// Intend runs only step 1 of an operator action (the intent), as an action interrupted right
// after it would leave the record.
func (s *Store) Intend(ctx context.Context, a Action, verb string, decide Decision) error {
	_, _, decided, err := s.intend(ctx, a, verb, decide)
	if decided != nil {
		return decided
	}
	return err
}

// IntendAndApplyReplay runs steps 1 and 2 of a replay, as a replay interrupted before its
// record and audit entry are written would leave them.
func (s *Store) IntendAndApplyReplay(ctx context.Context, a Action) error {
	t, pend, _, err := s.intend(ctx, a, "replay", func(*DLQRecord, *EventDoc) (string, error) { return "", nil })
	if err != nil {
		return err
	}
	_, err = s.applyEvent(ctx, a.ID, pend, t, func(tx *firestore.Transaction, doc *EventDoc, now time.Time, t *Transition) error {
		return tx.Update(s.eventRef(a.ID), []firestore.Update{{Path: fState, Value: StateReceived}, {Path: fFence, Value: doc.Fence + 1},
			{Path: "last_replay_id", Value: a.ReplayID}, {Path: fUpdatedAt, Value: now}})
	})
	return err
}
