// Package ratelimit is the per-CRM send-rate control. Callers wait for a token inside the
// request, bounded by MaxWait and the context, instead of nacking: Pub/Sub's push backoff after
// nacks would slow the whole subscription.
//
// A Limiter made with New is local: a token bucket at the operator's rate, lowered
// multiplicatively when the CRM throttles (429, Salesforce's 403 REQUEST_LIMIT_EXCEEDED, a
// Retry-After) and recovered additively on successes (AIMD). A Limiter made with NewShared
// holds one instance's part of the CRM account's rate, shared with every other processor
// instance through the store's rate budget (see shared.go).
//
// Both lower the rate as Salesforce's daily API usage (Sforce-Limit-Info, read through
// Config.Usage) nears the limit: up to 90% of the limit nothing changes; from 90% to 100% the
// rate falls linearly to a twentieth of the configured rate, where it stays until usage drops
// (the CRM answers 403 past the limit and the limiter pauses).
package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Usage soft limit: above this fraction of the daily API budget the rate is lowered.
const usageSoft = 0.9

// Limiter is one CRM's send-rate control; safe for concurrent use.
type Limiter struct {
	max, min float64
	step     float64
	maxWait  time.Duration
	usage    func() (used, limit int64)

	mu          sync.Mutex
	lim         *rate.Limiter
	aimd        float64 // local mode: the AIMD rate before the usage factor
	pausedUntil time.Time

	sh       *shared // nil: local mode
	arrivals atomic.Int64
	waiting  atomic.Int64
}

// New returns a local limiter at perSec requests per second (burst 1 s worth, at least 1). The
// rate never drops below perSec/20 and recovers by perSec/20 per success. maxWait bounds a
// wait for a token (default 20 s).
func New(perSec float64, maxWait time.Duration) *Limiter {
	if maxWait <= 0 {
		maxWait = 20 * time.Second
	}
	return &Limiter{max: perSec, min: perSec / 20, step: perSec / 20, maxWait: maxWait, aimd: perSec,
		lim: rate.NewLimiter(rate.Limit(perSec), max(1, int(perSec)))}
}

// WithUsage makes the limiter read the CRM's daily API usage (used, limit; zeros when unknown)
// after each call, e.g. the Salesforce adapter's Budget. It returns l.
func (l *Limiter) WithUsage(f func() (used, limit int64)) *Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.usage = f
	return l
}

// Rate is the current rate in requests per second.
func (l *Limiter) Rate() float64 { return float64(l.lim.Limit()) }

// PausedUntil is when sending resumes after a throttle (this instance's or, shared, any
// member's); zero or past when not paused.
func (l *Limiter) PausedUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pauseLocked()
}

func (l *Limiter) pauseLocked() time.Time {
	p := l.pausedUntil
	if l.sh != nil && l.sh.view.Budget.PausedUntil.After(p) {
		p = l.sh.view.Budget.PausedUntil
	}
	return p
}

// Wait blocks until a token is free, the pause after a throttle has passed, or it returns a
// retryable error when that would take longer than maxWait or ctx allows.
func (l *Limiter) Wait(ctx context.Context) error {
	l.arrivals.Add(1)
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	wctx, cancel := context.WithTimeout(ctx, l.maxWait)
	defer cancel()
	for {
		pause := time.Until(l.PausedUntil())
		if pause <= 0 {
			break
		}
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

// Observe adapts the rate to a call's outcome. Local: a throttle (crm.Throttled, a 429 or a
// Retry-After) halves the rate and pauses sending for Retry-After; a success raises it by one
// step. Shared: see shared.go.
func (l *Limiter) Observe(err error) {
	if l.sh != nil {
		l.observeShared(err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var fe *failure.Error
	throttled := crm.Throttled(err) || asFailure(err, &fe) && (fe.Code == 429 || fe.After > 0)
	switch {
	case err == nil:
		if l.aimd < l.max {
			l.aimd = min(l.max, l.aimd+l.step)
		}
	case throttled:
		l.aimd = max(l.min, l.aimd/2)
		if after := failure.RetryAfter(err); after > 0 {
			until := time.Now().Add(min(after, l.maxWait))
			if until.After(l.pausedUntil) {
				l.pausedUntil = until
			}
		}
	}
	l.setRateLocked(max(l.min, l.aimd*l.usageFactorLocked()))
}

// usageFactorLocked is the daily-usage rule of the package comment: 1 up to usageSoft of the
// limit, then linearly down to 1/20 at the limit.
func (l *Limiter) usageFactorLocked() float64 {
	if l.usage == nil {
		return 1
	}
	used, limit := l.usage()
	if limit <= 0 {
		return 1
	}
	u := float64(used) / float64(limit)
	if u <= usageSoft {
		return 1
	}
	return max(1.0/20, (1-u)/(1-usageSoft))
}

// setRateLocked sets the bucket's rate, with a burst of 1 s worth (at least 1). Shared, the
// members' bursts add up to at most B, within the one second's worth a CRM account allows.
func (l *Limiter) setRateLocked(r float64) {
	if float64(l.lim.Limit()) == r {
		return
	}
	l.lim.SetLimit(rate.Limit(r))
	l.lim.SetBurst(max(1, int(r)))
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
