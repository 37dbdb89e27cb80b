package park

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/store"
)

// fakeStore holds parked events in parked order and answers like store.Store.
type fakeStore struct {
	mu      sync.Mutex
	parked  []string               // oldest first
	state   map[string]store.State // every event's state
	queries int
}

var _ Store = (*fakeStore)(nil)

func newFakeStore(n int) *fakeStore {
	f := &fakeStore{state: map[string]store.State{}}
	for i := range n {
		id := fmt.Sprintf("doc-%02d", i)
		f.parked = append(f.parked, id)
		f.state[id] = store.StateParked
	}
	return f
}

func (f *fakeStore) ParkedEvents(_ context.Context, _ string, limit int) ([]*store.EventDoc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	var out []*store.EventDoc
	for _, id := range f.parked {
		if len(out) == limit {
			break
		}
		out = append(out, &store.EventDoc{DocID: id, State: store.StateParked, Fence: 2})
	}
	return out, nil
}

func (f *fakeStore) UnparkDoc(_ context.Context, doc *store.EventDoc, due time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := doc.DocID
	if f.state[id] != store.StateParked {
		return false, nil
	}
	f.state[id] = store.StateReceived
	doc.State, doc.OutboxDueAt = store.StateReceived, &due
	f.parked = slices.DeleteFunc(f.parked, func(p string) bool { return p == id })
	return true, nil
}

func (f *fakeStore) GetEvents(_ context.Context, ids []string) ([]*store.EventDoc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.EventDoc
	for _, id := range ids {
		out = append(out, &store.EventDoc{DocID: id, State: f.state[id]})
	}
	return out, nil
}

func (f *fakeStore) Now() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }

func (f *fakeStore) set(id string, s store.State) {
	f.mu.Lock()
	f.state[id] = s
	f.mu.Unlock()
}

// recorder is a publisher recording what it was given.
type recorder struct {
	mu   sync.Mutex
	docs []*store.EventDoc
	err  error
	// after is called after each publish (the test's view of the push being handled).
	after func(*store.EventDoc)
}

func (r *recorder) Publish(_ context.Context, d *store.EventDoc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.docs = append(r.docs, d)
	if r.after != nil {
		r.after(d)
	}
	return nil
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.docs {
		out = append(out, d.DocID)
	}
	return out
}

type circuit struct {
	state store.CRMState
	open  bool
}

func (c circuit) State() store.CRMState { return c.state }
func (c circuit) Open() bool            { return c.open }

type tokens struct{ n int }

func (t *tokens) Wait(context.Context) error { t.n++; return nil }

// TestDrainPolicy: what one pass sends, by circuit state.
func TestDrainPolicy(t *testing.T) {
	all := make([]string, 7)
	for i := range all {
		all[i] = fmt.Sprintf("doc-%02d", i)
	}
	tests := []struct {
		name      string
		circuit   circuit
		want      []string
		wantProbe bool
	}{
		{"closed: everything, oldest first, in batches", circuit{state: store.CRMClosed}, all, false},
		{"open: nothing", circuit{state: store.CRMOpen, open: true}, nil, true},
		{"open past its cooldown: the oldest as the probe", circuit{state: store.CRMOpen}, all[:1], true},
		{"half-open, probe in flight: nothing", circuit{state: store.CRMHalfOpen, open: true}, nil, true},
		{"half-open, no probe in flight: one probe", circuit{state: store.CRMHalfOpen}, all[:1], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(len(all))
			pub := &recorder{after: func(d *store.EventDoc) { st.set(d.DocID, store.StateSucceeded) }}
			tok := &tokens{}
			d := New(st, pub, Options{Batch: 3})
			d.Add("salesforce", Route{Circuit: tt.circuit, Pacer: tok})
			res, err := d.Drain(t.Context(), "salesforce")
			if err != nil {
				t.Fatal(err)
			}
			if got := pub.ids(); !slices.Equal(got, tt.want) {
				t.Errorf("published: got %v, want %v", got, tt.want)
			}
			if res.Unparked != len(tt.want) || res.Published != len(tt.want) || tok.n != len(tt.want) {
				t.Errorf("result %+v after %d tokens, want %d unparked, published and tokens", res, tok.n, len(tt.want))
			}
			if !tt.circuit.open && res.Probe != tt.wantProbe {
				t.Errorf("probe: got %v, want %v", res.Probe, tt.wantProbe)
			}
			for _, doc := range pub.docs {
				if doc.State != store.StateReceived || doc.OutboxDueAt == nil {
					t.Errorf("%s published as state %s due %v, want it as the unpark left it", doc.DocID, doc.State, doc.OutboxDueAt)
				}
			}
		})
	}
}

// TestDrainReopened: the circuit opening mid-drain stops the pass; the rest stay parked.
func TestDrainReopened(t *testing.T) {
	st := newFakeStore(5)
	c := &switchable{}
	pub := &recorder{after: func(d *store.EventDoc) {
		if d.DocID == "doc-01" {
			c.set(true)
		}
	}}
	d := New(st, pub, Options{})
	d.Add("salesforce", Route{Circuit: c, Pacer: &tokens{}})
	if _, err := d.Drain(t.Context(), "salesforce"); err != nil {
		t.Fatal(err)
	}
	if got := pub.ids(); !slices.Equal(got, []string{"doc-00", "doc-01"}) {
		t.Errorf("published: got %v, want the two before the circuit opened", got)
	}
	if left, _ := st.ParkedEvents(t.Context(), "salesforce", 10); len(left) != 3 {
		t.Errorf("still parked: got %d, want 3", len(left))
	}
}

type switchable struct {
	mu   sync.Mutex
	open bool
}

func (s *switchable) set(open bool)         { s.mu.Lock(); s.open = open; s.mu.Unlock() }
func (s *switchable) Open() bool            { s.mu.Lock(); defer s.mu.Unlock(); return s.open }
func (s *switchable) State() store.CRMState { return store.CRMClosed }

// TestDrainWindow: no more than InFlight drained events wait for their push at once.
func TestDrainWindow(t *testing.T) {
	st := newFakeStore(6)
	pub := &recorder{} // published events stay received: nobody handles them
	d := New(st, pub, Options{InFlight: 2, Poll: 5 * time.Millisecond})
	d.Add("salesforce", Route{Circuit: circuit{state: store.CRMClosed}, Pacer: &tokens{}})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	res, err := d.Drain(ctx, "salesforce")
	if !errors.Is(err, context.DeadlineExceeded) || res.Published != 2 {
		t.Fatalf("with nothing handled: got %+v, %v, want 2 published then waiting until ctx ends", res, err)
	}
	// Once they are handled (succeeded, failed, parked again: out of the drain's hands) the
	// window opens again.
	st.set("doc-00", store.StateSucceeded)
	st.set("doc-01", store.StateFailed)
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	res, _ = d.Drain(ctx, "salesforce")
	if res.Published != 2 || !slices.Equal(pub.ids(), []string{"doc-00", "doc-01", "doc-02", "doc-03"}) {
		t.Errorf("after two were handled: got %+v, published %v, want two more", res, pub.ids())
	}
}

// TestDrainPublishFailure: a failed publish ends the pass with an error; the event it unparked
// is the outbox sweep's now, and the drain does not unpark more.
func TestDrainPublishFailure(t *testing.T) {
	st := newFakeStore(3)
	pub := &recorder{err: errors.New("pubsub unavailable")}
	d := New(st, pub, Options{})
	d.Add("salesforce", Route{Circuit: circuit{state: store.CRMClosed}, Pacer: &tokens{}})
	res, err := d.Drain(t.Context(), "salesforce")
	if err == nil || res.Unparked != 1 || res.Published != 0 {
		t.Fatalf("got %+v, %v, want one unparked, none published, an error", res, err)
	}
	if left, _ := st.ParkedEvents(t.Context(), "salesforce", 10); len(left) != 2 {
		t.Errorf("still parked: got %d, want 2", len(left))
	}
}

// TestRunKickAndStop: Kick drains at once (without waiting for the ticker); Run returns when
// its context ends.
func TestRunKickAndStop(t *testing.T) {
	st := newFakeStore(2)
	published := make(chan string, 2)
	pub := &recorder{after: func(d *store.EventDoc) { published <- d.DocID }}
	d := New(st, pub, Options{Interval: time.Hour})
	d.Add("salesforce", Route{Circuit: circuit{state: store.CRMClosed}, Pacer: &tokens{}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	d.Kick("salesforce")
	d.Kick("unknown") // ignored
	for range 2 {
		select {
		case <-published:
		case <-time.After(5 * time.Second):
			t.Fatal("kick did not drain")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestDrainBound(t *testing.T) {
	if got, want := DrainBound(200, 50, 10), 7500*time.Millisecond; got != want {
		t.Errorf("DrainBound(200, 50, 10): got %v, want %v", got, want)
	}
	if got, want := Ideal(200, 50, 10), 5*time.Second; got != want {
		t.Errorf("Ideal(200, 50, 10): got %v, want %v", got, want)
	}
	if got := DrainBound(10, 5, 5); got < 100*365*24*time.Hour {
		t.Errorf("arrival = rate: got %v, want unbounded", got)
	}
}
