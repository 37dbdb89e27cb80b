// Package dlq publishes quarantined events to the leads-dlq topic with the failure attributes
// the replayer reads (pushmsg.AttrFailureClass and friends).
package dlq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

// Message is what to dead-letter: the original data and attributes, and the verdict.
type Message struct {
	Data            []byte
	Attributes      map[string]string
	FailureClass    failure.Class
	ErrorMessage    string // no personal data
	Reason          store.ReasonCode
	AttemptCount    int
	FirstReceivedAt time.Time
	LastAttemptAt   time.Time
}

// FromDoc fills the verdict fields from a quarantined event document.
func FromDoc(data []byte, attrs map[string]string, doc store.EventDoc) Message {
	first := doc.CreatedAt
	if first.IsZero() {
		first = doc.FirstAttemptAt
	}
	return Message{Data: data, Attributes: attrs, FailureClass: doc.FailureClass, ErrorMessage: doc.ErrorMessage,
		Reason: doc.Reason, AttemptCount: doc.Attempts, FirstReceivedAt: first, LastAttemptAt: doc.LastAttemptAt}
}

// Publisher publishes to one topic; safe for concurrent use.
type Publisher struct {
	p *pubsub.Publisher
}

// New returns a Publisher on topic (an id or a full name).
func New(c *pubsub.Client, topic string) *Publisher {
	return &Publisher{p: c.Publisher(topic)}
}

// Stop flushes and stops the publisher.
func (p *Publisher) Stop() { p.p.Stop() }

// Publish sends m and waits for the server's id. Failures are retryable.
func (p *Publisher) Publish(ctx context.Context, m Message) (string, error) {
	attrs := make(map[string]string, len(m.Attributes)+6)
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	attrs[pushmsg.AttrFailureClass] = string(m.FailureClass)
	attrs[pushmsg.AttrErrorMessage] = m.ErrorMessage
	attrs[pushmsg.AttrAttemptCount] = strconv.Itoa(m.AttemptCount)
	attrs[pushmsg.AttrQuarantinedBy] = string(store.ByProcessor)
	if m.Reason != "" {
		attrs[pushmsg.AttrReason] = string(m.Reason)
	}
	if !m.FirstReceivedAt.IsZero() {
		attrs[pushmsg.AttrFirstReceivedAt] = m.FirstReceivedAt.UTC().Format(time.RFC3339Nano)
	}
	if !m.LastAttemptAt.IsZero() {
		attrs[pushmsg.AttrLastAttemptAt] = m.LastAttemptAt.UTC().Format(time.RFC3339Nano)
	}
	id, err := p.p.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: attrs}).Get(ctx)
	if err != nil {
		return "", fmt.Errorf("publish dlq: %w", failure.Wrap(failure.Retryable, err, "dlq publish failed"))
	}
	return id, nil
}
