package claim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/leadpipe/leadpipe/common/store"
)

// Result is a successful CRM write to record.
type Result struct {
	RecordID, RequestID string
	StatusCode          int
	Duration            time.Duration
}

// errNotMine is returned inside fenced transactions when the fence moved on.
var errNotMine = store.ErrFenceSuperseded

// fenced runs update in a transaction only if the document still carries l's fence, and
// records att (when not nil) in the same commit with the given outcome. It returns
// store.ErrFenceSuperseded (wrapped) otherwise, with the document's current state, and writes
// nothing.
func (c *Claimer) fenced(ctx context.Context, op string, l *Lease, att *store.Attempt, outcome string, update func(doc *store.EventDoc, now time.Time) []firestore.Update) (store.State, error) {
	ref := c.st.EventRef(l.DocID)
	var state store.State
	err := c.st.Client().RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		var doc store.EventDoc
		if err := snap.DataTo(&doc); err != nil {
			return fmt.Errorf("decode event document: %w", err)
		}
		state = doc.State
		if doc.Fence != l.Fence {
			return errNotMine
		}
		now := c.st.Now()
		if err := tx.Update(ref, append(update(&doc, now), firestore.Update{Path: "updated_at", Value: now})); err != nil {
			return err
		}
		if att == nil {
			return nil
		}
		a := *att
		a.Outcome, a.FinishedAt, a.ExpireAt = outcome, now, c.ExpireAt(now)
		return tx.Set(c.st.AttemptRef(l.DocID, a.Number), a)
	})
	if errors.Is(err, errNotMine) {
		return state, fmt.Errorf("%s %s fence %d: %w", op, l.DocID, l.Fence, store.ErrFenceSuperseded)
	}
	if err != nil {
		return state, fmt.Errorf("%s %s: %w", op, l.DocID, store.Classify(err))
	}
	return state, nil
}

func releaseLease() []firestore.Update {
	return []firestore.Update{{Path: "lease_owner", Value: firestore.Delete}, {Path: "lease_expires_at", Value: firestore.Delete}}
}

// Complete records success with the fence l holds, and att (if not nil) as a succeeded attempt
// in the same commit. When a newer claim superseded l it writes nothing and returns
// store.ErrFenceSuperseded with the document's current state.
func (c *Claimer) Complete(ctx context.Context, l *Lease, r Result, att *store.Attempt) (store.State, error) {
	return c.fenced(ctx, "complete", l, att, "succeeded", func(_ *store.EventDoc, now time.Time) []firestore.Update {
		u := releaseLease()
		if exp := c.ExpireAt(now); !exp.IsZero() {
			u = append(u, firestore.Update{Path: "expire_at", Value: exp})
		}
		return append(u,
			firestore.Update{Path: "state", Value: store.StateSucceeded},
			firestore.Update{Path: "crm_record_id", Value: r.RecordID},
			firestore.Update{Path: "crm_request_id", Value: r.RequestID},
			firestore.Update{Path: "crm_status_code", Value: r.StatusCode},
			firestore.Update{Path: "completed_at", Value: now},
			firestore.Update{Path: "duration_ms", Value: r.Duration.Milliseconds()},
			firestore.Update{Path: "result_fence", Value: l.Fence},
			firestore.Update{Path: "failure_class", Value: firestore.Delete},
			firestore.Update{Path: "error_message", Value: firestore.Delete},
		)
	})
}

// Fail records a failed attempt (state failed) and releases the lease so the next delivery may
// claim at once. An outage attempt is not charged: AttemptsBase moves up by one, so the
// quarantine threshold ignores it while attempt numbers keep growing. att (if not nil) is
// recorded as a failed attempt in the same commit.
func (c *Claimer) Fail(ctx context.Context, l *Lease, class, msg string, outage bool, att *store.Attempt) error {
	_, err := c.fenced(ctx, "fail", l, att, "failed", func(doc *store.EventDoc, _ time.Time) []firestore.Update {
		u := append(releaseLease(),
			firestore.Update{Path: "state", Value: store.StateFailed},
			firestore.Update{Path: "failure_class", Value: class},
			firestore.Update{Path: "error_message", Value: msg},
		)
		if outage {
			u = append(u, firestore.Update{Path: "attempts_base", Value: doc.AttemptsBase + 1})
		}
		return u
	})
	return err
}

// Quarantine moves the event to quarantined by the processor with its reason; the DLQ publish
// is then owed (MarkDLQPublished). att (if not nil) is recorded as a quarantined attempt in the
// same commit. It returns the document as written.
func (c *Claimer) Quarantine(ctx context.Context, l *Lease, class, msg string, att *store.Attempt) (store.EventDoc, error) {
	var out store.EventDoc
	_, err := c.fenced(ctx, "quarantine", l, att, "quarantined", func(doc *store.EventDoc, now time.Time) []firestore.Update {
		doc.State, doc.FailureClass, doc.ErrorMessage = store.StateQuarantined, class, msg
		doc.QuarantinedAt, doc.QuarantinedBy, doc.DLQPublishedAt = now, "processor", time.Time{}
		out = *doc
		return append(releaseLease(),
			firestore.Update{Path: "state", Value: store.StateQuarantined},
			firestore.Update{Path: "failure_class", Value: class},
			firestore.Update{Path: "error_message", Value: msg},
			firestore.Update{Path: "quarantined_at", Value: now},
			firestore.Update{Path: "quarantined_by", Value: "processor"},
			firestore.Update{Path: "dlq_published_at", Value: firestore.Delete},
		)
	})
	out.DocID = l.DocID
	return out, err
}

// MarkDLQPublished records that the quarantine message reached leads-dlq.
func (c *Claimer) MarkDLQPublished(ctx context.Context, docID string) error {
	now := c.st.Now()
	if _, err := c.st.EventRef(docID).Update(ctx, []firestore.Update{
		{Path: "dlq_published_at", Value: now}, {Path: "updated_at", Value: now},
	}); err != nil {
		return fmt.Errorf("mark dlq published %s: %w", docID, store.Classify(err))
	}
	return nil
}
