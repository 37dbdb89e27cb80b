package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

// screenshotDir is where the console's browser tests save their screenshots (committed, so a
// reviewer sees the page without running it).
const screenshotDir = "../testdata/screenshots"

// browser starts headless Chromium signed in to the replayer at a viewport of w x h and returns
// a context for chromedp actions (90 s budget).
func browser(t *testing.T, w, h int) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	do(t, ctx, "sign in",
		chromedp.EmulateViewport(int64(w), int64(h)),
		chromedp.Navigate(baseURL+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), aliceToken),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#states")),
	)
	return ctx
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// textOf is the visible text of the first element matching the CSS selector.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("browser: %s: %v", js, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// seedWaiting creates n events in state s routed to salesforce, created ago before now.
func seedWaiting(t *testing.T, prefix string, n int, s store.State, ago time.Duration) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ev := newEvent(fmt.Sprintf("%s-%d-%s", prefix, i, nonce()))
		doc := &store.EventDoc{IdempotencyKey: ev.IdempotencyKey, EventID: ev.EventID, Source: ev.Source, EventType: ev.EventType,
			Event: ev, State: s, CreatedAt: time.Now().UTC().Add(-ago), Attempts: 1}
		switch s {
		case store.StateFailed:
			doc.FailureClass, doc.ErrorMessage = "retryable", "salesforce 503"
		case store.StateParked:
			// As the processor parks a lead while the CRM's circuit is open.
			doc.FailureClass, doc.ErrorMessage, doc.ParkedAt, doc.AttemptsBase = "outage", "salesforce circuit open", time.Now().UTC(), 1
		}
		if err := st.CreateEvent(context.Background(), doc); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, doc.DocID)
	}
	return ids
}

func setCircuit(t *testing.T, crm string, state store.CRMState) {
	t.Helper()
	now := time.Now().UTC()
	if err := st.SetCRMHealth(context.Background(), store.CRMHealth{CRM: crm, State: state, ChangedAt: now.Add(-2 * time.Minute), LastFailureAt: now}); err != nil {
		t.Fatal(err)
	}
}

// During a CRM outage nothing is in the DLQ yet, but the overview shows the leads in flight
// (received, and parked while the circuit is open), the oldest one's age, the open circuit,
// and lists the waiting leads; GET /v1/overview says the same.
func TestConsoleOverviewDuringOutage(t *testing.T) {
	reset(t)
	waiting := append(seedWaiting(t, "outage-r", 3, store.StateReceived, 3*time.Minute), seedWaiting(t, "outage-p", 2, store.StateParked, 90*time.Second)...)
	setCircuit(t, "salesforce", store.CRMOpen)
	// One lead went through before the outage, one minute ago.
	done := newEvent("outage-ok-" + nonce())
	ok := &store.EventDoc{IdempotencyKey: done.IdempotencyKey, EventID: done.EventID, Source: "demo", EventType: done.EventType, Event: done,
		State: store.StateSucceeded, CreatedAt: time.Now().UTC().Add(-5 * time.Minute), CompletedAt: time.Now().UTC().Add(-4 * time.Minute), CRMRecordID: "00Q000000000001"}
	if err := st.CreateEvent(context.Background(), ok); err != nil {
		t.Fatal(err)
	}

	var o views.Overview
	if code := call(t, "GET", "/v1/overview?window=1h", bobToken, nil, &o); code != http.StatusOK {
		t.Fatalf("GET /v1/overview = %d", code)
	}
	if o.InFlight != 5 || len(o.Waiting) != 5 || o.OldestUnfinishedAgeSec < 170 {
		t.Errorf("overview: in flight %d, waiting %d, oldest %ds; want 5, 5, about 180s", o.InFlight, len(o.Waiting), o.OldestUnfinishedAgeSec)
	}
	if len(o.CRMs) != 1 || o.CRMs[0].CRM != "salesforce" || o.CRMs[0].Circuit != store.CRMOpen {
		t.Errorf("overview CRMs = %+v, want salesforce open", o.CRMs)
	}
	counts := map[string]int64{}
	for _, s := range o.States {
		counts[s.State] = s.Count
	}
	if counts["received"] != 3 || counts["parked"] != 2 || counts["succeeded"] != 1 || counts["failed"] != 0 {
		t.Errorf("state counts = %v", counts)
	}
	var accepted, written int
	for _, m := range o.Throughput {
		accepted += m.Accepted
		written += m.Succeeded
	}
	if accepted != 6 || written != 1 {
		t.Errorf("throughput: %d accepted, %d written in the chart; want 6 and 1", accepted, written)
	}
	if code := call(t, "GET", "/v1/overview?window=forever", bobToken, nil, nil); code != http.StatusBadRequest {
		t.Errorf("bad window = %d, want 400", code)
	}

	ctx := browser(t, 1280, 900)
	inFlight := textOf(t, ctx, "#in-flight b")
	circuit := textOf(t, ctx, "#circuit-salesforce")
	list := textOf(t, ctx, "#waiting")
	empty := textOf(t, ctx, "#empty")
	bars := eval[int](t, ctx, `document.querySelectorAll("#throughput rect").length`)
	localTimes := eval[bool](t, ctx, `[...document.querySelectorAll("time")].every(e => e.classList.contains("local") && e.title.endsWith("(UTC)"))`)
	screenshot(t, ctx, "overview-outage.png")
	if inFlight != "5" || circuit != "open" {
		t.Errorf("overview: in flight %q, salesforce circuit %q; want 5 and open", inFlight, circuit)
	}
	for _, id := range waiting {
		if !strings.Contains(list, id[:12]) {
			t.Errorf("waiting leads do not list %s:\n%s", id[:12], list)
		}
	}
	if n := strings.Count(list, "parked"); n != 2 {
		t.Errorf("waiting leads show %d parked, want the 2 parked leads labelled so:\n%s", n, list)
	}
	if !strings.Contains(empty, "5 leads are still in flight") {
		t.Errorf("empty DLQ note does not mention the leads in flight: %q", empty)
	}
	if bars < 2 {
		t.Errorf("throughput chart has %d bars, want accepted and written bars", bars)
	}
	if !localTimes {
		t.Error("times are not shown in the viewer's zone with UTC on hover")
	}
}

// indexLead creates an event with an identity and writes its lookup entries as ingest does.
func indexLead(t *testing.T, n string, id event.Identity, s store.State) string {
	t.Helper()
	ev := newEvent(n)
	ev.Identity = id
	doc := &store.EventDoc{IdempotencyKey: ev.IdempotencyKey, EventID: ev.EventID, Source: ev.Source, EventType: ev.EventType, Event: ev, State: s}
	if s == store.StateSucceeded {
		doc.CRMRecordID, doc.CompletedAt = "00Q"+strings.ToUpper(nonce()), time.Now().UTC()
	}
	ctx := context.Background()
	if err := st.CreateEvent(ctx, doc); err != nil {
		t.Fatal(err)
	}
	h, err := pii.NewHasher([]byte(testPIIKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.IndexEvent(ctx, h, doc); err != nil {
		t.Fatal(err)
	}
	return doc.DocID
}

// GET /v1/events?q= finds a lead by every handle an operator may have, and the index holds no
// personal data in clear.
func TestFindAnyLead(t *testing.T) {
	reset(t)
	n := "find-" + nonce()
	id := indexLead(t, n, event.Identity{Email: "Ada.Lovelace@Example.com", PhoneE164: "+14155550123", ContactExternalID: "ext-" + n}, store.StateSucceeded)
	other := indexLead(t, "find-other-"+nonce(), event.Identity{Email: "grace@example.com"}, store.StateReceived)
	doc := getEvent(t, id)
	tests := []struct {
		q, by string
	}{
		{" ada.lovelace@example.COM ", views.ByEmail},
		{"(415) 555-0123", views.ByPhone},
		{"+1 415 555 0123", views.ByPhone},
		{"ext-" + n, views.ByExternalID},
		{doc.CRMRecordID, views.ByCRMRecordID},
		{"lead-" + n, views.BySourceEvent},
		{doc.IdempotencyKey, views.ByKey},
		{doc.EventID, views.ByKey},
		{id, views.ByKey},
		{id[:12], views.ByShortID},
	}
	for _, tc := range tests {
		t.Run(tc.by+"/"+tc.q, func(t *testing.T) {
			var res views.FindResult
			if code := call(t, "GET", "/v1/events?q="+url.QueryEscape(tc.q), bobToken, nil, &res); code != http.StatusOK {
				t.Fatalf("find = %d", code)
			}
			if len(res.Matches) != 1 || res.Matches[0].Event.ID != id || res.Matches[0].By != tc.by {
				t.Errorf("find %q = %+v, want only %s by %s", tc.q, res.Matches, id[:12], tc.by)
			}
		})
	}
	var res views.FindResult
	call(t, "GET", "/v1/events?q=nobody@example.com", bobToken, nil, &res)
	if len(res.Matches) != 0 {
		t.Errorf("unknown email matched %+v", res.Matches)
	}
	if code := call(t, "GET", "/v1/events?q=", bobToken, nil, nil); code != http.StatusBadRequest {
		t.Errorf("empty q = %d, want 400", code)
	}
	_ = other
	// That the index stores keyed hashes only is common/store TestLookupIndexHoldsNoClearValues.
}

// The page finds a lead by email typed in the header (any case, spaces around).
func TestConsoleFindByEmailInBrowser(t *testing.T) {
	reset(t)
	id := indexLead(t, "find-ui-"+nonce(), event.Identity{Email: "ada.lovelace@example.com"}, store.StateSucceeded)
	ctx := browser(t, 1280, 900)
	do(t, ctx, "find",
		chromedp.SendKeys(chromedp.CSS("#q"), "  Ada.Lovelace@example.com "),
		chromedp.Click(chromedp.CSS("#find")),
		chromedp.WaitVisible(chromedp.CSS("#lead-state")),
	)
	state := textOf(t, ctx, "#lead-state")
	by := textOf(t, ctx, "#matched-by")
	record := textOf(t, ctx, "#crm-record")
	screenshot(t, ctx, "find-by-email.png")
	if state != "succeeded" || !strings.Contains(by, "email") || record != getEvent(t, id).CRMRecordID {
		t.Errorf("found: state %q, %q, CRM record %q", state, by, record)
	}
}

// quarantine seeds n quarantined events with DLQ records of class.
func quarantine(t *testing.T, prefix string, n int, class, msg string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ev := newEvent(fmt.Sprintf("%s-%d-%s", prefix, i, nonce()))
		id := seed(t, ev, store.StateQuarantined, 1)
		if code := pushDLQ(t, ev, processorAttrs(ev, class, msg, 1), "m-"+nonce()); code != http.StatusNoContent {
			t.Fatalf("dlq push = %d", code)
		}
		ids = append(ids, id)
	}
	return ids
}

// Bulk replay from the page: filter by class, preview the count, give a reason, and the job
// replays exactly the previewed records.
func TestConsoleBulkReplayWithPreview(t *testing.T) {
	reset(t)
	auth := quarantine(t, "bulk-auth", 3, "auth", "crm 401: INVALID_SESSION_ID")
	perm := quarantine(t, "bulk-perm", 1, "permanent", "crm 400: INVALID_FIELD Phone")
	ctx := browser(t, 1280, 900)
	do(t, ctx, "filter and preview",
		chromedp.Navigate(baseURL+"/?failure_class=auth&status=open"),
		chromedp.WaitVisible(chromedp.CSS("#bulk-replay")),
		chromedp.Click(chromedp.CSS("#bulk-replay")),
		chromedp.WaitVisible(chromedp.CSS("#preview-count")),
	)
	count := textOf(t, ctx, "#preview-count")
	rows := eval[int](t, ctx, `document.querySelectorAll("#preview-records tr").length - 1`)
	screenshot(t, ctx, "bulk-preview.png")
	if count != "3" || rows != 3 {
		t.Fatalf("preview: count %q, %d rows; want 3 auth records", count, rows)
	}
	// The reason is required: the browser refuses an empty one, and so does the server.
	if code, _ := postForm(t, "/ui/bulk", url.Values{"action": {"replay"}, "failure_class": {"auth"}, "status": {"open"}, "expected": {"3"}}); code != http.StatusBadRequest {
		t.Errorf("bulk replay without a reason = %d, want 400", code)
	}
	do(t, ctx, "confirm",
		chromedp.SendKeys(chromedp.CSS("#bulk-reason"), "rotated the CRM secret, INC-9"),
		chromedp.Click(chromedp.CSS("#bulk-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#job-status")),
	)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	jobID := loc[strings.LastIndex(loc, "/")+1:]
	eventually(t, "bulk job done", func() bool {
		var j store.ReplayJob
		call(t, "GET", "/v1/replays/"+jobID, bobToken, nil, &j)
		return j.Status == store.JobDone
	})
	do(t, ctx, "job page", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#job-status")))
	if st, replayed := textOf(t, ctx, "#job-status"), textOf(t, ctx, "#job-replayed"); st != "done" || replayed != "3" {
		t.Errorf("job page: %s, %s replayed; want done, 3", st, replayed)
	}
	for _, id := range auth {
		if n := len(leadsMessages(getEvent(t, id).IdempotencyKey)); n != 1 {
			t.Errorf("%s: %d messages on leads, want 1", id[:12], n)
		}
	}
	if n := len(leadsMessages(getEvent(t, perm[0]).IdempotencyKey)); n != 0 {
		t.Errorf("the permanent record outside the filter was replayed (%d messages)", n)
	}
	var audit struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	call(t, "GET", "/v1/audit?target="+auth[0], bobToken, nil, &audit)
	if len(audit.Entries) == 0 || audit.Entries[0].Actor != "alice" || !strings.Contains(audit.Entries[0].Reason, "INC-9") {
		t.Errorf("audit of a bulk-replayed record = %+v", audit.Entries)
	}
}

// postForm posts a triage form with alice's bearer token and the CSRF token the page binds to
// it; it returns the status and body.
func postForm(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	_, page := getPage(t, "/")
	i := strings.Index(page, `name="csrf" value="`)
	if i < 0 {
		t.Fatal("no CSRF token on the page")
	}
	rest := page[i+len(`name="csrf" value="`):]
	form.Set("csrf", rest[:strings.IndexByte(rest, '"')])
	req, _ := http.NewRequest("POST", baseURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}

// A replay into a CRM whose circuit is open is held with a warning (nothing published, the
// record stays open), on one record and in bulk; asked for despite the circuit, it goes.
func TestReplayHeldWhileCircuitOpen(t *testing.T) {
	reset(t)
	ids := quarantine(t, "held", 2, "outage", "salesforce circuit open")
	setCircuit(t, "salesforce", store.CRMOpen)
	code, page := getPage(t, "/ui/dlq/"+ids[0])
	if code != http.StatusOK || !strings.Contains(page, `id="circuit-warning"`) {
		t.Errorf("detail with the circuit open: %d, no circuit warning", code)
	}
	code, page = postForm(t, "/ui/dlq/"+ids[0]+"/replay", url.Values{"reason": {"CRM back?"}})
	if code != http.StatusConflict || !strings.Contains(page, `id="warning"`) || !strings.Contains(page, "Replay held") || strings.Contains(page, "Replayed:") {
		t.Errorf("replay with the circuit open: %d, page without the held warning", code)
	}
	code, page = postForm(t, "/ui/bulk", url.Values{"action": {"replay"}, "status": {"open"}, "expected": {"2"}, "reason": {"CRM back?"}})
	if code != http.StatusConflict || !strings.Contains(page, "Replay held") {
		t.Errorf("bulk replay with the circuit open: %d, no held warning", code)
	}
	for _, id := range ids {
		if n := len(leadsMessages(getEvent(t, id).IdempotencyKey)); n != 0 {
			t.Errorf("%s: %d messages published while the circuit is open", id[:12], n)
		}
		var d views.Detail
		call(t, "GET", "/v1/dlq/"+id, bobToken, nil, &d)
		if d.Record == nil || d.Record.Status != store.DLQOpen {
			t.Errorf("%s: record %+v, want still open", id[:12], d.Record)
		}
	}
	code, _ = postForm(t, "/ui/dlq/"+ids[0]+"/replay", url.Values{"reason": {"replay anyway"}, "despite_circuit": {"1"}})
	if code != http.StatusSeeOther || len(leadsMessages(getEvent(t, ids[0]).IdempotencyKey)) != 1 {
		t.Errorf("replay despite the circuit: %d; want 303 and one message", code)
	}
}

// At 390 px wide (a phone) no page scrolls sideways.
func TestConsoleNarrowLayout(t *testing.T) {
	reset(t)
	ids := quarantine(t, "narrow", 2, "permanent", "crm 400: INVALID_FIELD: Phone: phone number must be E.164, got a value of 31 characters that does not parse")
	seedWaiting(t, "narrow-w", 2, store.StateFailed, time.Minute)
	setCircuit(t, "salesforce", store.CRMOpen)
	ctx := browser(t, 390, 844)
	pages := []struct{ path, wait, shot string }{
		{"/", "#states", "narrow-overview.png"},
		{"/ui/dlq/" + ids[0], "#reason", "narrow-record.png"},
		{"/ui/events?q=" + ids[1], "#lead-state", ""},
		{"/ui/bulk?action=replay&status=open", "#preview-count", ""},
	}
	for _, p := range pages {
		do(t, ctx, p.path, chromedp.Navigate(baseURL+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
		sw := eval[int](t, ctx, `document.documentElement.scrollWidth`)
		iw := eval[int](t, ctx, `window.innerWidth`)
		if iw != 390 {
			t.Fatalf("viewport %d wide, want 390", iw)
		}
		if sw > iw {
			wide := eval[string](t, ctx, `[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map(e => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className).join(", ")`)
			t.Errorf("%s: scrollWidth %d > innerWidth %d; too wide: %s", p.path, sw, iw, wide)
		}
		if p.shot != "" {
			screenshot(t, ctx, p.shot)
		}
	}
}

// Bulk discard from the page: the preview counts what the filter (class and time range)
// matches, the discard needs a reason and discards exactly those, each audited.
func TestConsoleBulkDiscardByFilter(t *testing.T) {
	reset(t)
	spam := quarantine(t, "spam", 2, "permanent", "crm 400: INVALID_FIELD field Email")
	keep := quarantine(t, "keep", 1, "auth", "crm 401")
	from := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")
	code, page := getPage(t, "/?failure_class=permanent&status=open&since="+url.QueryEscape(from))
	if code != http.StatusOK || !strings.Contains(page, spam[0][:12]) || strings.Contains(page, keep[0][:12]) {
		t.Fatalf("filtered list: %d, want the two permanent records only", code)
	}
	if code, page := getPage(t, "/?failure_class=permanent&status=open&until="+url.QueryEscape(from)); code != http.StatusOK || !strings.Contains(page, "No records match these filters") {
		t.Errorf("a time range before the records: %d, want no match", code)
	}
	code, page = getPage(t, "/ui/bulk?action=discard&failure_class=permanent&status=open&since="+url.QueryEscape(from))
	if code != http.StatusOK || !strings.Contains(page, `<b id="preview-count">2</b>`) {
		t.Fatalf("discard preview: %d, want 2 matching", code)
	}
	form := url.Values{"action": {"discard"}, "failure_class": {"permanent"}, "status": {"open"}, "since": {from}, "expected": {"2"}}
	if code, _ := postForm(t, "/ui/bulk", form); code != http.StatusBadRequest {
		t.Errorf("bulk discard without a reason = %d, want 400", code)
	}
	form.Set("reason", "test leads from the load test")
	code, _ = postForm(t, "/ui/bulk", form)
	if code != http.StatusSeeOther {
		t.Fatalf("bulk discard = %d, want 303", code)
	}
	for _, id := range spam {
		var d views.Detail
		call(t, "GET", "/v1/dlq/"+id, bobToken, nil, &d)
		if d.Record.Status != store.DLQDiscarded || getEvent(t, id).State != store.StateDiscarded {
			t.Errorf("%s: record %s, event %s; want discarded", id[:12], d.Record.Status, getEvent(t, id).State)
		}
	}
	var d views.Detail
	call(t, "GET", "/v1/dlq/"+keep[0], bobToken, nil, &d)
	if d.Record.Status != store.DLQOpen {
		t.Errorf("the record outside the filter is %s, want open", d.Record.Status)
	}
}
