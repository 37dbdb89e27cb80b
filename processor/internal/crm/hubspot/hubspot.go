// Package hubspot is the HubSpot CRM adapter: POST /crm/v3/objects/{object}/batch/upsert by a
// unique id property (or email) for upserts, and POST /crm/v3/objects/{object}/batch/update
// with the idProperty in the body for update-only events, so that the email never travels in
// a URL path. 429 answers carry X-HubSpot-RateLimit-* headers and a policyName.
package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Defaults when an event's routing leaves them empty.
const (
	DefaultObject = "contacts"
	// DefaultIDProperty is the custom unique property used when the event has no email.
	DefaultIDProperty = "leadpipe_external_id"
)

// Config configures the adapter.
type Config struct {
	BaseURL     string // required, e.g. https://api.hubapi.com
	AccessToken string // required: a private app token
	HTTPClient  *http.Client
	// Hasher makes the external id of leads without one (crm.ExternalID). Required.
	Hasher *pii.Hasher
}

// Routes are the adapter's request patterns, for crm.Transport.
var Routes = []string{
	"POST /crm/v3/objects/{object}/batch/upsert",
	"POST /crm/v3/objects/{object}/batch/update",
}

// Client is the HubSpot adapter; safe for concurrent use.
type Client struct {
	cfg Config
	hc  *http.Client
}

var _ crm.Upserter = (*Client)(nil)

// New returns an adapter.
func New(cfg Config) *Client {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	return &Client{cfg: cfg, hc: hc}
}

// idProperty picks the unique property and its value: routing.upsert_key when set ("email"
// means the email), else DefaultIDProperty with the canonical contact key when the identity
// step resolved one, else email when present, else DefaultIDProperty with the external id.
func idProperty(ctx context.Context, ev *event.Event, h *pii.Hasher) (string, string) {
	_, resolved := crm.ContactOf(ctx)
	switch k := ev.Routing.UpsertKey; {
	case k == "" && resolved:
		return DefaultIDProperty, crm.ExternalID(ev, h)
	case k == "email" || (k == "" && ev.Identity.Email != ""):
		return "email", strings.ToLower(ev.Identity.Email)
	case k != "":
		return k, crm.ExternalID(ev, h)
	}
	return DefaultIDProperty, crm.ExternalID(ev, h)
}

// Upsert writes ev; see the package comment for the endpoints.
func (c *Client) Upsert(ctx context.Context, ev *event.Event) (crm.Result, error) {
	object := ev.Routing.Object
	if object == "" {
		object = DefaultObject
	}
	prop, id := idProperty(ctx, ev, c.cfg.Hasher)
	if id == "" {
		return crm.Result{}, failure.New(failure.Permanent, 0, "hubspot: upsert key "+prop+" has no value")
	}
	props := properties(ev)
	base := strings.TrimRight(c.cfg.BaseURL, "/") + "/crm/v3/objects/" + url.PathEscape(object)
	u := base + "/batch/upsert"
	if ev.Routing.Mode == event.ModeUpdateOnly {
		u = base + "/batch/update"
	}
	body := map[string]any{"inputs": []map[string]any{{"idProperty": prop, "id": id, "properties": props}}}
	b, err := json.Marshal(body)
	if err != nil {
		return crm.Result{}, failure.Wrap(failure.Permanent, err, "hubspot: encode record")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return crm.Result{}, failure.Wrap(failure.Permanent, err, "hubspot: build request")
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return crm.Result{}, crm.ClassifyTransport(ctx, "hubspot upsert", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		return result(resp, raw), nil
	}
	if resp.StatusCode == http.StatusMultiStatus {
		// A batch answer with per-input errors: with one input, that input failed; an
		// update of a record that does not exist is the usual one.
		if r := result(resp, raw); r.RecordID != "" {
			return r, nil
		}
		if ev.Routing.Mode == event.ModeUpdateOnly {
			return crm.Result{}, failure.New(failure.Permanent, resp.StatusCode, "hubspot 207: update-only event and no record matches")
		}
		return crm.Result{}, failure.New(failure.Permanent, resp.StatusCode, "hubspot 207: batch input rejected")
	}
	return crm.Result{}, classify(resp, raw, ev.Routing.Mode == event.ModeUpdateOnly)
}

func result(resp *http.Response, raw []byte) crm.Result {
	var one struct {
		ID      string `json:"id"`
		New     bool   `json:"new"`
		Results []struct {
			ID  string `json:"id"`
			New bool   `json:"new"`
		} `json:"results"`
	}
	_ = json.Unmarshal(raw, &one)
	r := crm.Result{RecordID: one.ID, Created: one.New, StatusCode: resp.StatusCode,
		RequestID: resp.Header.Get("X-HubSpot-Correlation-Id")}
	if len(one.Results) > 0 {
		r.RecordID, r.Created = one.Results[0].ID, one.Results[0].New
	}
	return r
}

// classify maps a HubSpot error. Messages carry status, category and policy only: HubSpot
// validation messages quote property values.
func classify(resp *http.Response, raw []byte, updateOnly bool) error {
	var e struct {
		Category   string `json:"category"`
		PolicyName string `json:"policyName"`
		ErrorType  string `json:"errorType"`
		Errors     []struct {
			Code    string `json:"code"`
			Context struct {
				PropertyName []string `json:"propertyName"`
			} `json:"context"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(raw, &e)
	st := resp.StatusCode
	msg := strings.TrimSpace(fmt.Sprintf("hubspot %d %s", st, e.Category))
	if len(e.Errors) > 0 {
		// The property at fault by name (never HubSpot's message: it quotes the value).
		if f := crm.FieldNames(e.Errors[0].Context.PropertyName); f != "" {
			msg += " " + crm.FieldNames([]string{e.Errors[0].Code}) + " field " + f
		}
	}
	switch st {
	case http.StatusTooManyRequests:
		fe := crm.ClassifyStatus(st, resp.Header, strings.TrimSpace(fmt.Sprintf("hubspot 429 %s %s", e.ErrorType, e.PolicyName)))
		if fe.After == 0 && resp.Header.Get("X-HubSpot-RateLimit-Remaining") == "0" {
			// Out of the window's budget: wait for the interval (capped; it can be 10 s or a day).
			if ms, err := strconv.Atoi(resp.Header.Get("X-HubSpot-RateLimit-Interval-Milliseconds")); err == nil && ms > 0 {
				fe.After = min(time.Duration(ms)*time.Millisecond, time.Minute)
			}
		}
		return fe
	case http.StatusNotFound:
		if updateOnly {
			return &failure.Error{Class: failure.Permanent, Code: st, Message: "hubspot 404: update-only event and no record matches", Err: failure.ErrNoMatch}
		}
	}
	return crm.ClassifyStatus(st, resp.Header, msg)
}

// properties maps the normalized event to contact properties.
func properties(ev *event.Event) map[string]any {
	p := map[string]any{}
	for from, to := range map[string]string{"first_name": "firstname", "last_name": "lastname", "company": "company",
		"utm_source": "utm_source", "utm_campaign": "utm_campaign"} {
		if v := ev.Attributes[from]; v != "" {
			p[to] = v
		}
	}
	if v := ev.Identity.Email; v != "" {
		p["email"] = v
	}
	if v := ev.Identity.PhoneE164; v != "" {
		p["phone"] = v
	}
	return p
}
