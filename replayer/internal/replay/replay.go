package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pii"
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
	hasher      *pii.Hasher
}

// Options configure a Replayer.
type Options struct {
	// Renormalizer is required for renormalizing replays; nil makes them fail.
	Renormalizer Renormalizer
	// OutboxGrace: see Replayer. Default 30s.
	OutboxGrace time.Duration
	// Hasher makes the ordering key of replays (event.ContactKey). Required.
	Hasher *pii.Hasher
}

// New returns a Replayer.
func New(st *store.Store, pub Publisher, o Options) *Replayer {
	if o.OutboxGrace <= 0 {
		o.OutboxGrace = 30 * time.Second
	}
	return &Replayer{st: st, pub: pub, renorm: o.Renormalizer, outboxGrace: o.OutboxGrace,
		newID: func() string { return uuid.NewString() }, hasher: o.Hasher}
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
	res := &Result{ID: id, Outcome: OutcomeWouldReplay, RecordStatus: rec.Status, EventState: string(doc.State)}
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
	now := rp.st.Now()
	res := &Result{ID: req.ID}
	var ev event.Event
	err := rp.st.Client().RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		rec, doc, err := rp.begin(tx, req.ID, res)
		if err != nil {
			return err
		}
		noop, err := decideReplay(rec, doc, req.Force)
		if err != nil {
			return err
		}
		audit := store.AuditEntry{At: now, Actor: req.Actor, Action: "replay", Reason: req.Reason,
			Targets: []string{req.ID}, JobID: req.JobID}
		if noop != "" {
			res.Outcome = noop
			if req.QuietNoop {
				return nil
			}
			audit.Outcome = noop
			return rp.audit(tx, audit, res)
		}
		ev = doc.Event
		updates := []firestore.Update{
			{Path: "state", Value: store.StateReceived},
			{Path: "replay_count", Value: doc.ReplayCount + 1},
			{Path: "last_replay_id", Value: replayID},
			{Path: "attempts_base", Value: doc.Attempts},
			{Path: "outbox_due_at", Value: now.Add(rp.outboxGrace)},
			{Path: "lease_owner", Value: firestore.Delete},
			{Path: "lease_expires_at", Value: firestore.Delete},
			{Path: "updated_at", Value: now},
		}
		if renorm != nil {
			res.OldMappingVersion, res.NewMappingVersion = ev.MappingVersion, renorm.MappingVersion
			audit.Detail = fmt.Sprintf("renormalized: mapping %s -> %s", ev.MappingVersion, renorm.MappingVersion)
			ev = *renorm
			updates = append(updates,
				firestore.Update{Path: "event", Value: ev},
				firestore.Update{Path: "mapping_version", Value: ev.MappingVersion})
		}
		if err := tx.Update(rp.st.EventRef(req.ID), updates); err != nil {
			return err
		}
		if err := tx.Update(rp.st.DLQRef(req.ID), store.DLQStatusUpdates(store.DLQReplayed, req.Actor, now)); err != nil {
			return err
		}
		res.Outcome, res.ReplayID = OutcomeReplayed, replayID
		res.EventState, res.RecordStatus = string(store.StateReceived), store.DLQReplayed
		audit.ReplayID, audit.Outcome = replayID, OutcomeReplayed
		return rp.audit(tx, audit, res)
	})
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", req.ID, classify(err))
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
	log.InfoContext(ctx, "replay: published", "dlq_id", req.ID, "replay_id", replayID, "message_id", msgID, "job_id", req.JobID)
	return res, nil
}

// Discard marks the record discarded and the event (if any) discarded, a terminal state, in
// one transaction with its audit entry.
func (rp *Replayer) Discard(ctx context.Context, req Request) (*Result, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return nil, ErrReasonRequired
	}
	now := rp.st.Now()
	res := &Result{ID: req.ID}
	err := rp.st.Client().RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		rec, doc, err := rp.begin(tx, req.ID, res)
		if err != nil {
			return err
		}
		noop, err := decideDiscard(rec, doc, req.Force)
		if err != nil {
			return err
		}
		audit := store.AuditEntry{At: now, Actor: req.Actor, Action: "discard", Reason: req.Reason, Targets: []string{req.ID}}
		if noop != "" {
			res.Outcome, audit.Outcome = noop, noop
			return rp.audit(tx, audit, res)
		}
		if doc != nil {
			if err := tx.Update(rp.st.EventRef(req.ID), []firestore.Update{
				{Path: "state", Value: store.StateDiscarded},
				{Path: "outbox_due_at", Value: firestore.Delete},
				{Path: "updated_at", Value: now},
			}); err != nil {
				return err
			}
			res.EventState = string(store.StateDiscarded)
		}
		if err := tx.Update(rp.st.DLQRef(req.ID), store.DLQStatusUpdates(store.DLQDiscarded, req.Actor, now)); err != nil {
			return err
		}
		res.Outcome, res.RecordStatus, audit.Outcome = OutcomeDiscarded, store.DLQDiscarded, OutcomeDiscarded
		return rp.audit(tx, audit, res)
	})
	if err != nil {
		return nil, fmt.Errorf("discard %s: %w", req.ID, classify(err))
	}
	return res, nil
}

// begin starts a replay or discard transaction (or its retry): it resets res, reads the record
// and its event (nil when there is none), and notes their current status in res.
func (rp *Replayer) begin(tx *firestore.Transaction, id string, res *Result) (*store.DLQRecord, *store.EventDoc, error) {
	*res = Result{ID: id}
	rec, doc, err := rp.read(tx, id)
	if err != nil {
		return nil, nil, err
	}
	res.RecordStatus = rec.Status
	if doc != nil {
		res.EventState = string(doc.State)
	}
	return rec, doc, nil
}

func (rp *Replayer) read(tx *firestore.Transaction, id string) (*store.DLQRecord, *store.EventDoc, error) {
	snap, err := tx.Get(rp.st.DLQRef(id))
	if status.Code(err) == codes.NotFound {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	rec, err := store.DecodeDLQ(snap)
	if err != nil {
		return nil, nil, err
	}
	snap, err = tx.Get(rp.st.EventRef(id))
	if status.Code(err) == codes.NotFound {
		return rec, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	doc, err := store.DecodeEvent(snap)
	return rec, doc, err
}

func (rp *Replayer) audit(tx *firestore.Transaction, e store.AuditEntry, res *Result) error {
	ref := rp.st.NewAuditRef()
	res.AuditID = ref.ID
	return tx.Create(ref, e)
}

func (rp *Replayer) publish(ctx context.Context, ev *event.Event, replayID string) (string, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("encode event: %w", err)
	}
	return rp.pub.Publish(ctx, data, pushmsg.EventAttributes(ctx, ev, replayID), ev.ContactKey(rp.hasher))
}

// classify keeps the package's sentinels and classifies Firestore errors.
func classify(err error) error {
	for _, s := range []error{ErrNotFound, ErrDiscarded, ErrNoEvent, ErrSucceeded, ErrInFlight} {
		if errors.Is(err, s) {
			return err
		}
	}
	return store.Classify(err)
}
