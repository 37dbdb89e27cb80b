package stack_test

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// The Graph API tests run against the fake Graph API of the fake CRM (META_GRAPH_URL), with the
// Meta source of devstack/config/sources.yaml. Reconcile pages 3 leads at a time
// (RECONCILE_PAGE_SIZE in TestMain).

const graphTime = "2006-01-02T15:04:05-0700"

// seedMetaLead puts a lead of form into the fake Graph API.
func seedMetaLead(id, form string, created time.Time) {
	st.CRM.SetMetaLead(id, fmt.Appendf(nil, `{"id":%q,"created_time":%q,"form_id":%q,"ad_id":"238400000000001","field_data":[`+
		`{"name":"full_name","values":["Lead %s"]},{"name":"email","values":["Lead.%s@Example.com"]},{"name":"company_name","values":["Co %s"]}]}`,
		id, created.UTC().Format(graphTime), form, id, id, id))
}

// deliverMeta posts Meta's signed leadgen webhook for the leads and wants a 2xx.
func deliverMeta(t *testing.T, form string, created time.Time, ids ...string) {
	t.Helper()
	changes := ""
	for i, id := range ids {
		if i > 0 {
			changes += ","
		}
		changes += fmt.Sprintf(`{"field":"leadgen","value":{"leadgen_id":%q,"page_id":"104200000000001","form_id":%q,"created_time":%d}}`, id, form, created.Unix())
	}
	body := fmt.Appendf(nil, `{"object":"page","entry":[{"id":"104200000000001","time":%d,"changes":[%s]}]}`, created.Unix(), changes)
	sig := "sha256=" + hex.EncodeToString(mac(secretOf(t, "META_APP_SECRET"), body))
	if code := postSigned(t, "meta", body, "X-Hub-Signature-256", sig); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("meta webhook: %d", code)
	}
}

func metaDocID(leadgenID string) string {
	return event.DocID(event.IdempotencyKey("meta", "lead.created", leadgenID))
}

func metaRecordKey(leadgenID string) string { return "meta-lead-" + leadgenID }

// crmCalls counts CRM writes (not Graph reads) answered so far.
func crmWrites() int {
	n := 0
	for _, c := range st.CRM.Calls() {
		if c.System != fakecrm.SystemMeta {
			n++
		}
	}
	return n
}

func graphCalls() int {
	n := 0
	for _, c := range st.CRM.Calls() {
		if c.System == fakecrm.SystemMeta {
			n++
		}
	}
	return n
}

func reconcileReq(form string, since, until time.Time, dry bool) map[string]any {
	return map[string]any{"source": "meta", "form_id": form, "page_id": "104200000000001",
		"since": since.Format(time.RFC3339), "until": until.Format(time.RFC3339), "dry_run": dry, "reason": "webhooks missed on " + since.Format(time.DateOnly)}
}

func num(m map[string]any, k string) int { f, _ := m[k].(float64); return int(f) }

// TestE2E_ReconcileTakesInLeadsMetaNeverDelivered: of a form's 8 leads, 2 arrive by webhook and
// 6 never do. A dry run reports the 6 and writes nothing; a reconcile lists the form over 3
// pages, adds the 6 (same keys as the webhook's), and the CRM gets each of the 8 exactly once,
// with the fields; a second reconcile adds nothing and writes nothing to the CRM.
func TestE2E_ReconcileTakesInLeadsMetaNeverDelivered(t *testing.T) {
	s := pipelineStore(t)
	const form = "555100000000700"
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("9007000000000%02d", i)
		seedMetaLead(id, form, base.Add(time.Duration(i)*time.Minute))
		ids = append(ids, id)
	}
	seedMetaLead("900700000000099", form, base.Add(-2*time.Hour)) // outside the window
	delivered := ids[:2]
	deliverMeta(t, form, base, delivered...)
	eventually(t, 30*time.Second, "the 2 delivered leads in the CRM", func() (bool, string) {
		n := 0
		for _, id := range delivered {
			n += st.CRM.CreateCount(metaRecordKey(id))
		}
		return n == 2, fmt.Sprintf("%d of 2", n)
	})
	since, until := base.Add(-time.Minute), base.Add(time.Hour)

	code, dry := api(t, http.MethodPost, "/v1/reconcile", reconcileReq(form, since, until, true), st.ReplayerToken)
	if code != http.StatusOK || num(dry, "found") != 8 || num(dry, "existing") != 2 || num(dry, "missing") != 6 || num(dry, "added") != 0 {
		t.Fatalf("dry run: %d %v", code, dry)
	}
	for _, id := range ids[2:] {
		if _, err := s.GetEvent(t.Context(), metaDocID(id)); err == nil {
			t.Fatalf("dry run wrote event %s", id)
		}
	}

	graphBefore := graphCalls()
	code, rep := api(t, http.MethodPost, "/v1/reconcile", reconcileReq(form, since, until, false), st.ReplayerToken)
	if code != http.StatusOK || num(rep, "found") != 8 || num(rep, "existing") != 2 || num(rep, "added") != 6 {
		t.Fatalf("reconcile: %d %v", code, rep)
	}
	var wantIDs, gotIDs []string
	for _, id := range ids[2:] {
		d, err := s.GetEvent(t.Context(), metaDocID(id))
		if err != nil {
			t.Fatalf("reconciled event %s: %v", id, err)
		}
		wantIDs = append(wantIDs, d.EventID)
	}
	for _, v := range rep["added_event_ids"].([]any) {
		gotIDs = append(gotIDs, v.(string))
	}
	slices.Sort(wantIDs)
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("added_event_ids: got %v, want %v", gotIDs, wantIDs)
	}
	eventually(t, 30*time.Second, "all 8 leads in the CRM", func() (bool, string) {
		n := 0
		for _, id := range ids {
			if st.CRM.CreateCount(metaRecordKey(id)) > 0 {
				n++
			}
		}
		return n == 8, fmt.Sprintf("%d of 8", n)
	})
	// 8 leads over 3 pages: three listing calls; the processor enriched the 6 from the leads
	// reconcile archived, without reading the Graph API again.
	if n := graphCalls() - graphBefore; n != 3 {
		t.Errorf("Graph API calls during reconcile and processing: %d, want 3 (the pages)", n)
	}
	for _, r := range records(fakecrm.SystemSalesforce) {
		for _, id := range ids {
			if r.Key == metaRecordKey(id) && r.Fields["Email"] != "lead."+id+"@example.com" {
				t.Errorf("record %s not enriched: %v", r.Key, r.Fields)
			}
		}
	}
	eventually(t, 10*time.Second, "reconciled events succeeded", func() (bool, string) {
		for _, id := range ids {
			d, err := s.GetEvent(t.Context(), metaDocID(id))
			if err != nil || d.State != store.StateSucceeded {
				return false, fmt.Sprint(id, d, err)
			}
		}
		return true, ""
	})

	writes := crmWrites()
	code, again := api(t, http.MethodPost, "/v1/reconcile", reconcileReq(form, since, until, false), st.ReplayerToken)
	if code != http.StatusOK || num(again, "found") != 8 || num(again, "existing") != 8 || num(again, "added") != 0 {
		t.Fatalf("second reconcile: %d %v", code, again)
	}
	time.Sleep(2 * time.Second)
	if got := crmWrites(); got != writes {
		t.Errorf("second reconcile wrote to the CRM: %d writes, want %d", got, writes)
	}
	for _, id := range ids {
		if got := st.CRM.CreateCount(metaRecordKey(id)); got != 1 {
			t.Errorf("creates of %s = %d, want 1", id, got)
		}
	}

	code, body := api(t, http.MethodGet, "/v1/audit?action=reconcile&actor=local-operator", nil, st.ReplayerToken)
	if code != http.StatusOK {
		t.Fatalf("audit: %d %v", code, body)
	}
	outcomes := map[string]int{}
	for _, e := range body["entries"].([]any) {
		m := e.(map[string]any)
		if m["job_id"] == rep["run_id"] {
			if n := len(m["targets"].([]any)); n != 6 {
				t.Errorf("audit targets: %d, want 6", n)
			}
		}
		outcomes[m["outcome"].(string)]++
	}
	if outcomes["dry_run"] < 1 || outcomes["reconciled"] < 2 {
		t.Errorf("audit outcomes: %v, want a dry run and two reconciles", outcomes)
	}
}

// TestE2E_ReconcileWithAnExpiredTokenAnswers502: the Graph API refuses the token; reconcile
// adds nothing, answers 502 with the class, and audits the failed run.
func TestE2E_ReconcileWithAnExpiredTokenAnswers502(t *testing.T) {
	st.CRM.SetMetaFaults(fakecrm.MetaFaults{ExpiredToken: true})
	t.Cleanup(func() { st.CRM.SetMetaFaults(fakecrm.MetaFaults{}) })
	now := time.Now().UTC()
	code, body := api(t, http.MethodPost, "/v1/reconcile", reconcileReq("555100000000701", now.Add(-time.Hour), now, false), st.ReplayerToken)
	rep, _ := body["report"].(map[string]any)
	if code != http.StatusBadGateway || rep == nil || num(rep, "added") != 0 || rep["audit_id"] == "" {
		t.Fatalf("expired token: %d %v, want 502 with a report", code, body)
	}
	if code, body := api(t, http.MethodPost, "/v1/reconcile", map[string]any{"source": "demo", "form_id": "1", "since": now.Add(-time.Hour), "reason": "x"}, st.ReplayerToken); code != http.StatusUnprocessableEntity {
		t.Errorf("non-Meta source: %d %v, want 422", code, body)
	}
	if code, _ := api(t, http.MethodPost, "/v1/reconcile", map[string]any{"source": "meta", "form_id": "1", "since": now}, st.ReplayerToken); code != http.StatusBadRequest {
		t.Errorf("no reason: %d, want 400", code)
	}
	if code, _ := api(t, http.MethodPost, "/v1/reconcile", reconcileReq("1", now.Add(-time.Hour), now, true), ""); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated: %d, want 401", code)
	}
}

// TestE2E_GraphFailureClassesThroughTheProcessor: an expired token quarantines the lead with
// class auth; a rate limit is retried and the lead lands once; a lead Meta no longer has is
// quarantined permanent.
func TestE2E_GraphFailureClassesThroughTheProcessor(t *testing.T) {
	s := pipelineStore(t)
	const form = "555100000000702"
	now := time.Now().UTC().Truncate(time.Second)
	quarantined := func(t *testing.T, id, class string) {
		t.Helper()
		eventually(t, 30*time.Second, "lead "+id+" quarantined "+class, func() (bool, string) {
			d, err := s.GetEvent(t.Context(), metaDocID(id))
			if err != nil {
				return false, err.Error()
			}
			return d.State == store.StateQuarantined && string(d.FailureClass) == class, fmt.Sprintf("%s/%s %s", d.State, d.FailureClass, d.ErrorMessage)
		})
		if got := st.CRM.CreateCount(metaRecordKey(id)); got != 0 {
			t.Errorf("lead %s reached the CRM %d times", id, got)
		}
	}

	t.Run("expired token -> auth", func(t *testing.T) {
		seedMetaLead("900702000000001", form, now)
		st.CRM.SetMetaFaults(fakecrm.MetaFaults{ExpiredToken: true})
		defer st.CRM.SetMetaFaults(fakecrm.MetaFaults{})
		deliverMeta(t, form, now, "900702000000001")
		quarantined(t, "900702000000001", "auth")
	})
	t.Run("rate limit -> retried, lands once", func(t *testing.T) {
		seedMetaLead("900702000000002", form, now)
		before := graphCalls()
		st.CRM.SetMetaFaults(fakecrm.MetaFaults{RateLimit: 2})
		defer st.CRM.SetMetaFaults(fakecrm.MetaFaults{})
		deliverMeta(t, form, now, "900702000000002")
		eventually(t, 30*time.Second, "rate-limited lead in the CRM", func() (bool, string) {
			d, err := s.GetEvent(t.Context(), metaDocID("900702000000002"))
			if err != nil {
				return false, err.Error()
			}
			return d.State == store.StateSucceeded, string(d.State)
		})
		if got := st.CRM.CreateCount(metaRecordKey("900702000000002")); got != 1 {
			t.Errorf("creates = %d, want 1", got)
		}
		if got := st.CRM.MetaFaults().RateLimit; got != 0 || graphCalls()-before < 3 {
			t.Errorf("rate limit not consumed by retries: %d left, %d Graph calls", got, graphCalls()-before)
		}
	})
	t.Run("lead gone -> permanent", func(t *testing.T) {
		st.CRM.DeleteMetaLead("900702000000003")
		deliverMeta(t, form, now, "900702000000003")
		quarantined(t, "900702000000003", "permanent")
	})
}

// TestE2E_ReplayWithTheGraphAPIDownUsesTheArchivedLead: the lead is fetched once (and archived)
// before the CRM refuses it; with the Graph API broken, the replay still gives the CRM the fields.
func TestE2E_ReplayWithTheGraphAPIDownUsesTheArchivedLead(t *testing.T) {
	s := pipelineStore(t)
	const id, form = "900703000000001", "555100000000703"
	now := time.Now().UTC().Truncate(time.Second)
	seedMetaLead(id, form, now)
	st.CRM.ExpireTokens()
	st.CRM.SetFaults(fakecrm.Faults{RejectCredentials: true})
	t.Cleanup(func() { st.CRM.SetFaults(fakecrm.Faults{}); st.CRM.SetMetaFaults(fakecrm.MetaFaults{}) })
	deliverMeta(t, form, now, id)
	eventually(t, 30*time.Second, "lead quarantined by the CRM's auth failure", func() (bool, string) {
		d, err := s.GetEvent(t.Context(), metaDocID(id))
		if err != nil {
			return false, err.Error()
		}
		return d.State == store.StateQuarantined && d.FailureClass == "auth", fmt.Sprintf("%s/%s", d.State, d.FailureClass)
	})
	d, _ := s.GetEvent(t.Context(), metaDocID(id))
	if want := "gs://" + st.Bucket() + "/raw/meta/meta_graph/" + id + ".json"; d.Event.Enrich.Refs["fetched_ref"] != want {
		t.Errorf("fetched_ref: got %q, want %q", d.Event.Enrich.Refs["fetched_ref"], want)
	}

	// The DLQ record comes from the replayer's intake of the dead-letter message, after the
	// event's quarantine: wait for it before replaying (Google's emulator pushes later).
	eventually(t, 30*time.Second, "DLQ record of the quarantined lead", func() (bool, string) {
		if _, err := s.GetDLQ(t.Context(), metaDocID(id)); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	st.CRM.SetMetaFaults(fakecrm.MetaFaults{Outage: true})
	st.CRM.SetFaults(fakecrm.Faults{})
	graphBefore := graphCalls()
	if code, body := api(t, http.MethodPost, "/v1/dlq/"+metaDocID(id)+":replay", map[string]any{"reason": "CRM secret rotated"}, st.ReplayerToken); code != http.StatusOK {
		t.Fatalf("replay: %d %v", code, body)
	}
	eventually(t, 30*time.Second, "replayed lead succeeded", func() (bool, string) {
		d, err := s.GetEvent(t.Context(), metaDocID(id))
		if err != nil {
			return false, err.Error()
		}
		return d.State == store.StateSucceeded, string(d.State)
	})
	if n := graphCalls() - graphBefore; n != 0 {
		t.Errorf("the replay called the Graph API %d times, want 0", n)
	}
	found := false
	for _, r := range records(fakecrm.SystemSalesforce) {
		if r.Key == metaRecordKey(id) {
			found = true
			if r.Fields["Email"] != "lead."+id+"@example.com" {
				t.Errorf("replayed record not enriched: %v", r.Fields)
			}
		}
	}
	if !found || st.CRM.CreateCount(metaRecordKey(id)) != 1 {
		t.Errorf("record found %v, creates %d, want one", found, st.CRM.CreateCount(metaRecordKey(id)))
	}
}

// TestE2E_ScheduledReconcile: Cloud Scheduler's POST /internal/reconcile covers the configured
// forms (RECONCILE_FORMS) over the lookback; the second run adds nothing.
func TestE2E_ScheduledReconcile(t *testing.T) {
	const form = "555100000000704"
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 4 {
		seedMetaLead(fmt.Sprintf("90070400000000%d", i), form, now.Add(-time.Duration(10+i)*time.Minute))
	}
	seedMetaLead("900704000000009", form, now.Add(-5*time.Hour)) // before the 2h lookback
	run := func() map[string]any {
		t.Helper()
		code, body := api(t, http.MethodPost, "/internal/reconcile", nil, st.ReplayerToken)
		runs, _ := body["runs"].([]any)
		if code != http.StatusOK || len(runs) != 1 {
			t.Fatalf("scheduled reconcile: %d %v", code, body)
		}
		return runs[0].(map[string]any)
	}
	if r := run(); num(r, "found") != 4 || num(r, "added") != 4 || r["form_id"] != form {
		t.Fatalf("first run: %v", r)
	}
	if r := run(); num(r, "found") != 4 || num(r, "existing") != 4 || num(r, "added") != 0 {
		t.Fatalf("second run: %v", r)
	}
	eventually(t, 30*time.Second, "scheduled leads in the CRM once each", func() (bool, string) {
		n := 0
		for i := range 4 {
			n += st.CRM.CreateCount(metaRecordKey(fmt.Sprintf("90070400000000%d", i)))
		}
		return n == 4, fmt.Sprintf("%d creates of 4", n)
	})
}
