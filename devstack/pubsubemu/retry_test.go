package pubsubemu_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestRetryPolicyBackoff(t *testing.T) {
	t.Parallel()
	const minBackoff, maxBackoff = 200 * time.Millisecond, time.Second
	c := newClient(t)
	topic := createTopic(t, c)
	ep := newEndpoint(t, func(_ push, n int) int {
		if n <= 5 {
			return 503
		}
		return 204
	})
	createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(ep.URL),
		RetryPolicy: &pubsubpb.RetryPolicy{
			MinimumBackoff: durationpb.New(minBackoff),
			MaximumBackoff: durationpb.New(maxBackoff),
		}})
	publish(t, c, topic, &pubsub.Message{Data: []byte("x")})
	got := ep.waitFor(t, 10*time.Second, "six pushes", atLeast(6))
	// Lower bounds only: the nth redelivery starts at least
	// min(minimum_backoff * 2^(n-1), maximum_backoff) after the endpoint
	// answered the nth push.
	want := minBackoff
	for i := 1; i < 6; i++ {
		gap := got[i].at.Sub(got[i-1].end)
		if gap < want {
			t.Errorf("gap before push %d = %v, want >= %v", i+1, gap, want)
		}
		want = min(2*want, maxBackoff)
	}
}

func TestDeadLetterPerSubscription(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topic := createTopic(t, c)
	dlq := createTopic(t, c)
	dlqSub := createSub(t, c, &pubsubpb.Subscription{Topic: dlq})
	failing := newEndpoint(t, func(push, int) int { return 500 })
	flaky := newEndpoint(t, func(_ push, n int) int { // two nacks, then ack
		if n <= 2 {
			return 500
		}
		return 200
	})
	policy := &pubsubpb.DeadLetterPolicy{DeadLetterTopic: dlq, MaxDeliveryAttempts: 5}
	failingSub := createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(failing.URL), DeadLetterPolicy: policy})
	flakySub := createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(flaky.URL), DeadLetterPolicy: policy})

	ids := publish(t, c, topic, &pubsub.Message{Data: []byte("lead"), Attributes: map[string]string{"event_id": "e1"}})
	dead := receiveN(t, c, dlqSub, 1)[0]

	// The failing subscription saw attempts 1..5, then dead-lettered.
	got := failing.received()
	if len(got) != 5 {
		t.Fatalf("failing endpoint got %d pushes, want 5", len(got))
	}
	for i, p := range got {
		if p.env.DeliveryAttempt != i+1 {
			t.Errorf("push %d deliveryAttempt = %d, want %d", i+1, p.env.DeliveryAttempt, i+1)
		}
	}
	wantAttrs := map[string]string{
		"event_id": "e1",
		"CloudPubSubDeadLetterSourceDeliveryCount":       "5",
		"CloudPubSubDeadLetterSourceSubscription":        shortName(failingSub),
		"CloudPubSubDeadLetterSourceSubscriptionProject": project,
	}
	for k, v := range wantAttrs {
		if dead.Attributes[k] != v {
			t.Errorf("dead letter attribute %s = %q, want %q", k, dead.Attributes[k], v)
		}
	}
	pt, err := time.Parse(time.RFC3339, dead.Attributes["CloudPubSubDeadLetterSourceTopicPublishTime"])
	orig, _ := time.Parse(time.RFC3339, got[0].env.Message.PublishTime)
	if err != nil || !pt.Equal(orig) {
		t.Errorf("CloudPubSubDeadLetterSourceTopicPublishTime = %q (%v), want %v",
			dead.Attributes["CloudPubSubDeadLetterSourceTopicPublishTime"], err, orig)
	}
	if string(dead.Data) != "lead" {
		t.Errorf("dead letter data = %q, want %q", dead.Data, "lead")
	}
	if st := emu.PushStats(failingSub); st.DeadLettered != 1 || st.Delivered != 5 || st.Acked != 0 {
		t.Errorf("failing PushStats = %+v, want 5 deliveries, 1 dead-lettered", st)
	}

	// The other subscription of the topic counts its own attempts.
	fgot := flaky.waitFor(t, 5*time.Second, "three pushes", atLeast(3))
	for i, p := range fgot {
		if p.env.DeliveryAttempt != i+1 || p.env.Message.MessageID != ids[0] {
			t.Errorf("flaky push %d = attempt %d of %s, want attempt %d of %s",
				i+1, p.env.DeliveryAttempt, p.env.Message.MessageID, i+1, ids[0])
		}
	}
	eventually(t, 5*time.Second, "flaky ack", func() bool { return emu.PushStats(flakySub).Acked == 1 })
	time.Sleep(300 * time.Millisecond)
	if st := emu.PushStats(flakySub); st.DeadLettered != 0 || st.Delivered != 3 {
		t.Errorf("flaky PushStats = %+v, want 3 deliveries, no dead letter", st)
	}
	if n := len(failing.received()); n != 5 {
		t.Errorf("failing endpoint got %d pushes after dead-lettering, want 5", n)
	}
	if dlqMsgs := emu.Messages(dlq); len(dlqMsgs) != 1 {
		t.Errorf("dead-letter topic holds %d messages, want 1", len(dlqMsgs))
	}
}

func TestDeadLetterPull(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topic := createTopic(t, c)
	dlq := createTopic(t, c)
	dlqSub := createSub(t, c, &pubsubpb.Subscription{Topic: dlq})
	src := createSub(t, c, &pubsubpb.Subscription{Topic: topic,
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: dlq}}) // 0 means 5
	// A second pull subscription on the topic, not consumed: it must not
	// count against src.
	createSub(t, c, &pubsubpb.Subscription{Topic: topic,
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: dlq}})
	publish(t, c, topic, &pubsub.Message{Data: []byte("x")})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var attempts []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		receiveN(t, c, dlqSub, 1)
		cancel()
	}()
	err := c.Subscriber(src).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.DeliveryAttempt != nil {
			attempts = append(attempts, *m.DeliveryAttempt)
		} else {
			attempts = append(attempts, 0)
		}
		m.Nack()
	})
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	if got, want := fmt.Sprint(attempts), "[1 2 3 4 5]"; got != want {
		t.Errorf("pull delivery attempts = %s, want %s", got, want)
	}
	dl := emu.Messages(dlq)
	if len(dl) != 1 || dl[0].Attributes["CloudPubSubDeadLetterSourceDeliveryCount"] != strconv.Itoa(5) {
		t.Errorf("dead letters = %+v, want one with delivery count 5", dl)
	}
}

func TestPushBackoffWithoutRetryPolicy(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topic := createTopic(t, c)
	ep := newEndpoint(t, func(_ push, n int) int {
		if n <= 3 {
			return 500
		}
		return 200
	})
	createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(ep.URL)})
	publish(t, c, topic, &pubsub.Message{Data: []byte("x")})
	got := ep.waitFor(t, 5*time.Second, "four pushes", atLeast(4))
	// No retry policy: redelivered as soon as the subscription's push
	// backoff (100 ms, doubling, capped at 200 ms in these tests) ends.
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond} {
		if gap := got[i+1].at.Sub(got[i].end); gap < want {
			t.Errorf("gap before push %d = %v, want >= %v", i+2, gap, want)
		}
	}
}
