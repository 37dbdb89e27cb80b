package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/bench"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

// stackOne runs scenarios a (sequential round trips, RPCs per event), e (10x burst: end-to-end
// latency, peak RSS) and b (ingest CPU per event) on one stack with one processor and no CRM
// limit, in that order (b's load would otherwise set e's peak RSS).
func (b *runner) stackOne(ctx context.Context) error {
	st, err := b.boot(ctx, "one", 1, map[string]string{"CRM_RATE_PER_SEC": "1000"})
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := newSender(st)
	if err != nil {
		return err
	}
	if b.cfg.only["a"] {
		if err := b.sequential(ctx, st, s); err != nil {
			b.note("scenario a: %v", err)
		}
	}
	if b.cfg.only["e"] {
		if err := b.burst(ctx, st, s); err != nil {
			b.note("scenario e: %v", err)
		}
	}
	if b.cfg.only["b"] {
		if err := b.cpu(ctx, st, s); err != nil {
			b.note("scenario b: %v", err)
		}
	}
	return nil
}

// seqPhase sends n leads one at a time, each after the previous one's CRM record exists, and
// returns the ingest answer latencies and the answer-to-CRM-record latencies.
func seqPhase(ctx context.Context, st *stack.Stack, s *sender, prefix string, n int) (answer, toCRM []time.Duration, err error) {
	for i := range n {
		id := fmt.Sprintf("%s-%06d", prefix, i)
		r := s.send(ctx, id)
		if !r.ok() {
			return nil, nil, fmt.Errorf("lead %s: ingest answered %d", id, r.code)
		}
		deadline := time.Now().Add(30 * time.Second)
		for st.CRM.CreateCount(id) == 0 {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, nil, fmt.Errorf("lead %s not in the CRM after 30s", id)
			}
			time.Sleep(2 * time.Millisecond)
		}
		created, ok := crmTimes(st)[id]
		if !ok {
			return nil, nil, fmt.Errorf("lead %s: no record", id)
		}
		answer = append(answer, r.answered.Sub(r.at))
		toCRM = append(toCRM, created.Sub(r.answered))
	}
	return answer, toCRM, nil
}

func (b *runner) sequential(ctx context.Context, st *stack.Stack, s *sender) error {
	n := b.cfg.seqLeads
	lat := b.cfg.fsLatency
	// Warm up connections, token caches and the emulators' first-use paths.
	if _, _, err := seqPhase(ctx, st, s, "a-warm", 3); err != nil {
		return err
	}
	// RPCs per processed event: every Firestore RPC counted at the emulator while n leads go
	// through one at a time, attributed to the process whose socket made it; then a 1.5 s
	// grace for the work after the answers (publish marks).
	st.Firestore.ResetRPCCounts()
	ans0, crm0, err := seqPhase(ctx, st, s, "a-base", n)
	if err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond)
	counts := st.Firestore.RPCCounts()
	byProc, byMethod, err := attribute(st, counts)
	if err != nil {
		return err
	}

	// Two latency levels, L and 2L: the round trips are the slope (median at 2L - median at L) /
	// L. Against the unloaded run the ratio also counts the cost of waking a process that slept
	// through each delay (a few ms on a loaded 2-core machine, no round trip); the slope cancels
	// it. Both are reported.
	st.Firestore.Faults().Latency("*", lat)
	ansL, crmL, err := seqPhase(ctx, st, s, "a-lat1", n)
	var ans2L, crm2L []time.Duration
	if err == nil {
		st.Firestore.Faults().Latency("*", 2*lat)
		ans2L, crm2L, err = seqPhase(ctx, st, s, "a-lat2", n)
	}
	st.Firestore.Faults().Latency("*", 0)
	if err != nil {
		return err
	}
	rtIngest, err := bench.RoundTrips(ansL, ans2L, lat)
	if err != nil {
		return err
	}
	rtCRM, err := bench.RoundTrips(crmL, crm2L, lat)
	if err != nil {
		return err
	}
	fromZero := func(base, with []time.Duration) float64 {
		v, _ := bench.RoundTrips(base, with, lat)
		return v
	}
	// Judged at a resolution of 0.1 (4 ms of 40); the raw slope is in the detail.
	b.add(bench.NewFigure("a", "sequential Firestore round trips on the ingest answer", round1(rtIngest), "", goal("<=", 1),
		fmt.Sprintf("median answer %s unloaded, %s with %s and %s with %s on every RPC: slope %.2f (%.2f against unloaded); %d leads one at a time per level",
			msStr(bench.Median(ans0)), msStr(bench.Median(ansL)), lat, msStr(bench.Median(ans2L)), 2*lat, rtIngest, fromZero(ans0, ansL), n)))
	b.add(bench.NewFigure("a", "sequential Firestore round trips from answer to CRM record", round1(rtCRM), "", goal("<=", 1),
		fmt.Sprintf("median %s unloaded, %s with %s, %s with %s: slope %.2f (%.2f against unloaded)",
			msStr(bench.Median(crm0)), msStr(bench.Median(crmL)), lat, msStr(bench.Median(crm2L)), 2*lat, rtCRM, fromZero(crm0, crmL))))
	total := 0
	for _, c := range byProc {
		total += c
	}
	b.add(bench.NewFigure("a", "Firestore RPCs per processed event, processor", round2(float64(byProc["processor"])/float64(n)), "", goal("<=", 3),
		"counted at the emulator by client socket; "+byMethod["processor"]))
	b.add(bench.NewFigure("a", "Firestore RPCs per processed event, whole pipeline", round2(float64(total)/float64(n)), "", nil,
		fmt.Sprintf("ingest %.2f, processor %.2f, replayer %.2f, other %.2f per event (includes background sweeps in the window); ingest: %s",
			float64(byProc["ingest"])/float64(n), float64(byProc["processor"])/float64(n), float64(byProc["replayer"])/float64(n),
			float64(byProc["other"])/float64(n), byMethod["ingest"])))
	return nil
}

// attribute sums the RPC counts by service process (ingest, processor, replayer, other),
// matching each RPC's client port against the ports of the processes' sockets, and describes
// each service's counts by method.
func attribute(st *stack.Stack, counts []firestoreCount) (map[string]int, map[string]string, error) {
	owner := map[int]string{}
	for _, p := range st.Services() {
		ports, err := localPorts(p.PID())
		if err != nil {
			return nil, nil, err
		}
		name := strings.SplitN(p.Name(), "-", 2)[0]
		for port := range ports {
			owner[port] = name
		}
	}
	if len(owner) == 0 {
		return nil, nil, errors.New("no sockets of the service processes found")
	}
	byProc := map[string]int{}
	methods := map[string]map[string]int{}
	for _, c := range counts {
		_, ps, _ := net.SplitHostPort(c.Peer)
		port, _ := strconv.Atoi(ps)
		who, ok := owner[port]
		if !ok {
			who = "other"
		}
		byProc[who] += c.N
		if methods[who] == nil {
			methods[who] = map[string]int{}
		}
		methods[who][c.Method] += c.N
	}
	desc := map[string]string{}
	for who, m := range methods {
		var parts []string
		for k, v := range m {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(parts)
		desc[who] = strings.Join(parts, ", ")
	}
	return byProc, desc, nil
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func msStr(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
