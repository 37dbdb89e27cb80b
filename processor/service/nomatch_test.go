package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

// TestUpdateOnlyNoMatchQuarantined: an update-only event (lead.enriched) for a contact no CRM
// record matches is quarantined at once with reason no_match, through every adapter against
// the fake CRM, and creates nothing; its DLQ message carries the reason.
func TestUpdateOnlyNoMatchQuarantined(t *testing.T) {
	reset(t)
	drainDLQ(t)
	url := startProcessor(t, nil)
	routes := map[string]event.Routing{
		"salesforce": {CRM: "salesforce", Object: "Lead", UpsertKey: "External_Id__c", Mode: event.ModeUpdateOnly},
		"hubspot":    {CRM: "hubspot", Object: "contacts", Mode: event.ModeUpdateOnly},
		"webhook":    {CRM: "webhook", Object: "lead", Mode: event.ModeUpdateOnly},
	}
	evs := map[string]*event.Event{}
	for name, r := range routes {
		ev := newEvent("nomatch-" + name)
		ev.EventType, ev.Routing = event.TypeLeadEnriched, r
		evs[ev.EventID] = ev
		if a := post(t, url, envelope(ev, "m-"+ev.EventID)); a.Status != 200 || a.Outcome != "quarantined" {
			t.Errorf("%s: answer %d %s, want 200 quarantined", name, a.Status, a.Outcome)
		}
		d := doc(t, ev)
		if d == nil {
			t.Fatalf("%s: no event document", name)
		}
		if d.State != store.StateQuarantined || d.FailureClass != failure.Permanent || d.Reason != store.ReasonNoMatch {
			t.Errorf("%s: doc %s/%s reason %q, want quarantined/permanent reason no_match", name, d.State, d.FailureClass, d.Reason)
		}
		if d.Attempts != 1 {
			t.Errorf("%s: attempts %d, want 1 (quarantined at once)", name, d.Attempts)
		}
	}
	for _, r := range fake.Records() {
		t.Errorf("update-only events created a record: %s %s", r.System, r.Key)
	}
	got := receiveDLQ(t, len(evs), 10*time.Second)
	for id, ev := range evs {
		m, ok := got[id]
		if !ok {
			t.Errorf("%s: no DLQ message", ev.Routing.CRM)
			continue
		}
		if r := m.Attributes[pushmsg.AttrReason]; r != string(store.ReasonNoMatch) {
			t.Errorf("%s: DLQ reason attribute %q, want no_match", ev.Routing.CRM, r)
		}
	}

	// An upsert failure that is not a no-match carries no reason code.
	ev := newEvent("nomatch-control")
	ev.Identity.Email = "not-an-email"
	if a := post(t, url, envelope(ev, fmt.Sprint("m-", ev.EventID))); a.Outcome != "quarantined" {
		t.Fatalf("invalid email: outcome %s", a.Outcome)
	}
	if d := doc(t, ev); d.Reason != "" {
		t.Errorf("invalid-email quarantine reason %q, want none", d.Reason)
	}
}
