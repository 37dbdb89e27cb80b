package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

// ErrNoKey means the message names no event: no idempotency_key attribute and no decodable
// event in its data. Such a message cannot be recorded and is acked.
var ErrNoKey = errors.New("dead-letter message has no idempotency key")

// maxBody bounds a push body: events are small, a megabyte is generous.
const maxBody = 1 << 20

// Intake records dead-letter messages. It is safe for concurrent use.
type Intake struct {
	st      *store.Store
	records metric.Int64Counter
}

// NewIntake returns an Intake writing to st. It creates the leadpipe.dlq.records counter on
// the global meter provider.
func NewIntake(st *store.Store) *Intake { return &Intake{st: st, records: newRecords()} }

// Record upserts the DLQ record of the message's event in one transaction with the event
// document: the first message creates the record (status open, dead_letter_count 1), later
// ones add to the count and refresh the last_* fields. When Pub/Sub dead-lettered an event
// nobody quarantined, the event document moves to quarantined (from a non-terminal state
// only), so a later replay's quarantined -> received transition holds.
func (in *Intake) Record(ctx context.Context, msg pushmsg.Message) (*store.DLQRecord, error) {
	attrs := msg.Attributes
	var ev event.Event
	evErr := json.Unmarshal(msg.Data, &ev)
	key := attrs[pushmsg.AttrIdempotencyKey]
	if key == "" && evErr == nil {
		key = ev.IdempotencyKey
	}
	if key == "" {
		return nil, ErrNoKey
	}
	id := event.DocID(key)
	now := in.st.Now()
	publish := msg.PublishTime
	if publish.IsZero() {
		publish = now
	}
	rec, err := in.st.RecordDeadLetter(ctx, id, func(cur *store.DLQRecord, doc *store.EventDoc) (*store.DLQRecord, *store.Quarantine) {
		return fold(cur, doc, key, attrs, &ev, publish, now)
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// fold is the intake's policy for one message, pure over what the store read: the record to
// store, and a quarantine of the event when the message is about its current delivery (not a
// stale duplicate of one from before the latest replay). The store applies the quarantine only
// to a live event.
func fold(cur *store.DLQRecord, doc *store.EventDoc, key string, attrs map[string]string, ev *event.Event, publish, now time.Time) (*store.DLQRecord, *store.Quarantine) {
	r := ReasonFrom(attrs, doc, publish)
	base := baseRecord(key, attrs, ev, doc)
	base.NormalizedEventRef = store.DocPath(event.DocID(key))
	current := doc == nil || attrs[pushmsg.AttrReplayID] == doc.LastReplayID
	rec := Merge(cur, base, r, now, current)
	if !current {
		return rec, nil
	}
	return rec, &store.Quarantine{Reason: store.Reason{Class: r.Class, Message: r.Message}, By: r.Source}
}

func baseRecord(key string, attrs map[string]string, ev *event.Event, doc *store.EventDoc) store.DLQRecord {
	rec := store.DLQRecord{
		IdempotencyKey: key,
		EventID:        first(attrs[pushmsg.AttrEventID], ev.EventID),
		Source:         first(attrs[pushmsg.AttrSource], ev.Source),
		EventType:      first(attrs[pushmsg.AttrEventType], ev.EventType),
		RawEventRef:    ev.Audit.RawEventRef,
	}
	if doc != nil {
		rec.EventID = first(rec.EventID, doc.EventID)
		rec.Source = first(rec.Source, doc.Source)
		rec.EventType = first(rec.EventType, doc.EventType)
		rec.RawEventRef = first(doc.RawRef, doc.Event.Audit.RawEventRef, rec.RawEventRef)
	}
	return rec
}

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// ServeHTTP is the push endpoint of the leads-dlq subscription. Statuses, chosen because any
// non-2xx makes Pub/Sub redeliver and slows the whole subscription:
//
//	204 recorded (ack)
//	200 malformed envelope or no idempotency key: acked, logged, since redelivery cannot fix it
//	503 the store failed: nack, Pub/Sub redelivers with backoff (the message is not lost)
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := logging.FromContext(ctx)
	env, err := pushmsg.Decode(r.Body, maxBody)
	if err != nil {
		log.WarnContext(ctx, "dlq: malformed push envelope, acking", "error", err.Error())
		w.WriteHeader(http.StatusOK)
		return
	}
	// The record joins the lead's trace; log lines below name it.
	ctx, span := startSpan(ctx, env)
	defer span.End()
	start := time.Now()
	rec, err := in.Record(ctx, env.Message)
	switch {
	case errors.Is(err, ErrNoKey):
		log.WarnContext(ctx, "dlq: message without idempotency key, acking", "message_id", env.Message.MessageID)
		w.WriteHeader(http.StatusOK)
	case err != nil:
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, "record failed")
		log.ErrorContext(ctx, "dlq: record failed, nacking", "message_id", env.Message.MessageID, "error", err.Error())
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
	default:
		in.observe(ctx, span, rec)
		log.InfoContext(ctx, "dlq: recorded", "dlq_id", rec.ID, "message_id", env.Message.MessageID,
			"failure_class", rec.FailureClass, "reason_source", rec.ReasonSource,
			"dead_letter_count", rec.DeadLetterCount, "status", rec.Status, "ms", time.Since(start).Milliseconds())
		w.WriteHeader(http.StatusNoContent)
	}
}
