package service_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/leadpipe/leadpipe/common/store"
)

// chromiumPath finds the browser: CHROMIUM_PATH, then Debian's /usr/bin/chromium. In CI a
// missing browser fails the test; elsewhere it skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM_PATH"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (set CHROMIUM_PATH); .ci/run installs Debian's chromium")
	}
	t.Skip("chromium not installed; apt-get install chromium")
	return ""
}

// The triage page in headless Chromium: sign in, see the quarantined lead in the list, open
// it, replay it with a reason, see the record replayed, and find the lead from the header's
// search box. TRIAGE_SCREENSHOT_DIR set: the search result is saved there as find.png.
func TestTriagePageInBrowser(t *testing.T) {
	path := chromiumPath(t)
	reset(t)
	ev := newEvent("browser-1")
	id := seed(t, ev, store.StateQuarantined, 2)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "crm 400: INVALID_FIELD Phone", 2), "m-ui1")
	other := newEvent("browser-2")
	seed(t, other, store.StateFailed, 10)
	pushDLQ(t, other, pubsubAttrs(other, 10), "m-ui2")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first Run starts the browser; it must not carry a timeout (it would stop the browser).
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	must("sign in", chromedp.Do(ctx,
		chromedp.Navigate(baseURL+"/"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), aliceToken),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("#records")),
	))
	list, err := chromedp.Run(ctx, chromedp.Text(css("#records")))
	must("list", err)
	must("replay", chromedp.Do(ctx,
		chromedp.Click(css(`tr[data-id="`+id+`"] a`)),
		chromedp.WaitVisible(css("#replay-reason")),
		chromedp.SendKeys(css("#replay-reason"), "phone mapping fixed, INC-7"),
		chromedp.Click(css("#replay-button")),
		chromedp.WaitVisible(css("#flash")),
	))
	flash, err := chromedp.Run(ctx, chromedp.Text(css("#flash")))
	must("flash", err)
	status, err := chromedp.Run(ctx, chromedp.Text(css("#status")))
	must("status", err)
	state, err := chromedp.Run(ctx, chromedp.Text(css("#event-state")))
	must("state", err)
	note, err := chromedp.Run(ctx, chromedp.Text(css("#action-note")))
	must("action note", err)
	formGone, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#replay-form") === null`))
	must("replay form", err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must("screenshot", err)
	if !strings.Contains(list, id[:12]) || !strings.Contains(list, "permanent") || !strings.Contains(list, "retryable") {
		t.Errorf("list does not show the quarantined leads:\n%s", list)
	}
	if status != string(store.DLQReplayed) || state != string(store.StateReceived) || !strings.Contains(flash, "Replayed") {
		t.Errorf("after replay: status %q state %q flash %q, want replayed/received/Replayed", status, state, flash)
	}
	if !formGone || !strings.Contains(note, "Replayed at") || !strings.Contains(note, "by alice") {
		t.Errorf("after replay: replay form gone %t, note %q; want no form and who replayed it", formGone, note)
	}
	if n := len(leadsMessages(ev.IdempotencyKey)); n != 1 {
		t.Errorf("%d messages on leads after the page's replay, want 1", n)
	}
	var audit struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	call(t, "GET", "/v1/audit?target="+id, aliceToken, nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != "alice" || audit.Entries[0].Reason != "phone mapping fixed, INC-7" {
		t.Errorf("audit after page replay = %+v", audit.Entries)
	}
	if err := os.WriteFile("/tmp/triage.png", shot, 0o644); err != nil {
		t.Log("screenshot:", err)
	}

	// "Find a lead" from the header: the replayed lead is back in the pipeline, its record
	// replayed.
	must("find", chromedp.Do(ctx,
		chromedp.SendKeys(css("#q"), ev.IdempotencyKey),
		chromedp.Click(css("#find")),
		chromedp.WaitVisible(css("#lead-state")),
	))
	leadState, err := chromedp.Run(ctx, chromedp.Text(css("#lead-state")))
	must("lead state", err)
	dlqLink, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#dlq-link")?.getAttribute("href") ?? ""`))
	must("dlq link", err)
	if leadState != string(store.StateReceived) || dlqLink != "/ui/dlq/"+id {
		t.Errorf("found lead: state %q, DLQ link %q; want received and /ui/dlq/%s", leadState, dlqLink, id)
	}
	if dir := os.Getenv("TRIAGE_SCREENSHOT_DIR"); dir != "" {
		findShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		must("find screenshot", err)
		if err := os.WriteFile(filepath.Join(dir, "find.png"), findShot, 0o644); err != nil {
			t.Log("screenshot:", err)
		}
	}

	// Without a session the page sends the browser to the login form.
	fresh, fcancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	defer fcancel()
	must("fresh navigate", chromedp.Do(fresh, chromedp.Navigate(baseURL+"/ui/dlq/"+id)))
	loc, err := chromedp.Run(fresh, chromedp.Location())
	must("location", err)
	if !strings.Contains(loc, "/ui/login") {
		t.Errorf("unauthenticated page went to %s, want the login form", loc)
	}
}

// A form post with a valid session but without the CSRF token is refused.
func TestTriageFormNeedsCSRF(t *testing.T) {
	reset(t)
	ev := newEvent("csrf-1")
	id := seed(t, ev, store.StateQuarantined, 1)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "x", 1), "m-c1")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := loginAt(t, baseURL, aliceToken, "/", true)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "replayer_session" {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: status %d cookie %+v", resp.StatusCode, cookie)
	}
	for _, csrf := range []string{"", "forged"} {
		req, _ := http.NewRequest("POST", baseURL+"/ui/dlq/"+id+"/replay",
			strings.NewReader(url.Values{"reason": {"r"}, "csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("post with csrf %q = %d, want 403", csrf, resp.StatusCode)
		}
	}
	if getEvent(t, id).State != store.StateQuarantined {
		t.Error("a forged form post replayed the event")
	}
	resp = loginAt(t, baseURL, "wrong", "/", true)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a wrong token = %d, want 401", resp.StatusCode)
	}
}

// getPage fetches a triage page with a bearer token and returns status and HTML.
func getPage(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", baseURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// An empty DLQ, and a filter that matches nothing, each say so.
func TestTriageEmptyState(t *testing.T) {
	reset(t)
	code, page := getPage(t, "/")
	if code != http.StatusOK || !strings.Contains(page, `id="empty"`) || !strings.Contains(page, "The dead-letter queue is empty") {
		t.Errorf("empty DLQ: %d, page without the empty state:\n%s", code, page)
	}
	ev := newEvent("empty-" + nonce())
	seed(t, ev, store.StateQuarantined, 1)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "x", 1), "m-"+nonce())
	if code, page := getPage(t, "/"); code != http.StatusOK || strings.Contains(page, `id="empty"`) {
		t.Errorf("one open record: %d, empty state shown", code)
	}
	code, page = getPage(t, "/?source=no-such-source")
	if code != http.StatusOK || !strings.Contains(page, "No records match these filters") {
		t.Errorf("filter matching nothing: %d, page without the no-match state:\n%s", code, page)
	}
}

// Only open records offer the replay and discard forms; replayed and discarded ones say what
// happened, when and by whom.
func TestTriageFormsOnlyOnOpenRecords(t *testing.T) {
	reset(t)
	var ids [3]string
	for i, action := range []string{"", "replay", "discard"} {
		ev := newEvent("forms-" + nonce())
		ids[i] = seed(t, ev, store.StateQuarantined, 1)
		pushDLQ(t, ev, processorAttrs(ev, "permanent", "x", 1), "m-"+nonce())
		if action != "" {
			if code := call(t, "POST", "/v1/dlq/"+ids[i]+":"+action, bobToken, map[string]any{"reason": "triage test"}, nil); code != http.StatusOK {
				t.Fatalf("%s = %d", action, code)
			}
		}
	}
	tests := []struct {
		name      string
		id        string
		wantForms bool
		wantNote  string
	}{
		{"open", ids[0], true, ""},
		{"replayed", ids[1], false, "Replayed at "},
		{"discarded", ids[2], false, "Discarded at "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, page := getPage(t, "/ui/dlq/"+tc.id)
			if code != http.StatusOK {
				t.Fatalf("detail = %d", code)
			}
			for _, form := range []string{`id="replay-form"`, `id="discard-form"`} {
				if got := strings.Contains(page, form); got != tc.wantForms {
					t.Errorf("%s present = %t, want %t", form, got, tc.wantForms)
				}
			}
			if got := strings.Contains(page, `id="action-note"`); got == tc.wantForms {
				t.Errorf("action note present = %t, want %t", got, !tc.wantForms)
			}
			if tc.wantNote != "" && (!strings.Contains(page, tc.wantNote) || !strings.Contains(page, "by bob")) {
				t.Errorf("page does not say %q ... by bob", tc.wantNote)
			}
		})
	}
}
