package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/telemetry/telemetrytest"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// rec records the spans and metrics of every test in this package (installed in TestMain).
var rec *telemetrytest.Recorder

func total(t *testing.T, name string, match ...attribute.KeyValue) float64 {
	t.Helper()
	n, err := rec.Total(name, match...)
	if err != nil {
		t.Fatalf("collect %s: %v", name, err)
	}
	return n
}

// published stands in for ingest: a producer span whose traceparent goes into the message's
// attributes through pushmsg.EventAttributes, exactly as ingest's outbox does.
func published(ev *event.Event) (trace.SpanContext, map[string]string) {
	ctx, span := otel.Tracer("ingest-stand-in").Start(context.Background(), "outbox publish", trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	return span.SpanContext(), pushmsg.EventAttributes(ctx, ev, "")
}

// pushBody is a push envelope with the given attributes and deliveryAttempt.
func pushBody(ev *event.Event, msgID string, attrs map[string]string, attempt int) []byte {
	data, _ := json.Marshal(ev)
	b, _ := json.Marshal(map[string]any{
		"message":         map[string]any{"data": data, "attributes": attrs, "messageId": msgID, "publishTime": time.Now().UTC().Format(time.RFC3339Nano)},
		"subscription":    "projects/" + env.ProjectID + "/subscriptions/leads-processor",
		"deliveryAttempt": attempt,
	})
	return b
}

// handlingSpan waits for the ended handling span of a trace.
func handlingSpan(t *testing.T, id trace.TraceID) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStubs
	waitFor(t, 10*time.Second, "the handling span", func() bool {
		found = rec.Find(func(s tracetest.SpanStub) bool { return s.SpanContext.TraceID() == id && s.Name == "process lead" })
		return len(found) > 0
	})
	if len(found) != 1 {
		t.Fatalf("handling spans in trace %s: got %d, want 1", id, len(found))
	}
	return found[0]
}

func attr(s tracetest.SpanStub, key string) string {
	v, _ := telemetrytest.Attr(s, key)
	return v.Emit()
}

// descends reports whether span id descends from ancestor within the spans of one trace.
func descends(spans tracetest.SpanStubs, id, ancestor trace.SpanID) bool {
	parent := map[trace.SpanID]trace.SpanID{}
	for _, s := range spans {
		parent[s.SpanContext.SpanID()] = s.Parent.SpanID()
	}
	for i := 0; i < 64 && id.IsValid(); i++ {
		if id = parent[id]; id == ancestor {
			return true
		}
	}
	return false
}

func TestTelemetryTraceFollowsTheLead(t *testing.T) {
	reset(t)
	url := startProcessor(t, nil)
	ev := newEvent("telemetry-trace")
	succeeded := []attribute.KeyValue{attribute.String("crm", "salesforce"), attribute.String("outcome", "succeeded")}
	before := total(t, "leadpipe.processor.outcomes", succeeded...)
	crmBefore := total(t, "leadpipe.crm.request.duration", attribute.String("crm", "salesforce"))
	attemptsBefore := total(t, "leadpipe.processor.delivery_attempt")

	producer, attrs := published(ev)
	if a := post(t, url, pushBody(ev, "m-telemetry-trace", attrs, 2)); a.Status != 200 || a.Outcome != "succeeded" {
		t.Fatalf("push answer %+v, want 200 succeeded", a)
	}

	h := handlingSpan(t, producer.TraceID())
	if h.Parent.SpanID() != producer.SpanID() || h.SpanKind != trace.SpanKindConsumer {
		t.Errorf("handling span: parent %s kind %v, want child of the publisher's span %s, consumer", h.Parent.SpanID(), h.SpanKind, producer.SpanID())
	}
	for k, want := range map[string]string{"leadpipe.outcome": "succeeded", "leadpipe.event_id": ev.EventID, "leadpipe.crm": "salesforce", "leadpipe.delivery_attempt": "2"} {
		if got := attr(h, k); got != want {
			t.Errorf("handling span %s: got %q, want %q", k, got, want)
		}
	}
	// The push request's own server span is another trace (Pub/Sub sends no traceparent),
	// linked both ways.
	if len(h.Links) != 1 {
		t.Fatalf("handling span links: got %d, want 1 (the push request's server span)", len(h.Links))
	}
	server := rec.Find(func(s tracetest.SpanStub) bool { return s.SpanContext.SpanID() == h.Links[0].SpanContext.SpanID() })
	if len(server) != 1 || server[0].Name != "POST /pubsub/push" || server[0].SpanKind != trace.SpanKindServer {
		t.Fatalf("linked span: got %v, want the server span POST /pubsub/push", server.Snapshots())
	}
	if l := server[0].Links; len(l) != 1 || l[0].SpanContext.SpanID() != h.SpanContext.SpanID() {
		t.Errorf("server span links: got %+v, want one to the handling span", l)
	}

	// Each CRM request is a client span under the handling span.
	spans := rec.Trace(producer.TraceID())
	var clients, names []string
	for _, s := range spans {
		names = append(names, s.Name)
		if s.SpanKind == trace.SpanKindClient && strings.HasPrefix(s.Name, "crm salesforce ") {
			clients = append(clients, s.Name)
			if !descends(spans, s.SpanContext.SpanID(), h.SpanContext.SpanID()) {
				t.Errorf("CRM span %s is not under the handling span", s.Name)
			}
			if attr(s, "http.response.status_code") == "" {
				t.Errorf("CRM span %s has no status code", s.Name)
			}
		}
	}
	if len(clients) == 0 {
		t.Errorf("no CRM client spans in the lead's trace; spans: %v", names)
	}
	t.Logf("spans of the lead's trace: %v", names)

	waitFor(t, 5*time.Second, "outcomes{succeeded} +1", func() bool { return total(t, "leadpipe.processor.outcomes", succeeded...) >= before+1 })
	if got := total(t, "leadpipe.crm.request.duration", attribute.String("crm", "salesforce")); got < crmBefore+float64(len(clients)) {
		t.Errorf("crm.request.duration values: got %v, want at least %v", got, crmBefore+float64(len(clients)))
	}
	if got := total(t, "leadpipe.processor.delivery_attempt"); got < attemptsBefore+1 {
		t.Errorf("delivery_attempt values: got %v, want at least %v", got, attemptsBefore+1)
	}
}

func TestTelemetryOutcomes(t *testing.T) {
	reset(t)
	url := startProcessor(t, map[string]string{"BREAKER_THRESHOLD": "3", "BREAKER_COOLDOWN": "30s", "RETRY_SPACING": "10ms"})
	outcome := func(o, class string) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("crm", "salesforce"), attribute.String("outcome", o), attribute.String("failure_class", class)}
	}
	breakerState := func() []telemetrytest.Point {
		pts, err := rec.Points("leadpipe.crm.breaker.state", attribute.String("crm", "salesforce"))
		if err != nil {
			t.Fatal(err)
		}
		return pts
	}
	if pts := breakerState(); len(pts) != 1 || pts[0].Value != 0 {
		t.Errorf("breaker gauge at start: got %+v, want one point, 0 (closed)", pts)
	}

	steps := []struct {
		name        string
		setup       func()
		wantOutcome string
		wantClass   string
	}{
		{"quarantined", func() { fake.FailNext(fakecrm.Failure{Count: 1, Status: 400, ErrorCode: "INVALID_FIELD"}) }, "quarantined", "permanent"},
		{"rate limited then succeeded", func() { fake.SetFaults(fakecrm.Faults{Throttle: 1, RetryAfterSec: 0}) }, "succeeded", ""},
		// Parked (PARK_ON_OPEN_CIRCUIT defaults to true): by the call that opens the circuit, and
		// at arrival while it is open.
		{"outage opens the circuit", func() { fake.SetFaults(fakecrm.Faults{Outage: true}) }, "parked", "outage"},
		{"circuit open", func() {}, "parked", "outage"},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			match := outcome(st.wantOutcome, st.wantClass)
			before := total(t, "leadpipe.processor.outcomes", match...)
			limited := total(t, "leadpipe.crm.rate_limited", attribute.String("crm", "salesforce"))
			st.setup()
			ev := newEvent(fmt.Sprintf("telemetry-outcome-%d", i))
			_, attrs := published(ev)
			post(t, url, pushBody(ev, fmt.Sprintf("m-telemetry-outcome-%d", i), attrs, 1))
			waitFor(t, 5*time.Second, fmt.Sprintf("outcomes%v +1", match), func() bool {
				return total(t, "leadpipe.processor.outcomes", match...) >= before+1
			})
			if st.name == "rate limited then succeeded" {
				if got := total(t, "leadpipe.crm.rate_limited", attribute.String("crm", "salesforce")); got < limited+1 {
					t.Errorf("crm.rate_limited: got %v, want at least %v", got, limited+1)
				}
			}
		})
	}
	if pts := breakerState(); len(pts) != 1 || pts[0].Value != 2 {
		t.Errorf("breaker gauge after the outage: got %+v, want one point, 2 (open)", pts)
	}
}
