package mapping

import (
	"encoding/json"
	"time"
)

// LeadgenChange is one leadgen change of a Meta page webhook: what reconcile knows of a lead it
// found through the Graph API and not among the received events.
type LeadgenChange struct {
	LeadgenID string
	PageID    string // optional: Graph's lead object does not name its page
	FormID    string
	AdID      string
	Created   time.Time
}

// FacebookWebhookBody is the body of the page webhook Meta would have sent for c, so that the
// facebook_leads normalizer makes the same event from it (same idempotency key, document id and
// event id) as from Meta's own delivery. Keys depend only on the leadgen id; the refs carry
// what c names.
func FacebookWebhookBody(c LeadgenChange) []byte {
	type value struct {
		LeadgenID   string `json:"leadgen_id"`
		PageID      string `json:"page_id,omitempty"`
		FormID      string `json:"form_id,omitempty"`
		AdID        string `json:"ad_id,omitempty"`
		CreatedTime int64  `json:"created_time"`
	}
	type change struct {
		Field string `json:"field"`
		Value value  `json:"value"`
	}
	type entry struct {
		ID      string   `json:"id,omitempty"`
		Time    int64    `json:"time"`
		Changes []change `json:"changes"`
	}
	body := struct {
		Object string  `json:"object"`
		Entry  []entry `json:"entry"`
	}{Object: "page", Entry: []entry{{ID: c.PageID, Time: c.Created.Unix(), Changes: []change{{Field: "leadgen",
		Value: value{LeadgenID: c.LeadgenID, PageID: c.PageID, FormID: c.FormID, AdID: c.AdID, CreatedTime: c.Created.Unix()}}}}}}
	b, _ := json.Marshal(body) // plain structs of strings and numbers: cannot fail
	return b
}
