// Package leaktest proves, through the whole running pipeline, that no personal data and no
// credential reaches a log line, a span or a metric label: it boots the local stack in this
// process with recording telemetry and debug logs, sends leads with known emails, phones and
// names through every path a lead can take, then reads everything that was logged, traced and
// measured.
package leaktest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry/telemetrytest"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/devstack/provision"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

var (
	rec  *telemetrytest.Recorder
	st   *stack.Stack
	logs = &syncBuffer{}
)

// Credentials the stack is configured with, besides the ones it generates.
const (
	hubSpotToken = "pat-leaktest-9f3c2a71e4"
	graphToken   = "EAAGleaktestgraphtoken7d1e"
	sfSecret     = "sf-leaktest-client-secret-5b2e"
	piiKey       = "leaktest-pii-hash-key-0c9a41d7e2b8"
	sweepToken   = "sweep-leaktest-token-31d0a9"
)

// sources routes a canonical source to HubSpot by email with lead.updated as update-only, next
// to the demo (Salesforce) and Meta sources.
const sources = `sources:
  demo:
    kind: canonical
    mapping_version: canonical-1
    secrets: [env:DEMO_WEBHOOK_SECRET]
    routing: {crm: salesforce, object: Lead, upsert_key: External_Lead_Id__c}
  hs:
    kind: canonical
    mapping_version: canonical-1
    secrets: [env:DEMO_WEBHOOK_SECRET]
    routing:
      crm: hubspot
      object: contacts
      upsert_key: email
      modes: {lead.updated: update_only}
  meta:
    kind: facebook_leads
    mapping_version: meta-1
    secrets: [env:META_APP_SECRET]
    verify_token: env:META_VERIFY_TOKEN
    routing: {crm: salesforce, object: Lead, upsert_key: External_Lead_Id__c}
`

func TestMain(m *testing.M) {
	rec = telemetrytest.Install()
	dir, err := os.MkdirTemp("", "leaktest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	file := filepath.Join(dir, "sources.yaml")
	if err := os.WriteFile(file, []byte(sources), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var sink io.Writer = logs
	if os.Getenv("E2E_LOGS") != "" {
		sink = io.MultiWriter(logs, os.Stderr)
	}
	st, err = stack.Up(context.Background(), stack.Options{
		ProjectID: "leadpipe-leaktest",
		Logs:      sink,
		LogLevel:  slog.LevelDebug,
		Topology:  provision.Topology{MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second},
		Env: map[string]string{
			"SOURCES_FILE":             file,
			"HUBSPOT_ACCESS_TOKEN":     hubSpotToken,
			"META_ACCESS_TOKEN":        graphToken,
			"SALESFORCE_CLIENT_SECRET": sfSecret,
			"PII_HASH_KEY":             piiKey,
			"SWEEP_TOKEN":              "env:LEAKTEST_SWEEP_TOKEN",
			"LEAKTEST_SWEEP_TOKEN":     sweepToken,
			"SWEEP_INTERVAL":           "500ms",
			"OUTBOX_DELAY":             "1s",
			"AUTO_REPLAY_INTERVAL":     "0s",
		},
		MaxPushBackoff: time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack up:", err)
		os.Exit(1)
	}
	code := m.Run()
	st.Close()
	rec.Close()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// person is one lead's personal data; every field is a needle.
type person struct {
	email, phone, first, last string
}

func (p person) needles() []string {
	return []string{p.email, p.phone, strings.TrimPrefix(p.phone, "+"), p.first, p.last}
}

var people = map[string]person{
	"accepted":   {"zephyrine.accepted@leak.example", "+14155550101", "Zephyrine", "Quillfeather"},
	"badsig":     {"orlando.badsig@leak.example", "+14155550102", "Orlandine", "Thistlewaite"},
	"unusable":   {"umberto.unusable@leak.example", "+14155550103", "Umbertine", "Marrowgold"},
	"hubspot":    {"hester.hubspot@leak.example", "+14155550104", "Hesperine", "Copperwhistle"},
	"rejected":   {"rosalind.rejected@leak.example", "+14155550105", "Rosalindra", "Bramblecourt"},
	"renormal":   {"rene.renormal@leak.example", "+14155550106", "Renalda", "Foxglovery"},
	"meta":       {"mira.meta@leak.example", "+14155550107", "Mirabetha", "Ravensgill"},
	"hubspotupd": {"hester.hubspot@leak.example", "+14155550108", "Hesperine", "Goldwhistle"},
}

func canonical(id, eventType string, p person, withIdentity bool) []byte {
	body := map[string]any{
		"event_type": eventType, "occurred_at": "2026-11-30T10:00:00Z", "source_event_id": "leak-" + id,
		"attributes": map[string]string{"first_name": p.first, "last_name": p.last, "company": "Leak Co"},
	}
	if withIdentity {
		body["identity"] = map[string]string{"email": p.email, "phone_e164": p.phone}
	}
	b, _ := json.Marshal(body)
	return b
}

// send posts body to source signed with the Standard Webhooks scheme (sign=false: a forged
// signature).
func send(t *testing.T, source string, body []byte, msgID string, sign bool) int {
	t.Helper()
	secret, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(st.DemoSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%s.%s.%s", msgID, ts, body)
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !sign {
		sig = base64.StdEncoding.EncodeToString(make([]byte, 32))
	}
	req, _ := http.NewRequest(http.MethodPost, st.IngestURL+"/v1/webhooks/"+source, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", source, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func api(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, st.ReplayerURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+st.ReplayerToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

var eventually = func(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	devstacktest.Eventually(t, d, what, cond)
}

func stateIs(t *testing.T, s *store.Store, key string, want ...store.State) {
	t.Helper()
	eventually(t, 30*time.Second, key+" in "+fmt.Sprint(want), func() (bool, string) {
		d, err := s.GetEvent(t.Context(), event.DocID(key))
		if err != nil {
			return false, err.Error()
		}
		for _, w := range want {
			if d.State == w {
				return true, ""
			}
		}
		return false, string(d.State)
	})
}

// TestNoPersonalDataOrCredentialInTelemetry drives every path, then checks every log line,
// span (name, attributes, events, status) and metric label for every needle.
func TestNoPersonalDataOrCredentialInTelemetry(t *testing.T) {
	s, closeStore, err := st.Store(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()

	// Accepted, then a duplicate.
	acc := canonical("accepted", "lead.created", people["accepted"], true)
	if code := send(t, "demo", acc, "msg_leak_accepted", true); code != http.StatusAccepted {
		t.Fatalf("accepted: %d", code)
	}
	if code := send(t, "demo", acc, "msg_leak_accepted", true); code != http.StatusOK {
		t.Fatalf("duplicate: %d", code)
	}
	stateIs(t, s, "demo|lead.created|leak-accepted", store.StateSucceeded)

	// Bad signature.
	if code := send(t, "demo", canonical("badsig", "lead.created", people["badsig"], true), "msg_leak_badsig", false); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", code)
	}

	// Unusable: signed, names but no identity.
	if code := send(t, "demo", canonical("unusable", "lead.created", people["unusable"], false), "msg_leak_unusable", true); code >= 500 {
		t.Fatalf("unusable: %d", code)
	}

	// Enriched Meta lead: the Graph API answers the person's fields.
	const leadgen = "900100000000777"
	m := people["meta"]
	graph, _ := json.Marshal(map[string]any{"id": leadgen, "created_time": "2026-11-30T10:00:00+0000", "field_data": []map[string]any{
		{"name": "full_name", "values": []string{m.first + " " + m.last}},
		{"name": "email", "values": []string{m.email}},
		{"name": "phone_number", "values": []string{m.phone}},
	}})
	st.CRM.SetMetaLead(leadgen, graph)
	metaBody := []byte(`{"object":"page","entry":[{"id":"100200300","time":1764496800,"changes":[{"field":"leadgen","value":{"leadgen_id":"` +
		leadgen + `","page_id":"100200300","form_id":"555100000000001","created_time":1764496800}}]}]}`)
	req, _ := http.NewRequest(http.MethodPost, st.IngestURL+"/v1/webhooks/meta", bytes.NewReader(metaBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(hmacOf(secretOf(t, "META_APP_SECRET"), metaBody)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("meta: %d", resp.StatusCode)
	}
	stateIs(t, s, "meta|lead.created|"+leadgen, store.StateSucceeded)

	// HubSpot: an upsert by email, then an update-only event for the same person.
	hs := people["hubspot"]
	if code := send(t, "hs", canonical("hubspot", "lead.created", hs, true), "msg_leak_hs1", true); code != http.StatusAccepted {
		t.Fatalf("hubspot create: %d", code)
	}
	stateIs(t, s, "hs|lead.created|leak-hubspot", store.StateSucceeded)
	if code := send(t, "hs", canonical("hubspotupd", "lead.updated", people["hubspotupd"], true), "msg_leak_hs2", true); code != http.StatusAccepted {
		t.Fatalf("hubspot update: %d", code)
	}
	stateIs(t, s, "hs|lead.updated|leak-hubspotupd", store.StateSucceeded)

	// CRM rejection (a 400 from Salesforce) puts two leads in the DLQ; an operator reads one
	// with its raw payload, replays it, and replays the other renormalized.
	var dlqIDs []string
	for _, who := range []string{"rejected", "renormal"} {
		st.CRM.FailNext(fakecrm.Failure{Status: http.StatusBadRequest})
		if code := send(t, "demo", canonical(who, "lead.created", people[who], true), "msg_leak_"+who, true); code != http.StatusAccepted {
			t.Fatalf("%s: %d", who, code)
		}
		key := "demo|lead.created|leak-" + who
		stateIs(t, s, key, store.StateQuarantined)
		id := event.DocID(key)
		eventually(t, 30*time.Second, "DLQ record "+who, func() (bool, string) {
			code, body := api(t, http.MethodGet, "/v1/dlq/"+id, nil)
			return code == http.StatusOK, fmt.Sprint(code, body)
		})
		dlqIDs = append(dlqIDs, id)
	}
	api(t, http.MethodGet, "/v1/dlq?status=open", nil)
	if code, body := api(t, http.MethodGet, "/v1/dlq/"+dlqIDs[0]+"?include=raw&reason=leak+test", nil); code != http.StatusOK {
		t.Fatalf("raw read: %d %v", code, body)
	}
	if code, body := api(t, http.MethodPost, "/v1/dlq/"+dlqIDs[0]+":replay", map[string]any{"reason": "leak test"}); code >= 300 {
		t.Fatalf("replay: %d %v", code, body)
	}
	if code, body := api(t, http.MethodPost, "/v1/dlq/"+dlqIDs[1]+":replay", map[string]any{"reason": "leak test", "renormalize": true}); code >= 300 {
		t.Fatalf("renormalized replay: %d %v", code, body)
	}
	stateIs(t, s, "demo|lead.created|leak-rejected", store.StateSucceeded)
	stateIs(t, s, "demo|lead.created|leak-renormal", store.StateSucceeded)
	api(t, http.MethodGet, "/v1/audit", nil)
	time.Sleep(500 * time.Millisecond) // let the last spans end

	needles := map[string]string{}
	for who, p := range people {
		for _, n := range p.needles() {
			needles[n] = "personal data of " + who
		}
	}
	for k, v := range map[string]string{
		"webhook secret":    strings.TrimPrefix(st.DemoSecret, "whsec_"),
		"HubSpot token":     hubSpotToken,
		"Graph token":       graphToken,
		"Salesforce secret": sfSecret,
		"Salesforce token":  "00Dfake!",
		"replayer token":    st.ReplayerToken,
		"PII hash key":      piiKey,
		"sweep token":       sweepToken,
	} {
		needles[v] = k
	}
	for _, kv := range st.SourceSecrets {
		needles[kv[1]] = kv[0]
	}

	found := 0
	check := func(where, text string) {
		for n, what := range needles {
			if strings.Contains(text, n) {
				found++
				if found <= 40 {
					t.Errorf("%s (%q) in %s: %.300s", what, n, where, text)
				}
			}
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		check("log line", line)
	}
	spans := rec.Spans()
	if len(spans) < 50 {
		t.Fatalf("only %d spans recorded: is the telemetry recorder wired?", len(spans))
	}
	for _, sp := range spans {
		where := "span " + sp.Name
		check("span name", sp.Name)
		check(where+" status", sp.Status.Description)
		for _, kv := range sp.Attributes {
			check(where+" attribute "+string(kv.Key), kv.Value.Emit())
		}
		for _, ev := range sp.Events {
			check(where+" event", ev.Name)
			for _, kv := range ev.Attributes {
				check(where+" event attribute "+string(kv.Key), kv.Value.Emit())
			}
		}
	}
	labels, err := rec.Labels()
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) == 0 {
		t.Fatal("no metrics recorded")
	}
	for name, sets := range labels {
		check("metric name", name)
		for _, set := range sets {
			for _, kv := range set.ToSlice() {
				check("metric "+name+" label "+string(kv.Key), kv.Value.Emit())
			}
		}
	}
	if found > 40 {
		t.Errorf("... %d leaks in all", found)
	}
	if !strings.Contains(logs.String(), `"level":"DEBUG"`) && !strings.Contains(logs.String(), `"severity":"DEBUG"`) {
		t.Error("no debug log line captured: debug logging is not on")
	}
}

func secretOf(t *testing.T, name string) string {
	t.Helper()
	for _, kv := range st.SourceSecrets {
		if kv[0] == name {
			return kv[1]
		}
	}
	t.Fatalf("stack exported no %s", name)
	return ""
}

func hmacOf(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
