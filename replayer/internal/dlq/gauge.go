package dlq

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// OpenCounter counts the DLQ records that are open (store.Store.CountOpenDLQ).
type OpenCounter interface {
	CountOpenDLQ(ctx context.Context) (int64, error)
}

// ObserveOpen registers leadpipe.dlq.open, the number of DLQ records with status open, read
// from the store at each metric collection (every 60 s with OTEL_EXPORTER=gcp) by one
// aggregation query. Every replayer instance reports the same number: read it with max. A
// collection whose count fails reports nothing (the alert then sees a gap, not a zero).
func ObserveOpen(meter metric.Meter, st OpenCounter) (metric.Registration, error) {
	g, err := meter.Int64ObservableGauge("leadpipe.dlq.open", metric.WithUnit("{record}"),
		metric.WithDescription("DLQ records with status open (waiting for an operator or auto-replay)."))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := st.CountOpenDLQ(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(g, n)
		return nil
	}, g)
}
