package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/outbox"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/internal/park"
)

// TestOutageParksThenDrainsOldestFirst: while the CRM is down, every lead is claimed and parked
// (acked, attempt recorded as parked, nothing charged) and Pub/Sub stops delivering it; once
// the CRM is back, the drain sends each lead to the CRM exactly once, in parked order.
func TestOutageParksThenDrainsOldestFirst(t *testing.T) {
	reset(t)
	// DRAIN_IN_FLIGHT=1: the drain publishes the next lead once the last one is handled, so the
	// CRM sees them in the drain's order (with more in flight, concurrent pushes may overtake
	// each other by a few milliseconds).
	pushTo(t, startProcessor(t, map[string]string{"BREAKER_THRESHOLD": "3", "BREAKER_COOLDOWN": "5s", "DRAIN_IN_FLIGHT": "1"}))
	fake.SetFaults(fakecrm.Faults{Outage: true})
	t.Cleanup(func() { fake.SetFaults(fakecrm.Faults{}) })
	var evs []*event.Event
	for i := range 10 {
		evs = append(evs, newEvent(fmt.Sprintf("park-%d", i)))
	}
	publish(t, evs...)
	waitState(t, 15*time.Second, evs, store.StateParked)

	// Parked, acked: no delivery reaches the processor while the circuit stays open.
	pushes := func() float64 {
		return total(t, "leadpipe.processor.outcomes", attribute.String("crm", "salesforce"))
	}
	time.Sleep(200 * time.Millisecond) // the last parked answers are counted after their commit
	before := pushes()
	time.Sleep(1500 * time.Millisecond)
	if n := pushes() - before; n != 0 {
		t.Errorf("deliveries while parked: got %v, want 0 (a parked lead is acked, not redelivered)", n)
	}
	var parked []*store.EventDoc
	for _, ev := range evs {
		d := doc(t, ev)
		parked = append(parked, d)
		// Class outage (the circuit was open), or retryable (the call failed, or found no send
		// token, while the circuit opened).
		if d.Attempts < 1 || d.Attempts-d.AttemptsBase != 0 || d.ParkedAt.IsZero() || (d.FailureClass != failure.Outage && d.FailureClass != failure.Retryable) {
			t.Errorf("%s: attempts %d base %d parked_at %v class %q, want claimed, parked and nothing charged",
				ev.Identity.ContactExternalID, d.Attempts, d.AttemptsBase, d.ParkedAt, d.FailureClass)
		}
		atts, err := st.Attempts(context.Background(), d.DocID)
		if err != nil || len(atts) == 0 || atts[len(atts)-1].Outcome != store.AttemptParked {
			t.Errorf("%s attempt history: got %+v (%v), want the last attempt parked", ev.Identity.ContactExternalID, atts, err)
		}
	}
	sort.SliceStable(parked, func(i, j int) bool {
		if !parked[i].ParkedAt.Equal(parked[j].ParkedAt) {
			return parked[i].ParkedAt.Before(parked[j].ParkedAt)
		}
		return parked[i].DocID < parked[j].DocID
	})
	var wantOrder []string
	for _, d := range parked {
		wantOrder = append(wantOrder, strings.ToLower(d.Event.Identity.ContactExternalID))
	}
	if fake.CreateCount(evs[0].Identity.ContactExternalID) != 0 {
		t.Fatal("a lead reached the CRM during the outage")
	}

	// The CRM is back before the cooldown ends: the drain's probe (the oldest lead) closes the
	// circuit, then the rest follow.
	fake.SetFaults(fakecrm.Faults{})
	waitState(t, 30*time.Second, evs, store.StateSucceeded)
	recs := fake.Records()
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].CreatedAt.Before(recs[j].CreatedAt) })
	var gotOrder []string
	for _, r := range recs {
		gotOrder = append(gotOrder, strings.ToLower(r.Key))
		if r.Version != 1 {
			t.Errorf("record %s: version %d, want 1 (written once)", r.Key, r.Version)
		}
	}
	if !slices.Equal(gotOrder, wantOrder) {
		t.Errorf("CRM order: got %v, want %v (parked_at order)", gotOrder, wantOrder)
	}
	for _, ev := range evs {
		if n := fake.CreateCount(ev.Identity.ContactExternalID); n != 1 {
			t.Errorf("CreateCount(%s): got %d, want 1", ev.Identity.ContactExternalID, n)
		}
	}
	// The drained delivery is a later claim: fence and attempts move on from the parked ones.
	for _, p := range parked {
		d, err := st.GetEvent(context.Background(), p.DocID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Fence <= p.Fence+1 || d.Attempts <= p.Attempts || d.Attempts-d.AttemptsBase != 1 {
			t.Errorf("%s: fence %d attempts %d base %d after the drain, parked with fence %d attempts %d: want a later claim, one attempt charged (the one that succeeded)",
				p.Event.Identity.ContactExternalID, d.Fence, d.Attempts, d.AttemptsBase, p.Fence, p.Attempts)
		}
	}
}

// TestParkOffKeepsNacking: PARK_ON_OPEN_CIRCUIT=false keeps the 503 answer: nothing is parked.
func TestParkOffKeepsNacking(t *testing.T) {
	reset(t)
	url := startProcessor(t, map[string]string{"BREAKER_THRESHOLD": "1", "BREAKER_COOLDOWN": "1m", "PARK_ON_OPEN_CIRCUIT": "false"})
	fake.SetFaults(fakecrm.Faults{Outage: true})
	t.Cleanup(func() { fake.SetFaults(fakecrm.Faults{}) })
	first, second := newEvent("nopark-1"), newEvent("nopark-2")
	if a := post(t, url, envelope(first, "m-1")); a.Status != 503 || a.Outcome != "failed" {
		t.Errorf("first delivery: got %d %s, want 503 failed (the circuit opened on it)", a.Status, a.Outcome)
	}
	if a := post(t, url, envelope(second, "m-2")); a.Status != 503 || a.Outcome != "crm_circuit_open" {
		t.Errorf("delivery while open: got %d %s, want 503 crm_circuit_open", a.Status, a.Outcome)
	}
	if d := doc(t, first); d == nil || d.State != store.StateFailed {
		t.Errorf("first: got %+v, want failed", d)
	}
	if d := doc(t, second); d != nil {
		t.Errorf("second: got state %s, want no claim", d.State)
	}
}

// closed is a circuit that lets every call through.
type closed struct{}

func (closed) State() store.CRMState { return store.CRMClosed }
func (closed) Open() bool            { return false }

type noWait struct{}

func (noWait) Wait(context.Context) error { return nil }

// dies is a drainer's publisher on an instance that dies right after Unpark: nothing is sent.
type dies struct{ calls int }

func (d *dies) Publish(context.Context, *store.EventDoc) error {
	d.calls++
	return errors.New("instance died")
}

// parkDirect claims ev and parks it, as the push handler does when the circuit is open.
func parkDirect(t *testing.T, ev *event.Event) {
	t.Helper()
	ctx := context.Background()
	l, err := st.Claim(ctx, ev, store.LeasePolicy{Owner: "test", TTL: time.Minute, MaxAttempts: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Park(ctx, l, store.Reason{Class: failure.Outage, Message: "salesforce circuit open"}, nil); err != nil {
		t.Fatal(err)
	}
}

// leadsMessages counts the messages published to leads for ev.
func leadsMessages(ev *event.Event) int {
	n := 0
	for _, m := range env.Messages("leads") {
		if m.Attributes[pushmsg.AttrIdempotencyKey] == ev.IdempotencyKey {
			n++
		}
	}
	return n
}

// TestDrainCrashBetweenUnparkAndPublish: a drainer that dies after Unpark and before its
// publish leaves the event in the outbox; the outbox sweep publishes it once it is due, and it
// reaches the CRM exactly once. A second drain and a second sweep add nothing.
func TestDrainCrashBetweenUnparkAndPublish(t *testing.T) {
	reset(t)
	// The service's own drainer keeps out of the way: its ticker never fires in this test and
	// its circuit never changes.
	pushTo(t, startProcessor(t, map[string]string{"DRAIN_INTERVAL": "1h"}))
	ctx := context.Background()
	ev := newEvent("drain-crash")
	parkDirect(t, ev)

	const due = 700 * time.Millisecond
	dying := &dies{}
	d := park.New(st, dying, park.Options{Due: due})
	d.Add("salesforce", park.Route{Circuit: closed{}, Pacer: noWait{}})
	res, err := d.Drain(ctx, "salesforce")
	if err == nil || res.Unparked != 1 || res.Published != 0 || dying.calls != 1 {
		t.Fatalf("dying drain: got %+v, %v after %d publishes, want one event unparked, none published, an error", res, err, dying.calls)
	}
	got := doc(t, ev)
	if got.State != store.StateReceived || got.OutboxDueAt == nil || !got.ParkedAt.IsZero() {
		t.Fatalf("after the crash: state %s outbox_due_at %v parked_at %v, want received and in the outbox", got.State, got.OutboxDueAt, got.ParkedAt)
	}
	// Nobody drains it again: it is no longer parked.
	again := park.New(st, dying, park.Options{})
	again.Add("salesforce", park.Route{Circuit: closed{}, Pacer: noWait{}})
	if res, err := again.Drain(ctx, "salesforce"); err != nil || res.Unparked != 0 {
		t.Errorf("second drain: got %+v, %v, want nothing to unpark", res, err)
	}

	leads := ps.Publisher("leads")
	leads.EnableMessageOrdering = true
	t.Cleanup(leads.Stop)
	sweeper := outbox.New(st, leads, nil, outbox.Options{Hasher: e2eHasher})
	t.Cleanup(func() { _ = sweeper.Close() })
	if r, err := sweeper.Sweep(ctx, 100, 1); err != nil || r.Published != 0 {
		t.Fatalf("sweep before due: got %+v, %v, want nothing published (the drainer's time to publish)", r, err)
	}
	time.Sleep(due)
	if r, err := sweeper.Sweep(ctx, 100, 1); err != nil || r.Published != 1 {
		t.Fatalf("sweep after due: got %+v, %v, want the unparked event published", r, err)
	}
	waitState(t, 20*time.Second, []*event.Event{ev}, store.StateSucceeded)
	if r, err := sweeper.Sweep(ctx, 100, 1); err != nil || r.Published != 0 {
		t.Errorf("sweep after success: got %+v, %v, want nothing more published", r, err)
	}
	if n := fake.CreateCount(ev.Identity.ContactExternalID); n != 1 {
		t.Errorf("CreateCount: got %d, want 1", n)
	}
	if recs := fake.Records(); len(recs) != 1 || recs[0].Version != 1 {
		t.Errorf("records: got %+v, want one record written once", recs)
	}
	if n := leadsMessages(ev); n != 1 {
		t.Errorf("messages on leads: got %d, want 1", n)
	}
}

// TestTwoInstancesDrainEachEventOnce: two drainers on the same parked backlog publish every
// event exactly once between them (Unpark's transaction picks one), and the CRM gets each once.
func TestTwoInstancesDrainEachEventOnce(t *testing.T) {
	reset(t)
	pushTo(t, startProcessor(t, map[string]string{"DRAIN_INTERVAL": "1h"}))
	var evs []*event.Event
	for i := range 20 {
		ev := newEvent(fmt.Sprintf("two-drainers-%d", i))
		parkDirect(t, ev)
		evs = append(evs, ev)
	}
	leads := ps.Publisher("leads")
	leads.EnableMessageOrdering = true
	t.Cleanup(leads.Stop)
	ob := outbox.New(st, leads, nil, outbox.Options{Hasher: e2eHasher})
	t.Cleanup(func() { _ = ob.Close() })
	var results [2]park.Result
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		d := park.New(st, ob, park.Options{Batch: 5})
		d.Add("salesforce", park.Route{Circuit: closed{}, Pacer: noWait{}})
		wg.Go(func() { results[i], errs[i] = d.Drain(context.Background(), "salesforce") })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("drains: %v, %v", errs[0], errs[1])
	}
	if n := results[0].Published + results[1].Published; n != len(evs) {
		t.Errorf("published: got %d + %d, want %d in all", results[0].Published, results[1].Published, len(evs))
	}
	waitState(t, 30*time.Second, evs, store.StateSucceeded)
	for _, ev := range evs {
		if n := leadsMessages(ev); n != 1 {
			t.Errorf("%s: %d messages on leads, want 1", ev.Identity.ContactExternalID, n)
		}
		if n := fake.CreateCount(ev.Identity.ContactExternalID); n != 1 {
			t.Errorf("CreateCount(%s): got %d, want 1", ev.Identity.ContactExternalID, n)
		}
	}
}
