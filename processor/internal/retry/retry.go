// Package retry is the in-request retry middleware for CRM calls: for retryable failures, a
// few immediate tries then a few spaced tries; for conflicts, a few short-spaced tries; every
// other class returns at once. It never sleeps past the context's deadline: when the next wait
// would not fit it returns the last error, and the caller nacks.
package retry

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Policy says how often and how far apart each class is retried.
type Policy struct {
	// Immediate tries for retryable failures (default 3), then Spaced more tries (default 2)
	// Spacing apart (default 1 s). A longer Retry-After replaces the spacing.
	Immediate, Spaced int
	Spacing           time.Duration
	// ConflictTries is the total tries for conflicts (default 3), ConflictSpacing apart
	// (default 200 ms).
	ConflictTries   int
	ConflictSpacing time.Duration
}

// Default is the design brief's policy: 3 immediate tries, then 2 tries 1 s apart.
var Default = Policy{Immediate: 3, Spaced: 2, Spacing: time.Second, ConflictTries: 3, ConflictSpacing: 200 * time.Millisecond}

// delay returns the wait before try number next (1-based, next >= 2), and false when err must
// not be tried again.
func (p Policy) delay(err error, next int) (time.Duration, bool) {
	c, _ := failure.ClassOf(err)
	switch c {
	case failure.Retryable:
		if next <= p.Immediate {
			return failure.RetryAfter(err), true
		}
		if next <= p.Immediate+p.Spaced {
			return max(p.Spacing, failure.RetryAfter(err)), true
		}
	case failure.Conflict:
		if next <= p.ConflictTries {
			return p.ConflictSpacing, true
		}
	}
	return 0, false
}

type triesKey struct{}

// WithCounter returns a context in which Middleware counts the CRM calls it makes into n.
func WithCounter(ctx context.Context, n *atomic.Int32) context.Context {
	return context.WithValue(ctx, triesKey{}, n)
}

// Middleware retries next per p. Unclassified errors (ctx cancellation) are not retried.
func Middleware(p Policy) crm.Middleware {
	return func(next crm.Upserter) crm.Upserter {
		return crm.Func(func(ctx context.Context, ev *event.Event) (crm.Result, error) {
			counter, _ := ctx.Value(triesKey{}).(*atomic.Int32)
			for try := 1; ; try++ {
				if counter != nil {
					counter.Add(1)
				}
				res, err := next.Upsert(ctx, ev)
				if err == nil || ctx.Err() != nil {
					return res, err
				}
				d, ok := p.delay(err, try+1)
				if !ok {
					return res, err
				}
				if dl, has := ctx.Deadline(); has && time.Until(dl) < d+100*time.Millisecond {
					return res, err
				}
				if d > 0 {
					t := time.NewTimer(d)
					select {
					case <-ctx.Done():
						t.Stop()
						return res, err
					case <-t.C:
					}
				}
			}
		})
	}
}
