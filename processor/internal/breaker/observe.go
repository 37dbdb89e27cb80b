package breaker

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/leadpipe/leadpipe/common/store"
)

// StateValue is the gauge value of a state: 0 closed, 1 half-open, 2 open.
func StateValue(state store.CRMState) int64 {
	switch state {
	case store.CRMOpen:
		return 2
	case store.CRMHalfOpen:
		return 1
	}
	return 0
}

// Observe reports the state of each breaker as the gauge leadpipe.crm.breaker.state {crm}
// (see StateValue) every time meter's reader collects. Unregister the returned registration
// when the breakers go away (a service that stops), or the gauge keeps reporting them.
func Observe(meter metric.Meter, bs ...*Breaker) (metric.Registration, error) {
	g, err := meter.Int64ObservableGauge("leadpipe.crm.breaker.state", metric.WithUnit("{state}"),
		metric.WithDescription("Circuit breaker state of each CRM: 0 closed, 1 half-open, 2 open."))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, b := range bs {
			o.ObserveInt64(g, StateValue(b.State()), metric.WithAttributes(attribute.String("crm", b.name)))
		}
		return nil
	}, g)
}
