package store

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"
)

// This file is the read side of parking: the drain (processor/internal/park) lists a CRM's
// parked events with ParkedEvents and moves each back with Unpark (lifecycle.go), whose
// transaction reports whether it moved the event, so of several draining instances exactly one
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
