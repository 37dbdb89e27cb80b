// Package triage is the replayer's server-rendered triage page. Home is the pipeline overview
// (counts by state, the oldest unfinished lead, each CRM's circuit and send rate, throughput
// per minute, the leads still waiting) above the DLQ: grouped by failure class and source, a
// filterable list with bulk replay / discard (preview count, required reason), one record's
// detail and history, replay / discard forms that require a reason, and "find a lead" by any
// key, id, email, phone or CRM id. Everything renders on the server from the read model
// (views); one small same-origin script (app.js) shows times in the viewer's zone and
// refreshes the overview, and the page works without it. No build step.
//
// Authentication: a session cookie (HttpOnly, SameSite=Strict, signed) set after the operator
// enters a token on the login form, or the same bearer token the API takes. Every form post
// carries a CSRF token bound to that session.
package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/api"
	"github.com/leadpipe/leadpipe/replayer/internal/auth"
	"github.com/leadpipe/leadpipe/replayer/internal/bulk"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

// CookieName is the session cookie.
const CookieName = "replayer_session"

// countLimit bounds the records read for the grouped counts.
const countLimit = 5000

// Page serves the triage page: it reads through Views (the read model the JSON API also
// answers from) and acts through Replayer and Jobs.
type Page struct {
	Views    *views.Reader
	Replayer *replay.Replayer
	Jobs     *bulk.Runner
	Authn    auth.Authenticator
	Sessions *auth.Sessions
}

// Register adds the page's routes to mux.
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.authed(p.index))
	mux.HandleFunc("GET /ui/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusSeeOther) })
	mux.HandleFunc("GET /ui/login", p.loginForm)
	mux.HandleFunc("POST /ui/login", p.login)
	mux.HandleFunc("POST /ui/logout", p.authed(p.logout))
	mux.HandleFunc("GET /ui/dlq/{id}", p.authed(p.detail))
	mux.HandleFunc("POST /ui/dlq/{id}/{verb}", p.authed(p.act))
	mux.HandleFunc("GET /ui/events", p.authed(p.find))
	mux.HandleFunc("GET /ui/bulk", p.authed(p.bulkPreview))
	mux.HandleFunc("POST /ui/bulk", p.authed(p.bulkSubmit))
	mux.HandleFunc("GET /ui/jobs/{id}", p.authed(p.job))
	mux.HandleFunc("GET /ui/app.js", serveScript)
}

// view is what every template gets. Query fills the header's "Find a lead" box.
type view struct {
	Title, Actor, CSRF, Flash, Error, Query string
	// Warning is a yellow notice (a replay held because the CRM's circuit is open).
	Warning string
	// Refresh: app.js reloads the page every Refresh seconds while nobody is typing (0: never).
	Refresh int
}

type session struct {
	actor string
	// key is what the CSRF token is bound to: the cookie value or the bearer token.
	key string
}

type sessionKey struct{}

// authed requires a session cookie or a bearer token; browsers without one go to the login
// form.
func (p *Page) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s session
		if tok := auth.BearerToken(r); tok != "" {
			actor, err := p.Authn.Authenticate(r.Context(), tok)
			if err != nil {
				http.Error(w, "invalid bearer token", http.StatusUnauthorized)
				return
			}
			s = session{actor: actor, key: tok}
		} else if c, err := r.Cookie(CookieName); err == nil {
			actor, err := p.Sessions.Actor(c.Value)
			if err == nil {
				s = session{actor: actor, key: c.Value}
			}
		}
		if s.actor == "" {
			if r.Method != http.MethodGet {
				http.Error(w, "not signed in", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		ctx := auth.WithActor(r.Context(), s.actor)
		next(w, r.WithContext(contextWithSession(ctx, s)))
	}
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func render(w http.ResponseWriter, r *http.Request, t *template.Template, code int, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		logging.FromContext(r.Context()).ErrorContext(r.Context(), "triage: render failed", "error", err.Error())
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// safeNext keeps redirects on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, `\`) {
		return "/"
	}
	return next
}

func (p *Page) loginForm(w http.ResponseWriter, r *http.Request) {
	render(w, r, tmplLogin, http.StatusOK, struct {
		view
		Next string
	}{view{Title: "Sign in"}, safeNext(r.URL.Query().Get("next"))})
}

func (p *Page) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	actor, err := p.Authn.Authenticate(r.Context(), tok)
	if tok == "" || err != nil {
		render(w, r, tmplLogin, http.StatusUnauthorized, struct {
			view
			Next string
		}{view{Title: "Sign in", Error: "That token was not accepted."}, next})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: p.Sessions.Issue(actor), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
	})
	logging.FromContext(r.Context()).InfoContext(r.Context(), "triage: signed in", "actor", actor)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (p *Page) logout(w http.ResponseWriter, r *http.Request) {
	if !p.csrfOK(r) {
		http.Error(w, "invalid CSRF token", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func (p *Page) csrfOK(r *http.Request) bool {
	s := sessionFrom(r.Context())
	return p.Sessions.CheckCSRF(s.key, r.PostFormValue("csrf"))
}

func (p *Page) base(r *http.Request, title string) view {
	s := sessionFrom(r.Context())
	return view{Title: title, Actor: s.actor, CSRF: p.Sessions.CSRF(s.key)}
}

// homeData is the home page: the overview above the DLQ list.
type homeData struct {
	view
	O       *views.Overview
	Chart   template.HTML
	Windows []string
	Filter  store.DLQFilter
	// Since and Until are the filter's bounds as the datetime-local inputs want them (UTC;
	// app.js shows them in the viewer's zone).
	Since, Until    string
	Counts          []store.DLQCount
	CountsTruncated bool
	CountLimit      int
	Records         []*store.DLQRecord
	Next            string
	// Filtered: the list is narrowed beyond the default (open records), so an empty list
	// means "nothing matches" rather than "the DLQ is empty".
	Filtered bool
	Classes  []string
	Statuses []string
	Sources  []string
	// BulkReplay and BulkDiscard are the bulk action links for the filter.
	BulkReplay, BulkDiscard template.URL
}

func (p *Page) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if _, set := q["status"]; !set {
		q.Set("status", string(store.DLQOpen))
	}
	data := homeData{view: p.base(r, "Overview"), CountLimit: countLimit, Windows: []string{"1h", "24h", "7d"},
		Classes:  []string{string(failure.Retryable), string(failure.Conflict), string(failure.Permanent), string(failure.Auth), string(failure.Outage), "unknown"},
		Statuses: []string{string(store.DLQOpen), string(store.DLQReplayed), string(store.DLQDiscarded), string(store.DLQResolved)},
	}
	data.Refresh = 15
	if n, err := strconv.Atoi(q.Get("discarded")); err == nil {
		data.Flash = "Bulk discard: " + strconv.Itoa(n) + " records discarded."
		q.Del("discarded")
	}
	win, err := views.ParseWindow(q.Get("window"))
	if err != nil {
		data.Error = err.Error()
		render(w, r, tmplIndex, http.StatusBadRequest, data)
		return
	}
	f, err := views.ParseFilter(q)
	if err != nil {
		data.Error = err.Error()
		render(w, r, tmplIndex, http.StatusBadRequest, data)
		return
	}
	data.Filter = f
	data.Since, data.Until = localInput(f.Since), localInput(f.Until)
	data.Filtered = f.Status != store.DLQOpen || f.Source != "" || f.FailureClass != "" || !f.Since.IsZero() || !f.Until.IsZero()
	if data.O, err = p.Views.Overview(ctx, win); err != nil {
		p.fail(w, r, err)
		return
	}
	data.Chart = chart(data.O.Throughput)
	counts, truncated, err := p.Views.CountDLQ(ctx, f.Status, countLimit)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	slices.SortFunc(counts, func(a, b store.DLQCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.FailureClass+a.Source, b.FailureClass+b.Source)
	})
	data.Counts, data.CountsTruncated = counts, truncated
	for _, c := range counts {
		if !slices.Contains(data.Sources, c.Source) {
			data.Sources = append(data.Sources, c.Source)
		}
	}
	slices.Sort(data.Sources)
	page, err := p.Views.ListDLQ(ctx, f, 50, q.Get("page_token"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data.Records = page.Records
	if page.NextPageToken != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("page_token", page.NextPageToken)
		data.Next = "/?" + nq.Encode()
	}
	bq := filterQuery(f)
	bq.Set("action", "replay")
	data.BulkReplay = template.URL("/ui/bulk?" + bq.Encode()) //nolint:gosec // built by url.Values
	bq.Set("action", "discard")
	data.BulkDiscard = template.URL("/ui/bulk?" + bq.Encode()) //nolint:gosec // built by url.Values
	render(w, r, tmplIndex, http.StatusOK, data)
}

// filterQuery is a DLQ filter as query parameters (RFC 3339 times).
func filterQuery(f store.DLQFilter) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("source", f.Source)
	set("failure_class", string(f.FailureClass))
	v.Set("status", string(f.Status))
	if !f.Since.IsZero() {
		v.Set("since", f.Since.Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.Format(time.RFC3339))
	}
	return v
}

// localInput is t as a datetime-local value (UTC); "" for zero.
func localInput(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04")
}

type detailData struct {
	view
	D     *views.Detail
	Audit []*store.AuditEntry
	// CanAct offers the replay and discard forms: only on open records. A replayed record's
	// event is back in the pipeline (it reopens if that delivery fails), a discarded one is
	// final, a resolved one succeeded; the API still answers for them (in_flight, 409, ...).
	CanAct     bool
	CanReadRaw bool
	RawJSON    string
	// Circuit is the target CRM's health when its circuit is not closed: the page warns, and
	// a replay is held unless the operator asks for it anyway.
	Circuit *store.CRMHealth
}

func (p *Page) detailData(r *http.Request, id string, includeRaw bool) (*detailData, error) {
	ctx := r.Context()
	actor := auth.Actor(ctx)
	d, err := p.Views.Detail(ctx, id, actor, includeRaw)
	if err != nil {
		return nil, err
	}
	id = d.Record.ID
	audit, err := p.Views.Audit(ctx, store.AuditFilter{Target: id}, 20, "")
	if err != nil {
		return nil, err
	}
	dd := &detailData{view: p.base(r, "Record "+id[:min(12, len(id))]), D: d, Audit: audit.Entries,
		CanAct: d.Record.Status == store.DLQOpen, CanReadRaw: p.Views.CanReadRaw(actor)}
	if dd.CanAct && d.Event != nil {
		if dd.Circuit, err = p.Views.CRMCircuitOpen(ctx, d.Event.Routing.CRM); err != nil {
			return nil, err
		}
	}
	if includeRaw {
		b, _ := json.MarshalIndent(struct {
			Normalized any `json:"normalized"`
			Raw        any `json:"raw"`
		}{d.Normalized, d.Raw}, "", "  ")
		dd.RawJSON = string(b)
	}
	return dd, nil
}

func (p *Page) detail(w http.ResponseWriter, r *http.Request) {
	dd, err := p.detailData(r, r.PathValue("id"), r.URL.Query().Get("include") == "raw")
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if res := r.URL.Query().Get("result"); res != "" {
		dd.Flash = resultText(res)
	}
	render(w, r, tmplDetail, http.StatusOK, dd)
}

// resultText is the flash message for an outcome passed back through the redirect.
func resultText(outcome string) string {
	switch outcome {
	case replay.OutcomeReplayed:
		return "Replayed: the event was republished to the pipeline."
	case replay.OutcomeQueued:
		return "Replay accepted: the publish failed and the outbox will republish it shortly."
	case replay.OutcomeAlreadySucceeded:
		return "Nothing to do: the event already succeeded."
	case replay.OutcomeInFlight:
		return "Nothing to do: the event is already being delivered."
	case replay.OutcomeDiscarded:
		return "Discarded."
	case replay.OutcomeAlreadyDiscarded:
		return "Nothing to do: already discarded."
	}
	return "Done."
}

func (p *Page) act(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !p.csrfOK(r) {
		http.Error(w, "invalid CSRF token", http.StatusForbidden)
		return
	}
	id, err := p.Views.ResolveID(r.Context(), r.PathValue("id"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	req := replay.Request{ID: id, Reason: strings.TrimSpace(r.PostFormValue("reason")), Actor: auth.Actor(r.Context()),
		Renormalize: r.PostFormValue("renormalize") != ""}
	var res *replay.Result
	switch r.PathValue("verb") {
	case "replay":
		// Into a CRM whose circuit is open the replay would only fail again: hold it and say
		// so, unless the operator asked to replay anyway.
		if r.PostFormValue("despite_circuit") == "" {
			h, err := p.Views.CircuitOpen(r.Context(), id)
			if err != nil {
				p.fail(w, r, err)
				return
			}
			if h != nil {
				dd, err := p.detailData(r, id, false)
				if err != nil {
					p.fail(w, r, err)
					return
				}
				dd.Warning = heldText(h)
				render(w, r, tmplDetail, http.StatusConflict, dd)
				return
			}
		}
		res, err = p.Replayer.Replay(r.Context(), req)
	case "discard":
		res, err = p.Replayer.Discard(r.Context(), req)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		code := api.Status(err)
		if strings.TrimSpace(r.PostFormValue("reason")) == "" {
			code = http.StatusBadRequest
		}
		dd, derr := p.detailData(r, id, false)
		if derr != nil {
			p.fail(w, r, err)
			return
		}
		dd.Error = http.StatusText(code) + ": " + publicError(err, code)
		render(w, r, tmplDetail, code, dd)
		return
	}
	http.Redirect(w, r, "/ui/dlq/"+url.PathEscape(id)+"?result="+url.QueryEscape(res.Outcome), http.StatusSeeOther)
}

// heldText is the warning of a replay held because the CRM's circuit is open.
func heldText(h *store.CRMHealth) string {
	return "Replay held: the " + h.CRM + " circuit is " + strings.ReplaceAll(string(h.State), "_", "-") + " (since " +
		h.ChangedAt.UTC().Format("2006-01-02 15:04:05Z") + "), so the lead would only fail again. " +
		"Nothing was sent; the record stays open. Auto-replay sends retryable and outage records once the circuit closes, " +
		"or tick \"replay even though the circuit is open\"."
}

func publicError(err error, code int) string {
	if code >= 500 {
		return "please retry"
	}
	return err.Error()
}

func (p *Page) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := api.Status(err)
	if code >= 500 {
		logging.FromContext(r.Context()).ErrorContext(r.Context(), "triage: request failed", "path", r.URL.Path, "error", err.Error())
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, replay.ErrNotFound) {
		code = http.StatusNotFound
	}
	v := p.base(r, http.StatusText(code))
	v.Error = http.StatusText(code) + ": " + publicError(err, code)
	render(w, r, tmplError, code, v)
}

func contextWithSession(ctx context.Context, s session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) session {
	s, _ := ctx.Value(sessionKey{}).(session)
	return s
}
