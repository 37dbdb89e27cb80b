package service_test

import (
	"github.com/leadpipe/leadpipe/common/pii"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry/telemetrytest"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/service"
)

var (
	env  *devstacktest.Env
	fake *fakecrm.Server
	ps   *pubsub.Client
	st   *store.Store
)

const dlqPull = "leads-dlq-test-pull"

func TestMain(m *testing.M) {
	ctx := context.Background()
	// Recording providers for the telemetry tests; service.Run's telemetry.Setup leaves them.
	rec = telemetrytest.Install()
	var err error
	if env, err = devstacktest.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if fake, err = fakecrm.Start(fakecrm.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if ps, err = env.PubSubClient(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fs, err := env.FirestoreClient(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var closeOps func() error
	if st, closeOps, err = env.SplitStore(ctx, fs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer closeOps()
	if err := env.Provision(ctx, devstacktest.Topology{}); err != nil {
		fmt.Fprintln(os.Stderr, "provision:", err)
		os.Exit(1)
	}
	if _, err := ps.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{
		Name: "projects/" + env.ProjectID + "/subscriptions/" + dlqPull, Topic: "projects/" + env.ProjectID + "/topics/leads-dlq",
	}); err != nil {
		fmt.Fprintln(os.Stderr, "dlq pull subscription:", err)
		os.Exit(1)
	}
	code := m.Run()
	rec.Close()
	fs.Close()
	ps.Close()
	fake.Close()
	env.Close()
	os.Exit(code)
}

// startProcessor runs service.Run on a port-0 server and returns its URL.
func startProcessor(t testing.TB, overrides map[string]string) string {
	t.Helper()
	vars := map[string]string{
		"PUSH_AUTH":                "none",
		"SALESFORCE_INSTANCE_URL":  fake.URL(),
		"SALESFORCE_TOKEN_URL":     fake.URL() + "/services/oauth2/token",
		"SALESFORCE_CLIENT_ID":     "id",
		"SALESFORCE_CLIENT_SECRET": "secret",
		"HUBSPOT_BASE_URL":         fake.URL(),
		"HUBSPOT_ACCESS_TOKEN":     "pat",
		"WEBHOOK_CRM_URL":          fake.URL() + "/webhook",
		"CRM_RATE_PER_SEC":         "500",
		"RETRY_SPACING":            "100ms",
		"BREAKER_COOLDOWN":         "1s",
		"LEASE_DURATION":           "6s",
		"PROCESS_BUDGET":           "4s",
		"LOG_LEVEL":                "error",
	}
	for k, v := range overrides {
		vars[k] = v
	}
	svc, err := env.Serve(service.Run, vars)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("service.Run: %v", err)
		}
	})
	return svc.URL
}

// pushTo points the leads push subscription at url with short test backoffs.
func pushTo(t testing.TB, url string) {
	t.Helper()
	if err := env.Provision(context.Background(), devstacktest.Topology{ProcessorURL: url, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, AckDeadline: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
}

var seq atomic.Int64

// newEvent returns a valid salesforce event for contact ext.
func newEvent(ext string) *event.Event {
	n := seq.Add(1)
	now := time.Now().UTC()
	return &event.Event{
		SchemaVersion: event.SchemaVersion, EventID: fmt.Sprintf("evt-%d-%d", now.UnixNano(), n), EventType: event.TypeLeadCreated,
		Source: "e2e", OccurredAt: now, IdempotencyKey: event.IdempotencyKey("e2e", event.TypeLeadCreated, fmt.Sprintf("%s-%d-%d", ext, now.UnixNano(), n)),
		Identity:       event.Identity{ContactExternalID: ext, Email: ext + "@example.com"},
		Attributes:     map[string]string{"first_name": "Ada", "last_name": "Lovelace", "company": "Engines"},
		Routing:        event.Routing{CRM: "salesforce", Object: "Lead", UpsertKey: "External_Id__c", Mode: event.ModeUpsert},
		MappingVersion: "e2e@1", CorrelationID: fmt.Sprintf("corr-%d", n),
	}
}

func attrs(ev *event.Event) map[string]string {
	return map[string]string{
		pushmsg.AttrIdempotencyKey: ev.IdempotencyKey, pushmsg.AttrEventID: ev.EventID, pushmsg.AttrSource: ev.Source,
		pushmsg.AttrEventType: ev.EventType, pushmsg.AttrSchemaVersion: ev.SchemaVersion,
		pushmsg.AttrMappingVersion: ev.MappingVersion, pushmsg.AttrCorrelationID: ev.CorrelationID,
	}
}

// publish sends ev to leads like ingest does: data, attributes, ordering key.
func publish(t testing.TB, evs ...*event.Event) {
	t.Helper()
	p := ps.Publisher("leads")
	p.EnableMessageOrdering = true
	defer p.Stop()
	var rs []*pubsub.PublishResult
	for _, ev := range evs {
		data, _ := json.Marshal(ev)
		rs = append(rs, p.Publish(context.Background(), &pubsub.Message{Data: data, Attributes: attrs(ev), OrderingKey: ev.ContactKey(e2eHasher)}))
	}
	for _, r := range rs {
		if _, err := r.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// envelope is the push body for ev as Pub/Sub would send it.
func envelope(ev *event.Event, msgID string) []byte {
	data, _ := json.Marshal(ev)
	b, _ := json.Marshal(map[string]any{
		"message":      map[string]any{"data": data, "attributes": attrs(ev), "messageId": msgID, "message_id": msgID, "publishTime": time.Now().UTC().Format(time.RFC3339Nano)},
		"subscription": "projects/" + env.ProjectID + "/subscriptions/leads-processor",
	})
	return b
}

type pushAnswer struct {
	Status  int
	Outcome string `json:"outcome"`
}

func post(t testing.TB, url string, body []byte) pushAnswer {
	t.Helper()
	resp, err := http.Post(url+"/pubsub/push", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return pushAnswer{}
	}
	defer resp.Body.Close()
	a := pushAnswer{Status: resp.StatusCode}
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return a
}

func doc(t testing.TB, ev *event.Event) *store.EventDoc {
	t.Helper()
	d, err := st.GetEvent(context.Background(), event.DocID(ev.IdempotencyKey))
	if err != nil {
		return nil
	}
	return d
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitState(t testing.TB, d time.Duration, evs []*event.Event, want store.State) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%d events %s", len(evs), want), func() bool {
		for _, ev := range evs {
			if dd := doc(t, ev); dd == nil || dd.State != want {
				return false
			}
		}
		return true
	})
}

func reset(t *testing.T) {
	t.Helper()
	fake.Reset()
	if err := env.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestThreeDeliveriesOneRecord(t *testing.T) {
	reset(t)
	pushTo(t, startProcessor(t, nil))
	var evs []*event.Event
	for i := range 12 {
		evs = append(evs, newEvent(fmt.Sprintf("three-%d", i)))
	}
	for range 3 {
		publish(t, evs...)
	}
	waitState(t, 60*time.Second, evs, store.StateSucceeded)
	for _, ev := range evs {
		ext := ev.Identity.ContactExternalID
		if got := fake.CreateCount(ext); got != 1 {
			t.Errorf("CreateCount(%s): got %d, want 1", ext, got)
		}
		d := doc(t, ev)
		if d.CRMRecordID == "" || d.ResultFence != d.Fence || d.CRMStatusCode != 201 && d.CRMStatusCode != 200 {
			t.Errorf("%s result: record %q fence %d/%d status %d", ext, d.CRMRecordID, d.ResultFence, d.Fence, d.CRMStatusCode)
		}
	}
	if got := len(fake.Records()); got != len(evs) {
		t.Errorf("records: got %d, want %d", got, len(evs))
	}
	// Give the two extra deliveries of each event time to arrive; they must stay duplicates.
	time.Sleep(time.Second)
	for _, ev := range evs {
		if got := fake.CreateCount(ev.Identity.ContactExternalID); got != 1 {
			t.Errorf("CreateCount(%s) later: got %d, want 1", ev.Identity.ContactExternalID, got)
		}
	}
}

func TestConcurrentInstancesSameEvent(t *testing.T) {
	reset(t)
	a := startProcessor(t, map[string]string{"INSTANCE_ID": "a"})
	b := startProcessor(t, map[string]string{"INSTANCE_ID": "b"})
	fake.SetFaults(fakecrm.Faults{LatencyMS: 300})
	for i := range 5 {
		ev := newEvent(fmt.Sprintf("concurrent-%d", i))
		body := envelope(ev, fmt.Sprintf("m-%d", i))
		var wg sync.WaitGroup
		answers := make([]pushAnswer, 2)
		for j, u := range []string{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); answers[j] = post(t, u, body) }()
		}
		wg.Wait()
		ok, contended := 0, 0
		for _, an := range answers {
			switch {
			case an.Status == 200 && an.Outcome == "succeeded":
				ok++
			case an.Status == 429 && an.Outcome == "lease_held", an.Status == 200 && an.Outcome == "duplicate":
			case !env.Embedded() && an.Status == 503:
				// Google's Firestore emulator locks pessimistically: the losing claim can wait
				// out its lock or the processing budget and nack (store_unavailable, failed).
				contended++
			default:
				t.Errorf("event %d: unexpected answer %+v", i, an)
			}
		}
		// Redeliver as Pub/Sub would until one succeeds: a claim whose commit landed after its
		// caller gave up holds the lease (429 lease_held) until LEASE_DURATION (6 s) passes.
		for deadline := time.Now().Add(20 * time.Second); ok == 0 && contended > 0 && time.Now().Before(deadline); {
			if got := post(t, a, body); got.Status == 200 && got.Outcome == "succeeded" {
				ok++
			} else {
				time.Sleep(500 * time.Millisecond)
			}
		}
		if ok != 1 {
			t.Errorf("event %d: got %d succeeded answers %+v, want exactly 1", i, ok, answers)
		}
		if got := post(t, a, body); got.Outcome != "duplicate" || got.Status != 200 {
			t.Errorf("event %d redelivered: got %+v, want 200 duplicate", i, got)
		}
		if got := fake.CreateCount(ev.Identity.ContactExternalID); got != 1 {
			t.Errorf("event %d: CreateCount got %d, want 1", i, got)
		}
	}
}

func TestLeaseExpiresMidFlight(t *testing.T) {
	reset(t)
	over := map[string]string{"LEASE_DURATION": "1s", "PROCESS_BUDGET": "6s"}
	over["INSTANCE_ID"] = "slow"
	a := startProcessor(t, over)
	over["INSTANCE_ID"] = "late"
	b := startProcessor(t, over)
	fake.SetFaults(fakecrm.Faults{LatencyMS: 2000})
	ev := newEvent("lease-expiry")
	body := envelope(ev, "m-lease")
	first := make(chan pushAnswer, 1)
	go func() { first <- post(t, a, body) }()
	waitFor(t, 5*time.Second, "first claim", func() bool { d := doc(t, ev); return d != nil && d.Fence == 1 })
	time.Sleep(1200 * time.Millisecond) // past the 1 s lease; the first holder is still in the CRM call
	second := post(t, b, body)
	got := <-first
	if got.Status == 200 {
		t.Errorf("superseded holder: got %+v, want a nack (its fence was taken over)", got)
	}
	if second.Status != 200 || second.Outcome != "succeeded" {
		t.Errorf("taking-over holder: got %+v, want 200 succeeded", second)
	}
	d := doc(t, ev)
	if d.State != store.StateSucceeded || d.ResultFence != 2 || d.Attempts != 2 {
		t.Errorf("doc: state %s result_fence %d attempts %d, want succeeded/2/2", d.State, d.ResultFence, d.Attempts)
	}
	if n := fake.CreateCount("lease-expiry"); n != 1 {
		t.Errorf("CreateCount: got %d, want 1", n)
	}
	hist, err := st.Attempts(context.Background(), d.DocID)
	if err != nil || len(hist) != 2 {
		t.Fatalf("attempt history: got %d entries (%v), want 2", len(hist), err)
	}
	outcomes := map[store.AttemptOutcome]bool{hist[0].Outcome: true, hist[1].Outcome: true}
	if !outcomes["succeeded"] || !outcomes["superseded"] {
		t.Errorf("attempt outcomes: got %+v, want succeeded and superseded", hist)
	}
}

var e2eHasher, _ = pii.NewHasher([]byte(devstacktest.TestPIIHashKey))
