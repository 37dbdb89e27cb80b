package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
	"github.com/leadpipe/leadpipe/processor/internal/crm/crmtest"
	"github.com/leadpipe/leadpipe/processor/internal/crm/hubspot"
	"github.com/leadpipe/leadpipe/processor/internal/crm/salesforce"
	"github.com/leadpipe/leadpipe/processor/internal/ratelimit"
)

// The shared-rate tests run several limiters (one per simulated processor instance), each on
// its own Firestore client of one emulator, in front of real adapters against one fake CRM
// with an account-wide limit.

var (
	env  *devstacktest.Env
	fake *fakecrm.Server
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	if env, err = devstacktest.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "start emulators:", err)
		return 1
	}
	defer env.Close()
	if fake, err = fakecrm.Start(fakecrm.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "fake crm:", err)
		return 1
	}
	defer fake.Close()
	return m.Run()
}

const (
	testRefresh = 250 * time.Millisecond
	testTTL     = 750 * time.Millisecond
)

// reset clears the emulator and the fake CRM.
func reset(t testing.TB) {
	t.Helper()
	if err := env.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	fake.Reset()
}

// newStore is a Store on a Firestore client of its own, as each instance has.
func newStore(t testing.TB) *store.Store {
	t.Helper()
	fs, err := env.FirestoreClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return store.New(fs)
}

// instance is one simulated processor instance: its limiter in front of a HubSpot adapter.
type instance struct {
	lim *ratelimit.Limiter
	up  crm.Upserter
	ok  atomic.Int64
}

var hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func newInstance(t testing.TB, name string, perSec float64, refresh time.Duration, st ratelimit.Budget) *instance {
	t.Helper()
	lim := ratelimit.NewShared(perSec, 10*time.Second, ratelimit.Shared{CRM: "hubspot", Instance: name, Budget: st,
		Refresh: refresh, TTL: 3 * refresh})
	lim.Start(context.Background())
	t.Cleanup(lim.Close)
	a := hubspot.New(hubspot.Config{BaseURL: fake.URL(), AccessToken: "pat", HTTPClient: hc, Hasher: crmtest.Hasher})
	return &instance{lim: lim, up: ratelimit.Middleware(lim)(a)}
}

func hubspotEvent(i int) *event.Event {
	return crmtest.Event(crmtest.Adapter{CRM: "hubspot"}, fmt.Sprintf("rate-%d", i%50), event.ModeUpsert)
}

// load runs workers callers on each instance until ctx ends.
func load(ctx context.Context, insts []*instance, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for k, in := range insts {
		for w := range workers {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					if _, err := in.up.Upsert(ctx, hubspotEvent(k*1000+w*100+i)); err == nil {
						in.ok.Add(1)
					}
				}
			})
		}
	}
	return &wg
}

// TestSharedRateThreeInstances: three instances with busy callers send, together, within the
// account's limit (a local limiter each would send 3x) and are rarely throttled.
func TestSharedRateThreeInstances(t *testing.T) {
	reset(t)
	const limit = 60.0
	insts := []*instance{}
	for i := range 3 {
		insts = append(insts, newInstance(t, fmt.Sprintf("inst-%d", i), limit, testRefresh, newStore(t)))
	}
	devstacktest.Eventually(t, 3*time.Second, "three members seen", func() (bool, string) {
		for _, in := range insts {
			if n := len(in.lim.Members()); n != 3 {
				return false, fmt.Sprintf("%d members", n)
			}
		}
		return true, ""
	})
	fake.AccountLimit(limit)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	wg := load(ctx, insts, 6)
	wg.Wait()
	st := fake.AccountStats()
	elapsed := st.Now.Sub(st.Since).Seconds()
	t.Logf("accepted %d (%.1f/s of %v), throttled %d", st.Accepted, float64(st.Accepted)/elapsed, limit, st.Throttled)
	// The account's bucket admits its burst (1 s worth) plus the rate: what was accepted is
	// bounded by it whatever the instances do; what matters is how much was refused.
	if share := st.ThrottledShare(); share > 0.05 {
		t.Errorf("throttled share %.3f (%d of %d), want < 0.05: the instances exceed the account's limit together",
			share, st.Throttled, st.Accepted+st.Throttled)
	}
	if got, want := float64(st.Accepted), 0.6*limit*elapsed; got < want {
		t.Errorf("accepted %v in %.1fs, want at least %v (0.6 of the limit)", got, elapsed, want)
	}
	for i, in := range insts {
		if got := in.ok.Load(); float64(got) < 0.15*float64(st.Accepted) {
			t.Errorf("instance %d sent %d of %d: want a fair part", i, got, st.Accepted)
		}
	}
}

// TestSharedPauseOnRetryAfter: a 429 with Retry-After at one instance pauses the others.
func TestSharedPauseOnRetryAfter(t *testing.T) {
	reset(t)
	insts := []*instance{}
	for i := range 3 {
		insts = append(insts, newInstance(t, fmt.Sprintf("inst-%d", i), 100, testRefresh, newStore(t)))
	}
	fake.SetFaults(fakecrm.Faults{RetryAfterSec: 2})
	fake.FailNext(fakecrm.Failure{System: fakecrm.SystemHubSpot, Status: http.StatusTooManyRequests})
	_, err := insts[0].up.Upsert(context.Background(), hubspotEvent(1))
	if !crm.Throttled(err) {
		t.Fatalf("injected 429: got %v, want a throttle", err)
	}
	pause := insts[0].lim.PausedUntil()
	if d := time.Until(pause); d < 1500*time.Millisecond {
		t.Fatalf("instance 0 paused for %v, want about 2s", d)
	}
	devstacktest.Eventually(t, 1500*time.Millisecond, "the others honour the pause", func() (bool, string) {
		for i, in := range insts[1:] {
			if p := in.lim.PausedUntil(); p.Before(pause.Add(-10 * time.Millisecond)) {
				return false, fmt.Sprintf("instance %d paused until %v, want %v", i+1, p, pause)
			}
		}
		return true, ""
	})
	before := fake.AccountStats().Accepted
	var wg sync.WaitGroup
	for i, in := range insts[1:] {
		wg.Go(func() {
			if _, err := in.up.Upsert(context.Background(), hubspotEvent(10+i)); err != nil {
				t.Errorf("instance %d after the pause: %v", i+1, err)
			}
			if now := time.Now(); now.Before(pause) {
				t.Errorf("instance %d sent at %v, before the shared pause ended (%v)", i+1, now, pause)
			}
		})
	}
	time.Sleep(time.Until(pause) - 200*time.Millisecond)
	if got := fake.AccountStats().Accepted - before; got != 0 {
		t.Errorf("%d calls reached the CRM during the shared pause", got)
	}
	wg.Wait()
}

// TestSharedMembershipExpiry: a dead instance's share goes to the others once its
// membership expires; a new instance starts at the floor until it has read the members.
func TestSharedMembershipExpiry(t *testing.T) {
	reset(t)
	const limit = 90.0
	st := newStore(t)
	// A member that refreshed once, busy, and then died (its process was killed).
	if _, err := st.RefreshRateMember(context.Background(), "hubspot", "dead", 2*time.Second,
		func(store.RateView, time.Time) store.RateMember {
			return store.RateMember{Demand: 500, Rate: limit / 3}
		}); err != nil {
		t.Fatal(err)
	}
	cold := ratelimit.NewShared(limit, time.Second, ratelimit.Shared{CRM: "hubspot", Instance: "cold", Budget: st})
	if r, floor := cold.Rate(), 0.02*0.97*limit; r > floor+1e-9 {
		t.Errorf("before its first refresh: rate %v, want the floor %v", r, floor)
	}
	cold.Close() // never started: returns at once, and a later Start does nothing
	cold.Start(context.Background())
	cold.Close()
	if len(cold.Members()) != 0 {
		t.Errorf("a Start after Close joined: %v", cold.Members())
	}
	insts := []*instance{newInstance(t, "a", limit, testRefresh, newStore(t)), newInstance(t, "b", limit, testRefresh, newStore(t))}
	ctx, cancel := context.WithCancel(context.Background())
	wg := load(ctx, insts, 4)
	defer func() { cancel(); wg.Wait() }()
	budget := 0.97 * limit
	// While the dead member counts, the two live ones leave it its promised third.
	time.Sleep(2 * testRefresh)
	if n := len(insts[0].lim.Members()); n == 3 {
		if sum := insts[0].lim.Rate() + insts[1].lim.Rate(); sum > budget-limit/3+1 {
			t.Errorf("with the dead member live: rates sum to %v, want at most %v", sum, budget-limit/3)
		}
	}
	devstacktest.Eventually(t, 5*time.Second, "the dead member's share handed over", func() (bool, string) {
		a, b := insts[0].lim.Rate(), insts[1].lim.Rate()
		ok := len(insts[0].lim.Members()) == 2 && a > 0.45*budget && b > 0.45*budget && a+b <= budget+1e-6
		return ok, fmt.Sprintf("members %d, rates %.1f + %.1f of %.1f", len(insts[0].lim.Members()), a, b, budget)
	})
	// A member that leaves (shutdown) hands its share over at the others' next refresh, not at
	// its expiry, and keeps only the floor itself.
	insts[1].lim.Close()
	if r := insts[1].lim.Rate(); r > 0.02*budget+1e-9 {
		t.Errorf("closed member's rate %v, want the floor %v", r, 0.02*budget)
	}
	devstacktest.Eventually(t, 2*time.Second, "the leaving member's share handed over", func() (bool, string) {
		a := insts[0].lim.Rate()
		return len(insts[0].lim.Members()) == 1 && a > 0.95*budget, fmt.Sprintf("members %d, rate %.1f", len(insts[0].lim.Members()), a)
	})
}

// TestUsageNearDailyLimitLowersRate: Sforce-Limit-Info's api-usage past 90% of the daily limit
// lowers the shared rate (and the local one) linearly towards a twentieth of it.
func TestUsageNearDailyLimitLowersRate(t *testing.T) {
	reset(t)
	const limit = 200.0
	fake.SetFaults(fakecrm.Faults{DailyLimit: 100})
	sf := salesforce.New(salesforce.Config{InstanceURL: fake.URL(), TokenURL: fake.URL() + "/services/oauth2/token",
		ClientID: "id", ClientSecret: "s", HTTPClient: hc, Hasher: crmtest.Hasher})
	shared := ratelimit.NewShared(limit, 10*time.Second, ratelimit.Shared{CRM: "salesforce", Instance: "a", Budget: newStore(t),
		Refresh: testRefresh}).WithUsage(sf.Budget)
	shared.Start(context.Background())
	t.Cleanup(shared.Close)
	local := ratelimit.New(limit, 10*time.Second).WithUsage(sf.Budget)
	up := ratelimit.Middleware(local)(ratelimit.Middleware(shared)(sf))
	send := func(n int) {
		for i := range n {
			if _, err := up.Upsert(context.Background(), crmtest.Event(crmtest.Adapter{CRM: "salesforce"}, fmt.Sprintf("u-%d", i), event.ModeUpsert)); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(80) // 80% of the daily limit: full rate
	time.Sleep(2 * testRefresh)
	if r := shared.Rate(); r < 0.96*limit {
		t.Errorf("shared rate at 80%% usage: %v, want %v", r, 0.97*limit)
	}
	if r := local.Rate(); r != limit {
		t.Errorf("local rate at 80%% usage: %v, want %v", r, limit)
	}
	send(15) // 95%: half the rate
	devstacktest.Eventually(t, 2*time.Second, "shared rate lowered", func() (bool, string) {
		r := shared.Rate()
		return r > 0.4*0.97*limit && r < 0.6*0.97*limit, fmt.Sprintf("rate %v", r)
	})
	if r := local.Rate(); r < 0.4*limit || r > 0.6*limit {
		t.Errorf("local rate at 95%% usage: %v, want about %v", r, 0.5*limit)
	}
}

var _ ratelimit.Budget = (*store.Store)(nil)
