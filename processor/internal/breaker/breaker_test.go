package breaker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

func TestBreakerCycle(t *testing.T) {
	var mu sync.Mutex
	var changes []store.CRMState
	now := time.Unix(1000, 0)
	b := New("fake", 3, 10*time.Second, func(s store.CRMState) { mu.Lock(); changes = append(changes, s); mu.Unlock() })
	b.now = func() time.Time { return now }
	var fail error = failure.New(failure.Retryable, 503, "down")
	calls := 0
	up := Middleware(b)(crm.Func(func(context.Context, *event.Event) (crm.Result, error) {
		calls++
		return crm.Result{}, fail
	}))
	call := func() error { _, err := up.Upsert(context.Background(), &event.Event{}); return err }

	for i := 1; i <= 2; i++ {
		if err := call(); !failure.Is(err, failure.Retryable) {
			t.Fatalf("failure %d: got %v, want retryable", i, err)
		}
	}
	if err := call(); !failure.Is(err, failure.Outage) {
		t.Fatalf("third failure: got %v, want outage (it opened the breaker)", err)
	}
	if err := call(); !failure.Is(err, failure.Outage) || calls != 3 {
		t.Fatalf("while open: got %v after %d CRM calls, want outage without calling (3)", err, calls)
	}
	now = now.Add(11 * time.Second)
	if err := call(); !failure.Is(err, failure.Outage) || calls != 4 {
		t.Fatalf("failed probe: got %v after %d calls, want outage after 4 calls", err, calls)
	}
	now = now.Add(11 * time.Second)
	fail = nil
	if err := call(); err != nil {
		t.Fatalf("successful probe: %v", err)
	}
	want := []store.CRMState{store.CRMOpen, store.CRMHalfOpen, store.CRMOpen, store.CRMHalfOpen, store.CRMClosed}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != len(want) {
		t.Fatalf("changes: got %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Errorf("changes: got %v, want %v", changes, want)
			break
		}
	}
}

func TestThrottlingAndPermanentDoNotOpen(t *testing.T) {
	b := New("fake", 2, time.Minute, nil)
	// Salesforce's throttle is a 403 REQUEST_LIMIT_EXCEEDED whose cause is crm.ErrThrottled.
	sfThrottle := &failure.Error{Class: failure.Retryable, Code: 403, Message: "salesforce 403 REQUEST_LIMIT_EXCEEDED", Err: crm.ErrThrottled}
	errs := []error{failure.New(failure.Retryable, 429, "slow down"), sfThrottle, failure.New(failure.Permanent, 400, "bad"), failure.New(failure.Retryable, 429, "x"), sfThrottle, sfThrottle}
	i := 0
	up := Middleware(b)(crm.Func(func(context.Context, *event.Event) (crm.Result, error) {
		e := errs[i%len(errs)]
		i++
		return crm.Result{}, e
	}))
	for range 6 {
		_, _ = up.Upsert(context.Background(), &event.Event{})
	}
	if got := b.State(); got != store.CRMClosed {
		t.Errorf("state: got %s, want closed", got)
	}
}
