package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/ingest/internal/signature"
)

func TestAcceptedIsStoredAndPublished(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	// A pull subscription created before the publish, read through the client.
	ps, err := env.PubSubClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	subName := "projects/" + env.ProjectID + "/subscriptions/ingest-accepted"
	if _, err := ps.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: subName, Topic: "projects/" + env.ProjectID + "/topics/leads", EnableMessageOrdering: true,
	}); err != nil {
		t.Fatal(err)
	}
	l := newLead(t)
	a := f.do(f.request(l, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer must-not-be-archived")
		r.Header.Set("X-Correlation-ID", "corr-123")
	}))
	if a.code != http.StatusAccepted || a.body["status"] != "accepted" {
		t.Fatalf("answer = %d %v, want 202 accepted", a.code, a.body)
	}
	wantID := mapping.EventID(l.key())
	if a.body["event_id"] != wantID || a.body["idempotency_key"] != l.key() || a.body["correlation_id"] != "corr-123" {
		t.Errorf("answer body = %v, want event_id %s, key %s, correlation corr-123", a.body, wantID, l.key())
	}

	raw, err := f.arch.Get(ctx, f.arch.Ref("raw/demo/"+sha(l.body)+".json"))
	if err != nil {
		t.Fatalf("raw object: %v", err)
	}
	if !bytes.Equal(raw.Body, l.body) || !raw.Signature.Verified || raw.Signature.KeyIndex != 1 || raw.Signature.Scheme != mapping.SchemeStandardWebhooks || raw.ReceivedAt.IsZero() {
		t.Errorf("raw = %+v", raw)
	}
	if _, ok := raw.Headers["Authorization"]; ok {
		t.Error("raw object kept the Authorization header")
	}
	if raw.Headers["Webhook-Id"][0] != l.msgID {
		t.Errorf("raw headers = %v, want webhook-id kept", raw.Headers)
	}

	doc := f.publishedDoc(l.key())
	if doc == nil {
		t.Fatal("no event document")
	}
	if doc.State != store.StateReceived || doc.OutboxDueAt != nil || doc.PublishMessageID == "" {
		t.Errorf("doc state %s outbox %v message %q, want received, published", doc.State, doc.OutboxDueAt, doc.PublishMessageID)
	}
	if doc.Event.Audit.RawEventRef != "gs://"+env.Bucket+"/raw/demo/"+sha(l.body)+".json" || doc.Event.Audit.NormalizedEventRef != "events/"+event.DocID(l.key()) {
		t.Errorf("audit = %+v", doc.Event.Audit)
	}

	sub := ps.Subscriber(subName)
	mctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var got *pubsub.Message
	_ = sub.Receive(mctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		if m.Attributes[pushmsg.AttrIdempotencyKey] == l.key() {
			got = m
			cancel()
		}
	})
	if got == nil {
		t.Fatal("no message published")
	}
	var ev event.Event
	if err := json.Unmarshal(got.Data, &ev); err != nil {
		t.Fatal(err)
	}
	// The ordering key is keyed with the service's PII_HASH_KEY.
	h, _ := pii.NewHasher([]byte(devstacktest.TestPIIHashKey))
	if got.OrderingKey != ev.ContactKey(h) || got.OrderingKey == "" {
		t.Errorf("ordering key = %q, want %q", got.OrderingKey, ev.ContactKey(h))
	}
	want := map[string]string{
		pushmsg.AttrIdempotencyKey: l.key(), pushmsg.AttrEventID: wantID, pushmsg.AttrSource: "demo",
		pushmsg.AttrEventType: "lead.created", pushmsg.AttrSchemaVersion: "1.0", pushmsg.AttrMappingVersion: "canonical-1",
		pushmsg.AttrCorrelationID: "corr-123",
	}
	for k, v := range want {
		if got.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got.Attributes[k], v)
		}
	}
	if !strings.HasPrefix(got.Attributes[pushmsg.AttrTraceparent], "00-") {
		t.Errorf("traceparent = %q", got.Attributes[pushmsg.AttrTraceparent])
	}
	if err := ev.Validate(); err != nil || ev.Routing.CRM != "salesforce" || ev.Routing.UpsertKey != "External_Lead_Id__c" {
		t.Errorf("published event %+v: %v", ev, err)
	}
	if pushmsg.ParseVersion(got.Attributes[pushmsg.AttrDocVersion]).IsZero() {
		t.Errorf("message carries no document version (%q): the processor cannot claim in one commit", got.Attributes[pushmsg.AttrDocVersion])
	}
	if got.ID != doc.PublishMessageID {
		t.Errorf("message id %s, doc says %s", got.ID, doc.PublishMessageID)
	}
}

func TestSameDeliveryThreeTimes(t *testing.T) {
	f := newFixture(t, nil)
	l := newLead(t)
	var codes []int
	for range 3 {
		a := f.do(f.request(l))
		codes = append(codes, a.code)
		if a.body["event_id"] != mapping.EventID(l.key()) {
			t.Errorf("answer %v: event_id differs", a.body)
		}
	}
	if fmt.Sprint(codes) != "[202 200 200]" {
		t.Errorf("answers = %v, want [202 200 200]", codes)
	}
	if n := len(messages("leads", l.key())); n != 1 {
		t.Errorf("published %d times, want 1", n)
	}
	if f.eventDoc(l.key()) == nil {
		t.Error("no event document")
	}
}

func TestFiftyConcurrentDuplicates(t *testing.T) {
	f := newFixture(t, nil)
	l := newLead(t)
	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			a := f.do(f.request(l))
			mu.Lock()
			count[a.code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	// Google's Firestore emulator serialises the fifty writes behind its locks, so on a busy
	// machine some exceed PERSIST_TIMEOUT and answer 503 (retry later): the sender retries
	// those, as senders do, and must then get 200 duplicate. The embedded emulator answers no 503.
	for retry := 0; count[http.StatusServiceUnavailable] > 0 && retry < 5; retry++ {
		if env.Embedded() {
			t.Errorf("answers = %v: 503 on the embedded emulator", count)
			break
		}
		n := count[http.StatusServiceUnavailable]
		delete(count, http.StatusServiceUnavailable)
		for range n {
			count[f.do(f.request(l)).code]++
		}
	}
	if count[http.StatusAccepted] != 1 || count[http.StatusOK] != 49 {
		t.Errorf("answers = %v, want one 202 and 49 200", count)
	}
	if n := len(messages("leads", l.key())); n != 1 {
		t.Errorf("published %d times, want 1", n)
	}
	// The document id is the key's hash, so one document per key is the store's invariant;
	// the lookup by key proves it was written once and is readable.
	if d, err := f.store.FindEvent(context.Background(), l.key()); err != nil || d.IdempotencyKey != l.key() {
		t.Errorf("event document of the key: got (%v, %v), want it", d, err)
	}
}

func TestErrorAnswersWriteNothing(t *testing.T) {
	f := newFixture(t, map[string]string{"MAX_BODY_BYTES": "4096"})
	big := newLead(t)
	big.body = append(bytes.TrimSuffix(big.body, []byte("}")), []byte(`,"pad":"`+strings.Repeat("x", 5000)+`"}`)...)
	tests := []struct {
		name   string
		l      lead
		mutate func(*http.Request)
		code   int
	}{
		{"unknown source", newLead(t), func(r *http.Request) { r.URL.Path = "/v1/webhooks/nope" }, http.StatusNotFound},
		{"content type", newLead(t), func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, http.StatusUnsupportedMediaType},
		{"too large", big, nil, http.StatusRequestEntityTooLarge},
		{"too large, no length", big, func(r *http.Request) { r.ContentLength = -1 }, http.StatusRequestEntityTooLarge},
		{"no signature", newLead(t), func(r *http.Request) { r.Header.Del("webhook-signature") }, http.StatusUnauthorized},
		{"wrong signature", newLead(t), func(r *http.Request) { r.Header.Set("webhook-signature", "v1,AAAA") }, http.StatusUnauthorized},
		{"other message id", newLead(t), func(r *http.Request) { r.Header.Set("webhook-id", "msg_other") }, http.StatusUnauthorized},
		{"stale timestamp", lead{}, nil, http.StatusUnauthorized},
		{"source without secret", newLead(t), func(r *http.Request) { r.URL.Path = "/v1/webhooks/broken" }, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.l
			if l.body == nil {
				l = newLead(t)
				l.ts = time.Now().Add(-6 * time.Minute)
			}
			var mutate []func(*http.Request)
			if tt.mutate != nil {
				mutate = append(mutate, tt.mutate)
			}
			a := f.do(f.request(l, mutate...))
			if a.code != tt.code || a.body["status"] != "error" {
				t.Errorf("answer = %d %v, want %d error", a.code, a.body, tt.code)
			}
			if tt.code == http.StatusServiceUnavailable && a.retryAfter == "" {
				t.Error("503 without Retry-After")
			}
			if f.eventDoc(l.key()) != nil {
				t.Error("event document written")
			}
			for _, src := range []string{"demo", "nope", "broken"} {
				if f.rawExists(src, l.body) {
					t.Errorf("raw object written under %s", src)
				}
			}
			if n := len(messages("leads", l.key())) + len(messages("leads-dlq", l.key())); n != 0 {
				t.Errorf("%d messages published", n)
			}
		})
	}
}

func TestQuarantined(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, body, reason string
		key                func(l lead) string
	}{
		{"no identity", `{"event_type":"lead.created","occurred_at":"2026-03-22T12:34:56Z"}`, "no_identity", func(l lead) string { return l.key() }},
		{"unparseable", `{"event_type": "lead.created", "identity": {`, "unparseable", func(l lead) string { return mapping.UnknownKey("demo", l.body) }},
		{"schema mismatch", `{"event_type":"lead.created","identity":{"email":12}}`, "schema_mismatch", func(l lead) string { return mapping.UnknownKey("demo", l.body) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLead(t)
			l.body = []byte(tt.body + strings.Repeat(" ", int(leadSeq.Add(1)))) // a distinct body per run
			a := f.do(f.request(l))
			if a.code != http.StatusAccepted || a.body["status"] != "quarantined" || a.body["reason"] != tt.reason {
				t.Fatalf("answer = %d %v, want 202 quarantined %s", a.code, a.body, tt.reason)
			}
			key := tt.key(l)
			doc := f.publishedDoc(key)
			if doc == nil {
				t.Fatalf("no event document for %s", key)
			}
			if doc.State != store.StateQuarantined || doc.QuarantinedBy != "ingest" || doc.FailureClass != "permanent" || doc.ErrorMessage == "" || doc.OutboxDueAt != nil {
				t.Errorf("doc = state %s by %s class %s msg %q outbox %v", doc.State, doc.QuarantinedBy, doc.FailureClass, doc.ErrorMessage, doc.OutboxDueAt)
			}
			if !f.rawExists("demo", l.body) {
				t.Error("raw payload not stored")
			}
			dlq := messages("leads-dlq", key)
			if len(dlq) != 1 {
				t.Fatalf("%d DLQ messages, want 1", len(dlq))
			}
			attrs := dlq[0].Attributes
			for k, v := range map[string]string{
				pushmsg.AttrFailureClass: "permanent", pushmsg.AttrQuarantinedBy: "ingest", pushmsg.AttrAttemptCount: "0",
				pushmsg.AttrSource: "demo", pushmsg.AttrEventID: mapping.EventID(key),
			} {
				if attrs[k] != v {
					t.Errorf("DLQ attribute %s = %q, want %q", k, attrs[k], v)
				}
			}
			if attrs[pushmsg.AttrErrorMessage] == "" || attrs[pushmsg.AttrFirstReceivedAt] == "" {
				t.Errorf("DLQ attributes = %v", attrs)
			}
			if strings.Contains(attrs[pushmsg.AttrErrorMessage], "@") {
				t.Errorf("error message %q may hold personal data", attrs[pushmsg.AttrErrorMessage])
			}
			if len(messages("leads", key)) != 0 {
				t.Error("quarantined event published to leads")
			}
			// The same unusable delivery again is a duplicate, not a second DLQ message.
			if a := f.do(f.request(l)); a.code != http.StatusOK || a.body["status"] != "duplicate" {
				t.Errorf("repeat answer = %d %v, want 200 duplicate", a.code, a.body)
			}
			if n := len(messages("leads-dlq", key)); n != 1 {
				t.Errorf("%d DLQ messages after repeat, want 1", n)
			}
		})
	}
}

func TestFirestoreDownAnswers503(t *testing.T) {
	env.NeedEmbedded(t, "Firestore fault injection takes Firestore down")
	f := newFixture(t, map[string]string{"PERSIST_TIMEOUT": "1s"})
	l := newLead(t)
	env.Firestore.Faults().FailNext("Commit", 1000, codes.Unavailable)
	a := f.do(f.request(l))
	if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Fatalf("answer = %d (Retry-After %q) %v, want 503 with Retry-After", a.code, a.retryAfter, a.body)
	}
	if n := len(messages("leads", l.key())); n != 0 {
		t.Errorf("published %d messages while Firestore was down", n)
	}
	env.ClearFaults()
	if f.eventDoc(l.key()) != nil {
		t.Error("event document exists after a failed create")
	}
	// The sender's retry succeeds.
	if a := f.do(f.request(l)); a.code != http.StatusAccepted {
		t.Fatalf("retry answer = %d %v, want 202", a.code, a.body)
	}
	if n := len(messages("leads", l.key())); n != 1 {
		t.Errorf("published %d, want 1", n)
	}
}

func TestGCSDownAnswers503(t *testing.T) {
	f := newFixture(t, map[string]string{"PERSIST_TIMEOUT": "1s", "PUBLISH_GRACE": "0s"})
	l := newLead(t)
	f.calls.failGCS.Store(true)
	a := f.do(f.request(l))
	if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Fatalf("answer = %d (Retry-After %q) %v, want 503 with Retry-After", a.code, a.retryAfter, a.body)
	}
	if n := len(messages("leads", l.key())); n != 0 {
		t.Errorf("published %d messages while GCS was down", n)
	}
	f.calls.failGCS.Store(false)
	// The event document may exist (the writes run concurrently): the retry stores the raw
	// payload and, finding the event unpublished past the grace, publishes it once.
	a = f.do(f.request(l))
	if a.code != http.StatusAccepted && a.code != http.StatusOK {
		t.Fatalf("retry answer = %d %v, want 202 or 200", a.code, a.body)
	}
	if !f.rawExists("demo", l.body) {
		t.Error("raw payload missing after the retry")
	}
	if n := len(messages("leads", l.key())); n != 1 {
		t.Errorf("published %d, want 1", n)
	}
}

func TestPublishFailureThenSweep(t *testing.T) {
	f := newFixture(t, map[string]string{"OUTBOX_DELAY": "300ms", "PUBLISH_TIMEOUT": "1s"})
	l := newLead(t)
	f.calls.failPubSub.Store(true)
	a := f.do(f.request(l))
	if a.code != http.StatusAccepted || a.body["status"] != "accepted" {
		t.Fatalf("answer = %d %v, want 202 accepted", a.code, a.body)
	}
	if n := len(messages("leads", l.key())); n != 0 {
		t.Fatalf("published %d while Pub/Sub failed", n)
	}
	doc := f.eventDoc(l.key())
	if doc == nil || doc.OutboxDueAt == nil {
		t.Fatalf("doc = %+v, want it in the outbox", doc)
	}
	// A sweep while Pub/Sub still fails publishes nothing and leaves the entry due later.
	time.Sleep(time.Until(*doc.OutboxDueAt) + 50*time.Millisecond)
	sweep := func() map[string]any {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/internal/sweep", nil)
		a := f.do(req)
		if a.code != http.StatusOK {
			t.Fatalf("sweep = %d %v", a.code, a.body)
		}
		return a.body["result"].(map[string]any)
	}
	sweep()
	if n := len(messages("leads", l.key())); n != 0 {
		t.Fatalf("published %d while Pub/Sub failed", n)
	}
	f.calls.failPubSub.Store(false)
	eventually(t, "the sweep to publish", func() bool {
		sweep()
		return len(messages("leads", l.key())) > 0
	})
	if d := f.eventDoc(l.key()); d.OutboxDueAt != nil || d.PublishMessageID == "" {
		t.Errorf("after sweep doc outbox %v message %q, want published", d.OutboxDueAt, d.PublishMessageID)
	}
	// Later sweeps do not publish it again.
	time.Sleep(400 * time.Millisecond)
	sweep()
	if n := len(messages("leads", l.key())); n != 1 {
		t.Errorf("published %d times, want 1", n)
	}
}

func TestDuplicatePublishesWhatWasNeverPublished(t *testing.T) {
	// The grace must outlast the winner's claim, publish and mark: on Google's Firestore
	// emulator, whose locks make the ten contending duplicates wait, that took over 100 ms.
	f := newFixture(t, map[string]string{"PUBLISH_GRACE": "600ms", "PUBLISH_TIMEOUT": "1s"})
	l := newLead(t)
	f.calls.failPubSub.Store(true)
	if a := f.do(f.request(l)); a.code != http.StatusAccepted {
		t.Fatalf("answer = %d", a.code)
	}
	f.calls.failPubSub.Store(false)
	time.Sleep(650 * time.Millisecond)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if a := f.do(f.request(l)); a.code != http.StatusOK {
				t.Errorf("duplicate answer = %d", a.code)
			}
		})
	}
	wg.Wait()
	if n := len(messages("leads", l.key())); n != 1 {
		t.Errorf("published %d times by 10 concurrent duplicates, want 1", n)
	}
}

func TestFacebookPostWithThreeLeads(t *testing.T) {
	f := newFixture(t, nil)
	body, err := os.ReadFile("testdata/meta_leadgen_webhook.json")
	if err != nil {
		t.Fatal(err)
	}
	// Unique leadgen ids per run, so reruns against the same emulator stay independent.
	run := fmt.Sprint(time.Now().UnixNano())
	body = bytes.ReplaceAll(body, []byte(`"9001000000000`), []byte(`"`+run+`-`))
	req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/webhooks/meta", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", signature.SignMeta(metaSecret, body))
	a := f.do(req)
	if a.code != http.StatusAccepted {
		t.Fatalf("answer = %d %v", a.code, a.body)
	}
	evs, _ := a.body["events"].([]any)
	if len(evs) != 3 {
		t.Fatalf("answer events = %v, want 3", a.body["events"])
	}
	for _, n := range []string{"01", "02", "03"} {
		key := "meta|lead.created|" + run + "-" + n
		doc := f.eventDoc(key)
		if doc == nil {
			t.Errorf("no event for %s", key)
			continue
		}
		if doc.Event.Enrich == nil || doc.Event.Enrich.Provider != "meta_graph" || doc.Event.Enrich.Refs["leadgen_id"] != run+"-"+n {
			t.Errorf("event %s enrich = %+v", key, doc.Event.Enrich)
		}
		if got := len(messages("leads", key)); got != 1 {
			t.Errorf("%s published %d times", key, got)
		}
	}
	req.Header.Set("X-Hub-Signature-256", signature.SignMeta("wrong", body))
	req, _ = http.NewRequest(http.MethodPost, f.url+"/v1/webhooks/meta", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", signature.SignMeta("wrong", body))
	if a := f.do(req); a.code != http.StatusUnauthorized {
		t.Errorf("wrong Meta signature = %d, want 401", a.code)
	}
}

func TestMetaHandshake(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{"ok", "/v1/webhooks/meta?hub.mode=subscribe&hub.verify_token=" + metaToken + "&hub.challenge=1158201444", 200, "1158201444"},
		{"bad token", "/v1/webhooks/meta?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1", 403, ""},
		{"bad mode", "/v1/webhooks/meta?hub.mode=unsubscribe&hub.verify_token=" + metaToken + "&hub.challenge=1", 403, ""},
		{"not meta", "/v1/webhooks/demo?hub.mode=subscribe&hub.verify_token=" + metaToken + "&hub.challenge=1", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(f.url + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if resp.StatusCode != tt.code || (tt.body != "" && b.String() != tt.body) {
				t.Errorf("GET = %d %q, want %d %q", resp.StatusCode, b.String(), tt.code, tt.body)
			}
		})
	}
}

func TestOtherKinds(t *testing.T) {
	f := newFixture(t, nil)
	run := fmt.Sprint(time.Now().UnixNano())
	tf := []byte(`{"event_type":"form_response","form_response":{"token":"tok-` + run + `","submitted_at":"2026-03-22T12:34:56Z","answers":[{"type":"email","email":"a@b.example","field":{"ref":"work_email"}}]}}`)
	pj := []byte(`{"id":"p-` + run + `","email":"p@q.example"}`)
	tests := []struct {
		name, source, header, sig, key string
		body                           []byte
	}{
		{"typeform", "forms", "Typeform-Signature", signature.SignTypeform(typeformKey, tf), "forms|lead.created|tok-" + run, tf},
		{"json_map", "partner", "X-Partner-Signature", signature.SignHMACHex(partnerSecret, "sha256=", pj), "partner|lead.created|p-" + run, pj},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/webhooks/"+tt.source, bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
			req.Header.Set(tt.header, tt.sig)
			if a := f.do(req); a.code != http.StatusAccepted || a.body["idempotency_key"] != tt.key {
				t.Fatalf("answer = %d %v, want 202 for %s", a.code, a.body, tt.key)
			}
			if n := len(messages("leads", tt.key)); n != 1 {
				t.Errorf("published %d, want 1", n)
			}
		})
	}
}

func TestRunServes(t *testing.T) {
	path := t.TempDir() + "/sources.yaml"
	if err := os.WriteFile(path, []byte(testSources), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, err := env.Serve(Run, map[string]string{
		"SOURCES_FILE": path, "DEMO_WEBHOOK_SECRET": demoSecret, "OLD_DEMO_SECRET": demoSecret,
		"SWEEP_INTERVAL": "50ms", "SWEEP_AUTH": "none",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	resp, err := http.Get(svc.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz = %v, %v", resp, err)
	}
	resp.Body.Close()
	f := &fixture{t: t, url: ingestSpec.ProxyFor(t, svc.URL)}
	l := newLead(t)
	if a := f.do(f.request(l)); a.code != http.StatusAccepted {
		t.Errorf("POST through Run = %d %v", a.code, a.body)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]map[string]string{
		"no sources file":             {"SOURCES_FILE": ""},
		"zero body":                   {"MAX_BODY_BYTES": "0"},
		"big batch":                   {"SWEEP_BATCH": "501"},
		"bad delay":                   {"OUTBOX_DELAY": "0s"},
		"oidc sweep without audience": {"SWEEP_AUTH": "oidc", "SWEEP_SERVICE_ACCOUNTS": "s@p.iam.gserviceaccount.com"},
		"oidc sweep without accounts": {"SWEEP_AUTH": "oidc", "SWEEP_AUDIENCE": "https://ingest", "SWEEP_SERVICE_ACCOUNTS": " , "},
		"token sweep without token":   {"SWEEP_AUTH": "token"},
		"unknown sweep auth":          {"SWEEP_AUTH": "iam"},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			vars := map[string]string{"SOURCES_FILE": "x.yaml"}
			for k, v := range o {
				vars[k] = v
			}
			var cfg Config
			if err := configLoad(vars, &cfg); err == nil {
				t.Errorf("Load(%v) = nil error", o)
			}
		})
	}
}
