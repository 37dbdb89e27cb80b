package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// StartConsumer starts the span that handles one Pub/Sub message whose attributes carry a
// traceparent (pushmsg.AttrTraceparent): the span is a child of the publisher's span, so one
// lead is one trace from ingest through the processor to the replayer. Pub/Sub's push requests
// carry no traceparent header, so the push request's own server span (the span in ctx) is in a
// trace of its own: the two are linked both ways. Without a valid traceparent the span is a
// plain child of ctx's span. The returned context keeps ctx's values (its logger) and carries
// the new span, so log lines written with it name the lead's trace. The caller ends the span.
func StartConsumer(ctx context.Context, tracer trace.Tracer, name string, attributes map[string]string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer))
	remote := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier(attributes)))
	if !remote.IsValid() {
		return tracer.Start(ctx, name, opts...)
	}
	server := trace.SpanFromContext(ctx)
	if sc := server.SpanContext(); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	sctx, span := tracer.Start(trace.ContextWithRemoteSpanContext(ctx, remote), name, opts...)
	server.AddLink(trace.Link{SpanContext: span.SpanContext()})
	return sctx, span
}
