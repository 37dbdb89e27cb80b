package ratelimit

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// The shared rate: N processor instances sending to one CRM account stay together within the
// account's limit R (the operator's CRM_RATE_PER_SEC) without a hot document and without a
// Firestore RPC per CRM call.
//
// Every Refresh (default 1 s) each instance reads its CRM's live members and budget (one
// query) and writes its own membership (one write on its own document, expiring after TTL):
// its demand (calls that asked for a token over the last interval plus the calls waiting now,
// per second, smoothed) and the rate it takes. The budget B = Headroom x R x ceiling x usage
// factor is divided by max-min fairness over the members' demands (an idle member keeps only
// an equal part of what nobody asks for; a busy one gets the rest), and an instance never takes
// more than B minus what the others last said they take: a member that grows waits until the
// others have lowered theirs, so a new member starts small and grows within two refreshes,
// and a dead member's share goes to the others once its membership expires. Before its first
// refresh, or when it could not refresh for longer than TTL (the others count it gone), an
// instance takes the floor share, 2% of B.
//
// When the CRM throttles (crm.Throttled: 429, Salesforce's 403 REQUEST_LIMIT_EXCEEDED) the
// instance pauses for Retry-After (1 s when the CRM gives none, at most MaxWait), lowers the
// ceiling to 0.7 of its value, and publishes both in the budget document (a transaction,
// written only on throttling: never hot), which every member honours from its next refresh.
// The ceiling recovers by 0.1 of R per second, the same rule at every member. Calls already in
// flight when the pause began do not lower it again, nor does a throttle within a second of the
// last lowering.

// Budget is the store side of the shared rate (*store.Store).
type Budget interface {
	RefreshRateMember(ctx context.Context, crm, instance string, ttl time.Duration, decide func(v store.RateView, now time.Time) store.RateMember) (store.RateView, error)
	RemoveRateMember(ctx context.Context, crm, instance string) error
	ThrottleRate(ctx context.Context, crm, by string, decide func(cur store.RateBudget, now time.Time) store.RateBudget) (store.RateBudget, error)
}

// Shared configures NewShared.
type Shared struct {
	// CRM and Instance name the membership (rate_members/{crm}:{instance}).
	CRM, Instance string
	Budget        Budget
	// Refresh is the membership cadence (default 1 s); TTL its expiry (default 3 x Refresh).
	Refresh, TTL time.Duration
	// Headroom is the fraction of the account's rate the members divide (default 0.97): the
	// margin absorbs membership changes.
	Headroom float64
	// Log receives refresh and publish failures (default slog.Default()).
	Log *slog.Logger
}

// The shared rate's constants (see the comment above).
const (
	floorShare      = 0.02
	lowerFactor     = 0.7
	minCeiling      = 1.0 / 20
	recoverPerSec   = 0.1
	lowerGap        = time.Second
	defaultThrottle = time.Second
)

type shared struct {
	Shared
	// guarded by Limiter.mu
	view      store.RateView
	viewAt    time.Time // last successful refresh
	ceiling   float64   // this instance's own lowering (0: none)
	loweredAt time.Time
	demand    float64
	lastTick  time.Time
	pubUntil  time.Time // a pause to publish
	pubLower  bool
	pubBusy   bool

	startOnce, closeOnce sync.Once
	started              atomic.Bool
	stop, done           chan struct{}
}

// NewShared returns a limiter holding this instance's part of the CRM account's perSec, shared
// through sh.Budget. Call Start to join and Close to leave.
func NewShared(perSec float64, maxWait time.Duration, sh Shared) *Limiter {
	l := New(perSec, maxWait)
	if sh.Refresh <= 0 {
		sh.Refresh = time.Second
	}
	if sh.TTL <= 0 {
		sh.TTL = 3 * sh.Refresh
	}
	if sh.Headroom <= 0 || sh.Headroom > 1 {
		sh.Headroom = 0.97
	}
	if sh.Log == nil {
		sh.Log = slog.Default()
	}
	l.sh = &shared{Shared: sh, stop: make(chan struct{}), done: make(chan struct{})}
	l.mu.Lock()
	l.setRateLocked(l.floorLocked(time.Now()))
	l.mu.Unlock()
	return l
}

// Start joins the budget: one refresh now (bounded by twice the refresh interval), then one
// per interval until Close. A local limiter ignores it.
func (l *Limiter) Start(ctx context.Context) {
	if l.sh == nil {
		return
	}
	l.sh.startOnce.Do(func() { l.start(ctx) })
}

func (l *Limiter) start(ctx context.Context) {
	l.sh.started.Store(true)
	rctx, cancel := context.WithTimeout(ctx, 2*l.sh.Refresh)
	l.refresh(rctx)
	cancel()
	go func() {
		defer close(l.sh.done)
		t := time.NewTicker(l.sh.Refresh)
		defer t.Stop()
		for {
			select {
			case <-l.sh.stop:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*l.sh.Refresh)
				l.refresh(rctx)
				cancel()
			}
		}
	}()
}

// Close stops the refreshes and removes the membership, so the others take its share at their
// next refresh; the limiter goes on at the floor share. A local limiter ignores it.
func (l *Limiter) Close() {
	if l.sh == nil {
		return
	}
	l.sh.closeOnce.Do(l.close)
}

func (l *Limiter) close() {
	l.sh.startOnce.Do(func() {}) // a Start after Close does nothing
	if !l.sh.started.Load() {
		return
	}
	close(l.sh.stop)
	<-l.sh.done
	l.mu.Lock()
	l.setRateLocked(l.floorLocked(time.Now()))
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.sh.Budget.RemoveRateMember(ctx, l.sh.CRM, l.sh.Instance); err != nil {
		l.sh.Log.Warn("crm rate membership not removed", "crm", l.sh.CRM, "error", err.Error())
	}
}

// Members is the last view's live members (this instance included).
func (l *Limiter) Members() []store.RateMember {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sh == nil {
		return nil
	}
	return append([]store.RateMember(nil), l.sh.view.Members...)
}

func (l *Limiter) refresh(ctx context.Context) {
	sh := l.sh
	now := time.Now()
	l.mu.Lock()
	dt := now.Sub(sh.lastTick).Seconds()
	if sh.lastTick.IsZero() || dt <= 0 {
		dt = sh.Refresh.Seconds()
	}
	inst := (float64(l.arrivals.Swap(0)) + float64(l.waiting.Load())) / dt
	if sh.lastTick.IsZero() {
		sh.demand = inst
	} else {
		sh.demand = (sh.demand + inst) / 2
	}
	sh.lastTick = now
	demand := sh.demand
	l.mu.Unlock()

	var next float64
	view, err := sh.Budget.RefreshRateMember(ctx, sh.CRM, sh.Instance, sh.TTL, func(v store.RateView, _ time.Time) store.RateMember {
		l.mu.Lock()
		defer l.mu.Unlock()
		next = l.shareLocked(v, demand, time.Now())
		return store.RateMember{Demand: demand, Rate: next}
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if time.Since(sh.viewAt) > sh.TTL {
			// The others count this instance gone and share the whole budget.
			l.setRateLocked(l.floorLocked(time.Now()))
		}
		sh.Log.Warn("crm rate membership not refreshed", "crm", sh.CRM, "error", err.Error())
		return
	}
	sh.view, sh.viewAt = view, now
	l.setRateLocked(next)
}

// budgetLocked is B: the members' part of the account's rate now.
func (l *Limiter) budgetLocked(now time.Time) float64 {
	return l.sh.Headroom * l.max * l.ceilingLocked(now) * l.usageFactorLocked()
}

func (l *Limiter) floorLocked(now time.Time) float64 {
	return max(floorShare*l.budgetLocked(now), 0.01)
}

// ceilingLocked is the lower of this instance's and the budget document's recovering ceilings.
func (l *Limiter) ceilingLocked(now time.Time) float64 {
	b := l.sh.view.Budget
	return min(recovered(l.sh.ceiling, l.sh.loweredAt, now), recovered(b.Ceiling, b.LoweredAt, now))
}

// recovered is a ceiling c lowered at `at`, recovered linearly by recoverPerSec; 1 when none.
func recovered(c float64, at, now time.Time) float64 {
	if c <= 0 || at.IsZero() {
		return 1
	}
	return min(1, c+recoverPerSec*max(0, now.Sub(at).Seconds()))
}

// shareLocked is this instance's rate for view v, its own demand being demand.
func (l *Limiter) shareLocked(v store.RateView, demand float64, now time.Time) float64 {
	l.sh.view.Budget = v.Budget // the ceiling and pause apply from this refresh on
	b := l.budgetLocked(now)
	demands := []float64{demand}
	others := 0.0
	for _, m := range v.Members {
		if m.Instance == l.sh.Instance {
			continue
		}
		demands = append(demands, m.Demand)
		others += m.Rate
	}
	fair := waterfill(b, demands)[0]
	return max(min(fair, b-others), floorShare*b, 0.01)
}

// waterfill divides b by max-min fairness over demands: every demand up to an equal level is
// met, and what nobody asks for is divided equally. The result sums to b.
func waterfill(b float64, demands []float64) []float64 {
	n := len(demands)
	out := make([]float64, n)
	total := 0.0
	for _, d := range demands {
		total += max(d, 0)
	}
	if total <= b {
		spare := (b - total) / float64(n)
		for i, d := range demands {
			out[i] = max(d, 0) + spare
		}
		return out
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, c int) bool { return demands[idx[a]] < demands[idx[c]] })
	left := b
	for k, i := range idx {
		level := left / float64(n-k)
		give := min(max(demands[i], 0), level)
		out[i] = give
		left -= give
	}
	return out
}

// observeShared: a throttle pauses this instance, lowers its ceiling and publishes both.
func (l *Limiter) observeShared(err error) {
	if err == nil || !crm.Throttled(err) {
		return
	}
	sh := l.sh
	now := time.Now()
	after := failure.RetryAfter(err)
	if after <= 0 {
		after = defaultThrottle
	}
	until := now.Add(min(after, l.maxWait))
	l.mu.Lock()
	inFlight := now.Before(l.pauseLocked()) // sent before the pause began
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	lower := !inFlight && now.Sub(sh.loweredAt) >= lowerGap
	if lower {
		sh.ceiling = max(minCeiling, l.ceilingLocked(now)*lowerFactor)
		sh.loweredAt = now
		// At once here; the others from their next refresh.
		l.setRateLocked(max(float64(l.lim.Limit())*lowerFactor, l.floorLocked(now)))
	}
	if until.After(sh.pubUntil) {
		sh.pubUntil = until
	}
	sh.pubLower = sh.pubLower || lower
	start := !sh.pubBusy
	sh.pubBusy = true
	l.mu.Unlock()
	if start {
		go l.publish()
	}
}

// publish writes the pending pause (and lowering) to the budget document, until none is left.
func (l *Limiter) publish() {
	sh := l.sh
	for {
		l.mu.Lock()
		until, lower := sh.pubUntil, sh.pubLower
		if until.IsZero() {
			sh.pubBusy = false
			l.mu.Unlock()
			return
		}
		sh.pubUntil, sh.pubLower = time.Time{}, false
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := sh.Budget.ThrottleRate(ctx, sh.CRM, sh.Instance, func(cur store.RateBudget, now time.Time) store.RateBudget {
			next := cur
			if until.After(next.PausedUntil) {
				next.PausedUntil = until
			}
			if lower && now.Sub(cur.LoweredAt) >= lowerGap {
				next.Ceiling = max(minCeiling, recovered(cur.Ceiling, cur.LoweredAt, now)*lowerFactor)
				next.LoweredAt = now
			}
			next.ExpireAt = time.Time{}
			return next
		})
		cancel()
		if err != nil {
			sh.Log.Warn("crm rate throttle not published", "crm", sh.CRM, "error", err.Error())
		}
	}
}
