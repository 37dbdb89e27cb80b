package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/store"
)

func TestRateMembersAndBudget(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Second)
	now := base
	var mu sync.Mutex
	s.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	ttl := 3 * time.Second
	refresh := func(crm, inst string, demand, rate float64) (store.RateView, error) {
		return s.RefreshRateMember(ctx, crm, inst, ttl, func(store.RateView, time.Time) store.RateMember {
			return store.RateMember{Demand: demand, Rate: rate}
		})
	}
	for i, inst := range []string{"b", "a", "c"} {
		if _, err := refresh("hubspot", inst, float64(i), 10); err != nil {
			t.Fatal(err)
		}
	}
	// Another CRM's member is not in hubspot's view.
	if _, err := refresh("salesforce", "a", 0, 5); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Second)
	v, err := refresh("hubspot", "a", 7, 11)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Members) != 3 {
		t.Fatalf("members: got %+v, want a, b, c", v.Members)
	}
	for _, m := range v.Members {
		if m.CRM != "hubspot" {
			t.Errorf("member of %s in hubspot's view", m.CRM)
		}
		if m.Instance == "a" && (m.Demand != 7 || m.Rate != 11 || !m.ExpireAt.Equal(now.Add(ttl))) {
			t.Errorf("refreshed member a: got %+v", m)
		}
	}
	// decide sees the others before the write.
	var seen []string
	if _, err := s.RefreshRateMember(ctx, "hubspot", "d", ttl, func(v store.RateView, at time.Time) store.RateMember {
		for _, m := range v.Members {
			seen = append(seen, m.Instance)
		}
		if !at.Equal(now) {
			t.Errorf("decide's time: got %v, want the store's %v", at, now)
		}
		return store.RateMember{}
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Errorf("decide saw %v, want a, b, c", seen)
	}
	if err := s.RemoveRateMember(ctx, "hubspot", "d"); err != nil {
		t.Fatal(err)
	}
	if !v.Budget.PausedUntil.IsZero() {
		t.Errorf("budget before any throttle: got %+v, want zero", v.Budget)
	}

	// b and c lapse unless refreshed; c is refreshed, b is not; a removes itself.
	advance(1500 * time.Millisecond)
	if _, err := refresh("hubspot", "c", 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRateMember(ctx, "hubspot", "a"); err != nil {
		t.Fatal(err)
	}
	v, err = refresh("hubspot", "c", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Members) != 1 || v.Members[0].Instance != "c" {
		t.Errorf("after b's expiry and a's removal: got %+v, want c alone", v.Members)
	}

	// Concurrent throttles merge: the later pause wins, and each decision sees the current doc.
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		wg.Go(func() {
			_, err := s.ThrottleRate(ctx, "hubspot", "c", func(cur store.RateBudget, at time.Time) store.RateBudget {
				next := cur
				if p := at.Add(time.Duration(i) * time.Second); p.After(next.PausedUntil) {
					next.PausedUntil = p
				}
				if next.Ceiling == 0 {
					next.Ceiling = 1
				}
				next.Ceiling *= 0.5
				next.LoweredAt = at
				return next
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	v, err = refresh("hubspot", "c", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	b := v.Budget
	if !b.PausedUntil.Equal(now.Add(3*time.Second)) || b.Ceiling != 0.125 || b.By != "c" || b.CRM != "hubspot" {
		t.Errorf("budget after three throttles: got %+v, want paused until +3s, ceiling 0.125", b)
	}
	if !b.ExpireAt.After(b.PausedUntil) {
		t.Errorf("budget expire_at %v not after its pause %v", b.ExpireAt, b.PausedUntil)
	}
	if len(v.Members) != 1 {
		t.Errorf("the budget document counted as a member: %+v", v.Members)
	}
	if _, err := refresh("hubspot", "", 0, 0); err == nil {
		t.Error("a member without instance: want an error")
	}
}
