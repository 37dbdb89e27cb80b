package webhook_test

import (
	"net/http"
	"testing"

	"github.com/leadpipe/leadpipe/processor/internal/crm"
	"github.com/leadpipe/leadpipe/processor/internal/crm/crmtest"
	"github.com/leadpipe/leadpipe/processor/internal/crm/webhook"
)

func TestConformance(t *testing.T) {
	crmtest.Run(t, crmtest.Adapter{
		CRM: "webhook", Object: "lead",
		New: func(base string, hc *http.Client) crm.Upserter {
			return webhook.New(webhook.Config{URL: base + "/webhook", HTTPClient: hc})
		},
	})
}
