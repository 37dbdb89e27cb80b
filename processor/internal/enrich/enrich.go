// Package enrich fills thin events (ids only, e.g. Meta Lead Ads) from their source before the
// CRM write: for Enrich.Provider "meta_graph" it reads GET {graph}/{version}/{leadgen_id} (the
// access token in an Authorization header, never in the URL) and maps field_data into identity
// and attributes. A thin event whose provider is not configured is quarantined, never written
// empty. It runs as a crm.Middleware, inside the retry
// middleware, so a Graph API hiccup is retried like a CRM one.
package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Meta reads leads from the Graph API.
type Meta struct {
	BaseURL     string // e.g. https://graph.facebook.com
	Version     string // e.g. v19.0
	AccessToken string
	HTTPClient  *http.Client
}

// Routes are the Graph API requests Meta sends, for telemetry.ClientTransport.
var Routes = []string{"GET /{version}/{leadgen_id}"}

// ErrNotConfigured: a thin event needs a provider this processor has no credentials for.
var ErrNotConfigured = errors.New("enrichment provider not configured")

type graphLead struct {
	FieldData []struct {
		Name   string   `json:"name"`
		Values []string `json:"values"`
	} `json:"field_data"`
}

// Lead fetches one lead and returns its fields by name (first value).
func (m *Meta) Lead(ctx context.Context, leadgenID string) (map[string]string, error) {
	hc := m.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	u := fmt.Sprintf("%s/%s/%s?fields=created_time,field_data,form_id,ad_id",
		strings.TrimRight(m.BaseURL, "/"), m.Version, url.PathEscape(leadgenID))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, failure.Wrap(failure.Permanent, err, "meta graph: build request")
	}
	req.Header.Set("Authorization", "Bearer "+m.AccessToken)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, crm.ClassifyTransport(ctx, "meta graph", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil, crm.ClassifyStatus(resp.StatusCode, resp.Header, fmt.Sprintf("meta graph %d", resp.StatusCode))
	}
	var l graphLead
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&l); err != nil {
		return nil, failure.Wrap(failure.Permanent, err, "meta graph: undecodable lead")
	}
	out := map[string]string{}
	for _, f := range l.FieldData {
		if len(f.Values) > 0 {
			out[f.Name] = f.Values[0]
		}
	}
	return out, nil
}

// Middleware enriches events marked for provider meta_graph and passes every event on. An
// enriched event without any identity is permanent; so is a thin event when m is nil (no Graph
// token configured): it is quarantined with ErrNotConfigured, to replay once the token is set.
func Middleware(m *Meta) crm.Middleware {
	return func(next crm.Upserter) crm.Upserter {
		return crm.Func(func(ctx context.Context, ev *event.Event) (crm.Result, error) {
			if ev.Enrich == nil || ev.Enrich.Provider != "meta_graph" {
				return next.Upsert(ctx, ev)
			}
			if m == nil {
				if !ev.Identity.Empty() {
					// Already complete (e.g. a replay of an enriched event): write it as is.
					return next.Upsert(ctx, ev)
				}
				return crm.Result{}, failure.Wrap(failure.Permanent, ErrNotConfigured,
					"enrich: thin meta_graph lead and no META_ACCESS_TOKEN configured")
			}
			id := ev.Enrich.Refs["leadgen_id"]
			if id == "" {
				return crm.Result{}, failure.New(failure.Permanent, 0, "enrich: no leadgen_id")
			}
			fields, err := m.Lead(ctx, id)
			if err != nil {
				return crm.Result{}, err
			}
			cp := *ev
			cp.Attributes = map[string]string{}
			for k, v := range ev.Attributes {
				cp.Attributes[k] = v
			}
			apply(&cp, fields)
			if cp.Identity.Empty() {
				return crm.Result{}, failure.New(failure.Permanent, 0, "enrich: lead has no email or phone")
			}
			if cp.Identity.ContactExternalID == "" {
				cp.Identity.ContactExternalID = "meta-lead-" + id
			}
			return next.Upsert(ctx, &cp)
		})
	}
}

func apply(ev *event.Event, f map[string]string) {
	if v := f["email"]; v != "" && ev.Identity.Email == "" {
		ev.Identity.Email = strings.ToLower(v)
	}
	if v := f["phone_number"]; v != "" && ev.Identity.PhoneE164 == "" {
		ev.Identity.PhoneE164 = "+" + strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, v)
	}
	if v := f["full_name"]; v != "" {
		first, last, _ := strings.Cut(strings.TrimSpace(v), " ")
		setIfEmpty(ev.Attributes, "first_name", first)
		setIfEmpty(ev.Attributes, "last_name", last)
	}
	setIfEmpty(ev.Attributes, "first_name", f["first_name"])
	setIfEmpty(ev.Attributes, "last_name", f["last_name"])
	setIfEmpty(ev.Attributes, "company", f["company_name"])
}

func setIfEmpty(m map[string]string, k, v string) {
	if v != "" && m[k] == "" {
		m[k] = v
	}
}
