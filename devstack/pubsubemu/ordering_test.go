package pubsubemu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
)

// concurrency is a push endpoint that holds each push for hold and
// records how many pushes overlap, overall and per ordering key.
type concurrency struct {
	hold time.Duration
	fail func(data string, n int) bool // nack the nth push of data

	mu        sync.Mutex
	active    int
	maxActive int
	perKey    map[string]int
	maxPerKey map[string]int
	order     map[string][]string // data received, by ordering key
	seen      map[string]int
	acked     int
}

func newConcurrency(hold time.Duration) *concurrency {
	return &concurrency{hold: hold, perKey: map[string]int{}, maxPerKey: map[string]int{},
		order: map[string][]string{}, seen: map[string]int{}}
}

func (c *concurrency) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p push
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &p.env); err != nil {
		w.WriteHeader(400)
		return
	}
	key, data := p.env.Message.OrderingKey, string(p.env.Message.Data)
	c.mu.Lock()
	c.active++
	c.maxActive = max(c.maxActive, c.active)
	c.perKey[key]++
	c.maxPerKey[key] = max(c.maxPerKey[key], c.perKey[key])
	c.order[key] = append(c.order[key], data)
	c.seen[data]++
	n := c.seen[data]
	c.mu.Unlock()

	time.Sleep(c.hold)

	c.mu.Lock()
	c.active--
	c.perKey[key]--
	nack := c.fail != nil && c.fail(data, n)
	if !nack {
		c.acked++
	}
	c.mu.Unlock()
	if nack {
		w.WriteHeader(500)
		return
	}
	w.WriteHeader(200)
}

func (c *concurrency) ackedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

func TestOrderingOneOutstandingPerKey(t *testing.T) {
	t.Parallel()
	cl := newClient(t)
	topic := createTopic(t, cl)
	ep := newConcurrency(30 * time.Millisecond)
	ep.fail = func(data string, n int) bool { return data == "a-0" && n <= 2 } // blocks key a
	srv := httptest.NewServer(ep)
	t.Cleanup(srv.Close)
	createSub(t, cl, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(srv.URL), EnableMessageOrdering: true})

	keys := []string{"a", "b", "c", "d"}
	const perKey = 5
	var msgs []*pubsub.Message
	for i := range perKey {
		for _, k := range keys {
			msgs = append(msgs, &pubsub.Message{Data: fmt.Appendf(nil, "%s-%d", k, i), OrderingKey: k})
		}
	}
	publish(t, cl, topic, msgs...)
	eventually(t, 10*time.Second, "all acks", func() bool { return ep.ackedCount() == len(msgs) })

	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, k := range keys {
		if ep.maxPerKey[k] != 1 {
			t.Errorf("key %s: %d pushes in flight at once, want 1", k, ep.maxPerKey[k])
		}
		var want []string
		for i := range perKey {
			want = append(want, fmt.Sprintf("%s-%d", k, i))
			if k == "a" && i == 0 { // nacked twice, redelivered before a-1
				want = append(want, "a-0", "a-0")
			}
		}
		if fmt.Sprint(ep.order[k]) != fmt.Sprint(want) {
			t.Errorf("key %s: received %v, want %v", k, ep.order[k], want)
		}
	}
	if ep.maxActive < 2 {
		t.Errorf("at most %d pushes in flight across keys, want different keys pushed concurrently", ep.maxActive)
	}
}

func TestMaxConcurrentPushes(t *testing.T) {
	t.Parallel()
	const limit = 3
	srv, cl := startPrivate(t, pubsubemu.Options{MaxConcurrentPushes: limit})
	ep := newConcurrency(40 * time.Millisecond)
	hs := httptest.NewServer(ep)
	t.Cleanup(hs.Close)
	topic := createTopic(t, cl)
	sub := createSub(t, cl, &pubsubpb.Subscription{Topic: topic, PushConfig: pushTo(hs.URL)})
	var msgs []*pubsub.Message
	for i := range 30 {
		msgs = append(msgs, &pubsub.Message{Data: fmt.Appendf(nil, "m%d", i)})
	}
	publish(t, cl, topic, msgs...)
	eventually(t, 10*time.Second, "all acks", func() bool { return srv.PushStats(sub).Acked == len(msgs) })
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.maxActive > limit {
		t.Errorf("%d pushes in flight at once, want at most %d", ep.maxActive, limit)
	}
	if ep.maxActive < 2 {
		t.Errorf("at most %d pushes in flight, want concurrency up to %d", ep.maxActive, limit)
	}
}

// startPrivate starts an emulator of the test's own, for options the shared
// one cannot have, and a client dialling it as the client dials an emulator.
func startPrivate(t *testing.T, opts pubsubemu.Options) (*pubsubemu.Server, *pubsub.Client) {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := pubsubemu.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	cl, err := pubsub.NewClient(context.Background(), project,
		option.WithEndpoint(srv.Addr()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return srv, cl
}
