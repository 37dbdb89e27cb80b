package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/replayer/service"
)

// Tokens of the service under test: alice may read raw payloads, bob may not.
const (
	aliceToken = "tok-alice-0123456789"
	bobToken   = "tok-bob-0123456789"
	// testPIIKey keys the lookup index (ingest writes it with the same key in production).
	testPIIKey = "test-pii-hash-key-0123456789"
)

var (
	env      *devstacktest.Env
	baseURL  string
	st       *store.Store
	psClient *pubsub.Client
	leadsTop string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	env, err = devstacktest.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start emulators:", err)
		return 1
	}
	defer env.Close()
	svc, err := env.Serve(service.Run, map[string]string{
		"AUTH_MODE":            "static",
		"REPLAYER_TOKENS":      aliceToken + "=alice," + bobToken + "=bob",
		"REPLAYER_RAW_READERS": "alice",
		"PUSH_AUTH":            "none",
		"REPLAY_RATE_PER_SEC":  "50",
		"AUTO_REPLAY_COOLDOWN": "1h",
		"PII_HASH_KEY":         testPIIKey,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "replayer:", err)
		return 1
	}
	specProxy := replayerSpec.Proxy(svc.URL)
	defer specProxy.Close()
	baseURL = specProxy.URL
	if err := env.Provision(ctx, devstacktest.Topology{ReplayerURL: baseURL}); err != nil {
		fmt.Fprintln(os.Stderr, "provision:", err)
		return 1
	}
	fs, err := env.FirestoreClient(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer fs.Close()
	var closeOps func() error
	if st, closeOps, err = env.SplitStore(ctx, fs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeOps()
	if psClient, err = env.PubSubClient(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer psClient.Close()
	leadsTop = "projects/" + env.ProjectID + "/topics/leads"

	code := specProxy.Verdict(m.Run())
	if err := svc.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "replayer:", err)
		return 1
	}
	return code
}

// reset clears Firestore between tests.
func reset(t *testing.T) {
	t.Helper()
	if err := env.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// newEvent returns a valid normalized event for key suffix n.
func newEvent(n string) event.Event {
	key := event.IdempotencyKey("demo", event.TypeLeadCreated, "lead-"+n)
	return event.Event{
		SchemaVersion: event.SchemaVersion, EventID: "ev-" + n, EventType: event.TypeLeadCreated,
		Source: "demo", SourceEventID: "lead-" + n, OccurredAt: time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC),
		IdempotencyKey: key,
		Identity:       event.Identity{ContactExternalID: "c-" + n},
		Routing:        event.Routing{CRM: "salesforce", Object: "Lead", UpsertKey: "External_Id__c", Mode: event.ModeUpsert},
		Audit:          event.Audit{ReceivedAt: time.Date(2025, 5, 1, 12, 0, 1, 0, time.UTC), NormalizedEventRef: store.DocPath(event.DocID(key))},
		MappingVersion: "canonical-1", CorrelationID: "corr-" + n,
	}
}

// seed creates the event document in state s with a few recorded attempts.
func seed(t *testing.T, ev event.Event, s store.State, attempts int) string {
	t.Helper()
	doc := &store.EventDoc{
		IdempotencyKey: ev.IdempotencyKey, EventID: ev.EventID, Source: ev.Source, EventType: ev.EventType,
		MappingVersion: ev.MappingVersion, Event: ev, State: s, Attempts: attempts,
		LastAttemptAt: time.Now().UTC(),
	}
	if s == store.StateQuarantined {
		doc.FailureClass, doc.ErrorMessage = failure.Permanent, "crm said 400: INVALID_FIELD"
	}
	ctx := context.Background()
	if err := st.CreateEvent(ctx, doc); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= attempts; i++ {
		if err := st.AddAttempt(ctx, doc.DocID, store.Attempt{Number: i, Fence: int64(i), Owner: "proc-1", Outcome: store.AttemptFailed,
			Class: "permanent", Code: 400, Message: "INVALID_FIELD", StartedAt: time.Now().UTC(), FinishedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	return doc.DocID
}

// processorAttrs are the attributes the processor adds when it quarantines.
func processorAttrs(ev event.Event, class, msg string, attempts int) map[string]string {
	a := baseAttrs(ev)
	a[pushmsg.AttrFailureClass] = class
	a[pushmsg.AttrErrorMessage] = msg
	a[pushmsg.AttrAttemptCount] = fmt.Sprint(attempts)
	a[pushmsg.AttrQuarantinedBy] = "processor"
	a[pushmsg.AttrLastAttemptAt] = time.Now().UTC().Format(time.RFC3339Nano)
	return a
}

// pubsubAttrs are the attributes Pub/Sub adds when it dead-letters.
func pubsubAttrs(ev event.Event, deliveries int) map[string]string {
	a := baseAttrs(ev)
	a[pushmsg.AttrDLSourceDeliveryCount] = fmt.Sprint(deliveries)
	a[pushmsg.AttrDLSourceSubscription] = "leads-processor"
	a[pushmsg.AttrDLSourceSubscriptionProject] = "leadpipe-test"
	a[pushmsg.AttrDLSourceTopicPublishTime] = time.Now().UTC().Format(time.RFC3339Nano)
	return a
}

func baseAttrs(ev event.Event) map[string]string {
	return map[string]string{
		pushmsg.AttrIdempotencyKey: ev.IdempotencyKey, pushmsg.AttrEventID: ev.EventID,
		pushmsg.AttrSource: ev.Source, pushmsg.AttrEventType: ev.EventType,
		pushmsg.AttrSchemaVersion: ev.SchemaVersion, pushmsg.AttrMappingVersion: ev.MappingVersion,
	}
}

// publishDLQ publishes a dead-letter message to leads-dlq with the real client; the emulator
// pushes it to the replayer.
func publishDLQ(t *testing.T, ev event.Event, attrs map[string]string) {
	t.Helper()
	data, _ := json.Marshal(ev)
	p := psClient.Publisher("leads-dlq")
	defer p.Stop()
	if _, err := p.Publish(context.Background(), &pubsub.Message{Data: data, Attributes: attrs}).Get(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// pushDLQ POSTs a push envelope straight to the replayer and returns the status.
func pushDLQ(t *testing.T, ev event.Event, attrs map[string]string, msgID string) int {
	t.Helper()
	data, _ := json.Marshal(ev)
	body, _ := json.Marshal(map[string]any{
		"message": map[string]any{"data": base64.StdEncoding.EncodeToString(data), "attributes": attrs,
			"messageId": msgID, "publishTime": time.Now().UTC().Format(time.RFC3339Nano)},
		"subscription": "projects/leadpipe-test/subscriptions/leads-dlq-replayer",
	})
	resp, err := http.Post(baseURL+"/pubsub/dlq", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// call makes an API request to the shared replayer and decodes the JSON answer into out
// (when not nil).
func call(t *testing.T, method, path, token string, body any, out any) int {
	t.Helper()
	code, _ := callAt(t, baseURL, method, path, token, body, out)
	return code
}

// callAt is call against the replayer at base; it also returns the raw answer body.
func callAt(t *testing.T, base, method, path, token string, body any, out any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, b
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// leadsMessages returns the messages published to leads for an idempotency key.
func leadsMessages(key string) []map[string]string {
	var out []map[string]string
	for _, m := range env.Messages(leadsTop) {
		if m.Attributes[pushmsg.AttrIdempotencyKey] == key {
			out = append(out, m.Attributes)
		}
	}
	return out
}

func getEvent(t *testing.T, id string) *store.EventDoc {
	t.Helper()
	d, err := st.GetEvent(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// setState moves the event to s (succeeded or quarantined) the way the processor does: it
// claims the event and records that verdict. It returns the lease's attempt.
func setState(t *testing.T, id string, s store.State) int {
	t.Helper()
	return process(t, id, s, store.Result{RecordID: "00Q-test"})
}

func process(t *testing.T, id string, s store.State, r store.Result) int {
	t.Helper()
	ctx := context.Background()
	d := getEvent(t, id)
	l, err := st.Claim(ctx, &d.Event, store.LeasePolicy{Owner: "test-processor", TTL: time.Minute, MaxAttempts: 100})
	if err != nil {
		t.Fatalf("claim %s: %v", id, err)
	}
	att := &store.Attempt{Number: l.Attempt, Fence: l.Fence, Owner: l.Owner, Code: r.StatusCode, StartedAt: l.StartedAt}
	switch s {
	case store.StateSucceeded:
		_, err = st.Complete(ctx, l, r, att)
	case store.StateQuarantined:
		_, err = st.Quarantine(ctx, l, store.Reason{Class: failure.Permanent, Message: "crm said 400: INVALID_FIELD"}, att)
	default:
		t.Fatalf("setState %s: not a verdict", s)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", s, id, err)
	}
	return l.Attempt
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
