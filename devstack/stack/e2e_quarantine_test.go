package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/devstack/provision"
	processor "github.com/leadpipe/leadpipe/processor/service"
)

// These tests hold on both emulator kinds. Google's Pub/Sub emulator pushes envelopes with no
// deliveryAttempt and no orderingKey, and never dead-letters an ordered subscription, so the
// processor's own attempt counter must quarantine by itself, once.

// startProcessor runs an extra processor with the stack's configuration plus overrides and
// returns its base URL.
func startProcessor(t *testing.T, overrides map[string]string) string {
	t.Helper()
	vars := st.ServiceEnv()
	for k, v := range overrides {
		vars[k] = v
	}
	srv, err := server.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- processor.Run(ctx, config.MapLookuper(vars), srv) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("extra processor: %v", err)
		}
	})
	eventually(t, 30*time.Second, "extra processor ready", func() (bool, string) {
		resp, err := http.Get(srv.URL() + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return srv.URL()
}

// dlqWatch is a pull subscription on leads-dlq created before the test publishes, to count
// the DLQ messages of one idempotency key.
type dlqWatch struct {
	c    *pubsub.Client
	name string
}

func watchDLQ(t *testing.T) *dlqWatch {
	t.Helper()
	c, err := pubsub.NewClient(t.Context(), st.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	w := &dlqWatch{c: c, name: fmt.Sprintf("projects/%s/subscriptions/e2e-dlq-watch-%d", st.ProjectID, time.Now().UnixNano())}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(t.Context(), &pb.Subscription{
		Name: w.name, Topic: "projects/" + st.ProjectID + "/topics/leads-dlq", AckDeadlineSeconds: 60,
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.SubscriptionAdminClient.DeleteSubscription(context.Background(), &pb.DeleteSubscriptionRequest{Subscription: w.name})
		c.Close()
	})
	return w
}

// count pulls everything for settle (messages keep arriving while the emulator pushes) and
// returns the messages carrying key.
func (w *dlqWatch) count(t *testing.T, key string, settle time.Duration) []*pb.PubsubMessage {
	t.Helper()
	var out []*pb.PubsubMessage
	deadline := time.Now().Add(settle)
	for time.Now().Before(deadline) {
		resp, err := w.c.SubscriptionAdminClient.Pull(t.Context(), &pb.PullRequest{Subscription: w.name, MaxMessages: 100, ReturnImmediately: true}) //nolint:staticcheck // the emulators honour it
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, rm := range resp.ReceivedMessages {
			ids = append(ids, rm.GetAckId())
			if rm.GetMessage().GetAttributes()[pushmsg.AttrIdempotencyKey] == key {
				out = append(out, rm.GetMessage())
			}
		}
		if len(ids) > 0 {
			if err := w.c.SubscriptionAdminClient.Acknowledge(t.Context(), &pb.AcknowledgeRequest{Subscription: w.name, AckIds: ids}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		time.Sleep(200 * time.Millisecond)
	}
	return out
}

// dlqRecord waits for the replayer's DLQ record of the event and checks it is listed once.
func dlqRecord(t *testing.T, id string) map[string]any {
	t.Helper()
	eventually(t, 30*time.Second, "DLQ record "+id+" in the replayer", func() (bool, string) {
		code, body := api(t, http.MethodGet, "/v1/dlq?status=open", nil, st.ReplayerToken)
		if code != 200 {
			return false, fmt.Sprint(code, body)
		}
		recs, _ := body["records"].([]any)
		n := 0
		for _, r := range recs {
			if r.(map[string]any)["id"] == id {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("event %s listed %d times in the DLQ", id, n)
		}
		return n == 1, fmt.Sprintf("%d records", len(recs))
	})
	code, body := api(t, http.MethodGet, "/v1/dlq/"+id, nil, st.ReplayerToken)
	if code != 200 {
		t.Fatalf("GET /v1/dlq/%s: %d %v", id, code, body)
	}
	rec, _ := body["record"].(map[string]any)
	return rec
}

var evSeq int

// e2eEvent is a normalized salesforce event as ingest would publish it.
func e2eEvent(name string) *event.Event {
	evSeq++
	now := time.Now().UTC()
	id := fmt.Sprintf("%s-%d-%d", name, now.UnixNano(), evSeq)
	return &event.Event{
		SchemaVersion: event.SchemaVersion, EventID: "evt-" + id, EventType: event.TypeLeadCreated,
		Source: "demo", OccurredAt: now, IdempotencyKey: event.IdempotencyKey("demo", event.TypeLeadCreated, id),
		Identity:       event.Identity{ContactExternalID: "c-" + id, Email: "lead@example.com"},
		Attributes:     map[string]string{"first_name": "Ada", "last_name": "Lovelace", "company": "Engines"},
		Routing:        event.Routing{CRM: "salesforce", Object: "Lead", UpsertKey: "External_Lead_Id__c", Mode: event.ModeUpsert},
		MappingVersion: "e2e@1", CorrelationID: "corr-" + id,
	}
}

func eventAttrs(ev *event.Event) map[string]string {
	return map[string]string{
		pushmsg.AttrIdempotencyKey: ev.IdempotencyKey, pushmsg.AttrEventID: ev.EventID, pushmsg.AttrSource: ev.Source,
		pushmsg.AttrEventType: ev.EventType, pushmsg.AttrSchemaVersion: ev.SchemaVersion,
		pushmsg.AttrMappingVersion: ev.MappingVersion, pushmsg.AttrCorrelationID: ev.CorrelationID,
	}
}

// TestE2E_TwelveDeliveriesWithoutAttemptQuarantineOnce pushes one message twelve times the way
// Google's Pub/Sub emulator does (no deliveryAttempt, no orderingKey) while the CRM fails
// every call retryably. The processor's own counter must quarantine it exactly once, at
// MAX_ATTEMPTS: one DLQ message, one DLQ record with the reason, and no CRM write afterwards
// even once the CRM is healthy again.
func TestE2E_TwelveDeliveriesWithoutAttemptQuarantineOnce(t *testing.T) {
	const maxAttempts = 8
	// A high breaker threshold keeps every delivery reaching the CRM (an open circuit answers
	// before the claim and does not count an attempt).
	proc := startProcessor(t, map[string]string{
		"MAX_ATTEMPTS": fmt.Sprint(maxAttempts), "BREAKER_THRESHOLD": "1000", "RETRY_SPACING": "20ms",
	})
	watch := watchDLQ(t)
	s := pipelineStore(t)
	st.CRM.SetFaults(fakecrm.Faults{ErrorRate: 1})
	t.Cleanup(func() { st.CRM.SetFaults(fakecrm.Faults{}) })

	ev := e2eEvent("twelve")
	data, _ := json.Marshal(ev)
	msgID := fmt.Sprint(time.Now().UnixNano())
	body, _ := json.Marshal(map[string]any{
		"message": map[string]any{
			"data": data, "attributes": eventAttrs(ev), "messageId": msgID, "message_id": msgID,
			"publishTime": time.Now().UTC().Format(time.RFC3339Nano),
		},
		"subscription": "projects/" + st.ProjectID + "/subscriptions/" + provision.ProcessorSubscription,
	})
	if bytes.Contains(body, []byte("deliveryAttempt")) || bytes.Contains(body, []byte("orderingKey")) {
		t.Fatal("the envelope must look like Google's emulator's")
	}
	var statuses []int
	var outcomes []string
	for i := 1; i <= 12; i++ {
		if i == maxAttempts+1 {
			st.CRM.SetFaults(fakecrm.Faults{}) // healthy again: a late redelivery must still not write
		}
		resp, err := http.Post(proc+provision.ProcessorPushPath, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		var a struct {
			Outcome string `json:"outcome"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		statuses, outcomes = append(statuses, resp.StatusCode), append(outcomes, a.Outcome)
	}
	for i, code := range statuses {
		ack := code >= 200 && code < 300
		if want := i+1 >= maxAttempts; ack != want {
			t.Errorf("delivery %d: %d %s; want ack=%v (quarantine at the %dth)", i+1, code, outcomes[i], want, maxAttempts)
		}
	}
	if outcomes[maxAttempts-1] != "quarantined" {
		t.Errorf("delivery %d outcome %q, want quarantined; all: %v", maxAttempts, outcomes[maxAttempts-1], outcomes)
	}
	quarantines := 0
	for _, o := range outcomes {
		if o == "quarantined" {
			quarantines++
		}
	}
	if quarantines != 1 {
		t.Errorf("%d quarantines, want 1: %v", quarantines, outcomes)
	}
	id := event.DocID(ev.IdempotencyKey)
	d, err := s.GetEvent(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.StateQuarantined || d.Attempts != maxAttempts || d.FailureClass != "retryable" {
		t.Errorf("event: state %s, attempts %d, class %s; want quarantined after %d retryable attempts", d.State, d.Attempts, d.FailureClass, maxAttempts)
	}
	rec := dlqRecord(t, id)
	if rec["failure_class"] != "retryable" || !strings.Contains(fmt.Sprint(rec["error_message"]), fmt.Sprintf("gave up after %d attempts", maxAttempts)) {
		t.Errorf("DLQ record reason: %v / %v", rec["failure_class"], rec["error_message"])
	}
	if msgs := watch.count(t, ev.IdempotencyKey, 2*time.Second); len(msgs) != 1 {
		t.Errorf("%d DLQ messages for the event, want exactly 1", len(msgs))
	}
	if n := st.CRM.CreateCount(ev.Identity.ContactExternalID); n != 0 {
		t.Errorf("CRM creates = %d, want 0 (every call failed, and a quarantined event is not retried)", n)
	}
}

// TestE2E_PermanentFailureQuarantinedOnOrderedAndPlainSubscriptions: a CRM 400 ends in the
// replayer's DLQ with its reason through the production (ordered) subscription, where Google's
// emulator would never dead-letter, and through a plain push subscription.
func TestE2E_PermanentFailureQuarantinedOnOrderedAndPlainSubscriptions(t *testing.T) {
	s := pipelineStore(t)
	t.Run("ordered", func(t *testing.T) {
		watch := watchDLQ(t)
		failNext(t, 1)
		l := newLead("perm-ordered")
		if code, body := sendLead(t, l); code != 202 {
			t.Fatalf("send: %d %v", code, body)
		}
		checkPermanent(t, s, watch, demoKey(l), l.Identity.ContactExternalID)
	})
	t.Run("plain", func(t *testing.T) {
		watch := watchDLQ(t)
		c, err := pubsub.NewClient(t.Context(), st.ProjectID)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		topic := fmt.Sprintf("leads-plain-%d", time.Now().UnixNano())
		proj := "projects/" + st.ProjectID
		if _, err := c.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: proj + "/topics/" + topic}); err != nil {
			t.Fatal(err)
		}
		sub := proj + "/subscriptions/" + topic + "-processor"
		if _, err := c.SubscriptionAdminClient.CreateSubscription(t.Context(), &pb.Subscription{
			Name: sub, Topic: proj + "/topics/" + topic, AckDeadlineSeconds: 30,
			DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: proj + "/topics/leads-dlq", MaxDeliveryAttempts: 5},
			PushConfig:       &pb.PushConfig{PushEndpoint: st.ProcessorURL + provision.ProcessorPushPath},
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = c.SubscriptionAdminClient.DeleteSubscription(context.Background(), &pb.DeleteSubscriptionRequest{Subscription: sub})
		})
		failNext(t, 1)
		ev := e2eEvent("perm-plain")
		data, _ := json.Marshal(ev)
		p := c.Publisher(topic)
		defer p.Stop()
		if _, err := p.Publish(t.Context(), &pubsub.Message{Data: data, Attributes: eventAttrs(ev)}).Get(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkPermanent(t, s, watch, ev.IdempotencyKey, ev.Identity.ContactExternalID)
	})
}

// failNext makes the fake CRM answer the next n Salesforce upserts 400 INVALID_FIELD.
func failNext(t *testing.T, n int) {
	t.Helper()
	body := fmt.Sprintf(`{"system":"salesforce","count":%d,"status":400,"error_code":"INVALID_FIELD"}`, n)
	resp, err := http.Post(st.CRM.URL()+"/_control/fail", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST /_control/fail: %s", resp.Status)
	}
}

func checkPermanent(t *testing.T, s *store.Store, watch *dlqWatch, key, ext string) {
	t.Helper()
	id := event.DocID(key)
	eventually(t, 30*time.Second, "lead quarantined as permanent", func() (bool, string) {
		d, err := s.GetEvent(t.Context(), id)
		if err != nil {
			return false, err.Error()
		}
		return d.State == store.StateQuarantined, fmt.Sprintf("%s/%s", d.State, d.FailureClass)
	})
	d, _ := s.GetEvent(t.Context(), id)
	if d.FailureClass != "permanent" || d.Attempts != 1 {
		t.Errorf("event: class %s after %d attempts, want permanent after 1", d.FailureClass, d.Attempts)
	}
	rec := dlqRecord(t, id)
	if rec["failure_class"] != "permanent" || !strings.Contains(fmt.Sprint(rec["error_message"]), "INVALID_FIELD") {
		t.Errorf("DLQ record reason: %v / %v, want permanent / INVALID_FIELD", rec["failure_class"], rec["error_message"])
	}
	if msgs := watch.count(t, key, 2*time.Second); len(msgs) != 1 {
		t.Errorf("%d DLQ messages, want 1", len(msgs))
	}
	if n := st.CRM.CreateCount(ext); n != 0 {
		t.Errorf("CRM creates = %d, want 0", n)
	}
}
