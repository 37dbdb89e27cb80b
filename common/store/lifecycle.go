package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
)

// This file is the processor's half of the event lifecycle: Claim takes the lease, and the
// fenced verdicts Complete, Fail, Park and Quarantine end it. Every verdict requires both the
// fence its lease was given and the state processing, so a holder whose lease was taken over,
// or whose event an operator replayed or discarded meanwhile (both move the fence), changes
// nothing. The operator's and intake's half is in operator.go.

// Expected outcomes of Claim and of the verdicts. Callers test them with errors.Is.
var (
	// ErrSucceeded: the event already succeeded; ack the delivery as a duplicate.
	ErrSucceeded = errors.New("event already succeeded")
	// ErrTerminal: the event is quarantined (and its DLQ message published) or discarded; ack.
	ErrTerminal = errors.New("event is quarantined or discarded")
	// ErrParked: the event is parked until its CRM's circuit closes; ack, the drain republishes.
	ErrParked = errors.New("event is parked")
	// ErrLeaseHeld: another processor holds a live lease; answer so Pub/Sub retries later.
	ErrLeaseHeld = errors.New("lease held by another processor")
	// ErrPendingDLQ: the event is quarantined by the processor but its DLQ message is not yet
	// published (or this claim just quarantined it for exhausting its attempts): publish it,
	// MarkDLQPublished, then ack. The returned Lease carries the document.
	ErrPendingDLQ = errors.New("quarantined event awaiting its DLQ publish")
	// ErrFenceSuperseded: the lease's fence or the state processing moved on (a newer claim,
	// a replay, a discard, a dead-letter); the verdict is not written.
	ErrFenceSuperseded = errors.New("fence superseded")
)

// Reason is a classified failure as recorded on an event: its class and an operator-facing
// message without personal data.
type Reason struct {
	Class   failure.Class
	Message string
	// Code is the typed cause when there is one (e.g. ReasonNoMatch).
	Code ReasonCode
}

// ReasonOf is the reason of a classified failure.
func ReasonOf(fe *failure.Error) Reason {
	r := Reason{Class: fe.Class, Message: fe.Message}
	if errors.Is(fe, failure.ErrNoMatch) {
		r.Code = ReasonNoMatch
	}
	return r
}

// LeasePolicy is a claimer's choices, passed to Claim.
type LeasePolicy struct {
	// Owner is the instance id written as lease owner.
	Owner string
	// TTL is how long the lease lives; an expired lease may be taken over.
	TTL time.Duration
	// MaxAttempts: a claim whose attempt (relative to the last replay) would exceed it
	// quarantines the event instead, with the last known reason.
	MaxAttempts int
	// Retention sets expire_at = completion + Retention on a succeeded event and its attempt
	// entries, for Firestore's TTL policy. Zero writes no expiry.
	Retention time.Duration
}

// Lease is a held claim.
type Lease struct {
	DocID string
	Fence int64
	// Attempt is the attempt number (Attempts after the claim; monotonic across replays).
	Attempt int
	// Relative is Attempt - AttemptsBase: what the quarantine threshold applies to.
	Relative  int
	Owner     string
	ExpiresAt time.Time
	StartedAt time.Time
	// Doc is the event document as the claim left it.
	Doc       EventDoc
	retention time.Duration
	// version is the event document's update time as this lease's claim wrote it, when the
	// claim was ClaimFirst's single commit (zero after a transactional claim, or once another
	// write of the store's touched the document): the verdict is then one commit with it as
	// precondition.
	version time.Time
	// plan is the contact ClaimFirst resolved in the same commit, if any.
	plan *ContactPlan
}

// ExpireAt is when a record of this lease finished at t expires, or the zero time when nothing
// expires.
func (l *Lease) ExpireAt(t time.Time) time.Time {
	if l == nil || l.retention <= 0 {
		return time.Time{}
	}
	return t.Add(l.retention)
}

// finished is att as recorded when the lease's attempt ended with outcome at now.
func (l *Lease) finished(att *Attempt, outcome AttemptOutcome, now time.Time) Attempt {
	a := *att
	a.Outcome, a.FinishedAt, a.ExpireAt = outcome, now, l.ExpireAt(now)
	return a
}

// Claim takes the event's lease in one transaction: state processing, fence+1, attempts+1,
// lease (owner, expiry). It creates the event document from ev when it is missing. It returns
// ErrSucceeded, ErrTerminal, ErrParked, ErrLeaseHeld (with the holder in the Lease) or
// ErrPendingDLQ (with the document in the Lease) when there is nothing to claim; other errors
// are classified.
func (s *Store) Claim(ctx context.Context, ev *event.Event, p LeasePolicy) (*Lease, error) {
	docID := event.DocID(ev.IdempotencyKey)
	ref := s.eventRef(docID)
	var (
		out *Lease
		// exhausted is set when this transaction quarantines the event. It must commit that
		// write, so it returns nil and the sentinel is raised after the commit.
		exhausted bool
	)
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		out, exhausted = nil, false
		now := s.Now()
		cur, err := txEvent(tx, ref)
		if err != nil {
			return err
		}
		var doc EventDoc
		if cur == nil {
			doc = newEventDoc(ev, now)
		} else {
			doc = *cur
		}
		switch doc.State {
		case StateSucceeded:
			return ErrSucceeded
		case StateDiscarded:
			return ErrTerminal
		case StateParked:
			return ErrParked
		case StateQuarantined:
			if doc.QuarantinedBy == ByProcessor && doc.DLQPublishedAt.IsZero() {
				out = &Lease{DocID: docID, Doc: doc}
				return ErrPendingDLQ
			}
			return ErrTerminal
		case StateProcessing:
			if doc.LeaseExpiresAt.After(now) {
				out = &Lease{DocID: docID, Owner: doc.LeaseOwner, ExpiresAt: doc.LeaseExpiresAt, Doc: doc}
				return ErrLeaseHeld
			}
		}
		attempt := doc.Attempts + 1
		l := &Lease{DocID: docID, Fence: doc.Fence + 1, Attempt: attempt, Relative: attempt - doc.AttemptsBase,
			Owner: p.Owner, ExpiresAt: now.Add(p.TTL), StartedAt: now, retention: p.Retention}
		if l.Relative > p.MaxAttempts {
			// Attempts were spent without a recorded verdict (crashes, lost leases): stop here,
			// with the last known reason, before Pub/Sub dead-letters it without one.
			r := Reason{Class: doc.FailureClass, Message: fmt.Sprintf("gave up after %d attempts", attempt-1-doc.AttemptsBase)}
			if doc.ErrorMessage != "" {
				r.Message += ": " + doc.ErrorMessage
			}
			if r.Class == "" {
				r.Class = failure.Retryable
			}
			quarantined(&doc, r, ByProcessor, now)
			doc.LeaseOwner, doc.LeaseExpiresAt = "", time.Time{}
			out, exhausted = &Lease{DocID: docID, Doc: doc}, true
			if cur == nil {
				return tx.Create(ref, doc)
			}
			return tx.Update(ref, append(quarantineUpdates(r, ByProcessor, now), append(releaseLease(), firestore.Update{Path: fUpdatedAt, Value: now})...))
		}
		doc.State, doc.Fence, doc.Attempts = StateProcessing, l.Fence, attempt
		doc.LeaseOwner, doc.LeaseExpiresAt, doc.LastAttemptAt, doc.UpdatedAt = p.Owner, l.ExpiresAt, now, now
		if doc.FirstAttemptAt.IsZero() {
			doc.FirstAttemptAt = now
		}
		l.Doc = doc
		out = l
		if cur == nil {
			return tx.Create(ref, doc)
		}
		return tx.Update(ref, claimUpdates(&doc, now))
	})
	if err == nil && exhausted {
		err = ErrPendingDLQ
	}
	for _, sentinel := range []error{ErrSucceeded, ErrTerminal, ErrParked, ErrLeaseHeld, ErrPendingDLQ} {
		if errors.Is(err, sentinel) {
			return out, fmt.Errorf("claim %s: %w", docID, sentinel)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", docID, classify(err))
	}
	return out, nil
}

// claimUpdates are the field updates of a claim that left doc processing under its lease. The
// delivery is the publish: the outbox entry is consumed (see outbox.Publish's deferred mark).
func claimUpdates(doc *EventDoc, now time.Time) []firestore.Update {
	return []firestore.Update{
		{Path: fState, Value: doc.State}, {Path: fFence, Value: doc.Fence}, {Path: fAttempts, Value: doc.Attempts},
		{Path: fLeaseOwner, Value: doc.LeaseOwner}, {Path: fLeaseExpiresAt, Value: doc.LeaseExpiresAt},
		{Path: "first_attempt_at", Value: doc.FirstAttemptAt}, {Path: "last_attempt_at", Value: now},
		{Path: fOutboxDueAt, Value: firestore.Delete},
		{Path: fUpdatedAt, Value: now},
	}
}

// newEventDoc builds the event document for an event whose document is missing (published by
// a path that never wrote it).
func newEventDoc(ev *event.Event, now time.Time) EventDoc {
	return EventDoc{
		DocID:          event.DocID(ev.IdempotencyKey),
		IdempotencyKey: ev.IdempotencyKey, EventID: ev.EventID, Source: ev.Source, EventType: ev.EventType,
		CorrelationID: ev.CorrelationID, MappingVersion: ev.MappingVersion, Event: *ev, RawRef: ev.Audit.RawEventRef,
		State: StateReceived, CreatedAt: now, UpdatedAt: now,
	}
}

// Result is a successful CRM write to record.
type Result struct {
	RecordID, RequestID string
	StatusCode          int
	Duration            time.Duration
}

// Complete records success (state succeeded, the CRM's record and request ids) with the fence
// l holds, and att (if not nil) as a succeeded attempt in the same commit. When the fence or the
// state moved on it writes nothing and returns ErrFenceSuperseded with the document's current
// state.
func (s *Store) Complete(ctx context.Context, l *Lease, r Result, att *Attempt) (State, error) {
	state, err := s.complete(ctx, l, r, att)
	if p := l.plan; err == nil && p != nil && p.withVerdict {
		// The single commit fell back to the transaction: stamp the record as CommitContact
		// would have.
		p.withVerdict = false
		if serr := s.settleRecord(ctx, "commit contact", l, p, true); serr != nil {
			return state, serr
		}
	}
	return state, err
}

func (s *Store) complete(ctx context.Context, l *Lease, r Result, att *Attempt) (State, error) {
	return s.fenced(ctx, "complete", l, att, AttemptSucceeded, func(_ *EventDoc, now time.Time) []firestore.Update {
		u := releaseLease()
		if exp := l.ExpireAt(now); !exp.IsZero() {
			u = append(u, firestore.Update{Path: "expire_at", Value: exp})
		}
		return append(u,
			firestore.Update{Path: fState, Value: StateSucceeded},
			firestore.Update{Path: "crm_record_id", Value: r.RecordID},
			firestore.Update{Path: "crm_request_id", Value: r.RequestID},
			firestore.Update{Path: "crm_status_code", Value: r.StatusCode},
			firestore.Update{Path: "completed_at", Value: now},
			firestore.Update{Path: "duration_ms", Value: r.Duration.Milliseconds()},
			firestore.Update{Path: "result_fence", Value: l.Fence},
			firestore.Update{Path: fFailureClass, Value: firestore.Delete},
			firestore.Update{Path: fErrorMessage, Value: firestore.Delete},
		)
	})
}

// Fail records a failed attempt (state failed, with its reason) and releases the lease so the
// next delivery may claim at once. An outage (failure.Outage: the CRM's circuit is open) is not
// charged: AttemptsBase moves up by one, so the quarantine threshold ignores it while attempt
// numbers keep growing. att (if not nil) is recorded as a failed attempt in the same commit.
// ErrFenceSuperseded (with the current state) when the fence or the state moved on.
func (s *Store) Fail(ctx context.Context, l *Lease, r Reason, att *Attempt) (State, error) {
	return s.fenced(ctx, "fail", l, att, AttemptFailed, func(doc *EventDoc, _ time.Time) []firestore.Update {
		u := append(releaseLease(),
			firestore.Update{Path: fState, Value: StateFailed},
			firestore.Update{Path: fFailureClass, Value: r.Class},
			firestore.Update{Path: fErrorMessage, Value: r.Message},
		)
		if r.Class == failure.Outage {
			u = append(u, firestore.Update{Path: fAttemptsBase, Value: doc.AttemptsBase + 1})
		}
		return u
	})
}

// Park holds the event while its CRM's circuit is open: state parked, lease released, the
// attempt not charged (AttemptsBase moves up by one), parked_at set. The delivery is then
// acked; Unpark puts the event back in the outbox when the circuit closes. att (if not nil) is
// recorded as a parked attempt. ErrFenceSuperseded (with the current state) when the fence or
// the state moved on.
func (s *Store) Park(ctx context.Context, l *Lease, r Reason, att *Attempt) (State, error) {
	return s.fenced(ctx, "park", l, att, AttemptParked, func(doc *EventDoc, now time.Time) []firestore.Update {
		return append(releaseLease(),
			firestore.Update{Path: fState, Value: StateParked},
			firestore.Update{Path: fFailureClass, Value: r.Class},
			firestore.Update{Path: fErrorMessage, Value: r.Message},
			firestore.Update{Path: fAttemptsBase, Value: doc.AttemptsBase + 1},
			firestore.Update{Path: "parked_at", Value: now},
		)
	})
}

// Unpark moves a parked event back to received (fence+1, parked_at removed) and into the
// outbox, due at due, so the sweep (or the drain that called Unpark, followed by MarkPublished)
// publishes it. It reports whether the event was parked; any other state is left alone.
func (s *Store) Unpark(ctx context.Context, docID string, due time.Time) (bool, error) {
	moved := false
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		moved = false
		doc, err := txEvent(tx, s.eventRef(docID))
		if err != nil || doc == nil || doc.State != StateParked {
			return err
		}
		moved = true
		return tx.Update(s.eventRef(docID), []firestore.Update{
			{Path: fState, Value: StateReceived}, {Path: fFence, Value: doc.Fence + 1},
			{Path: "parked_at", Value: firestore.Delete}, {Path: fOutboxDueAt, Value: due.UTC()},
			{Path: fUpdatedAt, Value: s.Now()},
		})
	})
	if err != nil {
		return false, fmt.Errorf("unpark %s: %w", docID, classify(err))
	}
	return moved, nil
}

// Quarantine moves the event to quarantined by the processor with its reason; the DLQ publish
// is then owed (MarkDLQPublished). att (if not nil) is recorded as a quarantined attempt in the
// same commit. It returns the document as written; ErrFenceSuperseded when the fence or the
// state moved on.
func (s *Store) Quarantine(ctx context.Context, l *Lease, r Reason, att *Attempt) (EventDoc, error) {
	var out EventDoc
	_, err := s.fenced(ctx, "quarantine", l, att, AttemptQuarantined, func(doc *EventDoc, now time.Time) []firestore.Update {
		quarantined(doc, r, ByProcessor, now)
		doc.LeaseOwner, doc.LeaseExpiresAt = "", time.Time{}
		out = *doc
		return append(quarantineUpdates(r, ByProcessor, now), releaseLease()...)
	})
	out.DocID = l.DocID
	return out, err
}

// MarkDLQPublished records that the processor's quarantine message reached leads-dlq.
func (s *Store) MarkDLQPublished(ctx context.Context, docID string) error {
	now := s.Now()
	if _, err := s.eventRef(docID).Update(ctx, []firestore.Update{
		{Path: "dlq_published_at", Value: now}, {Path: fUpdatedAt, Value: now},
	}); err != nil {
		return fmt.Errorf("mark dlq published %s: %w", docID, classify(err))
	}
	return nil
}

// fenced runs update in a transaction only if the document still carries l's fence and is
// processing, and records att (when not nil) in the same commit with the given outcome. It
// returns ErrFenceSuperseded (wrapped) otherwise, with the document's current state, and
// writes nothing.
func (s *Store) fenced(ctx context.Context, op string, l *Lease, att *Attempt, outcome AttemptOutcome, update func(doc *EventDoc, now time.Time) []firestore.Update) (State, error) {
	ref := s.eventRef(l.DocID)
	var state State
	if !l.version.IsZero() {
		switch err := s.fencedCommit(ctx, l, att, outcome, update); {
		case err == nil:
			return StateProcessing, nil
		case !errors.Is(err, errFastPathLost):
			return StateProcessing, fmt.Errorf("%s %s: %w", op, l.DocID, classify(err))
		}
		l.version = time.Time{}
	}
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		doc, err := txEvent(tx, ref)
		if err != nil {
			return err
		}
		if doc == nil {
			return ErrFenceSuperseded
		}
		state = doc.State
		if doc.Fence != l.Fence || doc.State != StateProcessing {
			return ErrFenceSuperseded
		}
		now := s.Now()
		if err := tx.Update(ref, append(update(doc, now), firestore.Update{Path: fUpdatedAt, Value: now})); err != nil {
			return err
		}
		if att == nil {
			return nil
		}
		a := l.finished(att, outcome, now)
		return tx.Set(s.attemptRef(l.DocID, a.Number), a)
	})
	if errors.Is(err, ErrFenceSuperseded) {
		return state, fmt.Errorf("%s %s fence %d: %w", op, l.DocID, l.Fence, ErrFenceSuperseded)
	}
	if err != nil {
		return state, fmt.Errorf("%s %s: %w", op, l.DocID, classify(err))
	}
	return state, nil
}

// quarantined applies a quarantine to doc in memory.
func quarantined(doc *EventDoc, r Reason, by Origin, now time.Time) {
	doc.State, doc.FailureClass, doc.ErrorMessage, doc.Reason = StateQuarantined, r.Class, r.Message, r.Code
	doc.QuarantinedAt, doc.QuarantinedBy, doc.DLQPublishedAt, doc.UpdatedAt = now, by, time.Time{}, now
}

func quarantineUpdates(r Reason, by Origin, now time.Time) []firestore.Update {
	var code any = firestore.Delete
	if r.Code != "" {
		code = r.Code
	}
	return []firestore.Update{{Path: fReason, Value: code},
		{Path: fState, Value: StateQuarantined}, {Path: fFailureClass, Value: r.Class}, {Path: fErrorMessage, Value: r.Message},
		{Path: "quarantined_at", Value: now}, {Path: "quarantined_by", Value: by},
		{Path: "dlq_published_at", Value: firestore.Delete},
	}
}

func releaseLease() []firestore.Update {
	return []firestore.Update{{Path: fLeaseOwner, Value: firestore.Delete}, {Path: fLeaseExpiresAt, Value: firestore.Delete}}
}

// txEvent reads an event document inside a transaction; nil (and no error) when it does not
// exist.
func txEvent(tx *firestore.Transaction, ref *firestore.DocumentRef) (*EventDoc, error) {
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeEvent(snap)
}

// txDLQ reads a DLQ record inside a transaction; nil (and no error) when it does not exist.
func txDLQ(tx *firestore.Transaction, ref *firestore.DocumentRef) (*DLQRecord, error) {
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeDLQ(snap)
}

// Field paths written by more than one operation.
const (
	fState          = "state"
	fFence          = "fence"
	fAttempts       = "attempts"
	fAttemptsBase   = "attempts_base"
	fLeaseOwner     = "lease_owner"
	fLeaseExpiresAt = "lease_expires_at"
	fFailureClass   = "failure_class"
	fErrorMessage   = "error_message"
	fReason         = "reason"
	fOutboxDueAt    = "outbox_due_at"
	fUpdatedAt      = "updated_at"
)
