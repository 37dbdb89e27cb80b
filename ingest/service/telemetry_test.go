package service

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/telemetry/telemetrytest"
)

// rec records the spans and metrics of every test in this package (installed in TestMain).
var rec *telemetrytest.Recorder

// total reads a metric total, failing the test on a collection error.
func total(t *testing.T, name string, match ...attribute.KeyValue) float64 {
	t.Helper()
	n, err := rec.Total(name, match...)
	if err != nil {
		t.Fatalf("collect %s: %v", name, err)
	}
	return n
}

// waitTotal waits until a metric total reaches at least want.
func waitTotal(t *testing.T, want float64, name string, match ...attribute.KeyValue) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s%v >= %v", name, match, want), func() bool { return total(t, name, match...) >= want })
}

// serverSpan waits for the ended server span of the delivery with a correlation id.
func serverSpan(t *testing.T, correlationID string) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStubs
	eventually(t, "the server span of "+correlationID, func() bool {
		found = rec.Find(func(s tracetest.SpanStub) bool {
			v, ok := telemetrytest.Attr(s, "leadpipe.correlation_id")
			return ok && v.AsString() == correlationID && s.SpanKind == trace.SpanKindServer
		})
		return len(found) > 0
	})
	if len(found) != 1 {
		t.Fatalf("server spans for %s: got %d, want 1", correlationID, len(found))
	}
	return found[0]
}

// traceparentOf parses a message's traceparent attribute.
func traceparentOf(t *testing.T, attrs map[string]string) trace.SpanContext {
	t.Helper()
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(t.Context(), propagation.MapCarrier(attrs)))
	if !sc.IsValid() {
		t.Fatalf("message traceparent %q: not a valid trace context", attrs[pushmsg.AttrTraceparent])
	}
	return sc
}

func TestTelemetryAcceptedDelivery(t *testing.T) {
	f := newFixture(t, nil)
	accepted := []attribute.KeyValue{attribute.String("source", "demo"), attribute.String("status", "accepted")}
	before := total(t, "leadpipe.ingest.deliveries", accepted...)
	latencyBefore := total(t, "leadpipe.ingest.latency", attribute.String("source", "demo"))

	l := newLead(t)
	corr := fmt.Sprintf("telemetry-accepted-%d", time.Now().UnixNano())
	// A sender's own traceparent must not become the parent of ours (the webhook is public).
	senderTrace := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	a := f.do(f.request(l, func(r *http.Request) {
		r.Header.Set("X-Correlation-ID", corr)
		r.Header.Set("traceparent", senderTrace)
	}))
	if a.code != http.StatusAccepted {
		t.Fatalf("answer = %d %v, want 202", a.code, a.body)
	}

	s := serverSpan(t, corr)
	if s.Name != "POST /v1/webhooks/:source" {
		t.Errorf("span name: got %q, want POST /v1/webhooks/:source", s.Name)
	}
	if s.SpanContext.TraceID().String() == "0af7651916cd43dd8448eb211c80319c" || s.Parent.IsValid() {
		t.Errorf("server span joined the sender's trace (parent %v); want a new root linked to it", s.Parent)
	}
	for k, want := range map[string]string{"leadpipe.source": "demo", "leadpipe.status": "accepted", "http.route": "/v1/webhooks/:source"} {
		if v, ok := telemetrytest.Attr(s, k); !ok || v.AsString() != want {
			t.Errorf("span attribute %s: got %q, want %q", k, v.AsString(), want)
		}
	}
	if v, ok := telemetrytest.Attr(s, "leadpipe.events"); !ok || v.AsInt64() != 1 {
		t.Errorf("span attribute leadpipe.events: got %v, want 1", v.AsInt64())
	}

	waitTotal(t, before+1, "leadpipe.ingest.deliveries", accepted...)
	waitTotal(t, latencyBefore+1, "leadpipe.ingest.latency", attribute.String("source", "demo"))

	// The message published to leads carries the trace: its traceparent names the producer
	// span, a child of the server span.
	msgs := messages("leads", l.key())
	if len(msgs) != 1 {
		t.Fatalf("%d messages on leads, want 1", len(msgs))
	}
	tp := traceparentOf(t, msgs[0].Attributes)
	if tp.TraceID() != s.SpanContext.TraceID() {
		t.Errorf("message trace %s, want the delivery's trace %s", tp.TraceID(), s.SpanContext.TraceID())
	}
	producer := rec.Find(func(x tracetest.SpanStub) bool { return x.SpanContext.SpanID() == tp.SpanID() })
	if len(producer) != 1 || producer[0].SpanKind != trace.SpanKindProducer || producer[0].Parent.SpanID() != s.SpanContext.SpanID() {
		t.Errorf("traceparent span: got %v, want the producer span, child of the server span", producer.Snapshots())
	}
}

func TestTelemetryDeliveryStatuses(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name           string
		mutate         func(l *lead, r *http.Request)
		source, status string
	}{
		{"bad signature", func(_ *lead, r *http.Request) { r.Header.Set("webhook-signature", "v1,AAAA") }, "demo", "rejected_401"},
		{"unknown source", func(_ *lead, r *http.Request) { r.URL.Path = "/v1/webhooks/no-such-source-42" }, "unknown", "rejected_404"},
		{"source without secrets", func(_ *lead, r *http.Request) { r.URL.Path = "/v1/webhooks/broken" }, "broken", "rejected_503"},
		{"wrong content type", func(_ *lead, r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, "demo", "rejected_415"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			match := []attribute.KeyValue{attribute.String("source", tt.source), attribute.String("status", tt.status)}
			before := total(t, "leadpipe.ingest.deliveries", match...)
			l := newLead(t)
			f.do(f.request(l, func(r *http.Request) { tt.mutate(&l, r) }))
			waitTotal(t, before+1, "leadpipe.ingest.deliveries", match...)
		})
	}

	t.Run("quarantined then duplicate", func(t *testing.T) {
		quarantined := []attribute.KeyValue{attribute.String("source", "demo"), attribute.String("status", "quarantined")}
		duplicate := []attribute.KeyValue{attribute.String("source", "demo"), attribute.String("status", "duplicate")}
		q0, d0 := total(t, "leadpipe.ingest.deliveries", quarantined...), total(t, "leadpipe.ingest.deliveries", duplicate...)
		l := newLead(t)
		l.body = fmt.Appendf(nil, `{"event_type":"lead.created","occurred_at":"2026-03-22T12:34:56Z","n":%d}`, leadSeq.Add(1))
		if a := f.do(f.request(l)); a.body["status"] != "quarantined" {
			t.Fatalf("answer %d %v, want quarantined", a.code, a.body)
		}
		waitTotal(t, q0+1, "leadpipe.ingest.deliveries", quarantined...)
		if a := f.do(f.request(l)); a.body["status"] != "duplicate" {
			t.Fatalf("repeat answer %d %v, want duplicate", a.code, a.body)
		}
		waitTotal(t, d0+1, "leadpipe.ingest.deliveries", duplicate...)
		// The no-identity event went to the DLQ topic with the trace of its delivery.
		key := l.key()
		dlq := messages("leads-dlq", key)
		if len(dlq) != 1 {
			t.Fatalf("%d DLQ messages, want 1", len(dlq))
		}
		if tp := traceparentOf(t, dlq[0].Attributes); len(rec.Trace(tp.TraceID())) == 0 {
			t.Errorf("DLQ message trace %s has no recorded spans", tp.TraceID())
		}
	})
}

func TestTelemetryPublishFailureAndSweep(t *testing.T) {
	f := newFixture(t, map[string]string{"OUTBOX_DELAY": "300ms", "PUBLISH_TIMEOUT": "1s"})
	topic := attribute.String("topic", "leads")
	published := attribute.String("result", "published")
	failures0 := total(t, "leadpipe.ingest.publish_failures", topic)
	swept0 := total(t, "leadpipe.ingest.outbox.swept", published)
	ages0 := total(t, "leadpipe.ingest.outbox.age")

	f.calls.failPubSub.Store(true)
	l := newLead(t)
	if a := f.do(f.request(l)); a.code != http.StatusAccepted {
		t.Fatalf("answer = %d %v, want 202", a.code, a.body)
	}
	waitTotal(t, failures0+1, "leadpipe.ingest.publish_failures", topic)
	f.calls.failPubSub.Store(false)

	eventually(t, "the sweep to publish", func() bool {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/internal/sweep", nil)
		if a := f.do(req); a.code != http.StatusOK {
			t.Fatalf("sweep = %d %v", a.code, a.body)
		}
		return len(messages("leads", l.key())) > 0
	})
	waitTotal(t, swept0+1, "leadpipe.ingest.outbox.swept", published)
	pts, err := rec.Points("leadpipe.ingest.outbox.age")
	if err != nil {
		t.Fatal(err)
	}
	var ages, sum float64
	for _, p := range pts {
		ages, sum = ages+p.Value, sum+p.Sum
	}
	if ages < ages0+1 || sum <= 0 {
		t.Errorf("outbox age: %v values (was %v), sum %v; want at least one more, with a positive age", ages, ages0, sum)
	}

	// The swept message's trace is the sweep's: a producer span under the "outbox sweep" span.
	tp := traceparentOf(t, messages("leads", l.key())[0].Attributes)
	var names []string
	for _, s := range rec.Trace(tp.TraceID()) {
		names = append(names, s.Name)
	}
	if !contains(names, "outbox sweep") || !contains(names, "outbox publish") {
		t.Errorf("spans of the swept message's trace: got %v, want outbox sweep and outbox publish", names)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
