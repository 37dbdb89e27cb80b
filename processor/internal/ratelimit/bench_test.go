package ratelimit_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// BenchmarkSharedRate: one and three instances (their limiters on their own Firestore clients
// of one emulator, at the default refresh of 1 s) with busy callers, in front of the HubSpot
// adapter against the fake CRM with an account limit R = CRM_RATE_PER_SEC = 100/s. It reports
// the CRM throughput in the steady state (after a 2 s warm-up) as a fraction of R and the
// share of calls answered 429. RATE_BENCH_SECONDS sets the steady state's length (default 10;
// `make bench` measures 60 s with separate processes).
func BenchmarkSharedRate(b *testing.B) {
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("RATE_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			const limit = 100.0
			reset(b)
			var insts []*instance
			for i := range n {
				insts = append(insts, newInstance(b, fmt.Sprintf("bench-%d", i), limit, time.Second, newStore(b)))
			}
			fake.AccountLimit(limit)
			ctx, cancel := context.WithCancel(context.Background())
			wg := load(ctx, insts, 8)
			time.Sleep(2 * time.Second)
			b.ResetTimer()
			s1 := fake.AccountStats()
			time.Sleep(time.Duration(secs) * time.Second)
			s2 := fake.AccountStats()
			b.StopTimer()
			cancel()
			wg.Wait()
			reportShared(b, limit, s1, s2)
		})
	}
}

// BenchmarkSharedRateChurn: three instances as in BenchmarkSharedRate, one of which leaves (its
// callers stop, it closes) a third into the steady state while a new one joins: the transient
// of a membership change in the same figures.
func BenchmarkSharedRateChurn(b *testing.B) {
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("RATE_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	const limit = 100.0
	reset(b)
	var insts []*instance
	for i := range 3 {
		insts = append(insts, newInstance(b, fmt.Sprintf("bench-%d", i), limit, time.Second, newStore(b)))
	}
	fake.AccountLimit(limit)
	ctx, cancel := context.WithCancel(context.Background())
	leaveCtx, leave := context.WithCancel(ctx)
	wg := load(ctx, insts[:2], 8)
	leaving := load(leaveCtx, insts[2:], 8)
	time.Sleep(2 * time.Second)
	b.ResetTimer()
	s1 := fake.AccountStats()
	time.Sleep(time.Duration(secs) * time.Second / 3)
	leave()
	leaving.Wait()
	insts[2].lim.Close()
	joined := load(ctx, []*instance{newInstance(b, "bench-3", limit, time.Second, newStore(b))}, 8)
	time.Sleep(time.Duration(secs) * time.Second * 2 / 3)
	s2 := fake.AccountStats()
	b.StopTimer()
	cancel()
	wg.Wait()
	joined.Wait()
	reportShared(b, limit, s1, s2)
}

func reportShared(b *testing.B, limit float64, s1, s2 fakecrm.AccountStats) {
	acc, thr := s2.Accepted-s1.Accepted, s2.Throttled-s1.Throttled
	secs := s2.Now.Sub(s1.Now).Seconds()
	b.ReportMetric(float64(acc)/secs/limit, "fraction_of_R")
	share := 0.0
	if acc+thr > 0 {
		share = float64(thr) / float64(acc+thr)
	}
	b.ReportMetric(share, "throttled_share")
	b.ReportMetric(float64(acc)/secs, "accepted/s")
}
