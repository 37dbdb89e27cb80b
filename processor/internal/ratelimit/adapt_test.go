package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestSharedAdaptsToLowerAccountLimit: the operator's rate is twice what the CRM account
// allows. The members' shared pauses and lowered ceiling keep the throttled share small
// while the accepted rate stays near the account's.
func TestSharedAdaptsToLowerAccountLimit(t *testing.T) {
	reset(t)
	const configured, account = 100.0, 50.0
	var insts []*instance
	for i := range 3 {
		insts = append(insts, newInstance(t, fmt.Sprintf("inst-%d", i), configured, testRefresh, newStore(t)))
	}
	fake.AccountLimit(account)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	load(ctx, insts, 6).Wait()
	st := fake.AccountStats()
	elapsed := st.Now.Sub(st.Since).Seconds()
	t.Logf("accepted %d (%.1f/s of %v), throttled %d (%.3f)", st.Accepted, float64(st.Accepted)/elapsed, account, st.Throttled, st.ThrottledShare())
	// Measured: about 0.07 shared, 0.14 with a local AIMD limiter each.
	if share := st.ThrottledShare(); share > 0.10 {
		t.Errorf("throttled share %.3f, want < 0.10", share)
	}
	if got, want := float64(st.Accepted), 0.4*account*elapsed; got < want {
		t.Errorf("accepted %v in %.1fs, want at least %v", got, elapsed, want)
	}
}
