// Package claim is the processor's exactly-once guard on the event document: one Firestore
// transaction claims an event (state, lease, fence, the processor's own attempt counter), and
// every later write (result, failure, quarantine) is a transaction that checks the fence it
// was given, so a holder whose lease was taken over never overwrites the newer holder.
package claim

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
	"github.com/leadpipe/leadpipe/common/store"
)

// Expected outcomes of Claim. Callers test them with errors.Is.
var (
	// ErrSucceeded: the event already succeeded; ack the delivery as a duplicate.
	ErrSucceeded = errors.New("event already succeeded")
	// ErrTerminal: the event is quarantined (and its DLQ message published) or discarded; ack.
	ErrTerminal = errors.New("event is quarantined or discarded")
	// ErrLeaseHeld: another processor holds a live lease; answer so Pub/Sub retries later.
	ErrLeaseHeld = errors.New("lease held by another processor")
	// ErrPendingDLQ: the event is quarantined by the processor but its DLQ message is not yet
	// published (or this claim just quarantined it for exhausting its attempts): publish it,
	// MarkDLQPublished, then ack. The returned Lease carries the document.
	ErrPendingDLQ = errors.New("quarantined event awaiting its DLQ publish")
)

// Delivery is what the push message says about this delivery.
type Delivery struct {
	MessageID       string
	DeliveryAttempt int // Pub/Sub's hint; never decides anything
	ReplayID        string
}

// Lease is a held claim.
type Lease struct {
	DocID string
	Fence int64
	// Attempt is the attempt number (doc.Attempts after the claim; monotonic across replays).
	Attempt int
	// Relative is Attempt - AttemptsBase: what the quarantine threshold applies to.
	Relative  int
	Owner     string
	ExpiresAt time.Time
	StartedAt time.Time
	Doc       store.EventDoc
}

// Claimer claims events for one processor instance. Safe for concurrent use.
type Claimer struct {
	st          *store.Store
	owner       string
	lease       time.Duration
	maxAttempts int
	retention   time.Duration
}

// WithRetention makes Complete set expire_at = completion + d, for Firestore's TTL policy.
// Zero (the default) writes no expiry.
func (c *Claimer) WithRetention(d time.Duration) *Claimer {
	c.retention = d
	return c
}

// ExpireAt is when a record finished at t expires, or the zero time when nothing expires.
func (c *Claimer) ExpireAt(t time.Time) time.Time {
	if c.retention <= 0 {
		return time.Time{}
	}
	return t.Add(c.retention)
}

// New returns a Claimer for owner (the instance id) taking leases of duration lease and
// quarantining once an event's relative attempts would exceed maxAttempts.
func New(st *store.Store, owner string, lease time.Duration, maxAttempts int) *Claimer {
	return &Claimer{st: st, owner: owner, lease: lease, maxAttempts: maxAttempts}
}

// Owner is the instance id written as lease owner.
func (c *Claimer) Owner() string { return c.owner }

// Claim takes the event's lease in one transaction. It creates the event document from ev when
// it is missing. Errors other than the sentinels are classified (store.Classify).
func (c *Claimer) Claim(ctx context.Context, ev *event.Event, d Delivery) (*Lease, error) {
	docID := event.DocID(ev.IdempotencyKey)
	ref := c.st.EventRef(docID)
	var (
		out *Lease
		// exhausted is set when this transaction quarantines the event. It must commit that
		// write, so it returns nil and the sentinel is raised after the commit.
		exhausted bool
	)
	err := c.st.Client().RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		out, exhausted = nil, false
		now := c.st.Now()
		snap, err := tx.Get(ref)
		var doc store.EventDoc
		switch {
		case status.Code(err) == codes.NotFound:
			doc = newDoc(ev, now)
		case err != nil:
			return err
		default:
			if err := snap.DataTo(&doc); err != nil {
				return failure.Wrap(failure.Permanent, err, "decode event document")
			}
		}
		doc.DocID = docID
		switch doc.State {
		case store.StateSucceeded:
			return ErrSucceeded
		case store.StateDiscarded:
			return ErrTerminal
		case store.StateQuarantined:
			if doc.QuarantinedBy == "processor" && doc.DLQPublishedAt.IsZero() {
				out = &Lease{DocID: docID, Doc: doc}
				return ErrPendingDLQ
			}
			return ErrTerminal
		case store.StateProcessing:
			if doc.LeaseExpiresAt.After(now) {
				out = &Lease{DocID: docID, Owner: doc.LeaseOwner, ExpiresAt: doc.LeaseExpiresAt, Doc: doc}
				return ErrLeaseHeld
			}
		}
		attempt := doc.Attempts + 1
		l := &Lease{DocID: docID, Fence: doc.Fence + 1, Attempt: attempt, Relative: attempt - doc.AttemptsBase,
			Owner: c.owner, ExpiresAt: now.Add(c.lease), StartedAt: now}
		if l.Relative > c.maxAttempts {
			// Attempts were spent without a recorded verdict (crashes, lost leases): stop here,
			// with the last known reason, before Pub/Sub dead-letters it without one.
			msg := fmt.Sprintf("gave up after %d attempts", attempt-1-doc.AttemptsBase)
			if doc.ErrorMessage != "" {
				msg += ": " + doc.ErrorMessage
			}
			class := doc.FailureClass
			if class == "" {
				class = string(failure.Retryable)
			}
			doc.State, doc.FailureClass, doc.ErrorMessage = store.StateQuarantined, class, msg
			doc.QuarantinedAt, doc.QuarantinedBy, doc.DLQPublishedAt = now, "processor", time.Time{}
			out, exhausted = &Lease{DocID: docID, Doc: doc}, true
			if snap == nil || !snap.Exists() {
				return tx.Create(ref, doc)
			}
			return tx.Update(ref, []firestore.Update{
				{Path: "state", Value: doc.State}, {Path: "failure_class", Value: class}, {Path: "error_message", Value: msg},
				{Path: "quarantined_at", Value: now}, {Path: "quarantined_by", Value: "processor"},
				{Path: "dlq_published_at", Value: firestore.Delete}, {Path: "updated_at", Value: now},
				{Path: "lease_owner", Value: firestore.Delete}, {Path: "lease_expires_at", Value: firestore.Delete},
			})
		}
		doc.State, doc.Fence, doc.Attempts = store.StateProcessing, l.Fence, attempt
		doc.LeaseOwner, doc.LeaseExpiresAt, doc.LastAttemptAt, doc.UpdatedAt = c.owner, l.ExpiresAt, now, now
		if doc.FirstAttemptAt.IsZero() {
			doc.FirstAttemptAt = now
		}
		l.Doc = doc
		out = l
		if snap == nil || !snap.Exists() {
			return tx.Create(ref, doc)
		}
		return tx.Update(ref, []firestore.Update{
			{Path: "state", Value: doc.State}, {Path: "fence", Value: doc.Fence}, {Path: "attempts", Value: doc.Attempts},
			{Path: "lease_owner", Value: doc.LeaseOwner}, {Path: "lease_expires_at", Value: doc.LeaseExpiresAt},
			{Path: "first_attempt_at", Value: doc.FirstAttemptAt}, {Path: "last_attempt_at", Value: now},
			{Path: "updated_at", Value: now},
		})
	})
	if err == nil && exhausted {
		err = ErrPendingDLQ
	}
	for _, s := range []error{ErrSucceeded, ErrTerminal, ErrLeaseHeld, ErrPendingDLQ} {
		if errors.Is(err, s) {
			return out, fmt.Errorf("claim %s: %w", docID, s)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", docID, store.Classify(err))
	}
	return out, nil
}

// newDoc builds the event document for an event whose document is missing (published by a
// path that never wrote it).
func newDoc(ev *event.Event, now time.Time) store.EventDoc {
	return store.EventDoc{
		IdempotencyKey: ev.IdempotencyKey, EventID: ev.EventID, Source: ev.Source, EventType: ev.EventType,
		CorrelationID: ev.CorrelationID, MappingVersion: ev.MappingVersion, Event: *ev, RawRef: ev.Audit.RawEventRef,
		State: store.StateReceived, CreatedAt: now, UpdatedAt: now,
	}
}
