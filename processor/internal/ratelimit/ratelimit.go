// Package ratelimit is the per-CRM send-rate control: a token bucket at the operator's rate,
// lowered multiplicatively when the CRM answers 429 or Retry-After and recovered additively on
// successes (AIMD). Callers wait for a token inside the request, bounded by MaxWait and the
// context, instead of nacking: Pub/Sub's push backoff after nacks would slow the whole
// subscription.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Limiter is one CRM's AIMD token bucket; safe for concurrent use.
type Limiter struct {
	max, min float64
	step     float64
	maxWait  time.Duration

	mu          sync.Mutex
	lim         *rate.Limiter
	pausedUntil time.Time
}

// New returns a limiter at perSec requests per second (burst 1 s worth, at least 1). The rate
// never drops below perSec/20 and recovers by perSec/20 per success. maxWait bounds a wait
// for a token (default 20 s).
func New(perSec float64, maxWait time.Duration) *Limiter {
	if maxWait <= 0 {
		maxWait = 20 * time.Second
	}
	return &Limiter{max: perSec, min: perSec / 20, step: perSec / 20, maxWait: maxWait,
		lim: rate.NewLimiter(rate.Limit(perSec), max(1, int(perSec)))}
}

// Rate is the current rate in requests per second.
func (l *Limiter) Rate() float64 { return float64(l.lim.Limit()) }

// Wait blocks until a token is free, the pause after a Retry-After has passed, or it returns a
// retryable error when that would take longer than maxWait or ctx allows.
func (l *Limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	pause := time.Until(l.pausedUntil)
	l.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, l.maxWait)
	defer cancel()
	if pause > 0 {
		t := time.NewTimer(pause)
		select {
		case <-wctx.Done():
			t.Stop()
			return l.tooLong(ctx)
		case <-t.C:
		}
	}
	if err := l.lim.Wait(wctx); err != nil {
		return l.tooLong(ctx)
	}
	return nil
}

func (l *Limiter) tooLong(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &failure.Error{Class: failure.Retryable, Message: "crm send rate: no token within the wait budget"}
}

// Observe adapts the rate to a call's outcome: 429 or a Retry-After halves it (and pauses
// sending for Retry-After); a success raises it by one step.
func (l *Limiter) Observe(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := float64(l.lim.Limit())
	var fe *failure.Error
	throttled := asFailure(err, &fe) && (fe.Code == 429 || fe.After > 0)
	switch {
	case err == nil:
		if cur < l.max {
			l.lim.SetLimit(rate.Limit(min(l.max, cur+l.step)))
		}
	case throttled:
		l.lim.SetLimit(rate.Limit(max(l.min, cur/2)))
		if fe.After > 0 {
			until := time.Now().Add(min(fe.After, l.maxWait))
			if until.After(l.pausedUntil) {
				l.pausedUntil = until
			}
		}
	}
}

// Middleware waits for a token before each call of next and observes its outcome.
func Middleware(l *Limiter) crm.Middleware {
	return func(next crm.Upserter) crm.Upserter {
		return crm.Func(func(ctx context.Context, ev *event.Event) (crm.Result, error) {
			if err := l.Wait(ctx); err != nil {
				return crm.Result{}, err
			}
			res, err := next.Upsert(ctx, ev)
			l.Observe(err)
			return res, err
		})
	}
}
