package store

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
)

// This file is the drain's side of parking: the drain (processor/internal/park) lists a CRM's
// parked events with ParkedEvents and moves each back with UnparkDoc (or Unpark, lifecycle.go),
// which reports whether it moved the event, so of several draining instances exactly one
// publishes it.

// Field paths of the parked-events query; infra/firestore.tf declares its composite index
// (event.routing.crm, state, parked_at).
const (
	fRoutingCRM = "event.routing.crm"
	fParkedAt   = "parked_at"
)

// ParkedEvents returns up to limit events parked for crm (the event's routing.crm), oldest
// first: by parked_at, then by document id, so a batch boundary inside one parked_at is stable.
// An event parked again (a failed probe) gets a new parked_at and goes to the back.
func (s *Store) ParkedEvents(ctx context.Context, crm string, limit int) ([]*EventDoc, error) {
	q := s.fs.Collection(collEvents).
		Where(fRoutingCRM, "==", crm).
		Where(fState, "==", string(StateParked)).
		OrderBy(fParkedAt, firestore.Asc).
		OrderBy(firestore.DocumentID, firestore.Asc).
		Limit(limit)
	out, err := s.queryEvents(ctx, q, "parked events")
	if err != nil {
		return nil, fmt.Errorf("crm %s: %w", crm, err)
	}
	return out, nil
}

// UnparkDoc is Unpark for an event as ParkedEvents read it, in one commit: an update with the
// read's update time as precondition (the fast path of fastpath.go), one round trip instead of
// a transaction's three. On success doc is as written (state received, fence+1, parked_at
// cleared, in the outbox due at due) except its UpdateTime, which is zero: the outbox carries a
// document's version to ClaimFirst only for the document as its creator wrote it (ClaimFirst
// writes a first claim, fence 1), and an unparked event has been claimed before, so its
// delivery must take the transactional claim. It reports false, writing nothing, when the
// document changed since the read (another instance unparked it, an operator acted, a probe
// parked it again): a later read decides. A doc read without an update time takes Unpark's
// transaction.
func (s *Store) UnparkDoc(ctx context.Context, doc *EventDoc, due time.Time) (bool, error) {
	if doc.UpdateTime.IsZero() {
		moved, err := s.Unpark(ctx, doc.DocID, due)
		if moved {
			unparked(doc, due, s.Now())
		}
		return moved, err
	}
	if doc.State != StateParked {
		return false, nil
	}
	now := s.Now()
	_, err := s.eventRef(doc.DocID).Update(ctx, []firestore.Update{
		{Path: fState, Value: StateReceived}, {Path: fFence, Value: doc.Fence + 1},
		{Path: fParkedAt, Value: firestore.Delete}, {Path: fOutboxDueAt, Value: due.UTC()},
		{Path: fUpdatedAt, Value: now},
	}, firestore.LastUpdateTime(doc.UpdateTime))
	if lostPrecondition(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("unpark %s: %w", doc.DocID, classify(err))
	}
	unparked(doc, due, now)
	return true, nil
}

// unparked applies an unpark to doc in memory; UpdateTime is cleared (see UnparkDoc).
func unparked(doc *EventDoc, due, now time.Time) {
	due = due.UTC()
	doc.State, doc.Fence, doc.ParkedAt, doc.OutboxDueAt = StateReceived, doc.Fence+1, time.Time{}, &due
	doc.UpdatedAt, doc.UpdateTime = now, time.Time{}
}
