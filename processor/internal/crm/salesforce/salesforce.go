// Package salesforce is the Salesforce CRM adapter: OAuth2 client-credentials tokens (cached,
// refreshed once on 401 INVALID_SESSION_ID) and upsert by external id with
// PATCH /services/data/vXX.X/sobjects/{SObject}/{ExternalIdField}/{value}.
package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Defaults when an event's routing leaves them empty.
const (
	DefaultObject          = "Lead"
	DefaultExternalIDField = "External_Id__c"
	// placeholder fills fields Salesforce requires on Lead create (LastName, Company).
	placeholder = "[not provided]"
)

// Config configures the adapter.
type Config struct {
	InstanceURL  string // required, e.g. https://example.my.salesforce.com
	TokenURL     string // required, e.g. https://login.salesforce.com/services/oauth2/token
	ClientID     string // required
	ClientSecret string // required
	APIVersion   string // e.g. "v61.0"; default v61.0
	HTTPClient   *http.Client
	// Hasher makes the external id of leads without one (crm.ExternalID). Required.
	Hasher *pii.Hasher
}

// Routes are the adapter's request patterns, for crm.Transport: spans show these templates,
// never the external id in the path.
var Routes = []string{
	"POST /services/oauth2/token",
	"PATCH /services/data/{version}/sobjects/{object}/{field}/{value}",
}

// Client is the Salesforce adapter. It is safe for concurrent use.
type Client struct {
	cfg Config
	hc  *http.Client

	mu    sync.Mutex
	token string

	apiUsed, apiLimit atomic.Int64
}

var _ crm.Upserter = (*Client)(nil)

// New returns an adapter; no I/O happens until the first Upsert.
func New(cfg Config) *Client {
	if cfg.APIVersion == "" {
		cfg.APIVersion = "v61.0"
	}
	if !strings.HasPrefix(cfg.APIVersion, "v") {
		cfg.APIVersion = "v" + cfg.APIVersion
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	return &Client{cfg: cfg, hc: hc}
}

// Budget is the daily API usage last reported in Sforce-Limit-Info (used, limit); zeros until
// the first response.
func (c *Client) Budget() (used, limit int64) { return c.apiUsed.Load(), c.apiLimit.Load() }

// Upsert writes ev by external id; with routing.mode update_only it passes updateOnly=true so a
// missing record is a permanent 404 rather than a create.
func (c *Client) Upsert(ctx context.Context, ev *event.Event) (crm.Result, error) {
	object := orDefault(ev.Routing.Object, DefaultObject)
	field := orDefault(ev.Routing.UpsertKey, DefaultExternalIDField)
	u := fmt.Sprintf("%s/services/data/%s/sobjects/%s/%s/%s", strings.TrimRight(c.cfg.InstanceURL, "/"),
		c.cfg.APIVersion, url.PathEscape(object), url.PathEscape(field), url.PathEscape(crm.ExternalID(ev, c.cfg.Hasher)))
	if ev.Routing.Mode == event.ModeUpdateOnly {
		u += "?updateOnly=true"
	}
	resolved, _ := crm.ContactOf(ctx)
	body, err := json.Marshal(fields(ev, resolved.Known))
	if err != nil {
		return crm.Result{}, failure.Wrap(failure.Permanent, err, "salesforce: encode record")
	}
	for refreshed := false; ; refreshed = true {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return crm.Result{}, err
		}
		res, err := c.patch(ctx, u, tok, body, ev.Routing.Mode == event.ModeUpdateOnly)
		if failure.Is(err, failure.Auth) && !refreshed && sessionExpired(err) {
			c.dropToken(tok)
			continue
		}
		return res, err
	}
}

// invalidSession marks a 401 the adapter may cure by refreshing its token once.
type invalidSession struct{}

func (invalidSession) Error() string { return "INVALID_SESSION_ID" }

func sessionExpired(err error) bool {
	var fe *failure.Error
	if !errors.As(err, &fe) {
		return false
	}
	_, ok := fe.Err.(invalidSession)
	return ok
}

func (c *Client) patch(ctx context.Context, u, token string, body []byte, updateOnly bool) (crm.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, bytes.NewReader(body))
	if err != nil {
		return crm.Result{}, failure.Wrap(failure.Permanent, err, "salesforce: build request")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return crm.Result{}, crm.ClassifyTransport(ctx, "salesforce upsert", err)
	}
	defer resp.Body.Close()
	c.trackLimit(resp.Header.Get("Sforce-Limit-Info"))
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	reqID := resp.Header.Get("X-Request-Id")
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		var ok struct {
			ID      string `json:"id"`
			Created bool   `json:"created"`
		}
		_ = json.Unmarshal(raw, &ok)
		return crm.Result{RecordID: ok.ID, RequestID: reqID, StatusCode: resp.StatusCode,
			Created: resp.StatusCode == http.StatusCreated || ok.Created}, nil
	}
	return crm.Result{}, classify(resp, raw, updateOnly)
}

// classify maps a Salesforce error response to a failure class. Messages carry the status,
// errorCode and the names of the fields at fault ("salesforce 400 INVALID_FIELD field Phone"),
// never Salesforce's message: it can quote field values (personal data).
func classify(resp *http.Response, raw []byte, updateOnly bool) error {
	var errs []struct {
		ErrorCode string   `json:"errorCode"`
		Fields    []string `json:"fields"`
	}
	_ = json.Unmarshal(raw, &errs)
	code, fieldNames := "", ""
	if len(errs) > 0 {
		code, fieldNames = errs[0].ErrorCode, crm.FieldNames(errs[0].Fields)
	}
	st := resp.StatusCode
	msg := fmt.Sprintf("salesforce %d %s", st, code)
	if fieldNames != "" {
		msg += " field " + fieldNames
	}
	switch {
	case st == http.StatusMultipleChoices:
		return failure.New(failure.Conflict, st, fmt.Sprintf("salesforce %d: external id matches several records", st))
	case st == http.StatusUnauthorized:
		return &failure.Error{Class: failure.Auth, Code: st, Message: msg, Err: invalidSession{}}
	case st == http.StatusForbidden && code == "REQUEST_LIMIT_EXCEEDED":
		// A rate limit, not a credentials problem: the org's daily API budget is spent (wait a
		// minute), or, with budget left per Sforce-Limit-Info, a per-second or concurrency
		// limit (wait a second).
		after := time.Second
		if used, limit, ok := parseLimitInfo(resp.Header.Get("Sforce-Limit-Info")); !ok || used >= limit {
			after = time.Minute
		}
		return &failure.Error{Class: failure.Retryable, Code: st, After: max(crm.RetryAfter(resp.Header), after), Message: msg, Err: crm.ErrThrottled}
	case st == http.StatusNotFound && updateOnly:
		return &failure.Error{Class: failure.Permanent, Code: st, Message: "salesforce 404: update-only event and no record matches", Err: failure.ErrNoMatch}
	case st == http.StatusBadRequest && (code == "UNABLE_TO_LOCK_ROW" || code == "DUPLICATE_VALUE"):
		return failure.New(failure.Conflict, st, msg)
	}
	return crm.ClassifyStatus(st, resp.Header, strings.TrimSpace(msg))
}

// trackLimit reads "api-usage=used/limit".
func (c *Client) trackLimit(h string) {
	if u, l, ok := parseLimitInfo(h); ok {
		c.apiUsed.Store(u)
		c.apiLimit.Store(l)
	}
}

// parseLimitInfo reads Sforce-Limit-Info's "api-usage=used/limit".
func parseLimitInfo(h string) (used, limit int64, ok bool) {
	_, v, ok := strings.Cut(h, "api-usage=")
	if !ok {
		return 0, 0, false
	}
	v, _, _ = strings.Cut(v, ",")
	us, ls, ok := strings.Cut(strings.TrimSpace(v), "/")
	if !ok {
		return 0, 0, false
	}
	u, err1 := strconv.ParseInt(us, 10, 64)
	l, err2 := strconv.ParseInt(ls, 10, 64)
	if err1 != nil || err2 != nil || l <= 0 {
		return 0, 0, false
	}
	return u, l, true
}

// accessToken returns the cached token or fetches one. Concurrent callers share one fetch.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" {
		return c.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.cfg.ClientID}, "client_secret": {c.cfg.ClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", failure.Wrap(failure.Auth, err, "salesforce token: build request")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", crm.ClassifyTransport(ctx, "salesforce token", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok)
	switch {
	case resp.StatusCode == http.StatusOK && tok.AccessToken != "":
		c.token = tok.AccessToken
		return c.token, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return "", crm.ClassifyStatus(resp.StatusCode, resp.Header, fmt.Sprintf("salesforce token %d", resp.StatusCode))
	default:
		return "", failure.New(failure.Auth, resp.StatusCode, fmt.Sprintf("salesforce token %d %s", resp.StatusCode, tok.Error))
	}
}

// dropToken forgets tok unless another caller already replaced it.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// fields maps the normalized event to Lead fields. known says the pipeline wrote the contact
// before (crm.Contact.Known): the write is an update, so no placeholder may blank a real value
// and LeadSource stays the source that created the lead.
func fields(ev *event.Event, known bool) map[string]any {
	a := ev.Attributes
	f := map[string]any{
		"LastName":   orDefault(a["last_name"], placeholder),
		"Company":    orDefault(a["company"], placeholder),
		"LeadSource": ev.Source,
	}
	if known {
		delete(f, "LeadSource")
	}
	if v := a["first_name"]; v != "" {
		f["FirstName"] = v
	}
	if v := ev.Identity.Email; v != "" {
		f["Email"] = v
	}
	if v := ev.Identity.PhoneE164; v != "" {
		f["Phone"] = v
	}
	if ev.Routing.Mode == event.ModeUpdateOnly || known {
		// An update must not blank real values with placeholders.
		for _, k := range []string{"LastName", "Company"} {
			if f[k] == placeholder {
				delete(f, k)
			}
		}
	}
	return f
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
