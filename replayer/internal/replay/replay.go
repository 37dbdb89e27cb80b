package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

// Publisher publishes one message to the leads topic and returns its server message id.
type Publisher interface {
	Publish(ctx context.Context, data []byte, attrs map[string]string, orderingKey string) (string, error)
}

// Renormalizer rebuilds an event from its raw payload with the source's current mapping.
type Renormalizer interface {
	Renormalize(ctx context.Context, doc *store.EventDoc) (*event.Event, error)
}

// Request is one replay or discard.
type Request struct {
	ID     string // DLQ record id = event document id
	Reason string
	Actor  string
	// Renormalize rebuilds the event from the raw payload before publishing (replay only).
	Renormalize bool
	// Force replays (or discards) an event that is not quarantined but still non-terminal.
	Force bool
	// JobID names the bulk job the request belongs to.
	JobID string
	// QuietNoop leaves no-op outcomes (already succeeded, in flight) out of the audit: bulk
	// jobs and auto-replay audit themselves, and a tick must not flood the log.
	QuietNoop bool
}

// Result says what happened.
type Result struct {
	ID                string `json:"id"`
	Outcome           string `json:"outcome"`
	ReplayID          string `json:"replay_id,omitempty"`
	MessageID         string `json:"message_id,omitempty"`
	EventState        string `json:"event_state,omitempty"`
	RecordStatus      string `json:"record_status,omitempty"`
	OldMappingVersion string `json:"old_mapping_version,omitempty"`
	NewMappingVersion string `json:"new_mapping_version,omitempty"`
	AuditID           string `json:"audit_id,omitempty"`
	Detail            string `json:"detail,omitempty"`
}

// Replayer replays and discards. It is safe for concurrent use.
type Replayer struct {
	st     *store.Store
	pub    Publisher
	renorm Renormalizer
	// outboxGrace delays the outbox due time written with a replay, so the ingest sweep only
	// republishes when this publish failed, instead of racing it.
	outboxGrace time.Duration
	newID       func() string
}

// Options configure a Replayer.
type Options struct {
	// Renormalizer is required for renormalizing replays; nil makes them fail.
	Renormalizer Renormalizer
	// OutboxGrace: see Replayer. Default 30s.
	OutboxGrace time.Duration
}

// New returns a Replayer.
func New(st *store.Store, pub Publisher, o Options) *Replayer {
	if o.OutboxGrace <= 0 {
		o.OutboxGrace = 30 * time.Second
	}
	return &Replayer{st: st, pub: pub, renorm: o.Renormalizer, outboxGrace: o.OutboxGrace,
		newID: func() string { return uuid.NewString() }}
}

// Check is a dry run: it reports what Replay would do, and changes nothing.
func (rp *Replayer) Check(ctx context.Context, id string, force bool) (*Result, error) {
	rec, err := rp.st.GetDLQ(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	doc, err := rp.st.GetEvent(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if errors.Is(err, store.ErrNotFound) {
		doc = nil
	}
	noop, err := decideReplay(rec, doc, force)
	if err != nil {
		return nil, err
	}
	res := &Result{ID: id, Outcome: OutcomeWouldReplay, RecordStatus: string(rec.Status), EventState: string(doc.State)}
	if noop != "" {
		res.Outcome = noop
	}
	return res, nil
}

// Replay moves the event from quarantined to received (ReplayCount+1, a new replay id,
// AttemptsBase = Attempts, lease cleared, back in the outbox), marks the record replayed and
// appends the audit entry, all in one transaction; then publishes the event to the leads topic
// with its original attributes plus replay_id, ordered by its contact key, and takes it out of
// the outbox. A failed publish is not an error: the outbox sweep publishes it (OutcomeQueued).
// No-op outcomes (already succeeded, in flight) publish nothing.
func (rp *Replayer) Replay(ctx context.Context, req Request) (*Result, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return nil, ErrReasonRequired
	}
	var renorm *event.Event
	if req.Renormalize {
		doc, err := rp.st.GetEvent(ctx, req.ID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, ErrNoEvent
			}
			return nil, err
		}
		if rp.renorm == nil {
			return nil, fmt.Errorf("renormalize %s: %w: no mappings configured (SOURCES_FILE)", req.ID, ErrRenormalize)
		}
		if renorm, err = rp.renorm.Renormalize(ctx, doc); err != nil {
			return nil, fmt.Errorf("renormalize %s: %w", req.ID, err)
		}
		if renorm.IdempotencyKey != doc.IdempotencyKey {
			return nil, ErrKeyChanged
		}
	}
	replayID := rp.newID()
	tr, err := rp.st.Replay(ctx, store.Action{ID: req.ID, Actor: req.Actor, Reason: req.Reason, JobID: req.JobID,
		Outcome: OutcomeReplayed, QuietNoop: req.QuietNoop, ReplayID: replayID,
		OutboxDueAt: rp.st.Now().Add(rp.outboxGrace), Renormalized: renorm},
		func(rec *store.DLQRecord, doc *store.EventDoc) (string, error) {
			return decideReplay(rec, doc, req.Force)
		})
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", req.ID, sentinel(err))
	}
	res := result(req.ID, tr)
	ev := tr.Event
	if tr.Noop == "" {
		res.Outcome, res.ReplayID = OutcomeReplayed, replayID
		if renorm != nil {
			res.OldMappingVersion, res.NewMappingVersion = tr.PrevMappingVersion, ev.MappingVersion
		}
	}
	if res.Outcome != OutcomeReplayed {
		return res, nil
	}
	msgID, err := rp.publish(ctx, &ev, replayID)
	log := logging.FromContext(ctx)
	if err != nil {
		log.WarnContext(ctx, "replay: publish failed, left to the outbox", "dlq_id", req.ID, "replay_id", replayID, "error", err.Error())
		res.Outcome, res.Detail = OutcomeQueued, "publish failed; the outbox sweep republishes it"
		if err := rp.st.UpdateAuditOutcome(context.WithoutCancel(ctx), res.AuditID, OutcomeQueued, res.Detail); err != nil {
			log.WarnContext(ctx, "replay: audit outcome update failed", "audit_id", res.AuditID, "error", err.Error())
		}
		return res, nil
	}
	res.MessageID = msgID
	if err := rp.st.MarkPublished(context.WithoutCancel(ctx), req.ID, msgID); err != nil {
		// The sweep will publish a second copy with the same replay id; the processor's
		// idempotency makes that harmless.
		log.WarnContext(ctx, "replay: mark published failed", "dlq_id", req.ID, "error", err.Error())
	}
	log.InfoContext(ctx, "lead replayed", "dlq_id", req.ID, "replay_id", replayID, "message_id", msgID, "job_id", req.JobID)
	return res, nil
}

// Discard marks the record discarded and the event (if any) discarded, a terminal state, in
// one transaction with its audit entry.
func (rp *Replayer) Discard(ctx context.Context, req Request) (*Result, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return nil, ErrReasonRequired
	}
	tr, err := rp.st.Discard(ctx, store.Action{ID: req.ID, Actor: req.Actor, Reason: req.Reason, JobID: req.JobID, Outcome: OutcomeDiscarded},
		func(rec *store.DLQRecord, doc *store.EventDoc) (string, error) {
			return decideDiscard(rec, doc, req.Force)
		})
	if err != nil {
		return nil, fmt.Errorf("discard %s: %w", req.ID, sentinel(err))
	}
	res := result(req.ID, tr)
	if tr.Noop == "" {
		res.Outcome = OutcomeDiscarded
	}
	return res, nil
}

// result is the Result of a transition: its no-op outcome (the caller sets the applied one),
// the states after it and its audit entry.
func result(id string, tr *store.Transition) *Result {
	return &Result{ID: id, Outcome: tr.Noop, EventState: string(tr.EventState), RecordStatus: string(tr.RecordStatus), AuditID: tr.AuditID}
}

func (rp *Replayer) publish(ctx context.Context, ev *event.Event, replayID string) (string, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("encode event: %w", err)
	}
	return rp.pub.Publish(ctx, data, pushmsg.EventAttributes(ctx, ev, replayID), ev.ContactKey())
}

// sentinel maps the store's ErrNotFound (no such DLQ record) to the package's; the decisions'
// sentinels and classified store errors pass through.
func sentinel(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
