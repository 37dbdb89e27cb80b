package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// ErrNotLoopback is returned for a target that is not on this machine: the load generator only
// ever sends to loopback addresses.
var ErrNotLoopback = errors.New("target is not a loopback address")

// CheckLoopback accepts http(s) URLs whose host is localhost or a loopback IP literal.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: not an http(s) URL", raw)
	}
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return nil
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q: %w", raw, ErrNotLoopback)
}

// crmControl speaks the fake CRM's /_control/ API (see fakecrm/control.go).
type crmControl struct {
	base string
	hc   *http.Client
}

func (c *crmControl) faults(ctx context.Context) (fakecrm.Faults, error) {
	var f fakecrm.Faults
	err := getJSON(ctx, c.hc, c.base+"/_control/faults", "", &f)
	return f, err
}

func (c *crmControl) setFaults(ctx context.Context, f fakecrm.Faults) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+"/_control/faults", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("crm faults: %w", err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("crm faults: %s", resp.Status)
	}
	return nil
}

func (c *crmControl) creates(ctx context.Context) (map[string]int, error) {
	var m map[string]int
	err := getJSON(ctx, c.hc, c.base+"/_control/creates", "", &m)
	return m, err
}

func (c *crmControl) records(ctx context.Context) ([]fakecrm.Record, error) {
	var rs []fakecrm.Record
	err := getJSON(ctx, c.hc, c.base+"/_control/records", "", &rs)
	return rs, err
}

func (c *crmControl) calls(ctx context.Context) ([]fakecrm.Call, error) {
	var cs []fakecrm.Call
	err := getJSON(ctx, c.hc, c.base+"/_control/calls", "", &cs)
	return cs, err
}

// dlqRecord is the part of the replayer's DLQ record the load generator reads.
type dlqRecord struct {
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
	FailureClass   string `json:"failure_class"`
	Status         string `json:"status"`
}

// dlqClient lists the replayer's DLQ records (GET /v1/dlq, every status, every page).
type dlqClient struct {
	base, token string
	hc          *http.Client
}

// maxDLQPages bounds one listing: 200 pages of 500 records.
const maxDLQPages = 200

func (c *dlqClient) list(ctx context.Context) (map[string]dlqRecord, error) {
	out := map[string]dlqRecord{}
	token := ""
	for range maxDLQPages {
		q := url.Values{"page_size": {"500"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page struct {
			Records       []dlqRecord `json:"records"`
			NextPageToken string      `json:"next_page_token"`
		}
		if err := getJSON(ctx, c.hc, c.base+"/v1/dlq?"+q.Encode(), c.token, &page); err != nil {
			return nil, fmt.Errorf("dlq list: %w", err)
		}
		for _, r := range page.Records {
			out[r.IdempotencyKey] = r
		}
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
	return out, fmt.Errorf("dlq list: more than %d pages", maxDLQPages)
}

func getJSON(ctx context.Context, hc *http.Client, u, bearer string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", req.URL.Path, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", req.URL.Path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", req.URL.Path, err)
	}
	return nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
