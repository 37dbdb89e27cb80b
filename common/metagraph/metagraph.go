// Package metagraph is the Meta Graph API client of the pipeline: it reads one Lead Ads lead
// (GET /{version}/{leadgen_id}) for the processor's enrichment and lists a form's leads in a
// time window (GET /{version}/{form_id}/leads, filtered on time_created, cursor-paged) for the
// replayer's reconcile.
//
// The access token travels in an Authorization: Bearer header, never in the URL, so no client
// span, log line or proxy sees it. Every failure comes back classified (see Classify): read it
// with failure.ClassOf / errors.As, and errors.Is(err, ErrNotFound) for a lead that is gone.
package metagraph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
)

// leadFields are the lead fields every read asks for.
const leadFields = "id,created_time,field_data,form_id,ad_id"

// maxBody bounds a lead (and a listing page) read from the Graph API.
const maxBody = 4 << 20

// Client calls the Graph API. It is safe for concurrent use.
type Client struct {
	// BaseURL is required, e.g. https://graph.facebook.com.
	BaseURL string
	// Version is required, e.g. v19.0.
	Version string
	// AccessToken is the page (or system user) token; required.
	AccessToken string
	// HTTPClient defaults to a client with a 15 s timeout.
	HTTPClient *http.Client
}

// Field is one answer of a lead form.
type Field struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// Lead is a Lead Ads lead as the Graph API returns it.
type Lead struct {
	ID          string  `json:"id"`
	CreatedTime string  `json:"created_time"` // e.g. 2026-03-22T12:34:55+0000
	FormID      string  `json:"form_id,omitempty"`
	AdID        string  `json:"ad_id,omitempty"`
	FieldData   []Field `json:"field_data"`
}

// Created parses CreatedTime (Graph's ISO 8601 with a +0000 offset, or RFC 3339).
func (l *Lead) Created() (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05-0700", time.RFC3339} {
		if t, err := time.Parse(layout, l.CreatedTime); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("lead %s: created_time %q is not a time", l.ID, l.CreatedTime)
}

// Fields returns the first value of each field by name.
func (l *Lead) Fields() map[string]string {
	out := make(map[string]string, len(l.FieldData))
	for _, f := range l.FieldData {
		if len(f.Values) > 0 {
			out[f.Name] = f.Values[0]
		}
	}
	return out
}

// Lead reads one lead. It also returns the body as Meta sent it, for the archive.
func (c *Client) Lead(ctx context.Context, leadgenID string) (*Lead, []byte, error) {
	q := url.Values{"fields": {leadFields}}
	body, err := c.get(ctx, "/"+url.PathEscape(leadgenID), q)
	if err != nil {
		return nil, nil, fmt.Errorf("lead %s: %w", leadgenID, err)
	}
	var l Lead
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, nil, fmt.Errorf("lead %s: %w", leadgenID, failure.Wrap(failure.Permanent, err, "meta graph: undecodable lead"))
	}
	return &l, body, nil
}

// Window selects leads by creation time, in whole seconds (Graph's resolution): Since
// inclusive, Until exclusive (zero: no upper bound).
type Window struct {
	Since, Until time.Time
}

// filtering is the Graph filtering parameter of w.
func (w Window) filtering() string {
	type cond struct {
		Field    string `json:"field"`
		Operator string `json:"operator"`
		Value    int64  `json:"value"`
	}
	cs := []cond{{"time_created", "GREATER_THAN", w.Since.Unix() - 1}}
	if !w.Until.IsZero() {
		cs = append(cs, cond{"time_created", "LESS_THAN", w.Until.Unix()})
	}
	b, _ := json.Marshal(cs) // plain structs: cannot fail
	return string(b)
}

// Page is one page of a form's leads.
type Page struct {
	Leads []Lead
	// Raw is each lead's JSON as Meta sent it, in the order of Leads, for the archive.
	Raw []json.RawMessage
}

// FormLeads lists the leads of form created in w, pageSize per request (Graph's limit; 0: 100),
// following paging.cursors.after while paging.next is present, and calls fn with each page.
// An error from fn stops the listing and is returned as is; Graph failures come back
// classified. Pages are fetched one at a time (no read-ahead), so a slow fn slows the listing.
func (c *Client) FormLeads(ctx context.Context, formID string, w Window, pageSize int, fn func(*Page) error) error {
	if pageSize <= 0 {
		pageSize = 100
	}
	q := url.Values{"fields": {leadFields}, "limit": {strconv.Itoa(pageSize)}, "filtering": {w.filtering()}}
	for page := 1; ; page++ {
		body, err := c.get(ctx, "/"+url.PathEscape(formID)+"/leads", q)
		if err != nil {
			return fmt.Errorf("form %s leads page %d: %w", formID, page, err)
		}
		var resp struct {
			Data   []json.RawMessage `json:"data"`
			Paging struct {
				Cursors struct {
					After string `json:"after"`
				} `json:"cursors"`
				Next string `json:"next"`
			} `json:"paging"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			return fmt.Errorf("form %s leads page %d: %w", formID, page, failure.Wrap(failure.Permanent, err, "meta graph: undecodable listing"))
		}
		p := &Page{Leads: make([]Lead, len(resp.Data)), Raw: resp.Data}
		for i, raw := range resp.Data {
			if err := json.Unmarshal(raw, &p.Leads[i]); err != nil {
				return fmt.Errorf("form %s leads page %d: %w", formID, page, failure.Wrap(failure.Permanent, err, "meta graph: undecodable lead"))
			}
		}
		if err := fn(p); err != nil {
			return err
		}
		after := resp.Paging.Cursors.After
		if resp.Paging.Next == "" || after == "" || after == q.Get("after") {
			return nil
		}
		q.Set("after", after)
	}
}

// get calls GET {BaseURL}/{Version}{path}?{q} with the bearer token and returns a 200 body.
func (c *Client) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	u := strings.TrimRight(c.BaseURL, "/") + "/" + c.Version + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, failure.Wrap(failure.Permanent, err, "meta graph: build request")
	}
	req.Header.Set("Authorization", "Bearer "+c.AccessToken)
	req.Header.Set("Accept", "application/json")
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, Classify(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	return b, nil
}

// classifyTransport: ctx's own end is returned as is; any other transport error is retryable
// (reads are safe to repeat).
func classifyTransport(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("meta graph: %w", err)
	}
	msg := "meta graph: transport error"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "meta graph: timeout"
	}
	return &failure.Error{Class: failure.Retryable, Message: msg, Err: err}
}
