package pubsubemu_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestPublishLimits publishes through the official client over each of Pub/Sub's documented
// limits (and exactly at them): over one, the publish fails INVALID_ARGUMENT and nothing is
// published; at one, it succeeds.
func TestPublishLimits(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	id := uniq("limits")
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName(id)}); err != nil {
		t.Fatal(err)
	}
	attrs := func(n, keyLen, valLen int) map[string]string {
		m := map[string]string{}
		for i := range n {
			k := fmt.Sprintf("k%03d", i)
			k += strings.Repeat("k", max(0, keyLen-len(k)))
			m[k] = strings.Repeat("v", valLen)
		}
		return m
	}
	pub := c.Publisher(id)
	pub.EnableMessageOrdering = true
	defer pub.Stop()
	for _, tc := range []struct {
		name    string
		msg     *pubsub.Message
		wantErr string // substring of the message; "" = accepted
	}{
		{"ordering key at 1 KB", &pubsub.Message{Data: []byte("x"), OrderingKey: strings.Repeat("o", 1024)}, ""},
		{"ordering key over 1 KB", &pubsub.Message{Data: []byte("x"), OrderingKey: strings.Repeat("o", 1025)}, "ordering key"},
		{"100 attributes", &pubsub.Message{Data: []byte("x"), Attributes: attrs(100, 4, 1)}, ""},
		{"101 attributes", &pubsub.Message{Data: []byte("x"), Attributes: attrs(101, 4, 1)}, "Too many attributes"},
		{"attribute key at 256 B", &pubsub.Message{Data: []byte("x"), Attributes: attrs(1, 256, 1)}, ""},
		{"attribute key over 256 B", &pubsub.Message{Data: []byte("x"), Attributes: attrs(1, 257, 1)}, "attribute key"},
		{"attribute value at 1024 B", &pubsub.Message{Data: []byte("x"), Attributes: attrs(1, 4, 1024)}, ""},
		{"attribute value over 1024 B", &pubsub.Message{Data: []byte("x"), Attributes: attrs(1, 4, 1025)}, "attribute value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(emu.Messages(topicName(id)))
			_, err := pub.Publish(ctx, tc.msg).Get(ctx)
			if tc.msg.OrderingKey != "" {
				pub.ResumePublish(tc.msg.OrderingKey)
			}
			after := len(emu.Messages(topicName(id)))
			if tc.wantErr == "" {
				if err != nil || after != before+1 {
					t.Fatalf("publish: %v (%d -> %d messages), want accepted", err, before, after)
				}
				return
			}
			checkInvalid(t, err, tc.wantErr)
			if after != before {
				t.Errorf("a refused publish stored %d messages", after-before)
			}
		})
	}

	// The client itself refuses messages over its MaxPublishRequestBytes before sending; the
	// server's own checks are reached through the generated client, as any other client would.
	raw := func(msgs ...*pubsubpb.PubsubMessage) error {
		_, err := c.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{Topic: topicName(id), Messages: msgs})
		return err
	}
	before := len(emu.Messages(topicName(id)))
	checkInvalid(t, raw(&pubsubpb.PubsubMessage{Data: make([]byte, 10_000_001)}), "exceeds the limit")
	six := make([]byte, 6_000_000)
	checkInvalid(t, raw(&pubsubpb.PubsubMessage{Data: six}, &pubsubpb.PubsubMessage{Data: six}), "Request payload size exceeds the limit: 10000000 bytes")
	var many []*pubsubpb.PubsubMessage
	for range 1001 {
		many = append(many, &pubsubpb.PubsubMessage{Data: []byte("m")})
	}
	checkInvalid(t, raw(many...), "maximum value is 1000")
	if n := len(emu.Messages(topicName(id))) - before; n != 0 {
		t.Errorf("refused requests stored %d messages", n)
	}
	if err := raw(many[:1000]...); err != nil {
		t.Errorf("1000 messages in one request: %v, want accepted", err)
	}
	if err := raw(&pubsubpb.PubsubMessage{Data: make([]byte, 9_000_000)}); err != nil {
		t.Errorf("a 9 MB message: %v, want accepted", err)
	}
}

func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("publish accepted, want INVALID_ARGUMENT (%s)", want)
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) || se.GRPCStatus().Code() != codes.InvalidArgument {
		t.Fatalf("publish error %v, want INVALID_ARGUMENT", err)
	}
	if !strings.Contains(se.GRPCStatus().Message(), want) {
		t.Errorf("message %q does not say %q", se.GRPCStatus().Message(), want)
	}
}
