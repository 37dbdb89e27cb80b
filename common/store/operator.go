package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/leadpipe/leadpipe/common/event"
)

// This file is the operator's and the DLQ intake's half of the event lifecycle: Replay,
// Discard, RecordDeadLetter and Resolve, each one transaction over the event, its DLQ record
// and (for operator actions) the audit entry. Replay, Discard and a dead-letter's quarantine
// move the event's fence, so the verdict of a lease taken before them is refused
// (ErrFenceSuperseded). Callers pass their policy in as a pure Decision over what the
// transaction read; the store applies it and owns every field it writes.

// Decision is an operator action's policy over the DLQ record and its event document (nil when
// there is none). It returns a no-op outcome ("" to apply the action) or an error that aborts
// the action and is returned as is. It must be pure: a contended transaction calls it again.
type Decision func(rec *DLQRecord, doc *EventDoc) (noop string, err error)

// Action is one operator action on a DLQ record.
type Action struct {
	// ID is the DLQ record's id, which is its event's document id.
	ID string
	// Actor and Reason are audited.
	Actor, Reason string
	// JobID names the bulk job the action belongs to, if any.
	JobID string
	// Outcome is audited when the action is applied (Decision returned "").
	Outcome string
	// QuietNoop leaves no-op outcomes out of the audit (bulk jobs and auto-replay audit
	// themselves).
	QuietNoop bool

	// Replay only. ReplayID is the new replay's id; OutboxDueAt is when the outbox sweep
	// publishes the event if the caller's own publish does not happen first.
	ReplayID    string
	OutboxDueAt time.Time
	// Renormalized, when not nil, replaces the stored event (same idempotency key).
	Renormalized *event.Event
}

// Transition is what an operator action did.
type Transition struct {
	// Noop is the Decision's no-op outcome; "" when the action was applied.
	Noop string
	// EventState and RecordStatus are the states after the action (EventState "" without an
	// event document).
	EventState   State
	RecordStatus DLQStatus
	// Event is the event as stored after a replay: what to publish.
	Event event.Event
	// PrevMappingVersion is the mapping version before a renormalizing replay.
	PrevMappingVersion string
	// AuditID is the audit entry written, "" for a quiet no-op.
	AuditID string
}

// Replay moves the event to received for another delivery, if decide says so: replay_count+1,
// last_replay_id, attempts_base = attempts (the quarantine threshold starts over), the lease
// cleared, fence+1 (an in-flight holder of a forced replay cannot record its verdict), back in
// the outbox at a.OutboxDueAt, and optionally the renormalized event; the DLQ record becomes
// replayed and the audit entry is appended, all in one transaction. ErrNotFound when there is
// no such DLQ record; decide's errors as is; others classified.
func (s *Store) Replay(ctx context.Context, a Action, decide Decision) (*Transition, error) {
	var out *Transition
	err := s.action(ctx, a, "replay", decide, func(tx *firestore.Transaction, rec *DLQRecord, doc *EventDoc, now time.Time, t *Transition) error {
		if doc == nil {
			return fmt.Errorf("replay without an event document: %w", ErrNotFound)
		}
		t.Event = doc.Event
		updates := []firestore.Update{
			{Path: fState, Value: StateReceived},
			{Path: fFence, Value: doc.Fence + 1},
			{Path: "replay_count", Value: doc.ReplayCount + 1},
			{Path: "last_replay_id", Value: a.ReplayID},
			{Path: fAttemptsBase, Value: doc.Attempts},
			{Path: fOutboxDueAt, Value: a.OutboxDueAt.UTC()},
			{Path: "parked_at", Value: firestore.Delete},
			{Path: fUpdatedAt, Value: now},
		}
		updates = append(updates, releaseLease()...)
		if a.Renormalized != nil {
			t.PrevMappingVersion, t.Event = doc.Event.MappingVersion, *a.Renormalized
			updates = append(updates,
				firestore.Update{Path: "event", Value: t.Event},
				firestore.Update{Path: "mapping_version", Value: t.Event.MappingVersion})
		}
		if err := tx.Update(s.eventRef(a.ID), updates); err != nil {
			return err
		}
		t.EventState, t.RecordStatus = StateReceived, DLQReplayed
		return tx.Update(s.dlqRef(a.ID), dlqStatusUpdates(DLQReplayed, a.Actor, now))
	}, &out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Discard moves the event (if any) to discarded, a terminal state, with fence+1 and the lease
// and outbox entry cleared, and the DLQ record to discarded, if decide says so, in one
// transaction with its audit entry. ErrNotFound when there is no such DLQ record; decide's
// errors as is; others classified.
func (s *Store) Discard(ctx context.Context, a Action, decide Decision) (*Transition, error) {
	var out *Transition
	err := s.action(ctx, a, "discard", decide, func(tx *firestore.Transaction, rec *DLQRecord, doc *EventDoc, now time.Time, t *Transition) error {
		if doc != nil {
			updates := append(releaseLease(),
				firestore.Update{Path: fState, Value: StateDiscarded},
				firestore.Update{Path: fFence, Value: doc.Fence + 1},
				firestore.Update{Path: fOutboxDueAt, Value: firestore.Delete},
				firestore.Update{Path: fUpdatedAt, Value: now})
			if err := tx.Update(s.eventRef(a.ID), updates); err != nil {
				return err
			}
			t.EventState = StateDiscarded
		}
		t.RecordStatus = DLQDiscarded
		return tx.Update(s.dlqRef(a.ID), dlqStatusUpdates(DLQDiscarded, a.Actor, now))
	}, &out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// action is the transaction shared by Replay and Discard: read the record and the event,
// decide, apply (or audit the no-op), append the audit entry.
func (s *Store) action(ctx context.Context, a Action, verb string, decide Decision,
	apply func(tx *firestore.Transaction, rec *DLQRecord, doc *EventDoc, now time.Time, t *Transition) error, out **Transition) error {
	errDecided := errors.New("decided")
	var (
		decided error
		logged  *AuditEntry // the entry the committed try wrote, for its log line
	)
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		decided, logged = nil, nil
		now := s.Now()
		rec, err := txDLQ(tx, s.dlqRef(a.ID))
		if err != nil {
			return err
		}
		if rec == nil {
			return ErrNotFound
		}
		doc, err := txEvent(tx, s.eventRef(a.ID))
		if err != nil {
			return err
		}
		t := &Transition{RecordStatus: rec.Status}
		if doc != nil {
			t.EventState = doc.State
		}
		*out = t
		noop, err := decide(rec, doc)
		if err != nil {
			decided = err
			return errDecided
		}
		audit := AuditEntry{At: now, Actor: a.Actor, Action: verb, Reason: a.Reason, Targets: []string{a.ID}, JobID: a.JobID}
		if noop != "" {
			t.Noop = noop
			if a.QuietNoop {
				return nil
			}
			audit.Outcome = noop
		} else {
			if err := apply(tx, rec, doc, now, t); err != nil {
				return err
			}
			audit.Outcome, audit.ReplayID = a.Outcome, a.ReplayID
			if t.PrevMappingVersion != "" {
				audit.Detail = fmt.Sprintf("renormalized: mapping %s -> %s", t.PrevMappingVersion, t.Event.MappingVersion)
			}
		}
		ref := s.newAuditRef()
		t.AuditID = ref.ID
		logged = &audit
		return tx.Create(ref, audit)
	})
	if err == nil && logged != nil {
		// Every audit entry is also a log line (AppendAudit does the same), whoever acted: the
		// API, the triage page, a bulk job or auto-replay.
		LogAudit(ctx, (*out).AuditID, *logged)
	}
	switch {
	case errors.Is(err, errDecided):
		return decided
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%s %s: %w", verb, a.ID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s %s: %w", verb, a.ID, classify(err))
	}
	return nil
}

// DeadLetter is the intake's policy for one dead-letter message, passed to RecordDeadLetter:
// given the event's current DLQ record (nil for its first message) and its event document (nil
// when there is none) it returns the record to store and, when the message reports the event's
// current delivery and the event should be quarantined by it, the reason and who gave it
// (Quarantine nil otherwise). It must be pure: a contended transaction calls it again.
type DeadLetter func(cur *DLQRecord, doc *EventDoc) (rec *DLQRecord, q *Quarantine)

// Quarantine is a quarantine asked for by a dead-letter message.
type Quarantine struct {
	Reason Reason
	By     Origin
}

// RecordDeadLetter upserts the DLQ record of event document id as merge decides, in one
// transaction with the event: when merge asks for a quarantine and the event is still live
// (received, processing, failed, parked), it moves to quarantined with the reason, fence+1 and
// the lease cleared, so a processor still holding a lease cannot record a verdict over it, and
// a later replay's quarantined -> received transition holds. It returns the stored record.
func (s *Store) RecordDeadLetter(ctx context.Context, id string, merge DeadLetter) (*DLQRecord, error) {
	var out *DLQRecord
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		now := s.Now()
		doc, err := txEvent(tx, s.eventRef(id))
		if err != nil {
			return err
		}
		cur, err := txDLQ(tx, s.dlqRef(id))
		if err != nil {
			return err
		}
		rec, q := merge(cur, doc)
		rec.ID, rec.UpdatedAt = id, now
		if rec.NormalizedEventRef == "" {
			rec.NormalizedEventRef = DocPath(id)
		}
		if err := tx.Set(s.dlqRef(id), rec); err != nil {
			return err
		}
		out = rec
		if q == nil || doc == nil || doc.State.Terminal() {
			return nil
		}
		updates := append(quarantineUpdates(q.Reason, q.By, now), releaseLease()...)
		return tx.Update(s.eventRef(id), append(updates, firestore.Update{Path: fFence, Value: doc.Fence + 1}, firestore.Update{Path: fUpdatedAt, Value: now}))
	})
	if err != nil {
		return nil, fmt.Errorf("record dlq %s: %w", id, classify(err))
	}
	return out, nil
}

// Resolve marks a replayed DLQ record resolved when its event has since succeeded, in one
// transaction over both documents. It reports whether it did; a record in any other status, or
// whose event has not succeeded (yet), or that does not exist, is left as it is.
func (s *Store) Resolve(ctx context.Context, id string) (bool, error) {
	done := false
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		done = false
		rec, err := txDLQ(tx, s.dlqRef(id))
		if err != nil || rec == nil || rec.Status != DLQReplayed {
			return err
		}
		ev, err := txEvent(tx, s.eventRef(id))
		if err != nil || ev == nil || ev.State != StateSucceeded {
			return err
		}
		done = true
		return tx.Update(s.dlqRef(id), dlqStatusUpdates(DLQResolved, ResolvedBy, s.Now()))
	})
	if err != nil {
		return false, fmt.Errorf("resolve dlq %s: %w", id, classify(err))
	}
	return done, nil
}

// dlqStatusUpdates are the field updates that move a DLQ record to status, by whom and when.
func dlqStatusUpdates(status DLQStatus, by string, now time.Time) []firestore.Update {
	return []firestore.Update{
		{Path: "status", Value: status},
		{Path: "status_changed_at", Value: now},
		{Path: "status_changed_by", Value: by},
		{Path: fUpdatedAt, Value: now},
	}
}
