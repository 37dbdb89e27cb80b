package service_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/leadpipe/leadpipe/common/store"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// signIn posts the login form as a browser does and returns the session cookie.
func signIn(t *testing.T, token string) *http.Cookie {
	t.Helper()
	resp := loginAt(t, baseURL, token, "/", true)
	for _, c := range resp.Cookies() {
		if c.Name == "replayer_session" {
			return c
		}
	}
	t.Fatalf("login: status %d, no session cookie", resp.StatusCode)
	return nil
}

// browse GETs a triage page with cookie (none when nil), without following redirects, and
// returns the response with its body read.
func browse(t *testing.T, cookie *http.Cookie, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", baseURL+path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func findPath(q string) string { return "/ui/events?q=" + url.QueryEscape(q) }

// seedSucceeded creates an event the processor delivered: one succeeded attempt, the CRM's
// record id and status code.
func seedSucceeded(t *testing.T, n, crmID string) string {
	t.Helper()
	ev := newEvent(n)
	id := seed(t, ev, store.StateReceived, 0)
	process(t, id, store.StateSucceeded, store.Result{RecordID: crmID, StatusCode: 201})
	return id
}

// "Find a lead": a delivered lead, found by each of its keys, shows where it is in the CRM and
// has no DLQ record; a quarantined one shows why and links its record.
func TestTriageFindLead(t *testing.T) {
	reset(t)
	cookie := signIn(t, bobToken)
	okN := "find-ok-" + nonce()
	ok := newEvent(okN)
	okID := seedSucceeded(t, okN, "00Q5e00000FIND01")

	bad := newEvent("find-bad-" + nonce())
	badID := seed(t, bad, store.StateQuarantined, 2)
	if code := pushDLQ(t, bad, processorAttrs(bad, "permanent", "crm 400: INVALID_FIELD Phone", 2), "m-"+nonce()); code != http.StatusNoContent {
		t.Fatalf("dead-letter push = %d", code)
	}

	tests := []struct {
		name     string
		q        string
		wantID   string
		want     []string
		wantDLQ  bool
		wantCRM  bool
		wantFail bool
	}{
		{"succeeded by idempotency key", ok.IdempotencyKey, okID,
			[]string{`id="lead-state">succeeded<`, "00Q5e00000FIND01", "salesforce · Lead · upsert", "201"}, false, true, false},
		{"succeeded by event id", ok.EventID, okID,
			[]string{`id="lead-state">succeeded<`, "00Q5e00000FIND01"}, false, true, false},
		{"succeeded by event doc id, pasted with spaces", "  " + okID + "\n", okID,
			[]string{`id="lead-state">succeeded<`}, false, true, false},
		{"quarantined by idempotency key", bad.IdempotencyKey, badID,
			[]string{`id="lead-state">quarantined<`, "permanent", "crm said 400: INVALID_FIELD", "INVALID_FIELD"}, true, false, true},
		{"quarantined by event id", bad.EventID, badID,
			[]string{`id="lead-state">quarantined<`, "crm said 400: INVALID_FIELD"}, true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, page := browse(t, cookie, findPath(tc.q))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200:\n%s", resp.StatusCode, page)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("CSP = %q, want default-src 'none'", csp)
			}
			if !strings.Contains(page, tc.wantID) {
				t.Errorf("page does not show event doc id %s", tc.wantID)
			}
			for _, s := range tc.want {
				if !strings.Contains(page, s) {
					t.Errorf("page does not contain %q", s)
				}
			}
			link := `id="dlq-link" href="/ui/dlq/` + tc.wantID + `"`
			if got := strings.Contains(page, link); got != tc.wantDLQ {
				t.Errorf("DLQ link present = %t, want %t", got, tc.wantDLQ)
			}
			if got := strings.Contains(page, `id="crm-record"`); got != tc.wantCRM {
				t.Errorf("CRM record id row present = %t, want %t", got, tc.wantCRM)
			}
			if got := strings.Contains(page, `id="failure"`); got != tc.wantFail {
				t.Errorf("failure row present = %t, want %t", got, tc.wantFail)
			}
			// The attempt history is the detail page's table.
			if !strings.Contains(page, `id="attempts"`) || strings.Contains(page, "No attempts recorded") {
				t.Errorf("page without the attempt history")
			}
		})
	}

	// The DLQ link leads to the record's page.
	if resp, page := browse(t, cookie, "/ui/dlq/"+badID); resp.StatusCode != http.StatusOK || !strings.Contains(page, "crm 400: INVALID_FIELD Phone") {
		t.Errorf("linked DLQ record page = %d", resp.StatusCode)
	}
}

func TestTriageFindLeadNotFound(t *testing.T) {
	reset(t)
	cookie := signIn(t, aliceToken)
	tests := []struct {
		name, q string
		// absent must not appear in the page: the query unescaped.
		absent, want string
	}{
		{"unknown key", "no-such-lead-" + nonce(), "", "No lead with that key or id"},
		{"unknown 64-hex doc id", strings.Repeat("ab", 32), "", strings.Repeat("ab", 32)},
		{"markup is escaped", `<script>alert(1)</script>"x`, "<script>alert(1)", "&lt;script&gt;alert(1)&lt;/script&gt;"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, page := browse(t, cookie, findPath(tc.q))
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status = %d, want 404", resp.StatusCode)
			}
			if !strings.Contains(page, `id="not-found"`) || !strings.Contains(page, "No lead with that key or id") {
				t.Errorf("page without the not-found message:\n%s", page)
			}
			if !strings.Contains(page, tc.want) {
				t.Errorf("page does not contain %q", tc.want)
			}
			if tc.absent != "" && strings.Contains(page, tc.absent) {
				t.Errorf("page contains the query unescaped (%q)", tc.absent)
			}
		})
	}
}

// An empty search goes back to the list, an over-long one is refused; without a session the search goes to the login form
// and, once signed in, back to the search.
func TestTriageFindLeadRedirects(t *testing.T) {
	cookie := signIn(t, aliceToken)
	for _, q := range []string{"", "   "} {
		resp, _ := browse(t, cookie, findPath(q))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("q=%q: %d to %q, want 303 to /", q, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, page := browse(t, nil, findPath("some-key"))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/login?next=") {
		t.Fatalf("unauthenticated: %d to %q, want 303 to the login form", resp.StatusCode, loc)
	}
	if strings.Contains(page, "No lead with that key") {
		t.Error("unauthenticated request got the search result")
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if next := u.Query().Get("next"); next != findPath("some-key") {
		t.Errorf("login next = %q, want %q", next, findPath("some-key"))
	}
	if resp, page := browse(t, cookie, findPath(strings.Repeat("k", 1501))); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "too long") {
		t.Errorf("over-long search = %d, want 400 saying it is too long", resp.StatusCode)
	}
	if resp, _ := browse(t, nil, "/ui/events"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Errorf("unauthenticated empty search: %d to %q, want the login form", resp.StatusCode, resp.Header.Get("Location"))
	}
}
