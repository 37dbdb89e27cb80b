package hubspot_test

import (
	"net/http"
	"testing"

	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
	"github.com/leadpipe/leadpipe/processor/internal/crm/crmtest"
	"github.com/leadpipe/leadpipe/processor/internal/crm/hubspot"
)

func TestConformance(t *testing.T) {
	for _, key := range []string{"email", "leadpipe_external_id"} {
		t.Run(key, func(t *testing.T) {
			crmtest.Run(t, crmtest.Adapter{
				CRM: "hubspot", Object: "contacts", UpsertKey: key,
				New: func(base string, hc *http.Client) crm.Upserter {
					return hubspot.New(hubspot.Config{BaseURL: base, AccessToken: "pat-test", HTTPClient: hc})
				},
				System: fakecrm.SystemHubSpot, NamesFields: true,
			})
		})
	}
}
