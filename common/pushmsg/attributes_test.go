package pushmsg_test

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
)

func TestEventAttributes(t *testing.T) {
	ev := &event.Event{SchemaVersion: "1.0", EventID: "e1", EventType: "lead.created", Source: "demo",
		IdempotencyKey: "demo|lead.created|1", MappingVersion: "m1", CorrelationID: "c1"}
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("t").Start(context.Background(), "publish")
	defer span.End()

	got := pushmsg.EventAttributes(ctx, ev, "r1")
	want := map[string]string{
		"idempotency_key": "demo|lead.created|1", "event_id": "e1", "source": "demo", "event_type": "lead.created",
		"schema_version": "1.0", "mapping_version": "m1", "correlation_id": "c1", "replay_id": "r1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if tpv := got["traceparent"]; !strings.Contains(tpv, span.SpanContext().TraceID().String()) {
		t.Errorf("traceparent = %q, want the span's trace id %s", tpv, span.SpanContext().TraceID())
	}

	plain := pushmsg.EventAttributes(context.Background(), &event.Event{EventID: "e2"}, "")
	if len(plain) != 1 || plain["event_id"] != "e2" {
		t.Errorf("attributes without span, replay or values = %v, want only event_id", plain)
	}
}
