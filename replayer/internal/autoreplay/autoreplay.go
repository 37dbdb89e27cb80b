// Package autoreplay replays open DLQ records whose failure is transient (retryable or
// outage) once the CRM they route to is healthy again. Cloud Scheduler calls it through
// POST /internal/auto-replay; locally a ticker does.
package autoreplay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
)

// Actor is the audit actor of automatic replays.
const Actor = "auto-replay"

// Replayer is what auto-replay needs from the replay package.
type Replayer interface {
	Replay(ctx context.Context, req replay.Request) (*replay.Result, error)
}

// Options configure an AutoReplayer.
type Options struct {
	// Cooldown: with no health document for the CRM, a record is replayed once it is this old.
	// Default 5m.
	Cooldown time.Duration
	// MaxReplays: an event already replayed this many times is left to an operator. Default 3.
	MaxReplays int
	// Limit bounds the records examined per run and class. Default 200.
	Limit int
	// RatePerSec bounds replays per second. Default 10.
	RatePerSec float64
}

// AutoReplayer decides and performs automatic replays. Safe for concurrent use, although runs
// are meant to be serial (a scheduler tick at a time).
type AutoReplayer struct {
	st      *store.Store
	rp      Replayer
	o       Options
	limiter *rate.Limiter
}

// New returns an AutoReplayer.
func New(st *store.Store, rp Replayer, o Options) *AutoReplayer {
	if o.Cooldown <= 0 {
		o.Cooldown = 5 * time.Minute
	}
	if o.MaxReplays <= 0 {
		o.MaxReplays = 3
	}
	if o.Limit <= 0 {
		o.Limit = 200
	}
	if o.RatePerSec <= 0 {
		o.RatePerSec = 10
	}
	return &AutoReplayer{st: st, rp: rp, o: o, limiter: rate.NewLimiter(rate.Limit(o.RatePerSec), 1)}
}

// Summary counts one run.
type Summary struct {
	Examined int `json:"examined"`
	Replayed int `json:"replayed"`
	// Waiting: the CRM is not healthy yet (or the cool-down has not passed).
	Waiting int `json:"waiting"`
	// Skipped: too many replays already, no event, or nothing to do.
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
	// Resolved: replayed records whose event has since succeeded, now marked resolved.
	Resolved int `json:"resolved"`
}

// Healthy decides whether a CRM takes traffic again: its breaker is closed, or nobody wrote
// its health and the record has cooled down.
func Healthy(h *store.CRMHealth, recordAge, cooldown time.Duration) bool {
	if h != nil {
		return h.State == store.CRMClosed
	}
	return recordAge >= cooldown
}

// RunOnce examines open retryable and outage records and replays those whose CRM is healthy,
// audited with actor "auto-replay"; then it marks replayed records whose event has since
// succeeded as resolved.
func (a *AutoReplayer) RunOnce(ctx context.Context) (Summary, error) {
	var sum Summary
	health := map[string]*store.CRMHealth{}
	for _, class := range []failure.Class{failure.Retryable, failure.Outage} {
		page, err := a.st.ListDLQ(ctx, store.DLQFilter{Status: store.DLQOpen, FailureClass: class}, a.o.Limit, "")
		if err != nil {
			return sum, fmt.Errorf("auto-replay: %w", err)
		}
		for _, rec := range page.Records {
			sum.Examined++
			if err := a.one(ctx, rec, health, &sum); err != nil {
				return sum, err
			}
		}
	}
	if err := a.resolve(ctx, &sum); err != nil {
		return sum, err
	}
	if sum.Examined > 0 || sum.Resolved > 0 {
		logging.FromContext(ctx).InfoContext(ctx, "auto-replay: run", "examined", sum.Examined,
			"replayed", sum.Replayed, "waiting", sum.Waiting, "skipped", sum.Skipped, "failed", sum.Failed,
			"resolved", sum.Resolved)
	}
	return sum, nil
}

// resolve marks replayed records whose event has since succeeded as resolved, so the queue
// shows what still needs a person. Bounded by Limit per run.
func (a *AutoReplayer) resolve(ctx context.Context, sum *Summary) error {
	page, err := a.st.ListDLQ(ctx, store.DLQFilter{Status: store.DLQReplayed}, a.o.Limit, "")
	if err != nil {
		return fmt.Errorf("auto-replay: resolve: %w", err)
	}
	for _, rec := range page.Records {
		ok, err := a.st.Resolve(ctx, rec.ID)
		if err != nil {
			return fmt.Errorf("auto-replay: %w", err)
		}
		if ok {
			sum.Resolved++
		}
	}
	return nil
}

func (a *AutoReplayer) one(ctx context.Context, rec *store.DLQRecord, health map[string]*store.CRMHealth, sum *Summary) error {
	doc, err := a.st.GetEvent(ctx, rec.ID)
	if errors.Is(err, store.ErrNotFound) {
		sum.Skipped++
		return nil
	}
	if err != nil {
		return fmt.Errorf("auto-replay: %w", err)
	}
	if doc.ReplayCount >= a.o.MaxReplays {
		sum.Skipped++
		return nil
	}
	crm := doc.Event.Routing.CRM
	h, seen := health[crm]
	if !seen {
		h, err = a.st.CRMHealth(ctx, crm)
		if errors.Is(err, store.ErrNotFound) {
			h, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("auto-replay: %w", err)
		}
		health[crm] = h
	}
	if !Healthy(h, a.st.Now().Sub(rec.CreatedAt), a.o.Cooldown) {
		sum.Waiting++
		return nil
	}
	if err := a.limiter.Wait(ctx); err != nil {
		return err
	}
	reason := fmt.Sprintf("auto-replay: %s failure, CRM %s healthy", rec.FailureClass, crm)
	res, err := a.rp.Replay(ctx, replay.Request{ID: rec.ID, Reason: reason, Actor: Actor, QuietNoop: true})
	switch {
	case err != nil:
		sum.Failed++
		logging.FromContext(ctx).WarnContext(ctx, "auto-replay: replay failed", "dlq_id", rec.ID, "error", err.Error())
	case res.Outcome == replay.OutcomeReplayed || res.Outcome == replay.OutcomeQueued:
		sum.Replayed++
	default:
		sum.Skipped++
	}
	return nil
}
