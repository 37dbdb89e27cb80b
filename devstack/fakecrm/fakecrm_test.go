package fakecrm

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func do(t *testing.T, method, u, token string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, u, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

func sfToken(t *testing.T, s *Server) string {
	t.Helper()
	resp, err := http.PostForm(s.URL()+"/services/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token: status %d", resp.StatusCode)
	}
	return tok.AccessToken
}

func TestSalesforceUpsert(t *testing.T) {
	s := start(t)
	tok := sfToken(t, s)
	u := s.URL() + "/services/data/v61.0/sobjects/Lead/Ext_Id__c/"
	lead := map[string]any{"LastName": "R", "Company": "C", "Email": "a@example.com"}
	tests := []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"create", "PATCH", "k1", tok, lead, 201},
		{"update", "PATCH", "k1", tok, lead, 200},
		{"update only miss", "PATCH", "k2?updateOnly=true", tok, lead, 404},
		{"missing required", "PATCH", "k3", tok, map[string]any{"Email": "b@example.com"}, 400},
		{"invalid email", "PATCH", "k4", tok, map[string]any{"LastName": "R", "Company": "C", "Email": "nope"}, 400},
		{"bad token", "PATCH", "k1", "bogus", lead, 401},
		{"get", "GET", "k1", tok, nil, 200},
		{"get miss", "GET", "k9", tok, nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, u+tt.path, tt.token, tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status: got %d, want %d (%s)", resp.StatusCode, tt.want, body)
			}
			if !strings.HasPrefix(resp.Header.Get("Sforce-Limit-Info"), "api-usage=") {
				t.Errorf("Sforce-Limit-Info: got %q", resp.Header.Get("Sforce-Limit-Info"))
			}
		})
	}
	if got := s.CreateCount("k1"); got != 1 {
		t.Errorf("CreateCount(k1): got %d, want 1", got)
	}
	s.Seed(Record{System: SystemSalesforce, Object: "Lead", Field: "Ext_Id__c", Key: "k1"})
	if resp, _ := do(t, "PATCH", u+"k1", tok, lead); resp.StatusCode != 300 {
		t.Errorf("duplicate seeded key: got %d, want 300", resp.StatusCode)
	}
	s.ExpireTokens()
	if resp, _ := do(t, "PATCH", u+"k5", tok, lead); resp.StatusCode != 401 {
		t.Errorf("expired token: got %d, want 401", resp.StatusCode)
	}
}

func TestFaultsOverControlAPI(t *testing.T) {
	s := start(t)
	ctl := s.URL() + "/_control/"
	if resp, b := do(t, "PUT", ctl+"faults", "", Faults{Throttle: 2, RetryAfterSec: 3}); resp.StatusCode != 200 {
		t.Fatalf("put faults: %d %s", resp.StatusCode, b)
	}
	hs := s.URL() + "/crm/v3/objects/contacts/batch/upsert"
	in := map[string]any{"inputs": []map[string]any{{"idProperty": "email", "id": "x@example.com", "properties": map[string]any{"email": "x@example.com"}}}}
	for i := 0; i < 2; i++ {
		resp, body := do(t, "POST", hs, "tok", in)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || resp.Header.Get("X-HubSpot-RateLimit-Max") == "" {
			t.Fatalf("throttled call %d: got %d Retry-After %q", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if !bytes.Contains(body, []byte(`"policyName"`)) {
			t.Errorf("429 body lacks policyName: %s", body)
		}
	}
	if resp, body := do(t, "POST", hs, "tok", in); resp.StatusCode != 200 {
		t.Fatalf("after throttle: got %d %s", resp.StatusCode, body)
	}
	do(t, "POST", ctl+"fail", "", Failure{Count: 1, Status: 409})
	if resp, _ := do(t, "POST", hs, "tok", in); resp.StatusCode != 409 {
		t.Errorf("queued failure: got %d, want 409", resp.StatusCode)
	}
	do(t, "PUT", ctl+"faults", "", Faults{Outage: true})
	if resp, _ := do(t, "POST", hs, "tok", in); resp.StatusCode != 503 {
		t.Errorf("outage: got %d, want 503", resp.StatusCode)
	}
	do(t, "PUT", ctl+"faults", "", Faults{RateLimitPerSec: 2})
	codes := map[int]int{}
	for i := 0; i < 6; i++ {
		resp, _ := do(t, "POST", hs, "tok", in)
		codes[resp.StatusCode]++
	}
	if codes[429] == 0 || codes[200] == 0 {
		t.Errorf("rate limit 2/s over 6 quick calls: got %v, want some 200 and some 429", codes)
	}
	_, b := do(t, "GET", ctl+"creates?key=x@example.com", "", nil)
	var c struct{ Count int }
	_ = json.Unmarshal(b, &c)
	if c.Count != 1 {
		t.Errorf("creates: got %d, want 1", c.Count)
	}
	do(t, "POST", ctl+"reset", "", nil)
	if n := len(s.Records()); n != 0 {
		t.Errorf("records after reset: got %d, want 0", n)
	}
}

func TestWebhookIdempotencyAndMeta(t *testing.T) {
	s := start(t)
	ev := map[string]any{"identity": map[string]any{"contact_external_id": "c1"}, "routing": map[string]any{"mode": "upsert"}}
	req := func(key string) *http.Response {
		r, _ := http.NewRequest("POST", s.URL()+"/webhook", strings.NewReader(mustJSON(ev)))
		r.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if got := req("k").StatusCode; got != 201 {
		t.Fatalf("first: got %d, want 201", got)
	}
	resp := req("k")
	if resp.StatusCode != 201 || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: got %d replayed=%q", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"))
	}
	if got := req("k2").StatusCode; got != 200 {
		t.Fatalf("second key same contact: got %d, want 200", got)
	}
	if got := s.CreateCount("c1"); got != 1 {
		t.Errorf("CreateCount: got %d, want 1", got)
	}
	s.SetMetaLead("42", []byte(`{"id":"42","field_data":[]}`))
	r, b := do(t, "GET", s.URL()+"/v19.0/42?access_token=t", "", nil)
	if r.StatusCode != 200 || !strings.Contains(string(b), `"42"`) {
		t.Errorf("meta seeded: got %d %s", r.StatusCode, b)
	}
	if r, _ := do(t, "GET", s.URL()+"/v19.0/42", "", nil); r.StatusCode != 400 {
		t.Errorf("meta without token: got %d, want 400", r.StatusCode)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// reject_credentials alone leaves a held token working (the README demo used to rely on it and
// broke nothing); with expire_sessions the held token is refused and no new one is issued.
func TestExpireSessionsBreaksAHeldToken(t *testing.T) {
	s := start(t)
	tok := sfToken(t, s)
	upsert := func() int {
		resp, _ := do(t, "PATCH", s.URL()+"/services/data/v61.0/sobjects/Lead/External_Id__c/x-1", tok, map[string]any{"LastName": "L", "Company": "C"})
		return resp.StatusCode
	}
	do(t, "PUT", s.URL()+"/_control/faults", "", map[string]any{"reject_credentials": true})
	if code := upsert(); code >= 300 {
		t.Fatalf("held token with reject_credentials only: %d, want it still accepted", code)
	}
	_, body := do(t, "PUT", s.URL()+"/_control/faults", "", map[string]any{"reject_credentials": true, "expire_sessions": true})
	if code := upsert(); code != http.StatusUnauthorized {
		t.Errorf("held token after expire_sessions: %d, want 401", code)
	}
	if strings.Contains(string(body), `"expire_sessions":true`) {
		t.Errorf("expire_sessions is kept in the faults: %s", body)
	}
	resp, err := http.PostForm(s.URL()+"/services/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("token endpoint with reject_credentials: %d, want refused", resp.StatusCode)
	}
	do(t, "PUT", s.URL()+"/_control/faults", "", map[string]any{})
	tok = sfToken(t, s)
	if code := upsert(); code >= 300 {
		t.Errorf("after clearing the faults a new token works: %d", code)
	}
}
