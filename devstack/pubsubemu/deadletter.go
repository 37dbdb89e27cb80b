package pubsubemu

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Attributes Pub/Sub adds to a message it forwards to a dead-letter topic.
const (
	AttrDeliveryCount      = "CloudPubSubDeadLetterSourceDeliveryCount"
	AttrSourceSubscription = "CloudPubSubDeadLetterSourceSubscription"
	AttrSourceProject      = "CloudPubSubDeadLetterSourceSubscriptionProject"
	AttrSourcePublishTime  = "CloudPubSubDeadLetterSourceTopicPublishTime"
)

// deadLetter publishes msg, delivered attempts times through cfg, to cfg's
// dead-letter topic with Pub/Sub's source attributes, and counts it. The
// caller acks the source message once this succeeds.
func (s *Server) deadLetter(ctx context.Context, cfg *pb.Subscription, msg *pb.PubsubMessage, attempts int32) error {
	project, short := splitSubscription(cfg.GetName())
	attrs := maps.Clone(msg.GetAttributes())
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[AttrDeliveryCount] = strconv.Itoa(int(attempts))
	attrs[AttrSourceSubscription] = short
	attrs[AttrSourceProject] = project
	attrs[AttrSourcePublishTime] = msg.GetPublishTime().AsTime().UTC().Format(time.RFC3339Nano)
	topic := cfg.GetDeadLetterPolicy().GetDeadLetterTopic()
	_, err := s.ps.GServer.Publish(ctx, &pb.PublishRequest{
		Topic: topic,
		Messages: []*pb.PubsubMessage{{
			Data: msg.GetData(), Attributes: attrs, OrderingKey: msg.GetOrderingKey(),
		}},
	})
	if err != nil {
		return fmt.Errorf("dead-letter %s to %s: %w", msg.GetMessageId(), topic, err)
	}
	s.count(cfg.GetName(), func(ps *PushStats) { ps.DeadLettered++ })
	s.log.Debug("pubsubemu: dead-lettered", "subscription", cfg.GetName(), "message_id", msg.GetMessageId(),
		"topic", topic, "attempts", attempts)
	return nil
}

// splitSubscription splits "projects/P/subscriptions/S" into P and S.
func splitSubscription(name string) (project, short string) {
	parts := strings.Split(name, "/")
	if len(parts) == 4 && parts[0] == "projects" && parts[2] == "subscriptions" {
		return parts[1], parts[3]
	}
	return "", name
}
