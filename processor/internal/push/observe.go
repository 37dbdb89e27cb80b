package push

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/telemetry"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Span attributes of the handling span. Ids, never personal data.
const (
	AttrMessageID       = "messaging.message.id"
	AttrDeliveryAttempt = "leadpipe.delivery_attempt"
	AttrEventID         = "leadpipe.event_id"
	AttrDocID           = "leadpipe.doc_id"
	AttrSource          = "leadpipe.source"
	AttrCRM             = "leadpipe.crm"
	AttrOutcome         = "leadpipe.outcome"
	AttrFailureClass    = "leadpipe.failure_class"
	AttrAttempt         = "leadpipe.attempt"
)

// SpanName is the name of the span that handles one pushed message.
const SpanName = "process lead"

// Metrics are the push handler's instruments; create them once with NewMetrics. A nil
// *Metrics records nothing.
type Metrics struct {
	outcomes metric.Int64Counter
	attempts metric.Int64Histogram
}

// NewMetrics creates the instruments leadpipe.processor.outcomes {crm, outcome, failure_class}
// and leadpipe.processor.delivery_attempt (Pub/Sub's deliveryAttempt hint) on the global meter
// provider.
func NewMetrics() *Metrics {
	m := otel.Meter(crm.MeterName)
	// Instrument errors only come from invalid names; the no-op instruments returned with one
	// keep the handler working.
	outcomes, _ := m.Int64Counter("leadpipe.processor.outcomes", metric.WithUnit("{message}"),
		metric.WithDescription("Pushed messages by CRM, outcome (succeeded, duplicate, failed, quarantined, parked, lease_held, circuit_open, malformed, unusable, terminal, superseded, store_unavailable, dlq_unavailable) and failure class."))
	attempts, _ := m.Int64Histogram("leadpipe.processor.delivery_attempt", metric.WithUnit("{attempt}"),
		metric.WithDescription("Pub/Sub's deliveryAttempt hint of each pushed message (present with a dead-letter policy)."),
		metric.WithExplicitBucketBoundaries(1, 2, 3, 4, 5, 6, 8, 10))
	return &Metrics{outcomes: outcomes, attempts: attempts}
}

// outcomeLabel is the outcome as counted: the answer's outcome, with crm_circuit_open
// shortened to circuit_open.
func outcomeLabel(o string) string {
	if o == "crm_circuit_open" {
		return "circuit_open"
	}
	return o
}

func (m *Metrics) outcome(ctx context.Context, a answer) {
	if m == nil {
		return
	}
	m.outcomes.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("crm", a.crm),
		attribute.String("outcome", outcomeLabel(a.Outcome)), attribute.String("failure_class", a.Class)))
}

func (m *Metrics) deliveryAttempt(ctx context.Context, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.attempts.Record(ctx, int64(n))
}

// startSpan starts the handling span of a pushed message: a child of the span that published
// it (its traceparent attribute), linked with the push request's server span.
func startSpan(ctx context.Context, env *pushmsg.Envelope) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{attribute.String("messaging.system", "gcp_pubsub"), attribute.String(AttrMessageID, env.Message.MessageID)}
	if n := env.Attempt(); n > 0 {
		attrs = append(attrs, attribute.Int(AttrDeliveryAttempt, n))
	}
	if v := env.Message.Attributes[pushmsg.AttrReplayID]; v != "" {
		attrs = append(attrs, attribute.String("leadpipe.replay_id", v))
	}
	return telemetry.StartConsumer(ctx, otel.Tracer(crm.MeterName), SpanName, env.Message.Attributes, trace.WithAttributes(attrs...))
}

// annotate adds the event's ids to the span.
func annotate(span trace.Span, ev *event.Event) {
	span.SetAttributes(attribute.String(AttrEventID, ev.EventID), attribute.String(AttrDocID, event.DocID(ev.IdempotencyKey)),
		attribute.String(AttrSource, ev.Source), attribute.String(AttrCRM, ev.Routing.CRM))
}

// endSpan records the answer on the span and ends it. Answers that nack are errors.
func endSpan(span trace.Span, a answer) {
	span.SetAttributes(attribute.String(AttrOutcome, outcomeLabel(a.Outcome)), attribute.Int("http.response.status_code", a.status))
	if a.Class != "" {
		span.SetAttributes(attribute.String(AttrFailureClass, a.Class))
	}
	if a.Attempt > 0 {
		span.SetAttributes(attribute.Int(AttrAttempt, a.Attempt))
	}
	if a.status != http.StatusOK {
		span.SetStatus(codes.Error, a.Outcome)
	}
	span.End()
}
