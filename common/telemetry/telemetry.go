// Package telemetry sets up OpenTelemetry traces and metrics for a service, with the exporter
// chosen by configuration: none, stdout (to stderr, so stdout stays free), otlp (gRPC, configured
// by the standard OTEL_EXPORTER_OTLP_* variables) or gcp (Cloud Trace and Cloud Monitoring).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	mexporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/metric"
	texporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/trace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/config"
)

// Setup installs the global tracer and meter providers and the W3C trace-context propagator.
// The returned function flushes and stops them; call it on shutdown. With exporter "none" the
// providers still exist (so spans carry ids for log correlation) but export nothing.
//
// While providers are pinned (see Pin), Setup checks cfg but installs nothing and returns a
// shutdown that does nothing: the pinned providers stay the process's.
func Setup(ctx context.Context, cfg config.Telemetry, service, projectID string) (func(context.Context) error, error) {
	if cfg.ServiceName != "" {
		service = cfg.ServiceName
	}
	if pinned.Load() {
		switch cfg.Exporter {
		case "", "none", "stdout", "otlp", "gcp":
			return func(context.Context) error { return nil }, nil
		default:
			return nil, fmt.Errorf("unknown exporter %q", cfg.Exporter)
		}
	}
	otel.SetTextMapPropagator(Propagator())
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	topts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res)}

	switch cfg.Exporter {
	case "", "none":
	case "stdout":
		te, err := stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
		if err != nil {
			return nil, fmt.Errorf("stdout trace exporter: %w", err)
		}
		me, err := stdoutmetric.New(stdoutmetric.WithWriter(os.Stderr))
		if err != nil {
			return nil, fmt.Errorf("stdout metric exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(te))
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me)))
	case "otlp":
		te, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		me, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp metric exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(te))
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me)))
	case "gcp":
		te, err := texporter.New(texporter.WithProjectID(projectID))
		if err != nil {
			return nil, fmt.Errorf("cloud trace exporter: %w", err)
		}
		me, err := mexporter.New(mexporter.WithProjectID(projectID))
		if err != nil {
			return nil, fmt.Errorf("cloud monitoring exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(te))
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me)))
	default:
		return nil, fmt.Errorf("unknown exporter %q", cfg.Exporter)
	}
	tp := sdktrace.NewTracerProvider(topts...)
	mp := sdkmetric.NewMeterProvider(mopts...)
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	return func(ctx context.Context) error {
		return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
	}, nil
}

// Propagator is the propagator Setup installs: W3C trace context and baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// pinned is set while Pin's providers must not be replaced.
var pinned atomic.Bool

// Pin installs tp and mp (and the propagator) as the global providers and makes Setup leave
// them in place until the returned function is called; that function unpins but does not
// restore or stop anything. It is meant for tests, which install recording providers once in
// TestMain and then start services whose Run calls Setup (see telemetrytest), and for a process
// that hosts several services (one set of providers for all). Not safe to call concurrently
// with itself.
func Pin(tp trace.TracerProvider, mp metric.MeterProvider) (unpin func()) {
	otel.SetTextMapPropagator(Propagator())
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	pinned.Store(true)
	return func() { pinned.Store(false) }
}
