package pubsubemu_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func TestDeadLetterPolicyValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	topic := createTopic(t, c)
	dlq := createTopic(t, c)
	for _, n := range []int32{4, 101, -1} {
		_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: subName(uniq("bad")), Topic: topic,
			DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: dlq, MaxDeliveryAttempts: n},
		})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateSubscription(max_delivery_attempts=%d) error = %v, want InvalidArgument", n, err)
		}
	}
	_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: subName(uniq("bad")), Topic: topic,
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: topicName("missing")},
	})
	if status.Code(err) != codes.NotFound {
		t.Errorf("CreateSubscription(missing dead-letter topic) error = %v, want NotFound", err)
	}

	for _, tc := range []struct{ set, want int32 }{{0, 5}, {5, 5}, {100, 100}} {
		name := createSub(t, c, &pubsubpb.Subscription{Topic: topic,
			DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: dlq, MaxDeliveryAttempts: tc.set}})
		got, err := c.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: name})
		if err != nil {
			t.Fatalf("GetSubscription: %v", err)
		}
		if got.GetDeadLetterPolicy().GetDeadLetterTopic() != dlq || got.GetDeadLetterPolicy().GetMaxDeliveryAttempts() != tc.want {
			t.Errorf("max_delivery_attempts %d: GetSubscription dead_letter_policy = %v, want %s/%d",
				tc.set, got.GetDeadLetterPolicy(), dlq, tc.want)
		}
	}

	name := createSub(t, c, &pubsubpb.Subscription{Topic: topic})
	update := func(n int32) error {
		_, err := c.SubscriptionAdminClient.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{
			Subscription: &pubsubpb.Subscription{Name: name,
				DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: dlq, MaxDeliveryAttempts: n}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dead_letter_policy"}},
		})
		return err
	}
	if err := update(101); status.Code(err) != codes.InvalidArgument {
		t.Errorf("UpdateSubscription(max_delivery_attempts=101) error = %v, want InvalidArgument", err)
	}
	if err := update(7); err != nil {
		t.Fatalf("UpdateSubscription(max_delivery_attempts=7): %v", err)
	}
	list := c.SubscriptionAdminClient.ListSubscriptions(ctx, &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + project})
	found := false
	for {
		s, err := list.Next()
		if err != nil {
			break
		}
		if s.GetName() == name {
			found = true
			if s.GetDeadLetterPolicy().GetMaxDeliveryAttempts() != 7 {
				t.Errorf("ListSubscriptions dead_letter_policy = %v, want max 7", s.GetDeadLetterPolicy())
			}
		}
	}
	if !found {
		t.Errorf("ListSubscriptions did not return %s", name)
	}
}

func TestPushEndpointChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	topic := createTopic(t, c)
	a, b, cc := newEndpoint(t, nil), newEndpoint(t, nil), newEndpoint(t, nil)
	sub := createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(a.URL)})

	publish(t, c, topic, &pubsub.Message{Data: []byte("1")})
	a.waitFor(t, 5*time.Second, "push to A", atLeast(1))

	if err := c.SubscriptionAdminClient.ModifyPushConfig(ctx, &pubsubpb.ModifyPushConfigRequest{
		Subscription: sub, PushConfig: pushTo(b.URL)}); err != nil {
		t.Fatalf("ModifyPushConfig: %v", err)
	}
	publish(t, c, topic, &pubsub.Message{Data: []byte("2")})
	b.waitFor(t, 5*time.Second, "push to B", atLeast(1))

	if _, err := c.SubscriptionAdminClient.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{
		Subscription: &pubsubpb.Subscription{Name: sub, PushConfig: pushTo(cc.URL)},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"push_config"}},
	}); err != nil {
		t.Fatalf("UpdateSubscription(push_config): %v", err)
	}
	publish(t, c, topic, &pubsub.Message{Data: []byte("3")})
	cc.waitFor(t, 5*time.Second, "push to C", atLeast(1))

	// Without an endpoint it is a pull subscription again.
	if err := c.SubscriptionAdminClient.ModifyPushConfig(ctx, &pubsubpb.ModifyPushConfigRequest{
		Subscription: sub, PushConfig: &pubsubpb.PushConfig{}}); err != nil {
		t.Fatalf("ModifyPushConfig(pull): %v", err)
	}
	publish(t, c, topic, &pubsub.Message{Data: []byte("4")})
	if got := receiveN(t, c, sub, 1); string(got[0].Data) != "4" {
		t.Errorf("pulled %q, want %q", got[0].Data, "4")
	}
	for _, tc := range []struct {
		name string
		ep   *endpoint
		want string
	}{{"A", a, "1"}, {"B", b, "2"}, {"C", cc, "3"}} {
		got := tc.ep.received()
		if len(got) != 1 || string(got[0].env.Message.Data) != tc.want {
			t.Errorf("endpoint %s got %d pushes (%v), want exactly message %q", tc.name, len(got), got, tc.want)
		}
	}
}
