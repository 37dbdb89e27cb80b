package pubsubemu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
)

const project = "test-project"

// emu is shared by the tests, reached through PUBSUB_EMULATOR_HOST the
// way production code reaches it. Each test uses its own topics.
var emu *pubsubemu.Server

func TestMain(m *testing.M) {
	srv, err := pubsubemu.Start(context.Background(), pubsubemu.Options{
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxPushBackoff: 200 * time.Millisecond,
		PushTimeout:    time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr())
	emu = srv
	code := m.Run()
	srv.Close()
	os.Exit(code)
}

var seq atomic.Int64

// uniq returns a resource id unique in this test binary.
func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func topicName(id string) string { return "projects/" + project + "/topics/" + id }
func subName(id string) string   { return "projects/" + project + "/subscriptions/" + id }

func newClient(t *testing.T) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(context.Background(), project)
	if err != nil {
		t.Fatalf("pubsub.NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// createTopic creates a uniquely named topic and returns its full name.
func createTopic(t *testing.T, c *pubsub.Client) string {
	t.Helper()
	name := topicName(uniq("topic"))
	if _, err := c.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: name}); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	return name
}

// createSub creates sub, naming it uniquely when it has no name, and returns
// its full name.
func createSub(t *testing.T, c *pubsub.Client, sub *pubsubpb.Subscription) string {
	t.Helper()
	if sub.Name == "" {
		sub.Name = subName(uniq("sub"))
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(context.Background(), sub); err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	return sub.Name
}

func pushTo(url string) *pubsubpb.PushConfig { return &pubsubpb.PushConfig{PushEndpoint: url} }

// publish publishes msgs in order and returns their ids.
func publish(t *testing.T, c *pubsub.Client, topic string, msgs ...*pubsub.Message) []string {
	t.Helper()
	p := c.Publisher(topic)
	p.EnableMessageOrdering = true
	defer p.Stop()
	var results []*pubsub.PublishResult
	for _, m := range msgs {
		results = append(results, p.Publish(context.Background(), m))
	}
	var ids []string
	for _, r := range results {
		id, err := r.Get(context.Background())
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		ids = append(ids, id)
	}
	return ids
}

// push is one request received by an endpoint.
type push struct {
	at     time.Time // the handler started
	end    time.Time // the handler chose its answer
	header http.Header
	raw    []byte
	env    envelope
	fields map[string]any // the raw JSON, to check which keys are present
}

type envelope struct {
	Message struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		MessageID2  string            `json:"message_id"`
		PublishTime string            `json:"publishTime"`
		Publish2    string            `json:"publish_time"`
		OrderingKey string            `json:"orderingKey"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int    `json:"deliveryAttempt"`
}

// endpoint is a push endpoint that records what it receives and answers
// with whatever respond returns (200 when respond is nil).
type endpoint struct {
	*httptest.Server
	respond func(p push, n int) int // n: 1-based count of pushes of this message id

	mu     sync.Mutex
	pushes []push
	byID   map[string]int
	notify chan struct{}
}

func newEndpoint(t *testing.T, respond func(p push, n int) int) *endpoint {
	e := &endpoint{respond: respond, byID: map[string]int{}, notify: make(chan struct{}, 1)}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	p := push{at: time.Now(), header: r.Header.Clone()}
	p.raw, _ = io.ReadAll(r.Body)
	if err := json.Unmarshal(p.raw, &p.env); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	json.Unmarshal(p.raw, &p.fields)
	e.mu.Lock()
	e.byID[p.env.Message.MessageID]++
	n := e.byID[p.env.Message.MessageID]
	idx := len(e.pushes)
	e.pushes = append(e.pushes, p)
	e.mu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
	code := http.StatusOK
	if e.respond != nil {
		code = e.respond(p, n)
	}
	if code == hang {
		time.Sleep(1500 * time.Millisecond) // longer than the tests' PushTimeout
		code = http.StatusOK
	}
	e.mu.Lock()
	e.pushes[idx].end = time.Now()
	e.mu.Unlock()
	w.WriteHeader(code)
}

// hang, returned by an endpoint's respond, makes it answer 200 only after
// the push timed out.
const hang = -1

// received returns a copy of the pushes so far.
func (e *endpoint) received() []push {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]push(nil), e.pushes...)
}

// waitFor waits until cond holds for the pushes received, or fails the
// test after timeout.
func (e *endpoint) waitFor(t *testing.T, timeout time.Duration, what string, cond func([]push) bool) []push {
	t.Helper()
	deadline := time.After(timeout)
	for {
		got := e.received()
		if cond(got) {
			return got
		}
		select {
		case <-e.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s; got %d pushes", timeout, what, len(got))
		}
	}
}

func atLeast(n int) func([]push) bool { return func(p []push) bool { return len(p) >= n } }

// eventually polls cond until it holds or fails the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiveN pulls n messages from sub with the official client, acking them.
func receiveN(t *testing.T, c *pubsub.Client, sub string, n int) []*pubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []*pubsub.Message
	err := c.Subscriber(sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if len(got) == n {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < n {
		t.Fatalf("received %d messages from %s, want %d", len(got), sub, n)
	}
	return got
}

func shortName(full string) string { return full[strings.LastIndex(full, "/")+1:] }
