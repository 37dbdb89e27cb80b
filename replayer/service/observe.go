package service

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/replayer/internal/autoreplay"
	"github.com/leadpipe/leadpipe/replayer/internal/bulk"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
)

// meterName is the OpenTelemetry meter and tracer name of the replayer.
const meterName = "leadpipe/replayer"

// Actor kinds of the leadpipe.replays counter.
const (
	actorOperator = "operator"
	actorAuto     = "auto"
	actorBulk     = "bulk"
)

type actorKindKey struct{}

// withActorKind marks ctx as a replay by kind; unmarked replays are an operator's (the API).
func withActorKind(ctx context.Context, kind string) context.Context {
	return context.WithValue(ctx, actorKindKey{}, kind)
}

func actorKind(ctx context.Context) string {
	if k, ok := ctx.Value(actorKindKey{}).(string); ok {
		return k
	}
	return actorOperator
}

// tracedPublisher publishes replays as producer spans whose traceparent the message carries
// (replacing the caller's), and counts them in leadpipe.replays
// {actor_kind, outcome: published|publish_failed}.
type tracedPublisher struct {
	next    replay.Publisher
	tracer  trace.Tracer
	replays metric.Int64Counter
}

var _ replay.Publisher = (*tracedPublisher)(nil)

func newTracedPublisher(next replay.Publisher) *tracedPublisher {
	// Instrument errors only come from invalid names; the no-op instrument returned with one
	// keeps publishing working.
	c, _ := otel.Meter(meterName).Int64Counter("leadpipe.replays", metric.WithUnit("{replay}"),
		metric.WithDescription("Replays published to leads, by actor kind (operator, auto, bulk) and outcome (published, publish_failed)."))
	return &tracedPublisher{next: next, tracer: otel.Tracer(meterName), replays: c}
}

func (p *tracedPublisher) Publish(ctx context.Context, data []byte, attrs map[string]string, orderingKey string) (string, error) {
	kind := actorKind(ctx)
	ctx, span := p.tracer.Start(ctx, "replay publish", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("messaging.system", "gcp_pubsub"), attribute.String("leadpipe.actor_kind", kind),
		attribute.String("leadpipe.replay_id", attrs[pushmsg.AttrReplayID]), attribute.String("leadpipe.event_id", attrs[pushmsg.AttrEventID])))
	defer span.End()
	out := make(map[string]string, len(attrs)+1)
	for k, v := range attrs {
		out[k] = v
	}
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(out))
	id, err := p.next.Publish(ctx, data, out, orderingKey)
	outcome := "published"
	if err != nil {
		outcome = "publish_failed"
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
	}
	p.replays.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("actor_kind", kind), attribute.String("outcome", outcome)))
	return id, err
}

// kindReplayer marks the replays of bulk jobs or auto-replay with their actor kind, and makes
// each one a span (they run on background goroutines, outside any request).
type kindReplayer struct {
	*replay.Replayer
	kind   string
	tracer trace.Tracer
}

var (
	_ bulk.Replayer       = kindReplayer{}
	_ autoreplay.Replayer = kindReplayer{}
)

func (k kindReplayer) Replay(ctx context.Context, req replay.Request) (*replay.Result, error) {
	ctx, span := k.tracer.Start(withActorKind(ctx, k.kind), k.kind+" replay", trace.WithAttributes(attribute.String("leadpipe.dlq_id", req.ID)))
	defer span.End()
	res, err := k.Replayer.Replay(ctx, req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "replay failed")
	} else if res != nil {
		span.SetAttributes(attribute.String("leadpipe.outcome", res.Outcome))
	}
	return res, err
}
