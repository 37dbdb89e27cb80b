// Package provision creates the pipeline's Pub/Sub topics and subscriptions and its raw bucket
// on the emulators exactly as infra/ (Terraform) creates them in the cloud. devstack up and the
// test harness both call it, so local runs and tests see the production topology.
package provision

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Names of the subscriptions, as in infra/pubsub.tf.
const (
	ProcessorSubscription = "leads-processor"
	ReplayerSubscription  = "leads-dlq-replayer"
	ProcessorPushPath     = "/pubsub/push"
	ReplayerPushPath      = "/pubsub/dlq"
)

// Topology describes what to create. Zero fields take the production values.
type Topology struct {
	ProjectID  string
	LeadsTopic string // default "leads"
	DLQTopic   string // default "leads-dlq"
	// ProcessorURL is the processor's base URL; the push endpoint is ProcessorURL+/pubsub/push.
	// Empty: the subscription is created as a pull subscription.
	ProcessorURL string
	// ReplayerURL is the replayer's base URL; the push endpoint is ReplayerURL+/pubsub/dlq.
	ReplayerURL string
	// AckDeadline for the processor subscription (its push request timeout). Default 60 s.
	AckDeadline time.Duration
	// MinBackoff and MaxBackoff form the processor subscription's retry policy. Default 2 s..60 s.
	MinBackoff, MaxBackoff time.Duration
	// MaxDeliveryAttempts before Pub/Sub dead-letters to DLQTopic. Default 10.
	MaxDeliveryAttempts int
}

func (t *Topology) defaults() {
	if t.LeadsTopic == "" {
		t.LeadsTopic = "leads"
	}
	if t.DLQTopic == "" {
		t.DLQTopic = "leads-dlq"
	}
	if t.AckDeadline == 0 {
		t.AckDeadline = 60 * time.Second
	}
	if t.MinBackoff == 0 {
		t.MinBackoff = 2 * time.Second
	}
	if t.MaxBackoff == 0 {
		t.MaxBackoff = 60 * time.Second
	}
	if t.MaxDeliveryAttempts == 0 {
		t.MaxDeliveryAttempts = 10
	}
}

// PubSub creates the topics and subscriptions, or updates the push endpoints of existing ones.
func PubSub(ctx context.Context, c *pubsub.Client, t Topology) error {
	t.defaults()
	topic := func(n string) string { return "projects/" + t.ProjectID + "/topics/" + n }
	sub := func(n string) string { return "projects/" + t.ProjectID + "/subscriptions/" + n }
	for _, n := range []string{t.LeadsTopic, t.DLQTopic} {
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topic(n)}); err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("create topic %s: %w", n, err)
		}
	}
	subs := []*pb.Subscription{
		{
			Name:                  sub(ProcessorSubscription),
			Topic:                 topic(t.LeadsTopic),
			AckDeadlineSeconds:    int32(t.AckDeadline / time.Second),
			EnableMessageOrdering: true,
			RetryPolicy: &pb.RetryPolicy{
				MinimumBackoff: durationpb.New(t.MinBackoff),
				MaximumBackoff: durationpb.New(t.MaxBackoff),
			},
			DeadLetterPolicy: &pb.DeadLetterPolicy{
				DeadLetterTopic:     topic(t.DLQTopic),
				MaxDeliveryAttempts: int32(t.MaxDeliveryAttempts),
			},
			PushConfig: pushConfig(t.ProcessorURL, ProcessorPushPath),
		},
		{
			Name:               sub(ReplayerSubscription),
			Topic:              topic(t.DLQTopic),
			AckDeadlineSeconds: 30,
			RetryPolicy: &pb.RetryPolicy{
				MinimumBackoff: durationpb.New(10 * time.Second),
				MaximumBackoff: durationpb.New(600 * time.Second),
			},
			PushConfig: pushConfig(t.ReplayerURL, ReplayerPushPath),
		},
	}
	for _, s := range subs {
		_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, s)
		if status.Code(err) == codes.AlreadyExists {
			err = c.SubscriptionAdminClient.ModifyPushConfig(ctx, &pb.ModifyPushConfigRequest{
				Subscription: s.Name, PushConfig: s.PushConfig,
			})
		}
		if err != nil {
			return fmt.Errorf("create subscription %s: %w", s.Name, err)
		}
	}
	return nil
}

func pushConfig(base, path string) *pb.PushConfig {
	if base == "" {
		return nil
	}
	return &pb.PushConfig{PushEndpoint: strings.TrimSuffix(base, "/") + path}
}
