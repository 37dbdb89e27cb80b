package telemetry_test

import (
	"context"
	"net/http"
	"regexp"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/telemetry"
)

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0([01])$`)

// The tests below change OpenTelemetry globals, so they do not run in parallel.

func TestSetup(t *testing.T) {
	tests := []struct {
		name        string
		cfg         config.Telemetry
		wantSampled bool
	}{
		{"none", config.Telemetry{Exporter: "none", SampleRatio: 1}, true},
		{"empty means none", config.Telemetry{Exporter: "", SampleRatio: 1}, true},
		{"stdout", config.Telemetry{Exporter: "stdout", SampleRatio: 1}, true},
		{"none ratio 0", config.Telemetry{Exporter: "none", SampleRatio: 0}, false},
		{"service name override", config.Telemetry{Exporter: "none", SampleRatio: 1, ServiceName: "other"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			shutdown, err := telemetry.Setup(ctx, tt.cfg, "svc", "proj")
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if shutdown == nil {
				t.Fatal("Setup returned a nil shutdown func")
			}

			// The global provider makes real spans with ids (log correlation needs them even
			// when nothing is exported).
			sctx, span := otel.Tracer("test").Start(ctx, "op")
			sc := span.SpanContext()
			if !sc.IsValid() {
				t.Fatalf("span context invalid: global tracer provider not installed")
			}
			if sc.IsSampled() != tt.wantSampled {
				t.Errorf("sampled: got %v, want %v", sc.IsSampled(), tt.wantSampled)
			}
			// A metric instrument from the global meter works.
			ctr, err := otel.Meter("test").Int64Counter("leadpipe_test_total")
			if err != nil {
				t.Fatalf("Int64Counter: %v", err)
			}
			ctr.Add(sctx, 1)

			// The W3C propagator is installed: inject writes a traceparent naming this span.
			h := http.Header{}
			otel.GetTextMapPropagator().Inject(sctx, propagation.HeaderCarrier(h))
			tp := h.Get("traceparent")
			m := traceparentRE.FindStringSubmatch(tp)
			if m == nil {
				t.Fatalf("traceparent: got %q, want 00-<trace>-<span>-0x", tp)
			}
			if m[1] != sc.TraceID().String() || m[2] != sc.SpanID().String() {
				t.Errorf("traceparent: got %q, want trace %s span %s", tp, sc.TraceID(), sc.SpanID())
			}
			if wantFlag := map[bool]string{true: "1", false: "0"}[tt.wantSampled]; m[3] != wantFlag {
				t.Errorf("traceparent sampled flag: got %s, want %s", m[3], wantFlag)
			}

			// Extract round-trips: a child started from the extracted context joins the trace.
			ectx := otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(h))
			_, child := otel.Tracer("test").Start(ectx, "child")
			if got := child.SpanContext().TraceID(); got != sc.TraceID() {
				t.Errorf("child trace id: got %s, want %s", got, sc.TraceID())
			}
			child.End()
			span.End()

			if err := shutdown(ctx); err != nil {
				t.Errorf("shutdown: got %v, want nil", err)
			}
			// After shutdown the provider makes no recording spans.
			_, after := otel.Tracer("test").Start(ctx, "after")
			if after.IsRecording() {
				t.Errorf("span after shutdown is recording; want the provider stopped")
			}
			after.End()
		})
	}
}

func TestSetupUnknownExporter(t *testing.T) {
	before := otel.GetTracerProvider()
	shutdown, err := telemetry.Setup(context.Background(), config.Telemetry{Exporter: "jaeger", SampleRatio: 1}, "svc", "proj")
	if err == nil {
		t.Fatal("Setup(jaeger): got nil error, want one")
	}
	if shutdown != nil {
		t.Error("Setup(jaeger): got a shutdown func with the error, want nil")
	}
	if otel.GetTracerProvider() != before {
		t.Error("Setup(jaeger) replaced the global tracer provider despite failing")
	}
}
