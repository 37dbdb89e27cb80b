package dlq

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry"
)

// meterName is the OpenTelemetry meter and tracer name of the replayer.
const meterName = "leadpipe/replayer"

// newRecords creates leadpipe.dlq.records: DLQ records opened (the event's first dead-letter
// message) or reopened (a dead-letter message about its latest replay), by source and failure
// class; further messages about an open record are not counted.
func newRecords() metric.Int64Counter {
	// Instrument errors only come from invalid names; the no-op instrument returned with one
	// keeps the intake working.
	c, _ := otel.Meter(meterName).Int64Counter("leadpipe.dlq.records", metric.WithUnit("{record}"),
		metric.WithDescription("DLQ records opened or reopened (an event dead-lettered, or dead-lettered again after a replay), by source and failure class."))
	return c
}

// startSpan starts the span recording one dead-letter message, in the trace of the lead
// (the message's traceparent), linked with the push request's span.
func startSpan(ctx context.Context, env *pushmsg.Envelope) (context.Context, trace.Span) {
	return telemetry.StartConsumer(ctx, otel.Tracer(meterName), "record dead letter", env.Message.Attributes,
		trace.WithAttributes(attribute.String("messaging.system", "gcp_pubsub"), attribute.String("messaging.message.id", env.Message.MessageID)))
}

// observe counts a new record and annotates the span.
func (in *Intake) observe(ctx context.Context, span trace.Span, rec *store.DLQRecord) {
	span.SetAttributes(attribute.String("leadpipe.dlq_id", rec.ID), attribute.String("leadpipe.source", rec.Source),
		attribute.String("leadpipe.failure_class", string(rec.FailureClass)), attribute.Int("leadpipe.dead_letter_count", rec.DeadLetterCount))
	// Merge sets the status time to the arrival time exactly when it opens or reopens a record.
	if rec.Status == store.DLQOpen && rec.StatusChangedAt.Equal(rec.UpdatedAt) {
		in.records.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("source", rec.Source), attribute.String("failure_class", string(rec.FailureClass))))
	}
}
