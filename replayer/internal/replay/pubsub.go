package replay

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"

	"github.com/leadpipe/leadpipe/common/failure"
)

// TopicPublisher publishes to one topic with message ordering enabled, so a replayed event
// keeps its place among the same contact's events.
type TopicPublisher struct {
	p *pubsub.Publisher
}

var _ Publisher = (*TopicPublisher)(nil)

// NewTopicPublisher returns a publisher on topic (an id or a full name). Stop it when done.
func NewTopicPublisher(c *pubsub.Client, topic string) *TopicPublisher {
	p := c.Publisher(topic)
	p.EnableMessageOrdering = true
	return &TopicPublisher{p: p}
}

// Publish publishes one message and waits for its server id. After a failure the ordering key
// is resumed, so the next replay of the same contact is not refused by the client.
func (t *TopicPublisher) Publish(ctx context.Context, data []byte, attrs map[string]string, orderingKey string) (string, error) {
	id, err := t.p.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs, OrderingKey: orderingKey}).Get(ctx)
	if err != nil {
		if orderingKey != "" {
			t.p.ResumePublish(orderingKey)
		}
		return "", fmt.Errorf("publish: %w", failure.Wrap(failure.Retryable, err, "pubsub publish"))
	}
	return id, nil
}

// Stop flushes and stops the publisher.
func (t *TopicPublisher) Stop() { t.p.Stop() }
