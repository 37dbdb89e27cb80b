// Package txretry is the store's retry policy for Firestore transactions under contention.
//
// Firestore in Google's emulator locks pessimistically: a transaction that reads a document
// another transaction holds waits, then fails ABORTED ("Transaction lock timeout"); under
// heavy contention the RPC can run out its own deadline (DEADLINE_EXCEEDED) while the caller's
// context is still alive. Cloud Firestore aborts conflicting commits optimistically. Either
// way the whole transaction (reads included) must run again, after a pause that spreads the
// contenders out. The client library's own retry uses fixed exponential pauses from 1 s and
// five attempts, too slow for a push request and too few for ten contenders, so the store
// runs each transaction once per attempt and retries here.
//
// The policy is pure: Do takes the clock's sleep and the random source as parameters, so it is
// tested without I/O.
package txretry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrContended is returned (wrapped, with the last error) when a transaction still conflicted
// after the policy's last attempt.
var ErrContended = errors.New("transaction contended")

// Policy bounds the retries of one transaction.
type Policy struct {
	// Attempts is the total number of tries, the first included (at least 1).
	Attempts int
	// Base is the pause before the second try; each later pause doubles, up to Max.
	Base, Max time.Duration
}

// Default is the store's policy: 10 tries, pauses drawn from [0, 20ms·2^n] capped at 1 s, so
// the worst case waits about 4 s in all, inside a push request's budget.
var Default = Policy{Attempts: 10, Base: 20 * time.Millisecond, Max: time.Second}

// Retryable reports whether a failed try of a transaction may run again: ABORTED always (the
// transaction committed nothing), DEADLINE_EXCEEDED only when the caller's context is still
// alive (the RPC's own deadline ran out under contention; every operation of the store
// re-reads and re-checks its preconditions, so a try whose commit did land is seen by the next
// try as a state that no longer matches, never applied twice).
func Retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var sh *shielded
	if errors.As(err, &sh) {
		err = sh.err
	}
	switch status.Code(unwrapStatus(err)) {
	case codes.Aborted:
		return true
	case codes.DeadlineExceeded:
		return true
	}
	return false
}

// unwrapStatus finds a gRPC status error in err's chain (status.Code only looks at err
// itself in older gRPC versions).
func unwrapStatus(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, ok := status.FromError(e); ok {
			return e
		}
	}
	return err
}

// Shield hides a retryable gRPC status from the client library's own retry loop: a
// transaction body that returns Shield(err) makes RunTransaction return at once (it would
// otherwise pause up to a second before giving up on its last attempt), and Do still sees the
// error as retryable. Other errors pass through unchanged.
func Shield(ctx context.Context, err error) error {
	if !Retryable(ctx, err) {
		return err
	}
	return &shielded{err: err}
}

// shielded carries a retryable error without exposing its gRPC status (no Unwrap, no
// GRPCStatus), so status.FromError in the client library sees an ordinary error.
type shielded struct{ err error }

func (s *shielded) Error() string { return s.err.Error() }

// reveal undoes Shield.
func reveal(err error) error {
	var sh *shielded
	if errors.As(err, &sh) {
		return sh.err
	}
	return err
}

// Pause is the jittered pause before try n+1 (n >= 1 tries done): uniform in [0, min(Max,
// Base·2^(n-1))], "full jitter", so contenders that collided once do not collide again in step.
// r returns a float in [0, 1).
func (p Policy) Pause(n int, r func() float64) time.Duration {
	ceil := p.Base
	for i := 1; i < n && ceil < p.Max; i++ {
		ceil *= 2
	}
	if ceil > p.Max {
		ceil = p.Max
	}
	return time.Duration(r() * float64(ceil))
}

// Do runs try until it succeeds, fails with an error that is not Retryable, the context ends,
// or the policy's attempts are spent; then it returns an error wrapping ErrContended and the
// last error. sleep waits for d or until ctx ends (returning ctx's error); r is the jitter
// source. Nil sleep and r mean the real clock and math/rand.
func (p Policy) Do(ctx context.Context, try func(ctx context.Context) error, sleep func(ctx context.Context, d time.Duration) error, r func() float64) error {
	if sleep == nil {
		sleep = Sleep
	}
	if r == nil {
		r = rand.Float64
	}
	attempts := max(p.Attempts, 1)
	var err error
	for n := 1; ; n++ {
		err = try(ctx)
		if !Retryable(ctx, err) {
			return reveal(err)
		}
		if n >= attempts {
			return fmt.Errorf("%w after %d tries: %w", ErrContended, n, reveal(err))
		}
		if serr := sleep(ctx, p.Pause(n, r)); serr != nil {
			return fmt.Errorf("%w: %w", serr, reveal(err))
		}
	}
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
