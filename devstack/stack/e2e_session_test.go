package stack_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/store"
)

// TestE2E_ExpiredCRMSessionMakesOneRecordPerLead: the Salesforce session expires between
// leads; the processor refreshes its token and each lead, delivered twice by its sender, lands
// exactly once, none quarantined.
func TestE2E_ExpiredCRMSessionMakesOneRecordPerLead(t *testing.T) {
	s := pipelineStore(t)
	var names []string
	for i := range 4 {
		names = append(names, fmt.Sprintf("session-%d-%d", time.Now().UnixNano(), i))
	}
	wait := func(name string) {
		eventually(t, 30*time.Second, name+" succeeded", func() (bool, string) {
			d, err := eventState(t, s, demoKey(newLead(name)))
			if err != nil {
				return false, err.Error()
			}
			if d.State == store.StateQuarantined {
				t.Fatalf("%s quarantined: %s %s", name, d.FailureClass, d.ErrorMessage)
			}
			return d.State == store.StateSucceeded, string(d.State)
		})
	}
	// The first lead opens a session.
	for range 2 {
		if code, body := sendLead(t, newLead(names[0])); code != 202 && code != 200 {
			t.Fatalf("send: %d %v", code, body)
		}
	}
	wait(names[0])
	tokens := st.CRM.TokenRequests()
	st.CRM.ExpireTokens()
	for _, n := range names[1:] {
		for range 2 {
			if code, body := sendLead(t, newLead(n)); code != 202 && code != 200 {
				t.Fatalf("send %s: %d %v", n, code, body)
			}
		}
	}
	for _, n := range names[1:] {
		wait(n)
	}
	if st.CRM.TokenRequests() <= tokens {
		t.Errorf("no new token request after the session expired (%d before, %d after)", tokens, st.CRM.TokenRequests())
	}
	time.Sleep(500 * time.Millisecond) // late duplicates stay duplicates
	for _, n := range names {
		if got := st.CRM.CreateCount(fmt.Sprintf("c-%s", n)); got != 1 {
			t.Errorf("CRM creates for %s = %d, want 1", n, got)
		}
	}
}
