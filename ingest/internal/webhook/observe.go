package webhook

import (
	"context"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// MeterName is the OpenTelemetry meter (and tracer) name of the ingest service.
const MeterName = "leadpipe/ingest"

// Span attributes of a delivery (on the request's server span). No personal data: the source
// name, the answer, how many events the delivery carried and the sender's correlation token.
const (
	AttrSource        = "leadpipe.source"
	AttrStatus        = "leadpipe.status"
	AttrEvents        = "leadpipe.events"
	AttrCorrelationID = "leadpipe.correlation_id"
)

// Keys of the gin context through which Receive hands its outcome to observe.
const (
	keyStatus = "leadpipe.status"
	keyEvents = "leadpipe.events"
)

// metrics are the instruments of the handler, created once with it.
type metrics struct {
	deliveries metric.Int64Counter
	latency    metric.Float64Histogram
}

func newMetrics() metrics {
	m := otel.Meter(MeterName)
	// Instrument errors only come from invalid names; the no-op instrument returned with one
	// keeps the handler working.
	deliveries, _ := m.Int64Counter("leadpipe.ingest.deliveries", metric.WithUnit("{delivery}"),
		metric.WithDescription("Webhook deliveries by source and answer: accepted, duplicate, quarantined or rejected_<HTTP status>."))
	latency, _ := m.Float64Histogram("leadpipe.ingest.latency", metric.WithUnit("ms"),
		metric.WithDescription("Time from receiving a webhook delivery to answering it, publish included."),
		metric.WithExplicitBucketBoundaries(5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000))
	return metrics{deliveries: deliveries, latency: latency}
}

// observe records a finished delivery: the deliveries counter, the latency histogram and the
// attributes of the request's span. The source label is "unknown" for paths that name no
// configured source, so a scanner cannot grow the label set.
func (h *Handler) observe(c *gin.Context, start time.Time) {
	source := c.Param("source")
	if _, ok := h.sources[source]; !ok {
		source = "unknown"
	}
	status := c.GetString(keyStatus)
	if status == "" {
		status = "rejected_" + strconv.Itoa(c.Writer.Status())
	}
	ctx := context.WithoutCancel(c.Request.Context())
	src := attribute.String("source", source)
	h.metrics.deliveries.Add(ctx, 1, metric.WithAttributes(src, attribute.String("status", status)))
	h.metrics.latency.Record(ctx, float64(time.Since(start))/float64(time.Millisecond), metric.WithAttributes(src))
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(AttrSource, source), attribute.String(AttrStatus, status),
		attribute.Int(AttrEvents, c.GetInt(keyEvents)))
}
