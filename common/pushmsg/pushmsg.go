// Package pushmsg holds the Pub/Sub push envelope and the message attributes of the pipeline.
package pushmsg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/leadpipe/leadpipe/common/event"
)

// Message attributes set on every normalized event published to `leads` (and `leads-dlq`).
const (
	AttrIdempotencyKey = "idempotency_key"
	AttrEventID        = "event_id"
	AttrSource         = "source"
	AttrEventType      = "event_type"
	AttrSchemaVersion  = "schema_version"
	AttrMappingVersion = "mapping_version"
	AttrCorrelationID  = "correlation_id"
	AttrTraceparent    = "traceparent"
	AttrReplayID       = "replay_id"
	// AttrDocVersion is the update time of the event document as the publisher just created
	// it (FormatVersion), set only on that first publish: the processor claims with it as an
	// update-time precondition, in one commit (store.ClaimFirst).
	AttrDocVersion = "doc_version"
)

// FormatVersion formats a document update time for AttrDocVersion (RFC 3339, nanoseconds).
func FormatVersion(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseVersion parses AttrDocVersion; the zero time when absent or malformed (the claim then
// takes its transactional path).
func ParseVersion(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Attributes the processor (and ingest, for unusable payloads) adds when it quarantines an
// event to `leads-dlq`. Their values are the shared vocabulary of common/store (vocab.go) and
// common/failure, never free strings.
const (
	// AttrFailureClass is a failure.Class.
	AttrFailureClass = "failure_class"
	// AttrErrorMessage is the operator-facing reason, without personal data.
	AttrErrorMessage = "error_message"
	// AttrAttemptCount is the processor's own attempt counter (decimal).
	AttrAttemptCount    = "attempt_count"
	AttrFirstReceivedAt = "first_received_at" // RFC 3339
	AttrLastAttemptAt   = "last_attempt_at"   // RFC 3339
	// AttrReason is the typed cause (store.ReasonCode, e.g. "no_match"), when there is one.
	AttrReason = "reason"
	// AttrQuarantinedBy is the store.Origin of the quarantine: store.ByProcessor or
	// store.ByIngest. A message Pub/Sub dead-lettered on its own carries none (it has the
	// CloudPubSubDeadLetter* attributes instead); the replayer then records store.ByPubSub,
	// or store.ByEvent when the reason comes from the event document.
	AttrQuarantinedBy = "quarantined_by"
)

// Attributes real Pub/Sub adds when it dead-letters a message.
const (
	AttrDLSourceDeliveryCount       = "CloudPubSubDeadLetterSourceDeliveryCount"
	AttrDLSourceSubscription        = "CloudPubSubDeadLetterSourceSubscription"
	AttrDLSourceSubscriptionProject = "CloudPubSubDeadLetterSourceSubscriptionProject"
	AttrDLSourceTopicPublishTime    = "CloudPubSubDeadLetterSourceTopicPublishTime"
)

// Envelope is the JSON body Pub/Sub POSTs to a push endpoint.
type Envelope struct {
	Message      Message `json:"message"`
	Subscription string  `json:"subscription"`
	// DeliveryAttempt is present only when the subscription has a dead-letter policy, and is
	// approximate: treat it as a hint.
	DeliveryAttempt *int `json:"deliveryAttempt,omitempty"`
}

// Message is the pushed message. Pub/Sub sends both messageId and message_id (and both
// publishTime spellings); either is accepted.
type Message struct {
	Data        []byte            `json:"data,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	MessageID   string            `json:"messageId,omitempty"`
	PublishTime time.Time         `json:"publishTime,omitzero"`
	OrderingKey string            `json:"orderingKey,omitempty"`
}

// UnmarshalJSON accepts both spellings of the id and the publish time.
func (m *Message) UnmarshalJSON(b []byte) error {
	var raw struct {
		Data         []byte            `json:"data"`
		Attributes   map[string]string `json:"attributes"`
		MessageID    string            `json:"messageId"`
		MessageID2   string            `json:"message_id"`
		PublishTime  string            `json:"publishTime"`
		PublishTime2 string            `json:"publish_time"`
		OrderingKey  string            `json:"orderingKey"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = Message{Data: raw.Data, Attributes: raw.Attributes, MessageID: raw.MessageID, OrderingKey: raw.OrderingKey}
	if m.MessageID == "" {
		m.MessageID = raw.MessageID2
	}
	pt := raw.PublishTime
	if pt == "" {
		pt = raw.PublishTime2
	}
	if pt != "" {
		t, err := time.Parse(time.RFC3339Nano, pt)
		if err != nil {
			return fmt.Errorf("publishTime: %w", err)
		}
		m.PublishTime = t
	}
	return nil
}

// ErrMalformed means the body is not a usable push envelope. Push handlers ack it (retrying
// cannot fix it) and record it.
var ErrMalformed = errors.New("malformed push envelope")

// Decode reads a push envelope from r (at most limit bytes) and checks it has a message id.
func Decode(r io.Reader, limit int64) (*Envelope, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", ErrMalformed, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrMalformed, limit)
	}
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.Message.MessageID == "" {
		return nil, fmt.Errorf("%w: no message id", ErrMalformed)
	}
	return &env, nil
}

// Attempt returns the delivery attempt hint, or 0 when absent.
func (e *Envelope) Attempt() int {
	if e.DeliveryAttempt == nil {
		return 0
	}
	return *e.DeliveryAttempt
}

// EventAttributes are the message attributes of a normalized event on `leads` (and
// `leads-dlq`): those of the design brief, traceparent from the span in ctx, and replay_id when
// replayID is not empty. Empty values are left out.
func EventAttributes(ctx context.Context, ev *event.Event, replayID string) map[string]string {
	a := map[string]string{
		AttrIdempotencyKey: ev.IdempotencyKey,
		AttrEventID:        ev.EventID,
		AttrSource:         ev.Source,
		AttrEventType:      ev.EventType,
		AttrSchemaVersion:  ev.SchemaVersion,
		AttrMappingVersion: ev.MappingVersion,
		AttrCorrelationID:  ev.CorrelationID,
		AttrReplayID:       replayID,
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	a[AttrTraceparent] = carrier.Get("traceparent")
	for k, v := range a {
		if v == "" {
			delete(a, k)
		}
	}
	return a
}
