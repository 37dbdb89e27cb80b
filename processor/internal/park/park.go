// Package park drains the events the push handler parked while their CRM's circuit was open.
// Per CRM, whenever the circuit lets calls through and parked events exist, the Drainer reads
// them oldest first (store.ParkedEvents), and for each waits for a send token from the CRM's
// pacer, moves it back with store.UnparkDoc (parked -> received, into the outbox with a due
// time, in one conditional commit) and publishes it to leads through the outbox, so the
// processor handles it like any delivery (with the transactional claim: the message carries
// no document version, which only a document's creator may send).
//
// Crash safety comes from the two durable steps either side of the publish. The unpark is
// conditional on the version read and reports whether it moved the event, so of several instances draining at
// once exactly one publishes each event. An instance that dies after Unpark and before the
// publish leaves the event in the outbox, and the outbox sweep publishes it once it is due; one
// that dies after the publish (before MarkPublished) makes the sweep publish it a second time,
// which the processor's claim absorbs as a duplicate. Nothing is lost, and the CRM sees each
// event once.
//
// Rate: the push handler's own limiter paces the CRM calls (one token per call, shared with
// new arrivals), so the backlog drains at the CRM's rate minus the arrival rate. The drainer
// adds two bounds so that publishing never runs far ahead of what the CRM can take: its pacer
// (a limiter at the CRM's rate) spaces the publishes, and at most Options.InFlight drained
// events may be published and not yet handled, so the pushes waiting for a token inside their
// request stay a few seconds' worth.
package park

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
)

// Store is the part of the store the drainer uses (store.Store implements it).
type Store interface {
	ParkedEvents(ctx context.Context, crm string, limit int) ([]*store.EventDoc, error)
	UnparkDoc(ctx context.Context, doc *store.EventDoc, due time.Time) (bool, error)
	GetEvents(ctx context.Context, ids []string) ([]*store.EventDoc, error)
	Now() time.Time
}

var _ Store = (*store.Store)(nil)

// Publisher publishes an event document that is in the outbox and marks it published
// (*outbox.Outbox). On error the entry stays in the outbox for the sweep.
type Publisher interface {
	Publish(ctx context.Context, doc *store.EventDoc) error
}

// Circuit is a CRM's circuit breaker as the drainer sees it (*breaker.Breaker).
type Circuit interface {
	State() store.CRMState
	// Open reports whether a call now would be refused.
	Open() bool
}

// Pacer hands out send tokens at the CRM's rate (a *ratelimit.Limiter, or a shared budget).
// Wait blocks until a token is free, or returns an error when ctx ends or the wait is too long.
type Pacer interface {
	Wait(ctx context.Context) error
}

// Route is one CRM's circuit and pacer.
type Route struct {
	Circuit Circuit
	Pacer   Pacer
}

// Options tune the drainer.
type Options struct {
	// Interval is how often each CRM is checked for parked events (DRAIN_INTERVAL). Default 1s.
	Interval time.Duration
	// Batch is the number of parked events read per query (DRAIN_BATCH). Default 100.
	Batch int
	// InFlight bounds the drained events published and not yet handled (still received or
	// processing). Default 100.
	InFlight int
	// Due is how long an unparked event waits in the outbox before the sweep may publish it:
	// the time the drainer has to publish it itself. Default 30s (the outbox delay).
	Due time.Duration
	// Poll is how often the in-flight events are re-read while the window is full. Default
	// 100ms.
	Poll time.Duration
}

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.InFlight <= 0 {
		o.InFlight = 100
	}
	if o.Due <= 0 {
		o.Due = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
}

// publishBound bounds one drained event's publish and mark, which outlive ctx.
const publishBound = 10 * time.Second

// Result counts what one drain pass did.
type Result struct {
	// Unparked events were moved back to received by this pass (and so are its to publish).
	Unparked int
	// Published of them reached leads; the others are left to the outbox sweep.
	Published int
	// Probe is set when the circuit was not closed, so the pass sent at most one event: the
	// call that lets the breaker close.
	Probe bool
}

// Drainer drains parked events, one worker per CRM. Add the routes, then Run.
type Drainer struct {
	st   Store
	pub  Publisher
	opts Options

	mu      sync.Mutex
	workers map[string]*worker
}

type worker struct {
	crm   string
	route Route
	kick  chan struct{}
	// mu serializes passes of one CRM (Run's loop and direct Drain calls).
	mu sync.Mutex
	// inflight are the doc ids published and not yet seen handled.
	inflight []string
}

// New returns a drainer publishing through pub.
func New(st Store, pub Publisher, opts Options) *Drainer {
	opts.defaults()
	return &Drainer{st: st, pub: pub, opts: opts, workers: map[string]*worker{}}
}

// Add registers a CRM's route. Call it before Run.
func (d *Drainer) Add(crm string, r Route) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.workers[crm] = &worker{crm: crm, route: r, kick: make(chan struct{}, 1)}
}

// Kick asks for a drain of crm now (the breaker closed). It never blocks; an unknown CRM is
// ignored.
func (d *Drainer) Kick(crm string) {
	d.mu.Lock()
	w := d.workers[crm]
	d.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run drains every CRM on its ticker and on Kick until ctx ends, then returns once the
// passes in progress stopped (a pass stops between events when ctx ends).
func (d *Drainer) Run(ctx context.Context) {
	d.mu.Lock()
	ws := make([]*worker, 0, len(d.workers))
	for _, w := range d.workers {
		ws = append(ws, w)
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { d.loop(ctx, w) })
	}
	wg.Wait()
}

func (d *Drainer) loop(ctx context.Context, w *worker) {
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
		res, err := d.pass(ctx, w)
		log := logging.FromContext(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "drain of parked events stopped", "crm", w.crm, "unparked", res.Unparked, "published", res.Published, "error", err.Error())
		} else if res.Unparked > 0 {
			log.InfoContext(ctx, "parked events drained", "crm", w.crm, "unparked", res.Unparked, "published", res.Published, "probe", res.Probe)
		}
	}
}

// Drain runs one pass over crm's parked events: while the circuit is closed, batch after
// batch until none is left; while it would let a probe through (open past its cooldown, or
// half-open without a probe in flight), the oldest event only. It returns when the circuit
// refuses calls, nothing is parked, or an error (the events it unparked and could not publish
// are in the outbox).
func (d *Drainer) Drain(ctx context.Context, crm string) (Result, error) {
	d.mu.Lock()
	w := d.workers[crm]
	d.mu.Unlock()
	if w == nil {
		return Result{}, fmt.Errorf("drain %s: no such CRM", crm)
	}
	return d.pass(ctx, w)
}

func (d *Drainer) pass(ctx context.Context, w *worker) (res Result, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ctx.Err() == nil {
		if w.route.Circuit.Open() {
			return res, nil
		}
		res.Probe = w.route.Circuit.State() != store.CRMClosed
		limit := d.opts.Batch
		if res.Probe {
			limit = 1
		}
		docs, err := d.st.ParkedEvents(ctx, w.crm, limit)
		if err != nil {
			return res, fmt.Errorf("drain %s: %w", w.crm, err)
		}
		for _, doc := range docs {
			if w.route.Circuit.Open() {
				return res, nil
			}
			if err := d.send(ctx, w, doc, &res); err != nil {
				return res, fmt.Errorf("drain %s: %w", w.crm, err)
			}
		}
		if res.Probe || len(docs) < limit {
			return res, nil
		}
	}
	return res, ctx.Err()
}

// send unparks and publishes one event, after a free place in the window and a token.
func (d *Drainer) send(ctx context.Context, w *worker, doc *store.EventDoc, res *Result) error {
	if err := d.window(ctx, w); err != nil {
		return err
	}
	if err := w.route.Pacer.Wait(ctx); err != nil {
		return fmt.Errorf("send token: %w", err)
	}
	if w.route.Circuit.Open() {
		return nil // reopened meanwhile: the pass ends at its next check
	}
	moved, err := d.st.UnparkDoc(ctx, doc, d.st.Now().Add(d.opts.Due))
	if err != nil {
		return err
	}
	if !moved {
		// Another instance drained it, or an operator acted on it.
		return nil
	}
	res.Unparked++
	// Crash point: from here until it is published the event is in the outbox, due soon. The
	// publish outlives a shutdown (ctx ending on SIGTERM), so a stopping instance does not
	// leave the event to the sweep, within a bound of its own.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishBound)
	defer cancel()
	if err := d.pub.Publish(pctx, doc); err != nil {
		return fmt.Errorf("publish %s (left to the outbox sweep): %w", doc.DocID, err)
	}
	res.Published++
	w.inflight = append(w.inflight, doc.DocID)
	return nil
}

// window waits until fewer than InFlight published events are still waiting for their push
// (received) or being handled (processing).
func (d *Drainer) window(ctx context.Context, w *worker) error {
	for len(w.inflight) >= d.opts.InFlight {
		docs, err := d.st.GetEvents(ctx, w.inflight)
		if err != nil {
			return err
		}
		keep := w.inflight[:0]
		for _, doc := range docs {
			if doc.State == store.StateReceived || doc.State == store.StateProcessing {
				keep = append(keep, doc.DocID)
			}
		}
		w.inflight = keep
		if len(w.inflight) < d.opts.InFlight {
			return nil
		}
		t := time.NewTimer(d.opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// DrainBound is the drain-time goal of issue 12 for a backlog of events drained at rate
// events/s while new events arrive at arrival events/s: 1.1 x backlog / (rate - arrival) + 2s.
// When arrival >= rate the backlog never drains and the bound is the largest Duration.
func DrainBound(backlog int, rate, arrival float64) time.Duration {
	if arrival >= rate {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(1.1*float64(backlog)/(rate-arrival)*float64(time.Second)) + 2*time.Second
}

// Ideal is backlog / (rate - arrival): the drain time at exactly the spare rate (the largest
// Duration when arrival >= rate).
func Ideal(backlog int, rate, arrival float64) time.Duration {
	if arrival >= rate {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(float64(backlog) / (rate - arrival) * float64(time.Second))
}
