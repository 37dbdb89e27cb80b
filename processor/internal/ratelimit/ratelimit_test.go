package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

func TestAIMD(t *testing.T) {
	l := New(100, time.Second)
	l.Observe(failure.New(failure.Retryable, 429, "x"))
	if got := l.Rate(); got != 50 {
		t.Errorf("after a 429: got %v/s, want 50", got)
	}
	for range 5 {
		l.Observe(failure.New(failure.Retryable, 429, "x"))
	}
	if got := l.Rate(); got != 5 {
		t.Errorf("floor: got %v/s, want 5 (max/20)", got)
	}
	l.Observe(failure.New(failure.Retryable, 500, "x"))
	if got := l.Rate(); got != 5 {
		t.Errorf("a 500 must not change the rate: got %v/s", got)
	}
	for range 40 {
		l.Observe(nil)
	}
	if got := l.Rate(); got != 100 {
		t.Errorf("recovered: got %v/s, want 100 (capped)", got)
	}
}

func TestWaitBoundedAndPause(t *testing.T) {
	l := New(1, 200*time.Millisecond)
	ctx := context.Background()
	if err := l.Wait(ctx); err != nil {
		t.Fatalf("first token: %v", err)
	}
	// The bucket is empty and refills in 1 s: longer than maxWait.
	if err := l.Wait(ctx); !failure.Is(err, failure.Retryable) {
		t.Errorf("second token: got %v, want a retryable error after maxWait", err)
	}
	l2 := New(1000, 5*time.Second)
	l2.Observe(&failure.Error{Class: failure.Retryable, Code: 429, After: 150 * time.Millisecond})
	start := time.Now()
	if err := l2.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 140*time.Millisecond {
		t.Errorf("Retry-After pause: waited %v, want at least 150ms", d)
	}
}

func TestMiddlewareObserves(t *testing.T) {
	l := New(10, time.Second)
	up := Middleware(l)(crm.Func(func(context.Context, *event.Event) (crm.Result, error) {
		return crm.Result{}, failure.New(failure.Retryable, 429, "x")
	}))
	_, _ = up.Upsert(context.Background(), &event.Event{})
	if got := l.Rate(); got != 5 {
		t.Errorf("rate after a 429 through the middleware: got %v, want 5", got)
	}
}
