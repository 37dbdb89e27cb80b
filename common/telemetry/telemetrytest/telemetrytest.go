// Package telemetrytest records what a test's code traced and measured: Install puts an
// in-memory span exporter and a manual metric reader behind the global OpenTelemetry
// providers, pinned so that the services' own telemetry.Setup calls leave them in place, and
// the Recorder answers questions about the spans and data points recorded so far.
//
// Install once per test binary, from TestMain, before any service is built: the globals are
// shared by every test, so a test reads what it caused by selecting its own spans (by trace
// id or attribute) and by comparing counters before and after, never by assuming it is alone.
package telemetrytest

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/telemetry"
)

// Recorder holds what was recorded since Install. Its methods are safe for concurrent use.
type Recorder struct {
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	unpin  func()
}

// Install makes recording providers (every span sampled, exported synchronously when it
// ends) the pinned globals and returns their Recorder. Call Close at the end of TestMain.
func Install() *Recorder {
	r := &Recorder{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	r.unpin = telemetry.Pin(r.tp, r.mp)
	return r
}

// Close unpins and stops the providers.
func (r *Recorder) Close() {
	r.unpin()
	_ = r.tp.Shutdown(context.Background())
	_ = r.mp.Shutdown(context.Background())
}

// Spans returns every span ended so far.
func (r *Recorder) Spans() tracetest.SpanStubs { return r.spans.GetSpans() }

// Trace returns the ended spans of one trace, in the order they ended.
func (r *Recorder) Trace(id trace.TraceID) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range r.spans.GetSpans() {
		if s.SpanContext.TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// Find returns the ended spans that match keep.
func (r *Recorder) Find(keep func(tracetest.SpanStub) bool) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range r.spans.GetSpans() {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// Attr returns the value of attribute key of s, and whether s has it.
func Attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// Collect reads every metric recorded so far.
func (r *Recorder) Collect() (metricdata.ResourceMetrics, error) {
	var rm metricdata.ResourceMetrics
	err := r.reader.Collect(context.Background(), &rm)
	return rm, err
}

// Point is one data point of a metric, flattened for assertions: Value is the sum of a
// counter, the value of a gauge, or the count of a histogram; Sum is a histogram's sum.
type Point struct {
	Attributes attribute.Set
	Value      float64
	Sum        float64
}

// Points returns the data points of the metric called name whose attributes include every
// one of match. A metric that was never recorded has no points.
func (r *Recorder) Points(name string, match ...attribute.KeyValue) ([]Point, error) {
	rm, err := r.Collect()
	if err != nil {
		return nil, err
	}
	var out []Point
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			pts, err := points(m.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			for _, p := range pts {
				if includes(p.Attributes, match) {
					out = append(out, p)
				}
			}
		}
	}
	return out, nil
}

// Total is the sum of the Values of the matching points of a metric (for a histogram: the
// number of recorded values).
func (r *Recorder) Total(name string, match ...attribute.KeyValue) (float64, error) {
	pts, err := r.Points(name, match...)
	var n float64
	for _, p := range pts {
		n += p.Value
	}
	return n, err
}

func points(data metricdata.Aggregation) ([]Point, error) {
	var out []Point
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, Point{Attributes: p.Attributes, Value: float64(p.Value)})
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			out = append(out, Point{Attributes: p.Attributes, Value: p.Value})
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, Point{Attributes: p.Attributes, Value: float64(p.Value)})
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			out = append(out, Point{Attributes: p.Attributes, Value: p.Value})
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			out = append(out, Point{Attributes: p.Attributes, Value: float64(p.Count), Sum: float64(p.Sum)})
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, Point{Attributes: p.Attributes, Value: float64(p.Count), Sum: p.Sum})
		}
	default:
		return nil, fmt.Errorf("unsupported aggregation %T", data)
	}
	return out, nil
}

func includes(set attribute.Set, match []attribute.KeyValue) bool {
	for _, kv := range match {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// Labels returns, for every metric recorded so far, its name and the attribute sets of its
// data points: what a leak check reads.
func (r *Recorder) Labels() (map[string][]attribute.Set, error) {
	rm, err := r.Collect()
	if err != nil {
		return nil, err
	}
	out := map[string][]attribute.Set{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			pts, err := points(m.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Name, err)
			}
			for _, p := range pts {
				out[m.Name] = append(out[m.Name], p.Attributes)
			}
			if len(pts) == 0 {
				out[m.Name] = nil
			}
		}
	}
	return out, nil
}
