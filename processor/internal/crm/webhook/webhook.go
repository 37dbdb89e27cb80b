// Package webhook is the generic CRM adapter: it POSTs the normalized event as JSON to a
// configured URL with an Idempotency-Key header (the event's idempotency key), so a receiver
// that honours the header applies each event once however often it is sent.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Config configures the adapter.
type Config struct {
	URL        string // required
	HTTPClient *http.Client
}

// Client is the webhook adapter; safe for concurrent use.
type Client struct {
	url string
	hc  *http.Client
}

var _ crm.Upserter = (*Client)(nil)

// New returns an adapter.
func New(cfg Config) *Client {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	return &Client{url: cfg.URL, hc: hc}
}

// Upsert POSTs ev. 2xx succeeds (the record id is read from a JSON "id" when present); 404 on
// an update-only event, 400 and 422 are permanent; 401/403 auth; 409 conflict; 408, 429 and
// 5xx retryable.
func (c *Client) Upsert(ctx context.Context, ev *event.Event) (crm.Result, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return crm.Result{}, failure.Wrap(failure.Permanent, err, "webhook: encode event")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(b))
	if err != nil {
		return crm.Result{}, failure.Wrap(failure.Permanent, err, "webhook: build request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", ev.IdempotencyKey)
	resp, err := c.hc.Do(req)
	if err != nil {
		return crm.Result{}, crm.ClassifyTransport(ctx, "webhook post", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var body struct {
			ID      string `json:"id"`
			Created bool   `json:"created"`
		}
		_ = json.Unmarshal(raw, &body)
		return crm.Result{RecordID: body.ID, Created: body.Created || resp.StatusCode == http.StatusCreated,
			StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}, nil
	}
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(raw, &e)
	msg := fmt.Sprintf("webhook %d %s", resp.StatusCode, e.Code)
	if resp.StatusCode == http.StatusNotFound && ev.Routing.Mode == event.ModeUpdateOnly {
		return crm.Result{}, &failure.Error{Class: failure.Permanent, Code: resp.StatusCode, Message: "webhook 404: update-only event and no record matches", Err: failure.ErrNoMatch}
	}
	return crm.Result{}, crm.ClassifyStatus(resp.StatusCode, resp.Header, msg)
}
