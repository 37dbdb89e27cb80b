package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/bench"
	"github.com/leadpipe/leadpipe/devstack/loadgen"
	"github.com/leadpipe/leadpipe/devstack/procs"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

// crash is scenario f: leads flow at 10/s (each delivered twice, as vendors retry) while the
// processor and ingest are SIGKILLed at random points and restarted: the processor while the
// fake CRM holds its call open, and right after the CRM answered (before the verdict is
// written); ingest mid-traffic. loadgen then checks every accepted lead is in the CRM exactly
// once or in the DLQ.
func (b *runner) crash(ctx context.Context) error {
	st, err := b.boot(ctx, "crash", 1, map[string]string{
		"CRM_RATE_PER_SEC": "1000",
		// Short leases and sweeps so work a killed process held is retried within the run.
		"LEASE_DURATION": "5s", "PROCESS_BUDGET": "4s", "OUTBOX_DELAY": "3s", "SWEEP_INTERVAL": "1s",
	})
	if err != nil {
		return err
	}
	defer st.Close()
	leads := b.cfg.crashLeads
	cfg := loadgen.Config{
		Plan:           loadgen.Plan{Leads: leads, Dups: 1, DupDelay: 3 * time.Second, Profile: loadgen.ProfileSteady, Rate: 10, Seed: 12},
		Chaos:          loadgen.Chaos{Latency: 150 * time.Millisecond},
		Concurrency:    32,
		Timeout:        4 * time.Minute,
		RequestTimeout: 5 * time.Second,
		Settle:         3 * time.Second,
	}
	targets := loadgen.Targets{IngestURL: st.IngestURL, CRMURL: st.CRM.URL(), ReplayerURL: st.ReplayerURL,
		ReplayerToken: st.ReplayerToken, Source: st.DemoSource, Secret: st.DemoSecret}
	sending := time.Duration(float64(leads)/10*float64(time.Second)) + 2*time.Second
	kctx, kcancel := context.WithTimeout(ctx, sending)
	defer kcancel()
	var kills map[string]int
	var killErr error
	var wg sync.WaitGroup
	wg.Go(func() { kills, killErr = killer(kctx, st) })
	rep, err := loadgen.Run(ctx, cfg, targets)
	kcancel()
	wg.Wait()
	if err != nil {
		return err
	}
	if killErr != nil {
		b.note("crash scenario: %v", killErr)
	}
	detail := fmt.Sprintf("%d leads accepted (%d got no 2xx while ingest was down); kills: processor during a CRM call %d, processor right after a CRM answer %d, ingest %d; %d in the CRM, %d in the DLQ",
		rep.AcceptedLeads, rep.RejectedLeads, kills["processor-in-call"], kills["processor-after-call"], kills["ingest"], rep.InCRM, rep.InDLQ)
	if !rep.Settled {
		detail += "; NOT settled before the timeout"
	}
	b.add(bench.NewFigure("f", "crash: accepted leads lost", float64(rep.Lost), "", goal("==", 0), detail))
	b.add(bench.NewFigure("f", "crash: duplicate CRM creates", float64(rep.DuplicateCreates), "", goal("==", 0),
		"creates beyond the first per external id, counted by the fake CRM"))
	return nil
}

// killer SIGKILLs and restarts services until ctx ends, every 1.5-3 s, cycling through the
// three kinds of kill, and returns how many of each it made.
func killer(ctx context.Context, st *stack.Stack) (map[string]int, error) {
	kills := map[string]int{}
	rng := rand.New(rand.NewPCG(7, 11))
	kinds := []string{"processor-in-call", "ingest", "processor-after-call"}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return kills, nil
		case <-time.After(1500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))):
		}
		kind := kinds[i%len(kinds)]
		var p *procs.Service
		switch kind {
		case "ingest":
			p = st.Ingest
		case "processor-in-call":
			p = st.Processors[0]
			waitFor(ctx, func() bool { return st.CRM.InFlight() > 0 })
		case "processor-after-call":
			p = st.Processors[0]
			n := len(st.CRM.Calls())
			waitFor(ctx, func() bool { return len(st.CRM.Calls()) > n })
		}
		if ctx.Err() != nil {
			return kills, nil
		}
		if err := p.Kill(); err != nil {
			return kills, err
		}
		kills[kind]++
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second))))
		// The restart gets its own budget: a service must come back even at the end.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := p.Restart(rctx)
		cancel()
		if err != nil {
			return kills, fmt.Errorf("restart %s: %w", p.Name(), err)
		}
	}
}

func waitFor(ctx context.Context, cond func() bool) {
	for !cond() && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}
