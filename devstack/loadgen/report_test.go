package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// fakeState serves canned /_control/ and /v1/dlq answers, so the accounting can be checked on a
// state the real pipeline must never reach (a lost lead, a duplicate create).
type fakeState struct {
	records []fakecrm.Record
	creates map[string]int
	calls   []fakecrm.Call
	dlq     []dlqRecord
}

func (f *fakeState) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	js := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(v) }
	}
	mux.Handle("GET /_control/records", js(f.records))
	mux.Handle("GET /_control/creates", js(f.creates))
	mux.Handle("GET /_control/calls", js(f.calls))
	mux.HandleFunc("GET /v1/dlq", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("DLQ list without the token: %q", r.Header.Get("Authorization"))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"records": f.dlq})
	})
	return mux
}

func TestReport_CountsLostDuplicatedAndDeadLettered(t *testing.T) {
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	sec := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	r := &run{
		cfg:   Config{Plan: Plan{Leads: 5, Dups: 1, Profile: ProfileBurst}},
		t:     Targets{Source: "demo"},
		id:    "t",
		start: start,
	}
	r.cfg.defaults()
	ans := func(lead, attempt int, at float64, code int, status string) (Delivery, result) {
		return Delivery{Lead: lead, Attempt: attempt}, result{sent: true, at: sec(at), latency: 10 * time.Millisecond, code: code, status: status}
	}
	type row struct {
		lead, attempt int
		at            float64
		code          int
		status        string
	}
	for _, x := range []row{
		{0, 0, 0, 202, "accepted"}, {0, 1, 0.5, 200, "duplicate"},
		{1, 0, 0.1, 202, "accepted"}, {1, 1, 0.2, 200, "duplicate"},
		{2, 0, 0.1, 202, "accepted"}, {2, 1, 0.2, 200, "duplicate"},
		{3, 0, 0.1, 202, "accepted"}, {3, 1, 0.2, 0, ""},
		{4, 0, 0.1, 503, "error"}, {4, 1, 0.2, 503, "error"},
	} {
		d, res := ans(x.lead, x.attempt, x.at, x.code, x.status)
		r.plan = append(r.plan, d)
		r.results = append(r.results, res)
	}
	// Lead 4 was rejected but its event was persisted anyway (a 503 after the write): in the CRM.
	f := &fakeState{
		records: []fakecrm.Record{
			{System: "salesforce", Key: "lg-t-000000", CreatedAt: sec(1.0)},
			{System: "salesforce", Key: "LG-T-000001", CreatedAt: sec(2.1)},
			{System: "webhook", Key: "lg-t-000001", CreatedAt: sec(3.0)},
			{System: "salesforce", Key: "lg-t-000004", CreatedAt: sec(4.0)},
			{System: "salesforce", Key: "someone-else", CreatedAt: sec(9.0)},
		},
		creates: map[string]int{"lg-t-000000": 1, "lg-t-000001": 2, "lg-t-000004": 1, "someone-else": 5},
		calls: []fakecrm.Call{
			{Status: 500, At: start.Add(-time.Second)}, // before the run: not counted
			{Status: 429, At: sec(0.5)}, {Status: 500, At: sec(0.6)}, {Status: 503, At: sec(0.7)},
			{Status: 200, At: sec(1)}, {Status: 201, At: sec(2)},
		},
		dlq: []dlqRecord{{IdempotencyKey: "demo|lead.created|lg-t-000002", Status: "open"}},
	}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	r.crm = &crmControl{base: srv.URL, hc: srv.Client()}
	r.dlq = &dlqClient{base: srv.URL, token: "tok", hc: srv.Client()}

	rep, err := r.report(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"deliveries", rep.Deliveries, 10},
		{"accepted", rep.Accepted, 4},
		{"duplicate", rep.Duplicate, 3},
		{"errors", rep.Errors, 3},
		{"accepted leads", rep.AcceptedLeads, 4},
		{"rejected leads", rep.RejectedLeads, 1},
		{"in CRM", rep.InCRM, 3},
		{"in DLQ", rep.InDLQ, 1},
		{"duplicate creates", rep.DuplicateCreates, 1},
		{"lost", rep.Lost, 1},
		{"CRM calls", rep.CRMCalls, 5},
		{"CRM 429", rep.CRM429, 1},
		{"CRM 5xx", rep.CRM5xx, 2},
		{"answers 503 error", rep.Answers["503 error"], 2},
		{"answers transport error", rep.Answers["transport error"], 1},
		{"end-to-end samples", rep.EndToEnd.Count, 3},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if rep.OK() {
		t.Error("OK() = true for a run with a lost lead and a duplicate create")
	}
	if got := strings.Join(rep.LostIDs, ","); got != "lg-t-000003" {
		t.Errorf("lost ids = %q, want lg-t-000003", got)
	}
	if got := strings.Join(rep.DuplicateIDs, ","); got != "lg-t-000001" {
		t.Errorf("duplicate ids = %q, want lg-t-000001", got)
	}
	// Lead 0: first sent at 0, created at 1.0; lead 1: first sent at 0.1, created (first) at 2.1;
	// lead 4: first sent at 0.1, created at 4.0.
	if want := (Latency{Count: 3, P50: 2 * time.Second, P95: 3900 * time.Millisecond, P99: 3900 * time.Millisecond, Max: 3900 * time.Millisecond}); rep.EndToEnd != want {
		t.Errorf("end-to-end = %+v, want %+v", rep.EndToEnd, want)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lost leads", "lg-t-000003", "FAIL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
}
