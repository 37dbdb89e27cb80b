package metagraph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
)

// Error answers as the Graph API sends them (bodies from Meta's error-handling and rate-limiting
// guides, fbtrace ids shortened).
var graphErrors = []struct {
	name      string
	status    int
	headers   map[string]string
	body      string
	class     failure.Class
	after     time.Duration
	notFound  bool
	code, sub int
}{
	{name: "expired token", status: 400,
		body:  `{"error":{"message":"Error validating access token: Session has expired on Tuesday, 01-Dec-26 08:00:00 PST.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"A1b2"}}`,
		class: failure.Auth, code: 190, sub: 463},
	{name: "invalid token 401", status: 401,
		body:  `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"A1b3"}}`,
		class: failure.Auth, code: 190},
	{name: "token missing", status: 400,
		body:  `{"error":{"message":"An access token is required to request this resource.","type":"OAuthException","code":104,"fbtrace_id":"A1b4"}}`,
		class: failure.Auth, code: 104},
	{name: "permission", status: 403,
		body:  `{"error":{"message":"(#200) Requires pages_manage_ads permission to manage the object","type":"OAuthException","code":200,"fbtrace_id":"A1b5"}}`,
		class: failure.Auth, code: 200},
	{name: "403 without a body", status: 403, body: `forbidden`, class: failure.Auth},
	{name: "app rate limit", status: 400,
		headers: map[string]string{"X-App-Usage": `{"call_count":100,"total_time":12,"total_cputime":9}`},
		body:    `{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","is_transient":true,"code":4,"fbtrace_id":"A1b6"}}`,
		class:   failure.Retryable, code: 4},
	{name: "leadgen business use case limit", status: 400,
		headers: map[string]string{"X-Business-Use-Case-Usage": `{"104200000000001":[{"type":"leadgen","call_count":100,"total_cputime":31,"total_time":40,"estimated_time_to_regain_access":7}]}`},
		body:    `{"error":{"message":"(#80005) There have been too many leadgen api calls to this Page.","type":"OAuthException","code":80005,"fbtrace_id":"A1b7"}}`,
		class:   failure.Retryable, after: 7 * time.Minute, code: 80005},
	{name: "page rate limit with two use cases", status: 400,
		headers: map[string]string{"X-Business-Use-Case-Usage": `{"1":[{"type":"pages","call_count":99,"estimated_time_to_regain_access":2}],"2":[{"type":"leadgen","call_count":100,"estimated_time_to_regain_access":3}]}`},
		body:    `{"error":{"message":"(#32) Page request limit reached","type":"OAuthException","code":32,"fbtrace_id":"A1b8"}}`,
		class:   failure.Retryable, after: 3 * time.Minute, code: 32},
	{name: "user rate limit", status: 400,
		body:  `{"error":{"message":"(#17) User request limit reached","type":"OAuthException","code":17,"error_subcode":2446079,"fbtrace_id":"A1b9"}}`,
		class: failure.Retryable, code: 17, sub: 2446079},
	{name: "custom rate limit", status: 400,
		body:  `{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613,"fbtrace_id":"A1c0"}}`,
		class: failure.Retryable, code: 613},
	{name: "429 with Retry-After", status: 429, headers: map[string]string{"Retry-After": "12"},
		body: `{}`, class: failure.Retryable, after: 12 * time.Second},
	{name: "lead not found or expired", status: 400,
		body:  `{"error":{"message":"Unsupported get request. Object with ID '900100000000009' does not exist, cannot be loaded due to missing permissions, or does not support this operation.","type":"GraphMethodException","code":100,"error_subcode":33,"fbtrace_id":"A1c1"}}`,
		class: failure.Permanent, notFound: true, code: 100, sub: 33},
	{name: "404", status: 404, body: ``, class: failure.Permanent, notFound: true},
	{name: "invalid parameter", status: 400,
		body:  `{"error":{"message":"(#100) Tried accessing nonexisting field (bogus) on node type (Lead)","type":"OAuthException","code":100,"fbtrace_id":"A1c2"}}`,
		class: failure.Permanent, code: 100},
	{name: "unknown transient", status: 500,
		body:  `{"error":{"message":"An unknown error has occurred.","type":"OAuthException","code":1,"is_transient":true,"fbtrace_id":"A1c3"}}`,
		class: failure.Retryable, code: 1},
	{name: "service unavailable", status: 503, body: `{"error":{"message":"Service temporarily unavailable","type":"OAuthException","code":2,"fbtrace_id":"A1c4"}}`,
		class: failure.Retryable, code: 2},
}

func TestClassify(t *testing.T) {
	for _, tc := range graphErrors {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			c := &Client{BaseURL: srv.URL, Version: "v19.0", AccessToken: "tok"}
			_, _, err := c.Lead(context.Background(), "900100000000009")
			if got, _ := failure.ClassOf(err); got != tc.class {
				t.Fatalf("class: got %q, want %q (err %v)", got, tc.class, err)
			}
			if got := failure.RetryAfter(err); got != tc.after {
				t.Errorf("after: got %v, want %v", got, tc.after)
			}
			if got := errors.Is(err, ErrNotFound); got != tc.notFound {
				t.Errorf("errors.Is(ErrNotFound): got %v, want %v", got, tc.notFound)
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("no *APIError in %v", err)
			}
			if ae.Status != tc.status || ae.Code != tc.code || ae.Subcode != tc.sub {
				t.Errorf("APIError: got %d/%d/%d, want %d/%d/%d", ae.Status, ae.Code, ae.Subcode, tc.status, tc.code, tc.sub)
			}
			// Graph's message text (dates, ids, field names) is not kept.
			if strings.Contains(err.Error(), "Object with ID") || strings.Contains(err.Error(), "Session has expired") {
				t.Errorf("error text carries Graph's message: %v", err)
			}
		})
	}
}

func TestRegainAccess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"app usage with a wait", map[string]string{"X-App-Usage": `{"call_count":100,"estimated_time_to_regain_access":4}`}, 4 * time.Minute},
		{"business use case wins when longer", map[string]string{
			"X-App-Usage":               `{"call_count":100,"estimated_time_to_regain_access":1}`,
			"X-Business-Use-Case-Usage": `{"9":[{"type":"leadgen","estimated_time_to_regain_access":5}]}`}, 5 * time.Minute},
		{"usage without a wait falls back to Retry-After", map[string]string{"X-App-Usage": `{"call_count":100}`, "Retry-After": "30"}, 30 * time.Second},
		{"garbage header", map[string]string{"X-Business-Use-Case-Usage": `not json`}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			if got := RegainAccess(h); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTokenInHeaderOnly: the token is a bearer header; the URL (what spans and logs record)
// never carries it.
func TestTokenInHeaderOnly(t *testing.T) {
	var gotAuth, gotURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotURL = r.Header.Get("Authorization"), r.URL.String()
		fmt.Fprint(w, `{"id":"1","created_time":"2026-03-22T12:34:55+0000","field_data":[{"name":"email","values":["a@example.com"]}]}`)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Version: "v19.0", AccessToken: "s3cr3t-token"}
	l, raw, err := c.Lead(context.Background(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if gotAuth != "Bearer s3cr3t-token" {
		t.Errorf("Authorization: got %q", gotAuth)
	}
	if strings.Contains(gotURL, "s3cr3t") || strings.Contains(gotURL, "access_token") {
		t.Errorf("URL carries the token: %s", gotURL)
	}
	if l.Fields()["email"] != "a@example.com" || !json.Valid(raw) {
		t.Errorf("lead: got %+v raw %s", l, raw)
	}
	if ct, err := l.Created(); err != nil || !ct.Equal(time.Date(2026, 3, 22, 12, 34, 55, 0, time.UTC)) {
		t.Errorf("created: got %v %v", ct, err)
	}
}

// TestFormLeadsPaging pages through 7 leads 3 at a time (3 pages) on paging.cursors.after and
// sends the time filter Graph expects.
func TestFormLeadsPaging(t *testing.T) {
	var mu sync.Mutex
	var filters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v19.0/555/leads" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		filters = append(filters, r.URL.Query().Get("filtering"))
		mu.Unlock()
		start := 0
		fmt.Sscanf(r.URL.Query().Get("after"), "c%d", &start)
		var data []map[string]any
		for i := start; i < min(start+3, 7); i++ {
			data = append(data, map[string]any{"id": fmt.Sprint(100 + i), "created_time": "2026-03-22T12:34:55+0000"})
		}
		paging := map[string]any{"cursors": map[string]string{"before": "b", "after": fmt.Sprintf("c%d", start+3)}}
		if start+3 < 7 {
			paging["next"] = "https://graph.facebook.com/v19.0/555/leads?after=" + fmt.Sprintf("c%d", start+3)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data, "paging": paging})
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Version: "v19.0", AccessToken: "tok"}
	since := time.Unix(1774182800, 0)
	until := time.Unix(1774182900, 0)
	var ids []string
	pages := 0
	err := c.FormLeads(context.Background(), "555", Window{Since: since, Until: until}, 3, func(p *Page) error {
		pages++
		if len(p.Raw) != len(p.Leads) {
			t.Errorf("raw %d, leads %d", len(p.Raw), len(p.Leads))
		}
		for _, l := range p.Leads {
			ids = append(ids, l.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 3 || strings.Join(ids, ",") != "100,101,102,103,104,105,106" {
		t.Errorf("got %d pages, ids %v", pages, ids)
	}
	want := `[{"field":"time_created","operator":"GREATER_THAN","value":1774182799},{"field":"time_created","operator":"LESS_THAN","value":1774182900}]`
	if filters[0] != want {
		t.Errorf("filtering: got %s, want %s", filters[0], want)
	}
	stop := errors.New("stop")
	if err := c.FormLeads(context.Background(), "555", Window{Since: since}, 3, func(*Page) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: got %v", err)
	}
}
