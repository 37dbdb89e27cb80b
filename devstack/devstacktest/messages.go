package devstacktest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"cloud.google.com/go/pubsub/v2"

	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
)

// Messages returns, oldest first, every message published to topic ("leads", or the full
// "projects/P/topics/T"), dead-lettered copies included. Embedded mode asks the emulator;
// elsewhere a recording pull subscription created by Provision (or Record) is drained first,
// so only messages published after it was created are seen.
func (e *Env) Messages(topic string) []pubsubemu.Message {
	full := e.topicName(topic)
	if e.PubSub != nil {
		return e.PubSub.Messages(full)
	}
	ms, err := e.rec.messages(full)
	if err != nil {
		panic(fmt.Sprintf("devstacktest: messages of %s: %v", full, err))
	}
	return ms
}

// Record starts recording topic for Messages (outside embedded mode; a no-op there).
// Provision records the leads and DLQ topics.
func (e *Env) Record(ctx context.Context, topic string) error {
	if e.rec == nil {
		return nil
	}
	if topic == "" {
		return fmt.Errorf("record: empty topic")
	}
	return e.rec.record(ctx, e.topicName(topic))
}

func (e *Env) topicName(topic string) string {
	if strings.HasPrefix(topic, "projects/") {
		return topic
	}
	return "projects/" + e.ProjectID + "/topics/" + topic
}

// recorder keeps, per topic, a pull subscription and what was drained from it.
type recorder struct {
	env  *Env
	mu   sync.Mutex
	c    *pubsub.Client
	subs map[string]string // topic -> subscription
	got  map[string][]pubsubemu.Message
	seen map[string]bool // message ids
}

func (r *recorder) client(ctx context.Context) (*pubsub.Client, error) {
	if r.c == nil {
		c, err := r.env.PubSubClient(ctx)
		if err != nil {
			return nil, err
		}
		r.c, r.got, r.seen = c, map[string][]pubsubemu.Message{}, map[string]bool{}
	}
	return r.c, nil
}

func (r *recorder) record(ctx context.Context, topic string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.subs[topic]; ok {
		return nil
	}
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	name := "projects/" + r.env.ProjectID + "/subscriptions/devstacktest-record-" + topic[strings.LastIndex(topic, "/")+1:]
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: name, Topic: topic, AckDeadlineSeconds: 60})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("recording subscription for %s: %w", topic, err)
	}
	r.subs[topic] = name
	return nil
}

// messages drains the topic's recording subscription (pulls until one comes back empty) and
// returns everything recorded so far, in publish order.
func (r *recorder) messages(topic string) ([]pubsubemu.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sub, ok := r.subs[topic]
	if !ok {
		return nil, fmt.Errorf("topic %s is not recorded: call Provision or Record before publishing", topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := r.c.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: sub, MaxMessages: 1000, ReturnImmediately: true}) //nolint:staticcheck // the emulators honour it
		if err != nil {
			return nil, err
		}
		if len(resp.ReceivedMessages) == 0 {
			break
		}
		var ids []string
		for _, rm := range resp.ReceivedMessages {
			m := rm.GetMessage()
			attrs := make(map[string]string, len(m.GetAttributes()))
			for k, v := range m.GetAttributes() {
				attrs[k] = v
			}
			ids = append(ids, rm.GetAckId())
			if r.seen[m.GetMessageId()] {
				continue // a redelivery, not a second publish
			}
			r.seen[m.GetMessageId()] = true
			r.got[topic] = append(r.got[topic], pubsubemu.Message{
				ID: m.GetMessageId(), Topic: topic, Data: m.GetData(), Attributes: attrs,
				OrderingKey: m.GetOrderingKey(), PublishTime: m.GetPublishTime().AsTime(),
			})
		}
		if err := r.c.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: ids}); err != nil {
			return nil, err
		}
	}
	out := append([]pubsubemu.Message(nil), r.got[topic]...)
	// Pulls need not come back in publish order.
	sortByPublishTime(out)
	return out, nil
}

func (r *recorder) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c != nil {
		r.c.Close()
	}
}

func sortByPublishTime(ms []pubsubemu.Message) {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].PublishTime.Before(ms[j].PublishTime) })
}
