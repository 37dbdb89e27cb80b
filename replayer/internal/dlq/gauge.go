package dlq

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/leadpipe/leadpipe/common/store"
)

// OpenCounter counts the DLQ records that are open and the events that are parked
// (store.Store).
type OpenCounter interface {
	CountOpenDLQ(ctx context.Context) (int64, error)
	CountEvents(ctx context.Context, state store.State, since time.Time) (int64, error)
}

// ObserveOpen registers leadpipe.dlq.open, the number of DLQ records with status open, and
// leadpipe.events.parked, the number of events parked behind an open circuit (acked, so Pub/Sub's
// unacked-age alert no longer sees them), read from the store at each metric collection (every
// 60 s with OTEL_EXPORTER=gcp) by one aggregation query each. Every replayer instance reports
// the same numbers: read them with max. A collection whose count fails reports nothing for it
// (the alert then sees a gap, not a zero).
func ObserveOpen(meter metric.Meter, st OpenCounter) (metric.Registration, error) {
	g, err := meter.Int64ObservableGauge("leadpipe.dlq.open", metric.WithUnit("{record}"),
		metric.WithDescription("DLQ records with status open (waiting for an operator or auto-replay)."))
	if err != nil {
		return nil, err
	}
	parked, err := meter.Int64ObservableGauge("leadpipe.events.parked", metric.WithUnit("{event}"),
		metric.WithDescription("Events parked while their CRM's circuit is open, waiting for the drain."))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := st.CountOpenDLQ(ctx)
		if err == nil {
			o.ObserveInt64(g, n)
		}
		p, perr := st.CountEvents(ctx, store.StateParked, time.Time{})
		if perr == nil {
			o.ObserveInt64(parked, p)
		}
		return errors.Join(err, perr)
	}, g, parked)
}
