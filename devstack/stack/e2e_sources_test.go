package stack_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

func secretOf(t *testing.T, name string) string {
	t.Helper()
	for _, kv := range st.SourceSecrets {
		if kv[0] == name {
			return kv[1]
		}
	}
	t.Fatalf("stack exported no %s", name)
	return ""
}

func postSigned(t *testing.T, source string, body []byte, header, value string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, st.IngestURL+"/v1/webhooks/"+source, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(header, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", source, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func mac(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

func records(system string) []fakecrm.Record {
	var out []fakecrm.Record
	for _, r := range st.CRM.Records() {
		if r.System == system {
			out = append(out, r)
		}
	}
	return out
}

// TestE2E_MetaLeadAdsAreEnrichedIntoSalesforce posts Meta's Lead Ads webhook (three leads, ids
// only) twice; the processor fetches each lead from the Graph API and upserts it once.
func TestE2E_MetaLeadAdsAreEnrichedIntoSalesforce(t *testing.T) {
	body, err := os.ReadFile("testdata/meta_leadgen_webhook.json")
	if err != nil {
		t.Fatal(err)
	}
	sig := "sha256=" + hex.EncodeToString(mac(secretOf(t, "META_APP_SECRET"), body))
	if code := postSigned(t, "meta", body, "X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64)); code != http.StatusUnauthorized {
		t.Fatalf("forged signature: %d, want 401", code)
	}
	for i, want := range []int{http.StatusAccepted, http.StatusOK} {
		if code := postSigned(t, "meta", body, "X-Hub-Signature-256", sig); code != want {
			t.Fatalf("delivery %d: %d, want %d", i+1, code, want)
		}
	}
	ids := []string{"900100000000001", "900100000000002", "900100000000003"}
	eventually(t, 30*time.Second, "three enriched Meta leads in Salesforce", func() (bool, string) {
		found := 0
		for _, r := range records(fakecrm.SystemSalesforce) {
			for _, id := range ids {
				if strings.Contains(r.Key, id) {
					found++
				}
			}
		}
		return found == 3, fmt.Sprintf("%d of 3", found)
	})
	for _, r := range records(fakecrm.SystemSalesforce) {
		for _, id := range ids {
			if strings.Contains(r.Key, id) {
				if got := st.CRM.CreateCount(r.Key); got != 1 {
					t.Errorf("creates for %s = %d, want 1", r.Key, got)
				}
				if r.Fields["Email"] == nil || r.Fields["Email"] == "" {
					t.Errorf("record %s was not enriched: fields %v", r.Key, r.Fields)
				}
			}
		}
	}
}

// TestE2E_TypeformIntoHubSpot sends Typeform's form_response to the typeform source, routed to
// HubSpot by email.
func TestE2E_TypeformIntoHubSpot(t *testing.T) {
	body, err := os.ReadFile("testdata/typeform_form_response.json")
	if err != nil {
		t.Fatal(err)
	}
	sig := "sha256=" + base64.StdEncoding.EncodeToString(mac(secretOf(t, "TYPEFORM_WEBHOOK_SECRET"), body))
	for i := 0; i < 3; i++ {
		if code := postSigned(t, "typeform", body, "Typeform-Signature", sig); code != http.StatusAccepted && code != http.StatusOK {
			t.Fatalf("delivery %d: %d", i+1, code)
		}
	}
	eventually(t, 30*time.Second, "Typeform lead in HubSpot", func() (bool, string) {
		for _, r := range records(fakecrm.SystemHubSpot) {
			if r.Key == "alex@riveralabs.example" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d hubspot records", len(records(fakecrm.SystemHubSpot)))
	})
	if got := st.CRM.CreateCount("alex@riveralabs.example"); got != 1 {
		t.Errorf("HubSpot creates = %d, want 1", got)
	}
}

// TestE2E_JSONMapPartnerIntoWebhookCRM maps an arbitrary partner JSON by configured paths and
// delivers it to the generic webhook CRM with an Idempotency-Key.
func TestE2E_JSONMapPartnerIntoWebhookCRM(t *testing.T) {
	body := []byte(`{"id":"p-777","created_at":"2026-11-28T09:00:00Z","contact":{"id":"partner-c-777","email":"kim@partner.example","first_name":"Kim","company":"Partner Co"}}`)
	sig := "sha256=" + hex.EncodeToString(mac(secretOf(t, "PARTNER_WEBHOOK_SECRET"), body))
	for i := 0; i < 2; i++ {
		if code := postSigned(t, "partner", body, "X-Partner-Signature", sig); code != http.StatusAccepted && code != http.StatusOK {
			t.Fatalf("delivery %d: %d", i+1, code)
		}
	}
	eventually(t, 30*time.Second, "partner lead in the webhook CRM", func() (bool, string) {
		for _, r := range records(fakecrm.SystemWebhook) {
			if r.Key == "partner-c-777" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d webhook records", len(records(fakecrm.SystemWebhook)))
	})
	if got := st.CRM.CreateCount("partner-c-777"); got != 1 {
		t.Errorf("webhook CRM creates = %d, want 1", got)
	}
}
