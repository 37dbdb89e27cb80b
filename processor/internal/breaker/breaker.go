// Package breaker is the per-CRM circuit breaker. It opens after Threshold consecutive
// retryable failures (throttling excluded: 429s and crm.ErrThrottled, such as Salesforce's 403
// REQUEST_LIMIT_EXCEEDED; a throttling CRM is up), answers fast with an outage failure while
// open, and after Cooldown lets one probe through (half-open): a success closes
// it, a failure opens it again. The failure that opens the breaker is reported as an outage
// too, so an event is not charged an attempt for the CRM being down. Every state change is
// reported to OnChange (the processor writes it to crm_health/{crm}).
package breaker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Breaker is one CRM's circuit breaker; safe for concurrent use.
type Breaker struct {
	name      string
	threshold int
	cooldown  time.Duration
	onChange  func(state store.CRMState)
	now       func() time.Time

	mu       sync.Mutex
	state    store.CRMState
	fails    int
	openedAt time.Time
	probing  bool
}

// New returns a closed breaker. onChange (may be nil) is called outside the lock, in order, on
// every transition, with store.CRMClosed, store.CRMOpen or store.CRMHalfOpen.
func New(name string, threshold int, cooldown time.Duration, onChange func(state store.CRMState)) *Breaker {
	if threshold <= 0 {
		threshold = 5
	}
	return &Breaker{name: name, threshold: threshold, cooldown: cooldown, onChange: onChange, now: time.Now, state: store.CRMClosed}
}

// State is the current state.
func (b *Breaker) State() store.CRMState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Open reports whether a call now would be refused without reaching the CRM.
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return (b.state == store.CRMOpen && b.now().Sub(b.openedAt) < b.cooldown) || (b.state == store.CRMHalfOpen && b.probing)
}

func (b *Breaker) outage() error {
	return failure.New(failure.Outage, 0, fmt.Sprintf("%s circuit open", b.name))
}

// allow decides whether a call may go through, moving open -> half_open after the cooldown.
func (b *Breaker) allow() (bool, store.CRMState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case store.CRMOpen:
		if b.now().Sub(b.openedAt) < b.cooldown {
			return false, ""
		}
		b.state, b.probing = store.CRMHalfOpen, true
		return true, store.CRMHalfOpen
	case store.CRMHalfOpen:
		if b.probing {
			return false, ""
		}
		b.probing = true
	}
	return true, ""
}

// record updates the state with a call's outcome and says whether this failure opened it.
func (b *Breaker) record(err error) (changed store.CRMState, opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	counts := failure.Is(err, failure.Retryable) && codeOf(err) != 429 && !crm.Throttled(err)
	if b.state == store.CRMHalfOpen {
		b.probing = false
	}
	switch {
	case err == nil || !counts:
		b.fails = 0
		if b.state != store.CRMClosed && (err == nil || !failure.Is(err, failure.Retryable)) {
			b.state = store.CRMClosed
			return store.CRMClosed, false
		}
	default:
		b.fails++
		if b.state == store.CRMHalfOpen || (b.state == store.CRMClosed && b.fails >= b.threshold) {
			b.state, b.openedAt = store.CRMOpen, b.now()
			return store.CRMOpen, true
		}
	}
	return "", false
}

func (b *Breaker) notify(state store.CRMState) {
	if state != "" && b.onChange != nil {
		b.onChange(state)
	}
}

// Middleware guards next with b. ctx cancellation does not count as a failure.
func Middleware(b *Breaker) crm.Middleware {
	return func(next crm.Upserter) crm.Upserter {
		return crm.Func(func(ctx context.Context, ev *event.Event) (crm.Result, error) {
			ok, changed := b.allow()
			b.notify(changed)
			if !ok {
				return crm.Result{}, b.outage()
			}
			res, err := next.Upsert(ctx, ev)
			if err != nil && ctx.Err() != nil {
				b.mu.Lock()
				b.probing = false
				b.mu.Unlock()
				return res, err
			}
			changed, opened := b.record(err)
			b.notify(changed)
			if opened {
				return res, &failure.Error{Class: failure.Outage, Message: b.name + " circuit opened", Err: err}
			}
			return res, err
		})
	}
}

func codeOf(err error) int {
	var fe *failure.Error
	if asFailure(err, &fe) {
		return fe.Code
	}
	return 0
}
