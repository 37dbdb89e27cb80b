package service_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestThreeProcessorsShareCRMRate: three processors configured as in production
// (CRM_RATE_PER_SEC is the account's rate, CRM_RATE_SHARED by default) take pushes at once
// against the fake CRM whose Salesforce account admits that rate: together they stay within
// it (one local limiter each would send 3x) and every push succeeds.
func TestThreeProcessorsShareCRMRate(t *testing.T) {
	reset(t)
	const limit = 12.0
	var urls []string
	for i := range 3 {
		urls = append(urls, startProcessor(t, map[string]string{"INSTANCE_ID": fmt.Sprintf("rate-%d", i),
			"CRM_RATE_PER_SEC": fmt.Sprint(limit), "CRM_RATE_REFRESH": "250ms", "RATE_MAX_WAIT": "3s"}))
	}
	time.Sleep(time.Second) // a few refreshes: every instance has seen the two others
	fake.AccountLimit(limit)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var ok, other atomic.Int64
	var wg sync.WaitGroup
	for k, u := range urls {
		for w := range 8 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					ev := newEvent(fmt.Sprintf("rate-%d-%d-%d", k, w, i))
					if a := post(t, u, envelope(ev, ev.EventID)); a.Status == 200 && a.Outcome == "succeeded" {
						ok.Add(1)
					} else {
						other.Add(1)
					}
				}
			})
		}
	}
	<-ctx.Done()
	st := fake.AccountStats() // the rate over the load's 3 s, before the waiting calls end
	elapsed := st.Now.Sub(st.Since).Seconds()
	sf := st.BySystem["salesforce"]
	wg.Wait()
	st = fake.AccountStats()
	t.Logf("salesforce accepted %d (%.1f/s of %v), throttled %d; pushes succeeded %d, other %d",
		sf.Accepted, float64(sf.Accepted)/elapsed, limit, sf.Throttled, ok.Load(), other.Load())
	if share := st.ThrottledShare(); share > 0.05 {
		t.Errorf("throttled share %.3f (%d of %d), want < 0.05", share, st.Throttled, st.Accepted+st.Throttled)
	}
	// A sanity bound (the pushes did press on the limit), loose for a loaded machine: the
	// figures are BenchmarkSharedRate's.
	if got, want := float64(sf.Accepted), 0.4*limit*elapsed; got < want {
		t.Errorf("accepted %v in %.1fs, want at least %v", got, elapsed, want)
	}
	if other.Load() > 0 {
		t.Errorf("%d pushes did not succeed", other.Load())
	}
}
