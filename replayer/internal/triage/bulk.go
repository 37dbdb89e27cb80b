package triage

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/auth"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

// previewRows is how many of the matching records the preview lists.
const previewRows = 10

// maxBulkDiscard bounds one bulk discard from the page (it runs in the request).
const maxBulkDiscard = 1000

type bulkData struct {
	view
	Action string
	Filter store.DLQFilter
	// Count is how many records the filter matches now (the preview); the action handles at
	// most this many.
	Count   int64
	Records []*store.DLQRecord
	// Open are the CRMs among the previewed records whose circuit is not closed.
	Open []*store.CRMHealth
	// Hidden are the filter's fields for the confirm form.
	Hidden url.Values
	Limit  int
}

// bulkPreview serves GET /ui/bulk?action=replay|discard&<filter>: how many records the action
// would touch, the first few, any open circuit among their CRMs, and the confirm form with a
// required reason. 400 for an unknown action or a bad filter.
func (p *Page) bulkPreview(w http.ResponseWriter, r *http.Request) {
	d, code, err := p.bulkData(r, r.URL.Query())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	render(w, r, tmplBulk, code, d)
}

func (p *Page) bulkData(r *http.Request, q url.Values) (*bulkData, int, error) {
	ctx := r.Context()
	action := q.Get("action")
	if action != "replay" && action != "discard" {
		return nil, 0, fmt.Errorf("%w: action must be replay or discard", views.ErrInvalid)
	}
	f, err := views.ParseFilter(q)
	if err != nil {
		return nil, 0, err
	}
	if f.Status == "" {
		f.Status = store.DLQOpen
	}
	d := &bulkData{view: p.base(r, "Bulk "+action), Action: action, Filter: f, Hidden: filterQuery(f), Limit: maxBulkDiscard}
	if d.Count, err = p.Views.CountMatching(ctx, f); err != nil {
		return nil, 0, err
	}
	page, err := p.Views.ListDLQ(ctx, f, previewRows, "")
	if err != nil {
		return nil, 0, err
	}
	d.Records = page.Records
	if action == "replay" {
		seen := map[string]bool{}
		for _, rec := range d.Records {
			h, err := p.Views.CircuitOpen(ctx, rec.ID)
			if err != nil {
				return nil, 0, err
			}
			if h != nil && !seen[h.CRM] {
				seen[h.CRM] = true
				d.Open = append(d.Open, h)
			}
		}
	}
	return d, http.StatusOK, nil
}

// bulkSubmit serves POST /ui/bulk: replay as a background job (at most the previewed count,
// 303 to the job's page), or discard in the request (at most the previewed count and
// maxBulkDiscard, 303 to the list with the outcome). Statuses: 400 no reason or bad filter
// (the preview again, with the error), 403 bad CSRF token, 409 replay held because a target
// CRM's circuit is open and the operator did not confirm.
func (p *Page) bulkSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !p.csrfOK(r) {
		http.Error(w, "invalid CSRF token", http.StatusForbidden)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	d, _, err := p.bulkData(r, r.PostForm)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	expected, _ := strconv.ParseInt(r.PostFormValue("expected"), 10, 64)
	switch {
	case reason == "":
		d.Error = "A reason is required: say what was fixed (and the ticket)."
		render(w, r, tmplBulk, http.StatusBadRequest, d)
		return
	case len(reason) > 2000:
		d.Error = "The reason is longer than 2000 bytes."
		render(w, r, tmplBulk, http.StatusBadRequest, d)
		return
	case expected <= 0:
		d.Error = "Nothing to do: the preview matched no records."
		render(w, r, tmplBulk, http.StatusBadRequest, d)
		return
	case d.Action == "replay" && len(d.Open) > 0 && r.PostFormValue("despite_circuit") == "":
		d.Warning = heldText(d.Open[0])
		render(w, r, tmplBulk, http.StatusConflict, d)
		return
	}
	actor := auth.Actor(ctx)
	if d.Action == "replay" {
		j, err := p.Jobs.Submit(ctx, &store.ReplayJob{Filter: d.Filter, Reason: reason, Actor: actor, Max: int(min(expected, int64(maxBulkJob)))})
		if err != nil {
			p.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/ui/jobs/"+url.PathEscape(j.ID), http.StatusSeeOther)
		return
	}
	n, err := p.discardMatching(r, d.Filter, reason, int(min(expected, maxBulkDiscard)))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	q := filterQuery(d.Filter)
	q.Set("discarded", strconv.Itoa(n))
	http.Redirect(w, r, "/?"+q.Encode(), http.StatusSeeOther)
}

// maxBulkJob caps a page-submitted job below the service's BULK_MAX default.
const maxBulkJob = 10000

// discardMatching discards up to limit records matching f, one audited discard each.
func (p *Page) discardMatching(r *http.Request, f store.DLQFilter, reason string, limit int) (int, error) {
	ctx := r.Context()
	actor := auth.Actor(ctx)
	n := 0
	for n < limit {
		// Discarded records leave an "open" filter, so each round reads the first page again.
		page, err := p.Views.ListDLQ(ctx, f, min(100, limit-n), "")
		if err != nil {
			return n, err
		}
		if len(page.Records) == 0 {
			break
		}
		progress := false
		for _, rec := range page.Records {
			res, err := p.Replayer.Discard(ctx, replay.Request{ID: rec.ID, Reason: reason, Actor: actor})
			switch {
			case errors.Is(err, replay.ErrSucceeded), errors.Is(err, replay.ErrInFlight):
				continue
			case err != nil:
				return n, err
			}
			if res.Outcome == replay.OutcomeDiscarded {
				n++
				progress = true
			}
		}
		if !progress || f.Status != store.DLQOpen {
			break
		}
	}
	return n, nil
}

type jobData struct {
	view
	J *store.ReplayJob
}

// job serves GET /ui/jobs/{id}: a bulk replay's progress (refreshing while it runs).
func (p *Page) job(w http.ResponseWriter, r *http.Request) {
	j, err := p.Views.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := jobData{view: p.base(r, "Bulk replay"), J: j}
	if !j.Final() {
		d.Refresh = 2
	}
	if slices.Contains([]string{store.JobDone}, j.Status) {
		d.Flash = fmt.Sprintf("Bulk replay done: %d replayed, %d skipped, %d failed of %d matched.", j.Replayed, j.Skipped, j.Failed, j.Matched)
	}
	render(w, r, tmplJob, http.StatusOK, d)
}
