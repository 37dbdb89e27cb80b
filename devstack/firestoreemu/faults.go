package firestoreemu

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Faults injects failures and latency into RPCs. Rules are keyed by method
// name ("Commit", "RunQuery", ...) or "*" for every method; a method's own
// rule and the "*" rule both apply. Faults is safe for concurrent use and
// takes effect for RPCs that start after the call.
type Faults struct {
	mu    sync.Mutex
	rules map[string]*faultRule
}

type faultRule struct {
	next     int
	nextCode codes.Code
	frac     float64
	fracCode codes.Code
	latency  time.Duration
}

func newFaults() *Faults { return &Faults{rules: map[string]*faultRule{}} }

func (f *Faults) rule(rpc string) *faultRule {
	r := f.rules[rpc]
	if r == nil {
		r = &faultRule{}
		f.rules[rpc] = r
	}
	return r
}

// FailNext makes the next n calls of rpc fail with code before doing
// anything (so a failed Commit writes nothing).
func (f *Faults) FailNext(rpc string, n int, code codes.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rule(rpc)
	r.next, r.nextCode = n, code
}

// FailFraction makes each call of rpc fail with code with probability frac
// (0 turns it off).
func (f *Faults) FailFraction(rpc string, frac float64, code codes.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rule(rpc)
	r.frac, r.fracCode = frac, code
}

// Latency delays every call of rpc by d before it runs (0 turns it off).
// A caller's deadline or cancellation cuts the delay short.
func (f *Faults) Latency(rpc string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rule(rpc).latency = d
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = map[string]*faultRule{}
}

// decide returns the delay and error for one call of method.
func (f *Faults) decide(method string) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rules) == 0 {
		return 0, nil
	}
	var delay time.Duration
	var err error
	for _, key := range []string{method, "*"} {
		r := f.rules[key]
		if r == nil {
			continue
		}
		delay = max(delay, r.latency)
		if err != nil {
			continue
		}
		if r.next > 0 {
			r.next--
			err = status.Errorf(r.nextCode, "injected fault: %s", method)
		} else if r.frac > 0 && rand.Float64() < r.frac {
			err = status.Errorf(r.fracCode, "injected fault: %s", method)
		}
	}
	return delay, err
}

func (f *Faults) apply(ctx context.Context, fullMethod string) error {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	delay, err := f.decide(method)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return err
}

func (f *Faults) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := f.apply(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (f *Faults) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := f.apply(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
