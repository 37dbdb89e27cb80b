package retry

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

func TestMiddleware(t *testing.T) {
	fast := Policy{Immediate: 3, Spaced: 2, Spacing: 10 * time.Millisecond, ConflictTries: 3, ConflictSpacing: time.Millisecond}
	tests := []struct {
		name      string
		errs      []error // returned by successive calls; nil after the list
		wantCalls int
		wantErr   failure.Class
	}{
		{"success first", nil, 1, ""},
		{"retryable then success", []error{failure.New(failure.Retryable, 503, "x")}, 2, ""},
		{"retryable exhausted", rep(failure.New(failure.Retryable, 500, "x"), 9), 5, failure.Retryable},
		{"conflict exhausted", rep(failure.New(failure.Conflict, 409, "x"), 9), 3, failure.Conflict},
		{"permanent once", rep(failure.New(failure.Permanent, 400, "x"), 9), 1, failure.Permanent},
		{"auth once", rep(failure.New(failure.Auth, 401, "x"), 9), 1, failure.Auth},
		{"outage once", rep(failure.New(failure.Outage, 0, "x"), 9), 1, failure.Outage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			up := Middleware(fast)(crm.Func(func(ctx context.Context, ev *event.Event) (crm.Result, error) {
				calls++
				if calls <= len(tt.errs) {
					return crm.Result{}, tt.errs[calls-1]
				}
				return crm.Result{RecordID: "r"}, nil
			}))
			var n atomic.Int32
			_, err := up.Upsert(WithCounter(context.Background(), &n), &event.Event{})
			if calls != tt.wantCalls || int(n.Load()) != tt.wantCalls {
				t.Errorf("calls: got %d (counted %d), want %d", calls, n.Load(), tt.wantCalls)
			}
			got, _ := failure.ClassOf(err)
			if got != tt.wantErr {
				t.Errorf("error class: got %q, want %q (%v)", got, tt.wantErr, err)
			}
		})
	}
}

func TestStopsBeforeDeadline(t *testing.T) {
	calls := 0
	up := Middleware(Policy{Immediate: 1, Spaced: 5, Spacing: time.Second})(crm.Func(func(context.Context, *event.Event) (crm.Result, error) {
		calls++
		return crm.Result{}, failure.New(failure.Retryable, 503, "x")
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := up.Upsert(ctx, &event.Event{}); !failure.Is(err, failure.Retryable) {
		t.Fatalf("got %v, want the retryable error", err)
	}
	if calls != 1 || time.Since(start) > 250*time.Millisecond {
		t.Errorf("got %d calls in %v, want 1 call and no wait past the budget", calls, time.Since(start))
	}
}

func rep(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}
