package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/telemetry"
	"github.com/leadpipe/leadpipe/common/telemetry/telemetrytest"
)

func recordingProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func TestStartConsumer(t *testing.T) {
	tp, exp := recordingProvider(t)
	tr := tp.Tracer("test")
	pubCtx, pub := tr.Start(context.Background(), "publish")
	attrs := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(pubCtx, attrs)
	pub.End()

	tests := []struct {
		name       string
		attributes map[string]string
		wantParent trace.SpanContext // zero: the server span is the parent
	}{
		{"traceparent", attrs, pub.SpanContext()},
		{"no traceparent", map[string]string{"event_id": "e1"}, trace.SpanContext{}},
		{"garbage traceparent", map[string]string{"traceparent": "00-zz"}, trace.SpanContext{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp.Reset()
			sctx, server := tr.Start(context.Background(), "server", trace.WithSpanKind(trace.SpanKindServer))
			ctx, span := telemetry.StartConsumer(sctx, tr, "handle", tt.attributes)
			if got := trace.SpanFromContext(ctx); got != span {
				t.Error("returned context does not carry the new span")
			}
			span.End()
			server.End()
			stubs := exp.GetSpans()
			if len(stubs) != 2 {
				t.Fatalf("spans: got %d, want 2", len(stubs))
			}
			handle, srv := stubs[0], stubs[1]
			if handle.SpanKind != trace.SpanKindConsumer {
				t.Errorf("kind: got %v, want consumer", handle.SpanKind)
			}
			if !tt.wantParent.IsValid() {
				if handle.Parent.SpanID() != srv.SpanContext.SpanID() || handle.SpanContext.TraceID() != srv.SpanContext.TraceID() {
					t.Errorf("parent: got %v, want the server span %v", handle.Parent.SpanID(), srv.SpanContext.SpanID())
				}
				return
			}
			if handle.SpanContext.TraceID() != tt.wantParent.TraceID() || handle.Parent.SpanID() != tt.wantParent.SpanID() {
				t.Errorf("handle span: trace %s parent %s, want trace %s parent %s", handle.SpanContext.TraceID(), handle.Parent.SpanID(),
					tt.wantParent.TraceID(), tt.wantParent.SpanID())
			}
			if len(handle.Links) != 1 || handle.Links[0].SpanContext.SpanID() != srv.SpanContext.SpanID() {
				t.Errorf("handle links: got %+v, want one to the server span", handle.Links)
			}
			if len(srv.Links) != 1 || srv.Links[0].SpanContext.SpanID() != handle.SpanContext.SpanID() {
				t.Errorf("server links: got %+v, want one to the handling span", srv.Links)
			}
		})
	}
}

func TestHandlerNamesSpansByRoute(t *testing.T) {
	tp, exp := recordingProvider(t)
	mux := http.NewServeMux()
	var inner trace.SpanContext
	mux.HandleFunc("POST /pubsub/push", func(w http.ResponseWriter, r *http.Request) {
		inner = trace.SpanContextFromContext(r.Context())
	})
	mux.HandleFunc("/items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(telemetry.Handler(mux, otelhttp.WithTracerProvider(tp)))
	defer srv.Close()

	tests := []struct {
		method, path        string
		wantName, wantRoute string
	}{
		{http.MethodPost, "/pubsub/push", "POST /pubsub/push", "/pubsub/push"},
		{http.MethodGet, "/items/42", "GET /items/{id}", "/items/{id}"},
		{http.MethodGet, "/no/such/path/123", "GET", ""},
	}
	for _, tt := range tests {
		t.Run(tt.wantName, func(t *testing.T) {
			exp.Reset()
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			stubs := exp.GetSpans()
			if len(stubs) != 1 {
				t.Fatalf("spans: got %d, want 1", len(stubs))
			}
			s := stubs[0]
			if s.Name != tt.wantName || s.SpanKind != trace.SpanKindServer {
				t.Errorf("span: got %q kind %v, want %q server", s.Name, s.SpanKind, tt.wantName)
			}
			route, ok := telemetrytest.Attr(s, "http.route")
			if tt.wantRoute != "" && (!ok || route.AsString() != tt.wantRoute) {
				t.Errorf("http.route: got %q, want %q", route.AsString(), tt.wantRoute)
			}
			if tt.wantRoute == "" && ok {
				t.Errorf("http.route: got %q for an unmatched path, want none", route.AsString())
			}
		})
	}
	if !inner.IsValid() {
		t.Error("the handler's request context carried no span")
	}
}

// TestPinAndRecorder runs last among the tests that touch globals (they are not parallel).
func TestPinAndRecorder(t *testing.T) {
	rec := telemetrytest.Install()
	defer rec.Close()

	// Setup leaves pinned providers alone, still rejects a bad exporter, and its shutdown
	// does not stop them.
	shutdown, err := telemetry.Setup(context.Background(), config.Telemetry{Exporter: "stdout", SampleRatio: 0}, "svc", "proj")
	if err != nil {
		t.Fatalf("Setup while pinned: %v", err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown while pinned: %v", err)
	}
	if _, err := telemetry.Setup(context.Background(), config.Telemetry{Exporter: "jaeger"}, "svc", "proj"); err == nil {
		t.Error("Setup(jaeger) while pinned: got nil error, want one")
	}

	_, span := otel.Tracer("t").Start(context.Background(), "op")
	span.SetAttributes(attribute.String("k", "v"))
	span.End()
	got := rec.Trace(span.SpanContext().TraceID())
	if len(got) != 1 || got[0].Name != "op" {
		t.Fatalf("recorded trace: got %v, want the one span op (Setup replaced the pinned provider?)", got.Snapshots())
	}
	if v, ok := telemetrytest.Attr(got[0], "k"); !ok || v.AsString() != "v" {
		t.Errorf("attribute k: got %v %v, want v", v, ok)
	}

	m := otel.Meter("t")
	ctr, _ := m.Int64Counter("c")
	ctr.Add(context.Background(), 2, metricAttrs("a", "x"))
	ctr.Add(context.Background(), 3, metricAttrs("a", "y"))
	hist, _ := m.Float64Histogram("h")
	hist.Record(context.Background(), 1.5, metricAttrs("a", "x"))
	hist.Record(context.Background(), 2.5, metricAttrs("a", "x"))

	checks := []struct {
		name  string
		match []attribute.KeyValue
		want  float64
	}{
		{"c", nil, 5},
		{"c", []attribute.KeyValue{attribute.String("a", "x")}, 2},
		{"c", []attribute.KeyValue{attribute.String("a", "z")}, 0},
		{"h", nil, 2},
		{"never", nil, 0},
	}
	for _, c := range checks {
		n, err := rec.Total(c.name, c.match...)
		if err != nil {
			t.Fatal(err)
		}
		if n != c.want {
			t.Errorf("Total(%s, %v): got %v, want %v", c.name, c.match, n, c.want)
		}
	}
	pts, _ := rec.Points("h")
	if len(pts) != 1 || pts[0].Sum != 4 {
		t.Errorf("histogram points: got %+v, want one with sum 4", pts)
	}
}

func metricAttrs(k, v string) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String(k, v))
}
