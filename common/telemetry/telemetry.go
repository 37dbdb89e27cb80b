// Package telemetry sets up OpenTelemetry traces and metrics for a service, with the exporter
// chosen by configuration: none, stdout (to stderr, so stdout stays free), otlp (gRPC, configured
// by the standard OTEL_EXPORTER_OTLP_* variables) or gcp (Cloud Trace and Cloud Monitoring).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"

	mexporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/metric"
	texporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/trace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/leadpipe/leadpipe/common/config"
)

// Setup installs the global tracer and meter providers and the W3C trace-context propagator.
// The returned function flushes and stops them; call it on shutdown. With exporter "none" the
// providers still exist (so spans carry ids for log correlation) but export nothing.
func Setup(ctx context.Context, cfg config.Telemetry, service, projectID string) (func(context.Context) error, error) {
	if cfg.ServiceName != "" {
		service = cfg.ServiceName
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
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
