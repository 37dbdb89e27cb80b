package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/leadpipe/leadpipe/common/event"
)

// This file is the operator's and the DLQ intake's half of the event lifecycle: Replay,
// Discard, RecordDeadLetter and Resolve. The event lives in the events database and its DLQ
// record and the audit log in the operations database (one database unless the deployment
// splits them), so no transaction spans both. An operator action is three steps:
//
//  1. intent (operations database, one transaction): read the record, read the event, decide;
//     a no-op is audited and ends here; otherwise the record gets Pending (verb, actor, reason,
//     the event's fence as read) and no second action can start on it;
//  2. the event (events database, one transaction): applied only if the event still has that
//     fence, and always raising it, so the verdict of a lease taken before is refused
//     (ErrFenceSuperseded); if the fence moved, the intent is withdrawn and the action decides
//     again;
//  3. the record's new status, Pending removed and the audit entry (operations database, one
//     transaction).
//
// An action interrupted after 1 leaves Pending; the next one to touch the record (an action,
// the DLQ intake, Resolve) once it is older than pendingTTL finishes it from what the event
// says: step 2 happened (the fence moved and the event carries the action) -> step 3 with the
// intent's actor and reason; it did not -> the intent is withdrawn, audited as interrupted.
// Callers pass their policy in as a pure Decision over what step 1 read.

// pendingTTL is how old an intent must be before it counts as interrupted (an action's three
// steps take milliseconds).
const pendingTTL = 30 * time.Second

// errPendingBusy: another action on the record is between its steps.
var errPendingBusy = errors.New("another action on this record is in progress")

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
// replayed and the audit entry is appended, in the three steps of the file comment.
// ErrNotFound when there is no such DLQ record; decide's errors as is; ErrContended (retryable)
// when another action on the record stays in progress; others classified.
func (s *Store) Replay(ctx context.Context, a Action, decide Decision) (*Transition, error) {
	return s.action(ctx, a, "replay", decide, func(tx *firestore.Transaction, doc *EventDoc, now time.Time, t *Transition) error {
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
		t.EventState = StateReceived
		return tx.Update(s.eventRef(a.ID), updates)
	})
}

// Discard moves the event (if any) to discarded, a terminal state, with fence+1 and the lease
// and outbox entry cleared, and the DLQ record to discarded, if decide says so, with its audit
// entry, in the three steps of the file comment. ErrNotFound when there is no such DLQ record; decide's
// errors as is; others classified.
func (s *Store) Discard(ctx context.Context, a Action, decide Decision) (*Transition, error) {
	return s.action(ctx, a, "discard", decide, func(tx *firestore.Transaction, doc *EventDoc, now time.Time, t *Transition) error {
		if doc == nil {
			return nil
		}
		t.EventState = StateDiscarded
		return tx.Update(s.eventRef(a.ID), append(releaseLease(),
			firestore.Update{Path: fState, Value: StateDiscarded},
			firestore.Update{Path: fFence, Value: doc.Fence + 1},
			firestore.Update{Path: fOutboxDueAt, Value: firestore.Delete},
			firestore.Update{Path: fUpdatedAt, Value: now}))
	})
}

// verbStatus is the DLQ status an applied action leaves its record in.
var verbStatus = map[string]DLQStatus{"replay": DLQReplayed, "discard": DLQDiscarded}

// action runs an operator action's three steps (see the file comment) and returns what it did.
func (s *Store) action(ctx context.Context, a Action, verb string, decide Decision,
	apply func(tx *firestore.Transaction, doc *EventDoc, now time.Time, t *Transition) error) (*Transition, error) {
	wrap := func(err error) error {
		switch {
		case errors.Is(err, ErrNotFound):
			return fmt.Errorf("%s %s: %w", verb, a.ID, ErrNotFound)
		case errors.Is(err, errPendingBusy):
			return fmt.Errorf("%s %s: %w: %w", verb, a.ID, errPendingBusy, ErrContended)
		}
		return fmt.Errorf("%s %s: %w", verb, a.ID, classify(err))
	}
	for try := 0; ; try++ {
		t, pend, decided, err := s.intend(ctx, a, verb, decide)
		switch {
		case decided != nil:
			return nil, decided
		case errors.Is(err, errPendingBusy) && try < 60:
			// Finish the intent if it is stale; otherwise its action is still running.
			if rerr := s.recoverPending(ctx, a.ID); rerr != nil {
				return nil, wrap(rerr)
			}
			if werr := sleepCtx(ctx, 50*time.Millisecond); werr != nil {
				return nil, werr
			}
			continue
		case err != nil:
			return nil, wrap(err)
		case pend == nil:
			return t, nil // a no-op, audited unless quiet
		}
		applied, err := s.applyEvent(ctx, a.ID, pend, t, apply)
		if err != nil || !applied {
			// Withdraw the intent: the event failed to change, or moved since the decision.
			if cerr := s.withdraw(context.WithoutCancel(ctx), a.ID, pend, ""); cerr != nil && err == nil {
				err = cerr
			}
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					return nil, err
				}
				return nil, wrap(err)
			}
			if try < 3 {
				continue
			}
			return nil, wrap(ErrContended)
		}
		if err := s.settle(context.WithoutCancel(ctx), a.ID, pend, t, ""); err != nil {
			// The event changed; the record's status and audit are owed. The next touch after
			// pendingTTL writes them from the intent.
			return nil, wrap(err)
		}
		return t, nil
	}
}

// intend is step 1: decide on the record and the event; audit a no-op, or record the intent.
// decided is the Decision's own error, returned as is.
func (s *Store) intend(ctx context.Context, a Action, verb string, decide Decision) (t *Transition, pend *PendingAction, decided, err error) {
	var logged *AuditEntry
	err = s.runOpsTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		t, pend, decided, logged = nil, nil, nil, nil
		now := s.Now()
		rec, err := txDLQ(tx, s.dlqRef(a.ID))
		if err != nil {
			return err
		}
		if rec == nil {
			return ErrNotFound
		}
		if rec.Pending != nil {
			return errPendingBusy
		}
		doc, err := s.eventOrNil(ctx, a.ID)
		if err != nil {
			return err
		}
		t = &Transition{RecordStatus: rec.Status}
		if doc != nil {
			t.EventState = doc.State
		}
		noop, err := decide(rec, doc)
		if err != nil {
			decided = err
			return nil
		}
		if noop != "" {
			t.Noop = noop
			if a.QuietNoop {
				return nil
			}
			audit := AuditEntry{At: now, Actor: a.Actor, Action: verb, Reason: a.Reason, Targets: []string{a.ID}, JobID: a.JobID, Outcome: noop}
			ref := s.newAuditRef()
			t.AuditID, logged = ref.ID, &audit
			return tx.Create(ref, audit)
		}
		fence := int64(-1)
		if doc != nil {
			fence = doc.Fence
		}
		pend = &PendingAction{ID: intentID(), Verb: verb, Actor: a.Actor, Reason: a.Reason, JobID: a.JobID, Outcome: a.Outcome,
			ReplayID: a.ReplayID, Fence: fence, At: now}
		return tx.Update(s.dlqRef(a.ID), []firestore.Update{{Path: "pending", Value: pend}, {Path: fUpdatedAt, Value: now}})
	})
	if err == nil && logged != nil {
		LogAudit(ctx, t.AuditID, *logged)
	}
	if err != nil || decided != nil {
		return nil, nil, decided, err
	}
	return t, pend, nil, nil
}

// applyEvent is step 2: apply the action to the event if it still has the intent's fence.
func (s *Store) applyEvent(ctx context.Context, id string, pend *PendingAction, t *Transition,
	apply func(tx *firestore.Transaction, doc *EventDoc, now time.Time, t *Transition) error) (bool, error) {
	applied := false
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		applied = false
		doc, err := txEvent(tx, s.eventRef(id))
		if err != nil {
			return err
		}
		fence := int64(-1)
		if doc != nil {
			fence = doc.Fence
		}
		if fence != pend.Fence {
			return nil
		}
		applied = true
		return apply(tx, doc, s.Now(), t)
	})
	return applied, err
}

// settle is step 3: the record's status, the intent removed and the audit entry; detail notes
// an action finished by recoverPending. It does nothing when the intent is no longer there
// (someone finished or withdrew it).
func (s *Store) settle(ctx context.Context, id string, pend *PendingAction, t *Transition, detail string) error {
	status := verbStatus[pend.Verb]
	var logged *AuditEntry
	err := s.runOpsTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		logged = nil
		rec, err := txDLQ(tx, s.dlqRef(id))
		if err != nil || rec == nil || !samePending(rec.Pending, pend) {
			return err
		}
		now := s.Now()
		audit := AuditEntry{At: now, Actor: pend.Actor, Action: pend.Verb, Reason: pend.Reason, Targets: []string{id},
			JobID: pend.JobID, Outcome: pend.Outcome, ReplayID: pend.ReplayID, Detail: detail}
		if t.PrevMappingVersion != "" {
			audit.Detail = fmt.Sprintf("renormalized: mapping %s -> %s", t.PrevMappingVersion, t.Event.MappingVersion)
		}
		if err := tx.Update(s.dlqRef(id), append(dlqStatusUpdates(status, pend.Actor, now), firestore.Update{Path: "pending", Value: firestore.Delete})); err != nil {
			return err
		}
		ref := s.newAuditRef()
		t.AuditID, t.RecordStatus, logged = ref.ID, status, &audit
		return tx.Create(ref, audit)
	})
	if err == nil && logged != nil {
		// Every audit entry is also a log line (AppendAudit does the same), whoever acted: the
		// API, the triage page, a bulk job or auto-replay.
		LogAudit(ctx, t.AuditID, *logged)
	}
	return err
}

// withdraw removes an intent whose event step did not happen; an outcome (recoverPending's
// "interrupted") is audited.
func (s *Store) withdraw(ctx context.Context, id string, pend *PendingAction, outcome string) error {
	var logged *AuditEntry
	var auditID string
	err := s.runOpsTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		logged = nil
		rec, err := txDLQ(tx, s.dlqRef(id))
		if err != nil || rec == nil || !samePending(rec.Pending, pend) {
			return err
		}
		if err := tx.Update(s.dlqRef(id), []firestore.Update{{Path: "pending", Value: firestore.Delete}}); err != nil {
			return err
		}
		if outcome == "" {
			return nil
		}
		audit := AuditEntry{At: s.Now(), Actor: pend.Actor, Action: pend.Verb, Reason: pend.Reason, Targets: []string{id},
			JobID: pend.JobID, ReplayID: pend.ReplayID, Outcome: outcome, Detail: "interrupted before the event changed; not applied"}
		ref := s.newAuditRef()
		auditID, logged = ref.ID, &audit
		return tx.Create(ref, audit)
	})
	if err == nil && logged != nil {
		LogAudit(ctx, auditID, *logged)
	}
	return err
}

// recoverPending finishes or withdraws an interrupted action on the record (see the file
// comment); a fresh intent is left to its action.
func (s *Store) recoverPending(ctx context.Context, id string) error {
	rec, err := s.GetDLQ(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	pend := rec.Pending
	if pend == nil || s.Now().Sub(pend.At) < pendingTTL {
		return nil
	}
	doc, err := s.eventOrNil(ctx, id)
	if err != nil {
		return err
	}
	var done bool
	switch {
	case doc == nil:
		done = pend.Fence == -1 && pend.Verb == "discard"
	case doc.Fence == pend.Fence+1:
		done = pend.Verb == "replay" && doc.LastReplayID == pend.ReplayID || pend.Verb == "discard" && doc.State == StateDiscarded
	case doc.Fence > pend.Fence+1:
		// Moved on further since: the action's own change is no longer readable; the event
		// carries a replay id or discarded state only if it was applied.
		done = pend.Verb == "replay" && doc.LastReplayID == pend.ReplayID
	}
	if done {
		return s.settle(ctx, id, pend, &Transition{}, "completed after an interruption")
	}
	return s.withdraw(ctx, id, pend, "interrupted")
}

// samePending reports whether the record still carries the intent p.
func samePending(cur, p *PendingAction) bool {
	return cur != nil && cur.ID == p.ID
}

// intentID is a fresh random intent id.
func intentID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// eventOrNil reads the event document; nil (and no error) when there is none.
func (s *Store) eventOrNil(ctx context.Context, id string) (*EventDoc, error) {
	doc, err := s.GetEvent(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return doc, err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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

// RecordDeadLetter upserts the DLQ record of event document id as merge decides, then (in the
// events database) the event: when merge asks for a quarantine and the event is still live
// (received, processing, failed, parked), it moves to quarantined with the reason, fence+1 and
// the lease cleared, so a processor still holding a lease cannot record a verdict over it, and
// a later replay's quarantined -> received transition holds. It returns the stored record.
func (s *Store) RecordDeadLetter(ctx context.Context, id string, merge DeadLetter) (*DLQRecord, error) {
	doc, err := s.eventOrNil(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("record dlq %s: %w", id, err)
	}
	var (
		out *DLQRecord
		q   *Quarantine
	)
	err = s.runOpsTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		cur, err := txDLQ(tx, s.dlqRef(id))
		if err != nil {
			return err
		}
		rec, quarantine := merge(cur, doc)
		rec.ID, rec.UpdatedAt = id, s.Now()
		if rec.NormalizedEventRef == "" {
			rec.NormalizedEventRef = DocPath(id)
		}
		if cur != nil {
			rec.Pending = cur.Pending // an operator action in progress keeps its intent
		}
		out, q = rec, quarantine
		return tx.Set(s.dlqRef(id), rec)
	})
	if err != nil {
		return nil, fmt.Errorf("record dlq %s: %w", id, classify(err))
	}
	if out.Pending != nil {
		// An operator action on the record: finish it if it was interrupted.
		if err := s.recoverPending(ctx, id); err != nil {
			return nil, fmt.Errorf("record dlq %s: %w", id, classify(err))
		}
	}
	if q == nil || doc == nil || doc.State.Terminal() {
		return out, nil
	}
	// The event's quarantine, in its own database: only if it is where merge saw it (same
	// fence, still live). If a claim or a replay moved it since, that delivery decides; the
	// record stands either way. A crash before this step nacks the dead-letter message, whose
	// redelivery runs both steps again.
	err = s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		cur, err := txEvent(tx, s.eventRef(id))
		if err != nil || cur == nil || cur.State.Terminal() || cur.Fence != doc.Fence {
			return err
		}
		now := s.Now()
		updates := append(quarantineUpdates(q.Reason, q.By, now), releaseLease()...)
		return tx.Update(s.eventRef(id), append(updates, firestore.Update{Path: fFence, Value: cur.Fence + 1}, firestore.Update{Path: fUpdatedAt, Value: now}))
	})
	if err != nil {
		return nil, fmt.Errorf("record dlq %s: quarantine event: %w", id, classify(err))
	}
	return out, nil
}

// Resolve marks a replayed DLQ record resolved when its event has since succeeded (read
// first; a succeeded event stays succeeded). It reports whether it did; a record in any other status, or
// whose event has not succeeded (yet), or that does not exist, is left as it is.
func (s *Store) Resolve(ctx context.Context, id string) (bool, error) {
	ev, err := s.eventOrNil(ctx, id)
	if err != nil || ev == nil || ev.State != StateSucceeded {
		return false, err
	}
	for try := 0; ; try++ {
		done, pending := false, false
		err = s.runOpsTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			done, pending = false, false
			rec, err := txDLQ(tx, s.dlqRef(id))
			if err != nil || rec == nil || rec.Status == DLQResolved {
				return err
			}
			if rec.Pending != nil {
				pending = true
				return nil
			}
			if rec.Status != DLQReplayed {
				return nil
			}
			done = true
			return tx.Update(s.dlqRef(id), dlqStatusUpdates(DLQResolved, ResolvedBy, s.Now()))
		})
		if err == nil && pending && try == 0 {
			// An interrupted replay is finished first (a fresh one resolves on its own).
			if err = s.recoverPending(ctx, id); err == nil {
				continue
			}
		}
		if err != nil {
			return false, fmt.Errorf("resolve dlq %s: %w", id, classify(err))
		}
		return done, nil
	}
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
