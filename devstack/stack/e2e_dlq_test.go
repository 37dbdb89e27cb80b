package stack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// api calls the replayer's API as the local operator.
func api(t *testing.T, method, path string, body any, token string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, st.ReplayerURL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
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

// TestE2E_AuthFailureQuarantinesThenReplayMakesOneRecord breaks the CRM credentials, so the
// lead is quarantined with class auth and shows once in the DLQ; after the fix an operator
// replays it (twice, by mistake) and the CRM gets exactly one record.
func TestE2E_AuthFailureQuarantinesThenReplayMakesOneRecord(t *testing.T) {
	s := pipelineStore(t)
	st.CRM.ExpireTokens()
	st.CRM.SetFaults(fakecrm.Faults{RejectCredentials: true})
	t.Cleanup(func() { st.CRM.SetFaults(fakecrm.Faults{}) })

	l := newLead("auth-1")
	if code, body := sendLead(t, l); code != 202 {
		t.Fatalf("send: %d %v", code, body)
	}
	id := event.DocID(demoKey(l))
	eventually(t, 30*time.Second, "lead quarantined with class auth", func() (bool, string) {
		d, err := s.GetEvent(t.Context(), id)
		if err != nil {
			return false, err.Error()
		}
		return d.State == store.StateQuarantined && d.FailureClass == "auth", fmt.Sprintf("%s/%s", d.State, d.FailureClass)
	})
	eventually(t, 30*time.Second, "DLQ record visible in the replayer", func() (bool, string) {
		code, body := api(t, http.MethodGet, "/v1/dlq?status=open&source=demo", nil, st.ReplayerToken)
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
			t.Fatalf("event listed %d times in the DLQ", n)
		}
		return n == 1, fmt.Sprintf("%d records", len(recs))
	})
	if got := st.CRM.CreateCount("c-auth-1"); got != 0 {
		t.Fatalf("CRM creates before the fix = %d, want 0", got)
	}

	if code, _ := api(t, http.MethodPost, "/v1/dlq/"+id+":replay", map[string]any{"reason": "rotated CRM secret"}, ""); code != 401 {
		t.Errorf("unauthenticated replay: %d, want 401", code)
	}
	if code, _ := api(t, http.MethodPost, "/v1/dlq/"+id+":replay", map[string]any{}, st.ReplayerToken); code != 400 {
		t.Errorf("replay without a reason: %d, want 400", code)
	}

	// The operator fixes the credentials and replays.
	st.CRM.SetFaults(fakecrm.Faults{})
	if code, body := api(t, http.MethodPost, "/v1/dlq/"+id+":replay", map[string]any{"reason": "rotated CRM secret"}, st.ReplayerToken); code != 200 && code != 202 {
		t.Fatalf("replay: %d %v", code, body)
	}
	// A second click while the first replay is in flight publishes nothing new.
	api(t, http.MethodPost, "/v1/dlq/"+id+":replay", map[string]any{"reason": "clicked twice"}, st.ReplayerToken)

	eventually(t, 30*time.Second, "replayed lead succeeded", func() (bool, string) {
		d, err := s.GetEvent(t.Context(), id)
		if err != nil {
			return false, err.Error()
		}
		return d.State == store.StateSucceeded, string(d.State)
	})
	// Replaying a succeeded event does nothing but say so.
	code, body := api(t, http.MethodPost, "/v1/dlq/"+id+":replay", map[string]any{"reason": "again"}, st.ReplayerToken)
	if code >= 300 {
		t.Errorf("replay of a succeeded event: %d %v", code, body)
	}
	time.Sleep(time.Second)
	if got := st.CRM.CreateCount("c-auth-1"); got != 1 {
		t.Errorf("CRM creates after replays = %d, want 1", got)
	}
	// The record is resolved as soon as the replayed lead succeeded (the processor resolves it),
	// read from the store, not through the API (which would resolve it on the way).
	if rec, err := s.GetDLQ(t.Context(), id); err != nil || rec.Status != store.DLQResolved {
		t.Errorf("DLQ record after the lead succeeded = %+v, %v; want resolved", rec, err)
	}
	code, body = api(t, http.MethodGet, "/v1/audit", nil, st.ReplayerToken)
	if code != 200 {
		t.Fatalf("GET audit: %d %v", code, body)
	}
	found := false
	entries, _ := body["entries"].([]any)
	for _, e := range entries {
		m := e.(map[string]any)
		if m["actor"] == "local-operator" && m["reason"] == "rotated CRM secret" && m["action"] == "replay" {
			found = true
		}
	}
	if !found {
		t.Errorf("audit has no replay by local-operator with its reason: %v", entries)
	}
}
