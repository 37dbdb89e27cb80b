package pubsubemu_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
)

func TestPushEnvelope(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topic := createTopic(t, c)
	dlq := createTopic(t, c)
	plainEP := newEndpoint(t, nil)
	dlqEP := newEndpoint(t, nil)
	plain := createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(plainEP.URL), EnableMessageOrdering: true})
	withDLQ := createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(dlqEP.URL),
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: dlq, MaxDeliveryAttempts: 5}})

	before := time.Now().Add(-time.Second)
	ids := publish(t, c, topic,
		&pubsub.Message{Data: []byte("hello \x00 world"), Attributes: map[string]string{"k1": "v1", "k2": "v2"}, OrderingKey: "contact-1"},
		&pubsub.Message{Data: []byte("bare")},
	)

	got := plainEP.waitFor(t, 5*time.Second, "two pushes", atLeast(2))
	byID := map[string]push{}
	for _, p := range got {
		byID[p.env.Message.MessageID] = p
	}
	first, ok := byID[ids[0]]
	if !ok {
		t.Fatalf("no push for message %s; got %v", ids[0], got)
	}
	if ct := first.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	msg := first.fields["message"].(map[string]any)
	want := map[string]any{
		"data":         base64.StdEncoding.EncodeToString([]byte("hello \x00 world")),
		"attributes":   map[string]any{"k1": "v1", "k2": "v2"},
		"messageId":    ids[0],
		"message_id":   ids[0],
		"orderingKey":  "contact-1",
		"publishTime":  msg["publishTime"],
		"publish_time": msg["publishTime"],
	}
	if fmt.Sprint(msg) != fmt.Sprint(want) {
		t.Errorf("message = %v\nwant      %v", msg, want)
	}
	pt, err := time.Parse(time.RFC3339Nano, first.env.Message.PublishTime)
	if err != nil || pt.Before(before) || pt.After(time.Now()) {
		t.Errorf("publishTime = %q (%v), want an RFC 3339 time of the publish", first.env.Message.PublishTime, err)
	}
	if first.fields["subscription"] != plain {
		t.Errorf("subscription = %v, want %s", first.fields["subscription"], plain)
	}
	if _, ok := first.fields["deliveryAttempt"]; ok {
		t.Errorf("deliveryAttempt present without a dead-letter policy: %s", first.raw)
	}
	if len(first.fields) != 2 {
		t.Errorf("envelope keys = %v, want message and subscription only", first.fields)
	}

	bare := byID[ids[1]].fields["message"].(map[string]any)
	for _, k := range []string{"attributes", "orderingKey"} {
		if _, ok := bare[k]; ok {
			t.Errorf("empty %s not omitted: %v", k, bare)
		}
	}

	dlqGot := dlqEP.waitFor(t, 5*time.Second, "two pushes", atLeast(2))
	for _, p := range dlqGot {
		if p.fields["deliveryAttempt"] != float64(1) {
			t.Errorf("deliveryAttempt with a dead-letter policy = %v, want 1", p.fields["deliveryAttempt"])
		}
		if p.env.Subscription != withDLQ {
			t.Errorf("subscription = %s, want %s", p.env.Subscription, withDLQ)
		}
	}
}

func TestAckStatuses(t *testing.T) {
	t.Parallel()
	for _, code := range []int{102, 200, 201, 202, 204} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			c := newClient(t)
			topic := createTopic(t, c)
			ep := newEndpoint(t, func(push, int) int { return code })
			sub := createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(ep.URL)})
			publish(t, c, topic, &pubsub.Message{Data: []byte("x")})
			eventually(t, 5*time.Second, "ack", func() bool { return emu.PushStats(sub).Acked == 1 })
			time.Sleep(300 * time.Millisecond) // a redelivery would come at once
			if st := emu.PushStats(sub); st.Delivered != 1 || st.Nacked != 0 {
				t.Errorf("PushStats = %+v, want one delivery, acked", st)
			}
			if n := len(ep.received()); n != 1 {
				t.Errorf("endpoint got %d pushes, want 1", n)
			}
		})
	}
}

func TestNackRedelivers(t *testing.T) {
	t.Parallel()
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close() // connections to it are refused

	cases := []struct {
		name string
		code int // of the first answer; 0: connection refused
	}{
		{"500", 500}, {"400", 400}, {"429", 429}, {"404", 404}, {"302", 302},
		{"timeout", hang}, // PushTimeout is 1s
		{"connection refused", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t)
			topic := createTopic(t, c)
			ep := newEndpoint(t, func(_ push, n int) int {
				if n == 1 {
					return tc.code
				}
				return 200
			})
			url := ep.URL
			if tc.code == 0 {
				url = refusedURL
			}
			sub := createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(url)})
			ids := publish(t, c, topic, &pubsub.Message{Data: []byte("x")})
			if tc.code == 0 {
				eventually(t, 5*time.Second, "two nacks", func() bool { return emu.PushStats(sub).Nacked >= 2 })
				if st := emu.PushStats(sub); st.Acked != 0 {
					t.Errorf("PushStats = %+v, want no ack", st)
				}
				return
			}
			got := ep.waitFor(t, 5*time.Second, "redelivery", atLeast(2))
			for _, p := range got {
				if p.env.Message.MessageID != ids[0] {
					t.Errorf("pushed message %s, want %s", p.env.Message.MessageID, ids[0])
				}
			}
			eventually(t, 5*time.Second, "ack", func() bool { return emu.PushStats(sub).Acked == 1 })
			if st := emu.PushStats(sub); st.Nacked != 1 || st.Delivered != 2 {
				t.Errorf("PushStats = %+v, want 2 deliveries, 1 nack, 1 ack", st)
			}
		})
	}
}

// TestAckDeadlineIsPushTimeout uses Pub/Sub's default ack deadline of 10 s
// (no Options.PushTimeout): an endpoint that does not answer in time is
// abandoned and the message redelivered.
func TestAckDeadlineIsPushTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 10 s ack deadline")
	}
	t.Parallel()
	srv, c := startPrivate(t, pubsubemu.Options{})
	var mu sync.Mutex
	var waited []time.Duration
	var calls int
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the client going away
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		start := time.Now()
		if first {
			select { // hold the push until the emulator gives up
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
		}
		mu.Lock()
		waited = append(waited, time.Since(start))
		mu.Unlock()
		w.WriteHeader(200)
	}))
	t.Cleanup(hs.Close)
	topic := createTopic(t, c)
	sub := createSub(t, c, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(hs.URL)})
	publish(t, c, topic, &pubsub.Message{Data: []byte("x")})
	eventually(t, 20*time.Second, "ack after a timeout", func() bool { return srv.PushStats(sub).Acked == 1 })
	mu.Lock()
	defer mu.Unlock()
	if st := srv.PushStats(sub); st.Nacked != 1 || st.Delivered != 2 {
		t.Errorf("PushStats = %+v, want 2 deliveries, 1 nack (timeout), 1 ack", st)
	}
	if waited[0] < 9500*time.Millisecond {
		t.Errorf("first push abandoned after %v, want about the 10 s ack deadline", waited[0])
	}
}
