package service

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/outbox"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/park"
	"github.com/leadpipe/leadpipe/processor/internal/push"
	"github.com/leadpipe/leadpipe/processor/internal/ratelimit"
)

// newDrainer builds the drain of parked events: it publishes to leads through the outbox, so
// a drained event's message is the one ingest would send. Its CRMs are added by startDrain.
// The returned close writes the outbox's deferred publish marks and flushes the publisher.
func newDrainer(cfg *Config, deps app.Deps) (*park.Drainer, func()) {
	leads := deps.PubSub.Publisher(cfg.GCP.LeadsTopic)
	leads.EnableMessageOrdering = true
	// A drained event is always in state received, so the outbox never needs its DLQ topic.
	ob := outbox.New(deps.Store, leads, nil, outbox.Options{Hasher: cfg.hasher, Delay: cfg.OutboxDelay})
	inFlight := cfg.DrainInFlight
	if inFlight == 0 {
		inFlight = max(1, int(math.Ceil(2*cfg.CRMRatePerSec)))
	}
	d := park.New(deps.Store, ob, park.Options{Interval: cfg.DrainInterval, Batch: cfg.DrainBatch, InFlight: inFlight, Due: cfg.OutboxDelay})
	return d, func() { _ = ob.Close(); leads.Stop() }
}

// startDrain adds every route whose gate is a breaker to d and runs d until ctx ends or the
// returned stop is called (which waits for it). Each CRM's drain is paced by a limiter of its
// own at CRM_RATE_PER_SEC: the route's limiter already takes one token per CRM call, drained or
// not, so sharing it would spend two tokens per drained event and halve the drain.
func startDrain(ctx context.Context, cfg *Config, d *park.Drainer, routes map[string]push.Route) (stop func(), err error) {
	for name, r := range routes {
		c, ok := r.Gate.(park.Circuit)
		if !ok {
			return nil, fmt.Errorf("drain %s: the route's gate %T is no circuit", name, r.Gate)
		}
		d.Add(name, park.Route{Circuit: c, Pacer: ratelimit.New(cfg.CRMRatePerSec, 0)})
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	return func() { cancel(); wg.Wait() }, nil
}

// onBreakerChange records a breaker transition (write) and, when the circuit closed, asks for
// a drain of the CRM's parked events at once (closed may be nil).
func onBreakerChange(name string, write func(store.CRMState), closed func(string)) func(store.CRMState) {
	return func(s store.CRMState) {
		write(s)
		if s == store.CRMClosed && closed != nil {
			closed(name)
		}
	}
}
