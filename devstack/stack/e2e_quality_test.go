package stack_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// TestE2E_EnrichmentForUnknownContactIsNoMatch: a lead.enriched event (update-only by
// default) for a contact the CRM does not have creates nothing: it is quarantined with reason
// no_match and the replayer's DLQ shows that reason.
func TestE2E_EnrichmentForUnknownContactIsNoMatch(t *testing.T) {
	s := pipelineStore(t)
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

// seedMetaPerson puts a Meta lead for a person into the fake Graph API.
func seedMetaPerson(id string, created time.Time, fullName, email, phone, company string) {
	st.CRM.SetMetaLead(id, fmt.Appendf(nil, `{"id":%q,"created_time":%q,"form_id":"555100000000999","field_data":[`+
		`{"name":"full_name","values":[%q]},{"name":"email","values":[%q]},{"name":"phone_number","values":[%q]},{"name":"company_name","values":[%q]}]}`,
		id, created.UTC().Format(graphTime), fullName, email, phone, company))
}

func salesforceRecordsByEmail(email string) []fakecrm.Record {
	var out []fakecrm.Record
	for _, r := range records(fakecrm.SystemSalesforce) {
		if e, _ := r.Fields["Email"].(string); strings.EqualFold(e, email) {
			out = append(out, r)
		}
	}
	return out
}

// TestE2E_MetaAndCanonicalLeadOfOnePersonMakeOneRecord: a canonical lead (demo, trust high)
// and a Meta Lead Ads lead (thin, enriched from the Graph API; trust standard) of the same
// person, with email and phone in another case and format, upsert one Salesforce record, both
// one after the other and when both are sent at the same moment. The Meta lead is older, so
// the values of the newer, more trusted demo lead stay.
func TestE2E_MetaAndCanonicalLeadOfOnePersonMakeOneRecord(t *testing.T) {
	s := pipelineStore(t)
	t1 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	succeeded := func(id string) func() (bool, string) {
		return func() (bool, string) {
			d, err := s.GetEvent(t.Context(), id)
			if err != nil {
				return false, err.Error()
			}
			return d.State == store.StateSucceeded, string(d.State)
		}
	}
	for i, concurrent := range []bool{false, true} {
		ext, leadgen := fmt.Sprintf("c-kj-%d", i), fmt.Sprintf("90020000000001%d", i)
		email := fmt.Sprintf("katherine.johnson%d@example.com", i)
		l := newLead("kj-" + strconv.Itoa(i))
		l.OccurredAt = t1
		l.Identity = event.Identity{ContactExternalID: ext, Email: fmt.Sprintf("Katherine.Johnson%d@Example.com", i), PhoneE164: fmt.Sprintf("+1757555010%d", i)}
		l.Attributes = map[string]string{"first_name": "Katherine", "last_name": "Johnson", "company": "NASA"}
		seedMetaPerson(leadgen, t1.Add(-2*time.Hour), "K Johnson", strings.ToUpper(email), fmt.Sprintf("+1 757-555-010%d", i), "Langley")
		sendDemo := func() {
			if code, body := sendLead(t, l); code != 202 {
				t.Errorf("send demo: %d %v", code, body)
			}
		}
		if concurrent {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); sendDemo() }()
			go func() { defer wg.Done(); deliverMeta(t, "555100000000999", t1.Add(-2*time.Hour), leadgen) }()
			wg.Wait()
		} else {
			sendDemo()
			eventually(t, 30*time.Second, "demo lead succeeded", succeeded(event.DocID(demoKey(l))))
			deliverMeta(t, "555100000000999", t1.Add(-2*time.Hour), leadgen)
		}
		eventually(t, 30*time.Second, "demo lead succeeded", succeeded(event.DocID(demoKey(l))))
		eventually(t, 30*time.Second, "meta lead succeeded", succeeded(metaDocID(leadgen)))
		dm, err := s.GetEvent(t.Context(), metaDocID(leadgen))
		if err != nil {
			t.Fatal(err)
		}
		dd, err := s.GetEvent(t.Context(), event.DocID(demoKey(l)))
		if err != nil {
			t.Fatal(err)
		}
		if dm.Contact == nil || dd.Contact == nil || dm.Contact.Key != dd.Contact.Key {
			t.Fatalf("concurrent=%v: contacts %+v %+v, want one key", concurrent, dm.Contact, dd.Contact)
		}
		recs := salesforceRecordsByEmail(email)
		if len(recs) != 1 {
			t.Fatalf("concurrent=%v: %d Salesforce records for the person, want 1: %v", concurrent, len(recs), recs)
		}
		if n := st.CRM.CreateCount(recs[0].Key); n != 1 || recs[0].Key != dd.Contact.Key {
			t.Errorf("concurrent=%v: record %s created %d times, want key %s once", concurrent, recs[0].Key, n, dd.Contact.Key)
		}
		for f, want := range map[string]string{"FirstName": "Katherine", "LastName": "Johnson", "Company": "NASA"} {
			if got := recs[0].Fields[f]; got != want {
				t.Errorf("concurrent=%v: %s = %v, want %q (the newer high-trust value)", concurrent, f, got, want)
			}
		}
	}
}
