package stack_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
)

// TestE2E_EnrichmentForUnknownContactIsNoMatch: a lead.enriched event (update-only by
// default) for a contact the CRM does not have creates nothing: it is quarantined with reason
// no_match and the replayer's DLQ shows that reason.
func TestE2E_EnrichmentForUnknownContactIsNoMatch(t *testing.T) {
	s := store.New(fsClient(t))
	l := newLead("nomatch-1")
	l.EventType = event.TypeLeadEnriched
	if code, body := sendLead(t, l); code != 202 {
		t.Fatalf("send: %d %v", code, body)
	}
	id := event.DocID(demoKey(l))
	eventually(t, 30*time.Second, "enrichment quarantined no_match", func() (bool, string) {
		d, err := s.GetEvent(t.Context(), id)
		if err != nil {
			return false, err.Error()
		}
		return d.State == store.StateQuarantined && d.Reason == store.ReasonNoMatch, fmt.Sprintf("%s/%s/%s", d.State, d.FailureClass, d.Reason)
	})
	eventually(t, 30*time.Second, "DLQ record with reason no_match", func() (bool, string) {
		code, body := api(t, http.MethodGet, "/v1/dlq/"+id, nil, st.ReplayerToken)
		if code != 200 {
			return false, fmt.Sprint(code)
		}
		rec, _ := body["record"].(map[string]any)
		return rec["reason"] == string(store.ReasonNoMatch) && rec["failure_class"] == "permanent", fmt.Sprint(rec["failure_class"], " ", rec["reason"])
	})
	if n := st.CRM.CreateCount("c-nomatch-1"); n != 0 {
		t.Errorf("CRM creates = %d, want 0", n)
	}
}
