// Package outbox publishes persisted events: to `leads` for events to process, to `leads-dlq`
// for events ingest quarantined. Ingest (webhook deliveries and the sweep) and the replayer's
// reconcile use it, so an event is published the same way whoever took it in; its metrics
// keep their leadpipe.ingest.* names. The event document is the outbox entry: outbox_due_at is set
// when it is created and removed by MarkPublished, so an event whose publish failed (or whose
// instance died) is published later by Sweep.
//
// Flooding is avoided in two ways. The request that creates an event publishes it at once,
// without a claim; anyone else (a duplicate delivery, a sweep) must first claim the entry with
// store.ClaimOutbox, a transaction requiring the state and due time it read, which exactly one
// concurrent claimer wins and which moves the due time on by the outbox delay. Duplicates also leave an
// entry alone while it was touched less than Options.Grace ago: its creator (or the claim's
// winner) is still publishing it, and a claim read just before MarkPublished would otherwise
// win a second time.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

// Publisher is the part of *pubsub.Publisher the outbox uses (message ordering enabled).
type Publisher interface {
	Publish(ctx context.Context, msg *pubsub.Message) *pubsub.PublishResult
	ResumePublish(orderingKey string)
}

var _ Publisher = (*pubsub.Publisher)(nil)

// Options tune the outbox.
type Options struct {
	// Delay is how long an unpublished event waits before the sweep takes it, and how long a
	// claim holds it. Default 30 s.
	Delay time.Duration
	// Grace is how long an unpublished entry must have been left untouched (updated_at) before
	// a duplicate delivery publishes it. Default 5 s.
	Grace time.Duration
	// PublishTimeout bounds one publish. Default 5 s.
	PublishTimeout time.Duration
	// SweepConcurrency bounds publishes in flight during a sweep. Default 16.
	SweepConcurrency int
	// Hasher makes the ordering keys (event.ContactKey). Required.
	Hasher *pii.Hasher
	// MarkDelay is how long after publishing a document it created the outbox waits before
	// marking it published, off the request's path. Default 2 s. The processor's claim consumes
	// the entry itself (and its single-commit claim needs the document as its creator wrote
	// it), so the mark only lands for an event not yet claimed by then; it keeps the sweep from
	// publishing it again while it waits in a backlog.
	MarkDelay time.Duration
}

func (o *Options) defaults() {
	if o.Delay <= 0 {
		o.Delay = 30 * time.Second
	}
	if o.Grace < 0 {
		o.Grace = 0
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.SweepConcurrency <= 0 {
		o.SweepConcurrency = 16
	}
	if o.MarkDelay <= 0 {
		o.MarkDelay = 2 * time.Second
	}
}

// Outbox publishes event documents. It is safe for concurrent use.
type Outbox struct {
	st      *store.Store
	leads   Publisher
	dlq     Publisher
	opts    Options
	tracer  trace.Tracer
	metrics metrics
	// marks are the deferred publish marks in flight; closing makes them run at once.
	marks     sync.WaitGroup
	closing   chan struct{}
	closeOnce sync.Once
}

// New returns an Outbox publishing to leads and dlq. Close it to flush deferred marks.
func New(st *store.Store, leads, dlq Publisher, opts Options) *Outbox {
	opts.defaults()
	return &Outbox{st: st, leads: leads, dlq: dlq, opts: opts, tracer: otel.Tracer(meterName), metrics: newMetrics(),
		closing: make(chan struct{})}
}

// Close writes the deferred publish marks now and waits for them.
func (o *Outbox) Close() error {
	o.closeOnce.Do(func() { close(o.closing) })
	o.marks.Wait()
	return nil
}

// Delay is the configured outbox delay.
func (o *Outbox) Delay() time.Duration { return o.opts.Delay }

// errSkipped: the entry was not published because it needs no publish (it is past the
// outbox) or another instance holds it.
var errSkipped = errors.New("outbox entry skipped")

// Publish publishes a document the caller just created (and so owns). Its message carries the
// document's version (pushmsg.AttrDocVersion: the update time CreateEvent returned) for the
// processor's single-commit claim, and the publish mark is deferred (Options.MarkDelay) and
// conditional on that version, so it never races the claim. On failure the entry stays in the
// outbox and the sweep retries it after the delay. The publish is a producer span, child of
// the span in ctx, and the message's traceparent names it.
func (o *Outbox) Publish(ctx context.Context, doc *store.EventDoc) error {
	return o.publish(ctx, doc, true)
}

func (o *Outbox) publish(ctx context.Context, doc *store.EventDoc, created bool) (err error) {
	ctx, span := o.tracer.Start(ctx, "outbox publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "gcp_pubsub"), attribute.String("messaging.destination.name", destination(doc)),
			attribute.String("leadpipe.doc_id", doc.DocID)))
	defer func() { endSpan(span, err) }()
	pub, msg, err := o.message(ctx, doc)
	if err != nil {
		return err
	}
	if pub == nil {
		return nil
	}
	created = created && !doc.UpdateTime.IsZero()
	// Only an event as CreateEvent left it (received, never claimed) may name its version:
	// store.ClaimFirst writes a first claim (fence 1, attempt 1) when the precondition holds.
	if created && doc.State == store.StateReceived && doc.Fence == 0 && doc.Attempts == 0 {
		msg.Attributes[pushmsg.AttrDocVersion] = pushmsg.FormatVersion(doc.UpdateTime)
	}
	pctx, cancel := context.WithTimeout(ctx, o.opts.PublishTimeout)
	defer cancel()
	id, err := pub.Publish(pctx, msg).Get(pctx)
	if err != nil {
		// A failed publish pauses its ordering key in the client until resumed.
		pub.ResumePublish(msg.OrderingKey)
		o.metrics.publishFailures.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("topic", destination(doc))))
		return fmt.Errorf("publish %s: %w", doc.DocID, err)
	}
	if created {
		o.markLater(ctx, doc.DocID, id, doc.UpdateTime)
		return nil
	}
	if err := o.st.MarkPublished(ctx, doc.DocID, id); err != nil {
		// Published but still in the outbox: the sweep will publish it again, which the
		// processor absorbs as a duplicate delivery.
		return fmt.Errorf("publish %s: %w", doc.DocID, err)
	}
	return nil
}

// markLater marks a created document published after MarkDelay (at once when the outbox
// closes), if it is still as its creator wrote it: otherwise the claim consumed the entry, or
// another writer owns it now. A lost mark only costs a duplicate publish by the sweep, which
// the processor absorbs.
func (o *Outbox) markLater(ctx context.Context, docID, messageID string, version time.Time) {
	log := logging.FromContext(ctx)
	o.marks.Go(func() {
		t := time.NewTimer(o.opts.MarkDelay)
		select {
		case <-t.C:
		case <-o.closing:
			t.Stop()
		}
		mctx, cancel := context.WithTimeout(context.Background(), o.opts.PublishTimeout)
		defer cancel()
		if err := o.st.MarkPublishedIf(mctx, docID, messageID, version); err != nil {
			log.WarnContext(mctx, "publish mark not written; the sweep may publish again", "doc_id", docID, "error", err.Error())
		}
	})
}

// Republish publishes an unpublished document read by a duplicate delivery, once it has been
// left untouched for the grace (its creator, or the winner of a claim, which bumps updated_at,
// is still publishing it otherwise) and only if this caller wins the claim. It returns nil when
// there was nothing to do.
func (o *Outbox) Republish(ctx context.Context, doc *store.EventDoc) error {
	if doc.OutboxDueAt == nil || o.st.Now().Sub(doc.UpdatedAt) < o.opts.Grace {
		return nil
	}
	if err := o.claimAndPublish(ctx, doc); err != nil && !errors.Is(err, errSkipped) {
		return err
	}
	return nil
}

func (o *Outbox) claimAndPublish(ctx context.Context, doc *store.EventDoc) error {
	pub, _, err := o.message(ctx, doc)
	if err != nil {
		return err
	}
	if pub == nil {
		// Past the outbox (e.g. already processed): just take it out.
		if err := o.st.MarkPublished(ctx, doc.DocID, ""); err != nil {
			return err
		}
		return errSkipped
	}
	if err := o.st.ClaimOutbox(ctx, doc, o.st.Now().Add(o.opts.Delay)); err != nil {
		if errors.Is(err, store.ErrOutboxClaimed) {
			return errSkipped
		}
		return err
	}
	return o.publish(ctx, doc, false)
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Due       int `json:"due"`
	Published int `json:"published"`
	Skipped   int `json:"skipped"`
	Failed    int `json:"failed"`
	Batches   int `json:"batches"`
}

// Sweep publishes due entries, at most batch per query and maxBatches queries, so one call
// stays bounded. A batch with failures ends the sweep (Pub/Sub or Firestore is likely down;
// the entries are due again after the delay because their claim moved them). ctx cancellation
// stops it between publishes.
func (o *Outbox) Sweep(ctx context.Context, batch, maxBatches int) (res SweepResult, err error) {
	ctx, span := o.tracer.Start(ctx, "outbox sweep")
	defer func() {
		o.metrics.sweptAdd(context.WithoutCancel(ctx), res)
		span.SetAttributes(attribute.Int("leadpipe.sweep.due", res.Due), attribute.Int("leadpipe.sweep.published", res.Published),
			attribute.Int("leadpipe.sweep.failed", res.Failed), attribute.Int("leadpipe.sweep.skipped", res.Skipped))
		endSpan(span, err)
	}()
	for res.Batches < maxBatches {
		docs, err := o.st.DueForPublish(ctx, batch)
		if err != nil {
			return res, fmt.Errorf("sweep: %w", err)
		}
		res.Batches++
		res.Due += len(docs)
		o.metrics.ages(ctx, o.st.Now(), docs)
		failed := o.sweepBatch(ctx, docs, &res)
		if len(docs) < batch || failed > 0 || ctx.Err() != nil {
			break
		}
	}
	if res.Published > 0 || res.Failed > 0 {
		logging.FromContext(ctx).InfoContext(ctx, "outbox sweep", "due", res.Due, "published", res.Published, "failed", res.Failed, "skipped", res.Skipped)
	}
	return res, ctx.Err()
}

func (o *Outbox) sweepBatch(ctx context.Context, docs []*store.EventDoc, res *SweepResult) int {
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		sem    = make(chan struct{}, o.opts.SweepConcurrency)
		failed int
	)
	for _, d := range docs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := o.claimAndPublish(ctx, d)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				res.Published++
			case errors.Is(err, errSkipped):
				res.Skipped++
			default:
				res.Failed++
				failed++
				logging.FromContext(ctx).WarnContext(ctx, "outbox publish failed", "doc_id", d.DocID, "error", err.Error())
			}
		}()
	}
	wg.Wait()
	return failed
}

// message builds the Pub/Sub message of doc and picks its topic; a nil publisher means the
// document needs no publish (the processor already has it).
func (o *Outbox) message(ctx context.Context, doc *store.EventDoc) (Publisher, *pubsub.Message, error) {
	var pub Publisher
	switch {
	case doc.State == store.StateReceived:
		pub = o.leads
	case doc.State == store.StateQuarantined && doc.QuarantinedBy == store.ByIngest && doc.PublishedAt.IsZero():
		pub = o.dlq
	default:
		return nil, nil, nil
	}
	data, err := json.Marshal(doc.Event)
	if err != nil {
		return nil, nil, fmt.Errorf("encode event %s: %w", doc.DocID, err)
	}
	return pub, &pubsub.Message{Data: data, Attributes: Attributes(ctx, doc), OrderingKey: doc.Event.OrderingKey(o.opts.Hasher)}, nil
}

// Attributes are the message attributes of doc: those of the design brief, replay_id when the
// event is being replayed, and the failure attributes for an event ingest quarantined.
// traceparent is the span in ctx.
func Attributes(ctx context.Context, doc *store.EventDoc) map[string]string {
	a := pushmsg.EventAttributes(ctx, &doc.Event, doc.LastReplayID)
	if doc.State == store.StateQuarantined {
		for k, v := range map[string]string{
			pushmsg.AttrFailureClass:    string(doc.FailureClass),
			pushmsg.AttrErrorMessage:    doc.ErrorMessage,
			pushmsg.AttrAttemptCount:    strconv.Itoa(doc.Attempts),
			pushmsg.AttrFirstReceivedAt: doc.Event.Audit.ReceivedAt.UTC().Format(time.RFC3339Nano),
			pushmsg.AttrQuarantinedBy:   string(doc.QuarantinedBy),
		} {
			if v != "" {
				a[k] = v
			}
		}
	}
	return a
}
