// Package enrich fills thin events (ids only, e.g. Meta Lead Ads) from their source before the
// CRM write: for Enrich.Provider "meta_graph" it reads the lead archived next to the raw webhook
// (archive.FetchedName) or, when there is none, GET {graph}/{version}/{leadgen_id} through
// common/metagraph (the access token in an Authorization header, never in the URL; the lead is
// then archived, write-once), and maps field_data into identity and attributes. A replay or
// redelivery so needs the Graph API no more. A thin event whose provider is not configured is
// quarantined, never written empty. It runs as a crm.Middleware, inside the retry middleware, so
// a Graph API hiccup is retried like a CRM one; Graph failures come classified from metagraph
// (expired token: auth; rate limit: retryable, After from Meta's usage headers; lead gone:
// permanent).
package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/storage"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/metagraph"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Fetched stores fetched leads; *archive.Archive implements it.
type Fetched interface {
	GetFetched(ctx context.Context, source, provider, id string) (*archive.Fetched, error)
	PutFetched(ctx context.Context, f *archive.Fetched) (string, error)
}

var _ Fetched = (*archive.Archive)(nil)

// Meta reads leads from the archive, else from the Graph API.
type Meta struct {
	BaseURL     string // e.g. https://graph.facebook.com
	Version     string // e.g. v19.0
	AccessToken string
	HTTPClient  *http.Client
	// Archive holds fetched leads; nil reads the Graph API every time.
	Archive Fetched
}

// Routes are the Graph API requests Meta sends, for telemetry.ClientTransport.
var Routes = []string{"GET /{version}/{leadgen_id}"}

// ErrNotConfigured: a thin event needs a provider this processor has no credentials for.
var ErrNotConfigured = errors.New("enrichment provider not configured")

// Lead returns the fields by name (first value) of source's lead leadgenID: the archived copy
// if there is one, else the Graph API's answer, archived for next time. An archive that cannot
// be read or written is logged and passed by: the Graph API is the source of truth.
func (m *Meta) Lead(ctx context.Context, source, leadgenID string) (map[string]string, error) {
	log := logging.FromContext(ctx)
	if m.Archive != nil {
		f, err := m.Archive.GetFetched(ctx, source, mapping.EnrichMetaGraph, leadgenID)
		switch {
		case err == nil:
			var l metagraph.Lead
			if err := json.Unmarshal(f.Body, &l); err == nil {
				return l.Fields(), nil
			}
			log.WarnContext(ctx, "enrich: archived lead undecodable, reading the Graph API", "leadgen_id", leadgenID)
		case !errors.Is(err, storage.ErrObjectNotExist):
			log.WarnContext(ctx, "enrich: archive unreadable, reading the Graph API", "leadgen_id", leadgenID, "error", err.Error())
		}
	}
	c := &metagraph.Client{BaseURL: m.BaseURL, Version: m.Version, AccessToken: m.AccessToken, HTTPClient: m.HTTPClient}
	l, body, err := c.Lead(ctx, leadgenID)
	if err != nil {
		return nil, err
	}
	if m.Archive != nil {
		if _, err := m.Archive.PutFetched(ctx, &archive.Fetched{Source: source, Provider: mapping.EnrichMetaGraph, ID: leadgenID,
			FetchedAt: time.Now().UTC(), Body: body}); err != nil {
			log.WarnContext(ctx, "enrich: fetched lead not archived", "leadgen_id", leadgenID, "error", err.Error())
		}
	}
	return l.Fields(), nil
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
			fields, err := m.Lead(ctx, ev.Source, id)
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
