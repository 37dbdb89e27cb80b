package stack_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/devstack/provision"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

// The end-to-end tests boot the whole pipeline in this process (emulators, fake CRM, ingest,
// processor, replayer) on free ports, exactly as `devstack up` does, and drive it through HTTP
// like a sender and an operator would.

var st *stack.Stack

func TestMain(m *testing.M) {
	ctx := context.Background()
	var logs io.Writer = io.Discard
	if os.Getenv("E2E_LOGS") != "" {
		logs = os.Stderr
	}
	mode, err := devstacktest.Mode()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st, err = stack.Up(ctx, stack.Options{
		Emulators: mode,
		ProjectID: devstacktest.Project("leadpipe-e2e"),
		Logs:      logs,
		Topology: provision.Topology{
			MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		},
		MaxPushBackoff: time.Second,
		Env: map[string]string{
			"SWEEP_INTERVAL":       "500ms",
			"OUTBOX_DELAY":         "1s",
			"AUTO_REPLAY_INTERVAL": "0s",
			"RECONCILE_PAGE_SIZE":  "3",
			"RECONCILE_FORMS":      "meta:555100000000704:104200000000001",
			// Fail-fast nacks while the circuit is open count against the subscription's 10
			// delivery attempts. Google's Pub/Sub emulator redelivers about once a second
			// whatever the retry policy says, so a 15 s cooldown would let Pub/Sub dead-letter
			// every lead of TestE2E_OutageDoesNotQuarantine before the first probe.
			"BREAKER_COOLDOWN": "1s",
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack up:", err)
		os.Exit(1)
	}
	code := m.Run()
	st.Close()
	os.Exit(code)
}

type lead struct {
	EventType     string            `json:"event_type"`
	OccurredAt    time.Time         `json:"occurred_at"`
	SourceEventID string            `json:"source_event_id,omitempty"`
	Identity      event.Identity    `json:"identity"`
	Attributes    map[string]string `json:"attributes,omitempty"`
}

func newLead(id string) lead {
	return lead{
		EventType:     "lead.created",
		OccurredAt:    time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
		SourceEventID: "evt-" + id,
		Identity:      event.Identity{ContactExternalID: "c-" + id, Email: id + "@example.com"},
		Attributes:    map[string]string{"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical"},
	}
}

// send signs body with the Standard Webhooks scheme (our own signer, independent of ingest's
// verifier) and posts it to the demo source.
func send(t *testing.T, body []byte, msgID string) (int, map[string]any) {
	t.Helper()
	secret, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(st.DemoSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%s.%s.%s", msgID, ts, body)
	req, _ := http.NewRequest(http.MethodPost, st.IngestURL+"/v1/webhooks/"+st.DemoSource, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST webhook: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func sendLead(t *testing.T, l lead) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, b, "msg_"+l.SourceEventID)
}

func fsClient(t *testing.T) *firestore.Client {
	t.Helper()
	c, err := firestore.NewClient(context.Background(), st.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pipelineStore is the store on the stack's emulators, as the services open it.
func pipelineStore(t *testing.T) *store.Store {
	t.Helper()
	s, closeStore, err := st.Store(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeStore() })
	return s
}

// eventually polls cond until it holds or the deadline passes.
var eventually = func(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	devstacktest.Eventually(t, d, what, cond)
}

func eventState(t *testing.T, s *store.Store, key string) (*store.EventDoc, error) {
	t.Helper()
	return s.GetEvent(context.Background(), event.DocID(key))
}

func demoKey(l lead) string { return event.IdempotencyKey("demo", l.EventType, l.SourceEventID) }

func recordsByKey() map[string]fakecrm.Record {
	out := map[string]fakecrm.Record{}
	for _, r := range st.CRM.Records() {
		out[r.Key] = r
	}
	return out
}

func TestE2E_RetriedWebhookMakesOneCRMRecord(t *testing.T) {
	s := pipelineStore(t)
	l := newLead("dup-1")
	var codes []int
	for i := 0; i < 3; i++ {
		code, body := sendLead(t, l)
		codes = append(codes, code)
		if i == 0 && body["status"] != "accepted" {
			t.Fatalf("first delivery: status %v, want accepted (%v)", body["status"], body)
		}
		if i > 0 && body["status"] != "duplicate" {
			t.Fatalf("delivery %d: status %v, want duplicate", i+1, body["status"])
		}
	}
	if want := []int{202, 200, 200}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("answers = %v, want %v", codes, want)
	}
	eventually(t, 20*time.Second, "event succeeded", func() (bool, string) {
		d, err := eventState(t, s, demoKey(l))
		if err != nil {
			return false, err.Error()
		}
		return d.State == store.StateSucceeded, string(d.State)
	})
	if got := st.CRM.CreateCount("c-dup-1"); got != 1 {
		t.Errorf("CRM creates for c-dup-1 = %d, want 1", got)
	}
	d, _ := eventState(t, s, demoKey(l))
	if d.CRMRecordID == "" || d.CRMRecordID != recordsByKey()["c-dup-1"].ID {
		t.Errorf("event crm_record_id = %q, CRM record id = %q", d.CRMRecordID, recordsByKey()["c-dup-1"].ID)
	}
}

// TestE2E_BurstWithDuplicatesAndCRMFaults sends a burst of distinct leads, each twice, while
// the CRM throws 500s and 429s, and checks every lead ends in the CRM exactly once.
func TestE2E_BurstWithDuplicatesAndCRMFaults(t *testing.T) {
	s := pipelineStore(t)
	st.CRM.SetFaults(fakecrm.Faults{ErrorRate: 0.2, Throttle: 10, RetryAfterSec: 1})
	t.Cleanup(func() { st.CRM.SetFaults(fakecrm.Faults{}) })
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan string, 2*n)
	for i := 0; i < n; i++ {
		for rep := 0; rep < 2; rep++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body := sendLead(t, newLead(fmt.Sprintf("burst-%03d", i)))
				if code != 202 && code != 200 {
					errs <- fmt.Sprintf("lead %d: %d %v", i, code, body)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	eventually(t, 90*time.Second, "every burst lead succeeded", func() (bool, string) {
		pending := 0
		for i := 0; i < n; i++ {
			d, err := eventState(t, s, demoKey(newLead(fmt.Sprintf("burst-%03d", i))))
			if err != nil || d.State != store.StateSucceeded {
				pending++
			}
		}
		return pending == 0, fmt.Sprintf("%d of %d not succeeded", pending, n)
	})
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("c-burst-%03d", i)
		if got := st.CRM.CreateCount(key); got != 1 {
			t.Errorf("CRM creates for %s = %d, want 1", key, got)
		}
	}
}

// TestE2E_OutageDoesNotQuarantine takes the CRM down while leads arrive, brings it back, and
// checks they all land and none was quarantined because the CRM was down.
func TestE2E_OutageDoesNotQuarantine(t *testing.T) {
	s := pipelineStore(t)
	st.CRM.SetFaults(fakecrm.Faults{Outage: true})
	const n = 10
	for i := 0; i < n; i++ {
		if code, body := sendLead(t, newLead(fmt.Sprintf("outage-%02d", i))); code != 202 {
			t.Fatalf("lead %d: %d %v", i, code, body)
		}
	}
	time.Sleep(4 * time.Second) // several delivery attempts fail during the outage
	st.CRM.SetFaults(fakecrm.Faults{})
	eventually(t, 90*time.Second, "leads succeeded after the outage", func() (bool, string) {
		var states []string
		done := 0
		for i := 0; i < n; i++ {
			d, err := eventState(t, s, demoKey(newLead(fmt.Sprintf("outage-%02d", i))))
			if err != nil {
				return false, err.Error()
			}
			if d.State == store.StateQuarantined {
				t.Fatalf("lead %d quarantined during an outage: %s %s", i, d.FailureClass, d.ErrorMessage)
			}
			if d.State == store.StateSucceeded {
				done++
			}
			states = append(states, string(d.State))
		}
		return done == n, strings.Join(states, ",")
	})
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("c-outage-%02d", i)
		if got := st.CRM.CreateCount(key); got != 1 {
			t.Errorf("CRM creates for %s = %d, want 1", key, got)
		}
	}
}
