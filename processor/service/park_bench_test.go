package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/internal/park"
)

// BenchmarkDrainAfterOutage measures issue 12's drain: a backlog of leads parked during a CRM
// outage, drained once the CRM is back while new leads keep arriving, against the goal
// park.DrainBound = 1.1 x backlog / (R - arrival) + 2 s. R is both the processor's
// CRM_RATE_PER_SEC and the fake CRM's own limit (429 above it). The drain time runs from the
// moment the CRM answers again to the CRM's record of the last backlog lead, so it includes the
// rest of the breaker's cooldown and the probe. Each run is one scenario (a few seconds); the
// figures are the last run's.
func BenchmarkDrainAfterOutage(b *testing.B) {
	const (
		backlog = 200
		rate    = 50.0
		arrival = 10.0
	)
	var f drainFigures
	for range b.N {
		f = drainAfterOutage(b, backlog, rate, arrival)
	}
	b.ReportMetric(f.drain.Seconds(), "drain_s")
	b.ReportMetric(park.Ideal(backlog, rate, arrival).Seconds(), "ideal_s")
	b.ReportMetric(park.DrainBound(backlog, rate, arrival).Seconds(), "bound_s")
	b.ReportMetric(f.drain.Seconds()/park.Ideal(backlog, rate, arrival).Seconds(), "drain/ideal")
	b.ReportMetric(float64(f.throttled), "crm_429s")
	b.ReportMetric(float64(f.arrivals), "arrivals")
	if f.drain > park.DrainBound(backlog, rate, arrival) {
		b.Errorf("drain %v over the bound %v", f.drain, park.DrainBound(backlog, rate, arrival))
	}
}

type drainFigures struct {
	drain     time.Duration
	throttled int
	arrivals  int
}

// drainAfterOutage runs the scenario once on the in-process stack: the fake CRM down, backlog
// leads published and parked, then the CRM back with leads arriving at arrival/s until the
// backlog is in the CRM. Every lead (backlog and arrivals) must reach the CRM exactly once.
func drainAfterOutage(tb testing.TB, backlog int, rate, arrival float64) drainFigures {
	tb.Helper()
	ctx := context.Background()
	fake.Reset()
	if err := env.Reset(ctx); err != nil {
		tb.Fatal(err)
	}
	r := fmt.Sprint(rate)
	pushTo(tb, startProcessor(tb, map[string]string{"CRM_RATE_PER_SEC": r, "BREAKER_THRESHOLD": "3", "BREAKER_COOLDOWN": "1s", "RETRY_SPACING": "100ms"}))
	fake.SetFaults(fakecrm.Faults{Outage: true})
	run := time.Now().UnixNano()
	evs := make([]*event.Event, backlog)
	for i := range evs {
		evs[i] = newEvent(fmt.Sprintf("drain-%d-%d", run, i))
	}
	publish(tb, evs...)
	waitState(tb, 2*time.Minute, evs, store.StateParked)

	up := time.Now()
	fake.SetFaults(fakecrm.Faults{RateLimitPerSec: rate})
	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		arrivals []*event.Event
	)
	wg.Go(func() { arrivals = arrive(tb, fmt.Sprintf("arrival-%d", run), arrival, stop) })
	keys := make(map[string]bool, backlog)
	for _, ev := range evs {
		keys[strings.ToLower(ev.Identity.ContactExternalID)] = true
	}
	var last time.Time
	waitFor(tb, 2*time.Minute, "the backlog in the CRM", func() bool {
		n := 0
		last = time.Time{}
		for _, rec := range fake.Records() {
			if keys[strings.ToLower(rec.Key)] {
				n++
				if rec.CreatedAt.After(last) {
					last = rec.CreatedAt
				}
			}
		}
		return n == backlog
	})
	close(stop)
	wg.Wait()
	waitState(tb, time.Minute, arrivals, store.StateSucceeded)
	for _, ev := range append(evs, arrivals...) {
		if c := fake.CreateCount(ev.Identity.ContactExternalID); c != 1 {
			tb.Errorf("CreateCount(%s): got %d, want 1", ev.Identity.ContactExternalID, c)
		}
	}
	for _, rec := range fake.Records() {
		if rec.Version != 1 {
			tb.Errorf("record %s written %d times, want once", rec.Key, rec.Version)
		}
	}
	return drainFigures{drain: last.Sub(up), throttled: fake.StatusCount(http.StatusTooManyRequests), arrivals: len(arrivals)}
}

// arrive publishes a new lead every 1/perSec until stop is closed and returns them.
func arrive(tb testing.TB, prefix string, perSec float64, stop <-chan struct{}) []*event.Event {
	p := ps.Publisher("leads")
	p.EnableMessageOrdering = true
	defer p.Stop()
	t := time.NewTicker(time.Duration(float64(time.Second) / perSec))
	defer t.Stop()
	var out []*event.Event
	var results []*pubsub.PublishResult
	for i := 0; ; i++ {
		select {
		case <-stop:
			for _, r := range results {
				if _, err := r.Get(context.Background()); err != nil {
					tb.Error(err)
				}
			}
			return out
		case <-t.C:
		}
		ev := newEvent(fmt.Sprintf("%s-%d", prefix, i))
		data, _ := json.Marshal(ev)
		results = append(results, p.Publish(context.Background(), &pubsub.Message{Data: data, Attributes: attrs(ev), OrderingKey: ev.ContactKey(e2eHasher)}))
		out = append(out, ev)
	}
}
