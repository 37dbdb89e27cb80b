package crm

import (
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/leadpipe/leadpipe/common/telemetry"
)

// MeterName is the OpenTelemetry meter and tracer name of the processor.
const MeterName = "leadpipe/processor"

// Transport wraps base (nil: http.DefaultTransport) for the CRM called name: every request
// is an OpenTelemetry client span built by telemetry.ClientTransport ("crm <name> <METHOD>
// <route>", child of the span in the request's context, with W3C trace headers sent along),
// which records scheme, host and the matching one of routes (the adapter's request patterns,
// e.g. salesforce.Routes) and never the request's path or query; each request is measured in leadpipe.crm.request.duration
// {crm, status_code} (status_code "error" when no response came); 429 answers also count in
// leadpipe.crm.rate_limited {crm}. Token requests of an adapter go through it too. Call it once
// per CRM, at start-up: it creates the instruments.
func Transport(name string, base http.RoundTripper, routes ...string) http.RoundTripper {
	m := otel.Meter(MeterName)
	// Instrument errors only come from invalid names; the no-op instruments returned with one
	// keep the transport working.
	duration, _ := m.Float64Histogram("leadpipe.crm.request.duration", metric.WithUnit("ms"),
		metric.WithDescription("Duration of each HTTP request to a CRM (token requests included), by CRM and status code."),
		metric.WithExplicitBucketBoundaries(10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 15000))
	limited, _ := m.Int64Counter("leadpipe.crm.rate_limited", metric.WithUnit("{response}"),
		metric.WithDescription("CRM answers 429 (too many requests), by CRM."))
	crmAttr := attribute.String("crm", name)
	traced := telemetry.ClientTransport(base, telemetry.Client{Name: "crm " + name, Routes: routes,
		Attributes: []attribute.KeyValue{attribute.String("leadpipe.crm", name)}})
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := traced.RoundTrip(r)
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
			if resp.StatusCode == http.StatusTooManyRequests {
				limited.Add(r.Context(), 1, metric.WithAttributes(crmAttr))
			}
		}
		duration.Record(r.Context(), float64(time.Since(start))/float64(time.Millisecond),
			metric.WithAttributes(crmAttr, attribute.String("status_code", code)))
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
