package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/leadpipe/leadpipe/bench"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

// crmLimit puts the account limit R on the fake CRM (fakecrm.AccountLimit): one token bucket
// for every caller (the account); above it Salesforce answers 403 REQUEST_LIMIT_EXCEEDED with
// Sforce-Limit-Info, HubSpot 429 with Retry-After.
func crmLimit(st *stack.Stack, r float64) { st.CRM.AccountLimit(r) }

// rateEnv is the processors' configuration for an account limit of r: each is told the
// account's rate (sharing it across instances is the processor's job).
func rateEnv(r float64) map[string]string {
	return map[string]string{"CRM_RATE_PER_SEC": strconv.FormatFloat(r, 'f', -1, 64)}
}

// throughput is scenario c, with one and with three processor processes.
func (b *runner) throughput(ctx context.Context) error {
	for _, n := range []int{1, 3} {
		if err := b.throughputN(ctx, n); err != nil {
			b.note("scenario c with %d processors: %v", n, err)
		}
	}
	return nil
}

// throughputN offers 1.25 R for a 10 s warm-up plus the steady window and counts, at the fake
// CRM, the requests answered 2xx and those answered 429/403 during the window.
func (b *runner) throughputN(ctx context.Context, n int) error {
	r := b.cfg.rate
	st, err := b.boot(ctx, fmt.Sprintf("rate-%d", n), n, rateEnv(r))
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := newSender(st)
	if err != nil {
		return err
	}
	crmLimit(st, r)
	warm := 10 * time.Second
	start := time.Now()
	sent := s.paced(ctx, fmt.Sprintf("c%d", n), 1.25*r, warm+b.cfg.steady, 0)
	from, to := start.Add(warm), start.Add(warm+b.cfg.steady)
	accepted, acceptedIn, refused := 0, 0, 0
	for _, d := range sent {
		switch {
		case d.ok():
			accepted++
			if !d.answered.Before(from) && !d.answered.After(to) {
				acceptedIn++
			}
		default:
			refused++
		}
	}
	arrived := float64(acceptedIn) / b.cfg.steady.Seconds()
	okCalls, throttled, total := 0, 0, 0
	for _, c := range st.CRM.Calls() {
		if c.At.Before(from) || c.At.After(to) {
			continue
		}
		total++
		switch {
		case c.Status >= 200 && c.Status < 300:
			okCalls++
		case c.Status == 429 || c.Status == 403:
			throttled++
		}
	}
	frac := float64(okCalls) / (r * b.cfg.steady.Seconds())
	share := 0.0
	if total > 0 {
		share = float64(throttled) / float64(total)
	}
	label := fmt.Sprintf("%d processor", n)
	if n > 1 {
		label += "s"
	}
	b.add(bench.NewFigure("c", "CRM throughput as a fraction of R, "+label, round3(frac), "", goal(">=", 0.95),
		fmt.Sprintf("%d CRM requests answered 2xx in %s of steady state at R=%g/s; offered %g leads/s, ingest accepted %.1f/s in the window (%d accepted in all, %d answered non-2xx or not at all)",
			okCalls, b.cfg.steady, r, 1.25*r, arrived, accepted, refused)))
	if arrived < r {
		b.note("scenario c with %s: ingest accepted only %.1f leads/s in the steady window (offered %g/s, R=%g/s), so the processors were offered less than R; the throughput figure is bounded by that, not by the CRM limit (see .devstack/logs/bench/rate-%d/ingest.log)", label, arrived, 1.25*r, r, n)
	}
	b.add(bench.NewFigure("c", "share of CRM requests answered 429/403, "+label, round3(share*100), "%", goal("<", 1),
		fmt.Sprintf("%d of %d requests in the window", throttled, total)))
	return nil
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// drain is scenario d: arrival A < R; the fake CRM down for the outage; from the moment the
// circuit closes again (the breaker's probe succeeds) to the backlog cleared, against
// 1.1 x backlog / (R - A) + 2 s; the time from CRM up to that probe is its own row.
func (b *runner) drain(ctx context.Context) error {
	r, a := b.cfg.rate, b.cfg.arrival
	st, err := b.boot(ctx, "drain", 1, rateEnv(r))
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := newSender(st)
	if err != nil {
		return err
	}
	crmLimit(st, r)
	warm, after := 8*time.Second, 40*time.Second
	var up time.Time
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(warm):
		}
		st.CRM.SetFaults(fakecrm.Faults{Outage: true})
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.cfg.outageFor):
		}
		st.CRM.SetFaults(fakecrm.Faults{})
	}()
	start := time.Now()
	sent := s.paced(ctx, "d", a, warm+b.cfg.outageFor+after, 0)
	up = start.Add(warm + b.cfg.outageFor)
	times := waitInCRM(ctx, st, sent, 40*time.Second)
	end := time.Now()
	var leads []bench.Lead
	var normal []time.Duration
	for _, d := range sent {
		if !d.ok() {
			continue
		}
		l := bench.Lead{Accepted: d.answered, InCRM: times[d.id]}
		leads = append(leads, l)
		if d.answered.Before(start.Add(warm-time.Second)) && !l.InCRM.IsZero() {
			normal = append(normal, l.InCRM.Sub(l.Accepted))
		}
	}
	// Leads younger than the pipeline's normal latency are in flight, not backlog.
	slack := max(bench.Percentile(normal, 99), 500*time.Millisecond)
	// The drain starts when the circuit closes: the breaker's probe after BREAKER_COOLDOWN is
	// the first lead in the CRM after it is up. Detection (CRM up -> circuit closed) is reported
	// on its own row; it is the cooldown, not the drain.
	closed, seen := bench.FirstInCRM(leads, up)
	if !seen {
		closed = up
	}
	backlog := bench.Backlog(leads, closed)
	bound, err := bench.DrainBound(backlog, r, a)
	if err != nil {
		return err
	}
	clear, ok := bench.ClearTime(leads, closed, end, slack)
	drain := clear.Sub(closed).Seconds()
	detail := fmt.Sprintf("backlog %d leads when the circuit closed (outage %s at A=%g/s, R=%g/s); bound 1.1 x %d/(%g-%g) + 2 s = %.1f s; in-flight slack %s",
		backlog, b.cfg.outageFor, a, r, backlog, r, a, bound.Seconds(), msStr(slack))
	if !ok {
		drain = end.Sub(closed).Seconds()
		detail = fmt.Sprintf("backlog not cleared by the end of the observation (%.0f s after the circuit closed, lower bound shown); ", drain) + detail
	}
	f := bench.NewFigure("d", "drain time after the outage", round2(drain), "s", goal("<=", round2(bound.Seconds())), detail)
	if !ok {
		met := false
		f.Met = &met
	}
	b.add(f)
	b.add(bench.NewFigure("d", "drain time / (backlog / (R - A))", round2(drain/(float64(backlog)/(r-a))), "x", nil,
		"the issue's goal is <= 1.1x plus 2 s (the row above)"))
	if ok {
		b.add(bench.NewFigure("d", "recovery detected (CRM up to circuit closed)", round2(closed.Sub(up).Seconds()), "s", nil,
			"the breaker's probe after BREAKER_COOLDOWN (15 s default, counted from when the circuit opened); from CRM up to the backlog cleared: "+
				fmt.Sprintf("%.2f s", clear.Sub(up).Seconds())))
	}
	return nil
}
