package service_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// loginAt signs in at base as a browser does: GET the form (its nonce cookie and CSRF
// token), then POST it. withCSRF=false posts without the token, as a cross-site form would.
func loginAt(t *testing.T, base, token, next string, withCSRF bool) *http.Response {
	t.Helper()
	resp, err := noRedirect.Get(base + "/ui/login?next=" + url.QueryEscape(next))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(b)
	if m == nil {
		t.Fatalf("login form without a CSRF token: %s", b)
	}
	form := url.Values{"token": {token}, "next": {next}}
	if withCSRF {
		form.Set("csrf", html.UnescapeString(string(m[1])))
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	out, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	return out
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "replayer_session" && c.Value != "" {
			return c
		}
	}
	return nil
}

// getAt GETs path at base with cookie, not following redirects.
func getAt(t *testing.T, base string, cookie *http.Cookie, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.AddCookie(cookie)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestLoginFormNeedsCSRF(t *testing.T) {
	if resp := loginAt(t, baseURL, aliceToken, "/", false); resp.StatusCode != http.StatusForbidden || sessionCookie(resp) != nil {
		t.Errorf("login without CSRF = %d (session %v), want 403 and no session", resp.StatusCode, sessionCookie(resp) != nil)
	}
	if resp := loginAt(t, baseURL, aliceToken, "/", true); resp.StatusCode != http.StatusSeeOther || sessionCookie(resp) == nil {
		t.Errorf("login with CSRF = %d, want 303 and a session", resp.StatusCode)
	}
}

// TestLoginNextStaysOnSite: the redirect after sign-in goes only to a path of this site.
func TestLoginNextStaysOnSite(t *testing.T) {
	for next, want := range map[string]string{
		"/%09/evil.example":              "/",
		"//evil.example":                 "/",
		"https://evil.example/":          "/",
		"/\\evil.example":                "/",
		"/ui/events?q=c-1":               "/ui/events?q=c-1",
		"/ui/dlq/abc?include=raw&x=%41B": "/ui/dlq/abc?include=raw&x=%41B",
	} {
		resp := loginAt(t, baseURL, bobToken, next, true)
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("next %q: %d Location %q, want %q", next, resp.StatusCode, got, want)
		}
	}
}

// TestLogoutEndsEverySessionOfTheActor: signing out in one browser ends the actor's other
// sessions too (the server-side generation moves on); another actor's sessions stand.
func TestLogoutEndsEverySessionOfTheActor(t *testing.T) {
	inst := startReplayer(t, map[string]string{"SESSION_KEY": strings.Repeat("k", 32),
		"REPLAYER_TOKENS": "tok-carol-0123456789=carol,tok-dave-0123456789=dave"})
	c1 := sessionCookie(loginAt(t, inst.URL, "tok-carol-0123456789", "/", true))
	c2 := sessionCookie(loginAt(t, inst.URL, "tok-carol-0123456789", "/", true))
	d := sessionCookie(loginAt(t, inst.URL, "tok-dave-0123456789", "/", true))
	if c1 == nil || c2 == nil || d == nil {
		t.Fatal("no session")
	}
	resp, page := getAt(t, inst.URL, c1, "/")
	m := csrfField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("index = %d, no CSRF token", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, inst.URL+"/ui/logout", strings.NewReader(url.Values{"csrf": {html.UnescapeString(m[1])}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(c1)
	out, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if out.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout = %d", out.StatusCode)
	}
	for name, c := range map[string]*http.Cookie{"signed-out session": c1, "other browser": c2} {
		if resp, _ := getAt(t, inst.URL, c, "/"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
			t.Errorf("%s after logout: %d %s, want a redirect to the login form", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := getAt(t, inst.URL, d, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("another actor's session after logout: %d, want 200", resp.StatusCode)
	}
	if c3 := sessionCookie(loginAt(t, inst.URL, "tok-carol-0123456789", "/", true)); c3 == nil {
		t.Error("cannot sign in again after logout")
	} else if resp, _ := getAt(t, inst.URL, c3, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("new session after logout: %d", resp.StatusCode)
	}
}

// TestRevokedTokenEndsItsSessions: sessions are re-authorized on every request, so once a
// token is removed from the configuration (a redeploy with the same session key) the sessions
// opened with it end, while sessions of tokens still configured stand.
func TestRevokedTokenEndsItsSessions(t *testing.T) {
	key := strings.Repeat("s", 32)
	before := startReplayer(t, map[string]string{"SESSION_KEY": key, "REPLAYER_TOKENS": "tok-erin-old-0123=erin,tok-finn-0123456=finn"})
	erin := sessionCookie(loginAt(t, before.URL, "tok-erin-old-0123", "/", true))
	finn := sessionCookie(loginAt(t, before.URL, "tok-finn-0123456", "/", true))
	if erin == nil || finn == nil {
		t.Fatal("no session")
	}
	after := startReplayer(t, map[string]string{"SESSION_KEY": key, "REPLAYER_TOKENS": "tok-erin-new-0123=erin,tok-finn-0123456=finn"})
	if resp, _ := getAt(t, after.URL, erin, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session of a revoked token: %d, want a redirect to the login form", resp.StatusCode)
	}
	if resp, _ := getAt(t, after.URL, finn, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("session of a token still configured: %d, want 200", resp.StatusCode)
	}
}

// TestRawReadIsAudited: reading a raw payload needs a reason and writes an audit entry with
// actor and reason.
func TestRawReadIsAudited(t *testing.T) {
	reset(t)
	ev := newEvent("audit-raw-" + nonce())
	id := seed(t, ev, store.StateQuarantined, 1)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "x", 1), "m-"+nonce())
	if code := call(t, "GET", "/v1/dlq/"+id+"?include=raw", aliceToken, nil, nil); code != http.StatusBadRequest {
		t.Errorf("raw read without a reason = %d, want 400", code)
	}
	var d views.Detail
	if code := call(t, "GET", "/v1/dlq/"+id+"?include=raw&reason="+url.QueryEscape("ticket 4711"), aliceToken, nil, &d); code != http.StatusOK || d.Normalized == nil {
		t.Fatalf("raw read with a reason = %d", code)
	}
	var audit struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	if code := call(t, "GET", "/v1/audit?target="+id, aliceToken, nil, &audit); code != http.StatusOK {
		t.Fatalf("audit = %d", code)
	}
	found := 0
	for _, e := range audit.Entries {
		if e.Action == views.ActionReadRaw && e.Actor == "alice" && e.Reason == "ticket 4711" {
			found++
		}
	}
	if found != 1 {
		t.Errorf("read_raw audit entries by alice with the reason: %d, want 1 (%+v)", found, audit.Entries)
	}
}
