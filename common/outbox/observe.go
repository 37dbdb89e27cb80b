package outbox

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/store"
)

// meterName is the OpenTelemetry meter and tracer name of the ingest service.
const meterName = "leadpipe/ingest"

// metrics are the outbox's instruments, created once with it.
type metrics struct {
	publishFailures metric.Int64Counter
	swept           metric.Int64Counter
	age             metric.Float64Histogram
}

func newMetrics() metrics {
	m := otel.Meter(meterName)
	// Instrument errors only come from invalid names; the no-op instrument returned with one
	// keeps the outbox working.
	pf, _ := m.Int64Counter("leadpipe.ingest.publish_failures", metric.WithUnit("{message}"),
		metric.WithDescription("Publishes to Pub/Sub that failed (the entry stays in the outbox for the sweep), by topic: leads or leads-dlq."))
	sw, _ := m.Int64Counter("leadpipe.ingest.outbox.swept", metric.WithUnit("{entry}"),
		metric.WithDescription("Outbox entries the sweep handled, by result: published, skipped (claimed elsewhere or past the outbox) or failed."))
	age, _ := m.Float64Histogram("leadpipe.ingest.outbox.age", metric.WithUnit("s"),
		metric.WithDescription("Age (since the event was stored) of each entry the sweep found due: unpublished events waiting."),
		metric.WithExplicitBucketBoundaries(30, 60, 120, 300, 600, 1800, 3600, 4*3600, 24*3600))
	return metrics{publishFailures: pf, swept: sw, age: age}
}

func (m metrics) sweptAdd(ctx context.Context, res SweepResult) {
	for result, n := range map[string]int{"published": res.Published, "skipped": res.Skipped, "failed": res.Failed} {
		if n > 0 {
			m.swept.Add(ctx, int64(n), metric.WithAttributes(attribute.String("result", result)))
		}
	}
}

func (m metrics) ages(ctx context.Context, now time.Time, docs []*store.EventDoc) {
	for _, d := range docs {
		if !d.CreatedAt.IsZero() {
			m.age.Record(ctx, now.Sub(d.CreatedAt).Seconds())
		}
	}
}

// destination is the topic a document is published to, as a bounded label.
func destination(doc *store.EventDoc) string {
	if doc.State == store.StateQuarantined {
		return "leads-dlq"
	}
	return "leads"
}

// endSpan ends span, marking it failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
