package salesforce_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"

	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
	"github.com/leadpipe/leadpipe/processor/internal/crm/crmtest"
	"github.com/leadpipe/leadpipe/processor/internal/crm/salesforce"
)

func TestConformance(t *testing.T) {
	crmtest.Run(t, crmtest.Adapter{
		CRM: "salesforce", Object: "Lead", UpsertKey: "External_Id__c", Routes: salesforce.Routes,
		New: func(base string, hc *http.Client) crm.Upserter {
			return salesforce.New(salesforce.Config{InstanceURL: base, TokenURL: base + "/services/oauth2/token",
				ClientID: "id", ClientSecret: "secret", APIVersion: "v61.0", HTTPClient: hc, Hasher: crmtest.Hasher})
		},
		RefreshesToken: true, MultipleMatches: true, System: fakecrm.SystemSalesforce, Field: "External_Id__c", NamesFields: true,
	})
}

func TestBudgetFromLimitInfo(t *testing.T) {
	fake, err := fakecrm.Start(fakecrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	fake.SetFaults(fakecrm.Faults{DailyLimit: 2})
	c := salesforce.New(salesforce.Config{InstanceURL: fake.URL(), TokenURL: fake.URL() + "/services/oauth2/token", ClientID: "i", ClientSecret: "s", Hasher: crmtest.Hasher})
	a := crmtest.Adapter{CRM: "salesforce"}
	for i := 0; i < 2; i++ {
		if _, err := c.Upsert(t.Context(), crmtest.Event(a, "b-1", "upsert")); err != nil {
			t.Fatal(err)
		}
	}
	if used, limit := c.Budget(); used != 2 || limit != 2 {
		t.Errorf("Budget: got %d/%d, want 2/2", used, limit)
	}
	_, err = c.Upsert(t.Context(), crmtest.Event(a, "b-1", "upsert"))
	if got := failureClass(err); got != "retryable" {
		t.Errorf("over the daily limit: got class %q, want retryable (%v)", got, err)
	}
	// The daily budget spent: throttling with a minute's pause, not a second's.
	if !crm.Throttled(err) || failure.RetryAfter(err) != time.Minute {
		t.Errorf("over the daily limit: Throttled %v, RetryAfter %v; want true, 1m", crm.Throttled(err), failure.RetryAfter(err))
	}
}
