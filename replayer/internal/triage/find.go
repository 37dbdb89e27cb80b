package triage

import (
	"net/http"
	"strings"

	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

type findData struct {
	view
	// W is the lead when the search found exactly one; nil otherwise.
	W *views.Where
	// By says how the one lead matched.
	By string
	// Matches are the leads when the search found several.
	Matches []views.Match
	// NotFound: the lookup ran and found no lead.
	NotFound bool
	// Note explains a search that could not use every index.
	Note string
	// StateText says what the state means for the operator.
	StateText string
	// FailureLabel names the failure row; empty hides it (no failure, or the lead succeeded).
	FailureLabel string
}

// find serves GET /ui/events?q=: the leads the query identifies (views.Reader.Find, behind
// GET /v1/events?q= too): by idempotency key, event id, doc id or short id, email, phone in any
// format, CRM external id, CRM record id or source event id. One match shows the lead, several
// a list. Statuses:
//
//	200 found (one or several)
//	303 to / when q is empty (or blank)
//	400 q longer than views.MaxQuery
//	404 no such lead (the page says so and echoes q)
//	503 / 500 the store failed
func (p *Page) find(w http.ResponseWriter, r *http.Request) {
	// Pasted keys often carry a stray space or newline.
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	data := findData{view: p.base(r, "Find a lead")}
	data.Query = q
	if len(q) > views.MaxQuery {
		data.Error = "That search is too long for a key or id."
		render(w, r, tmplFind, http.StatusBadRequest, data)
		return
	}
	res, err := p.Views.Find(r.Context(), q)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data.Note = res.Note
	switch len(res.Matches) {
	case 0:
		data.Title, data.NotFound = "Lead not found", true
		render(w, r, tmplFind, http.StatusNotFound, data)
		return
	case 1:
	default:
		data.Title, data.Matches = "Leads found", res.Matches
		render(w, r, tmplFind, http.StatusOK, data)
		return
	}
	doc, err := p.Views.Where(r.Context(), res.Matches[0].Event.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data.W, data.By = doc, res.Matches[0].By
	data.Title = "Lead " + doc.Event.ID[:min(12, len(doc.Event.ID))]
	data.StateText, data.FailureLabel = describe(store.State(doc.Event.State), doc.Event.FailureClass != "")
	render(w, r, tmplFind, http.StatusOK, data)
}

// describe explains a state and names the failure row: the failure of a failed, quarantined
// or discarded lead, the last failure of one that is back in the pipeline after a replay.
func describe(s store.State, hasFailure bool) (text, failureLabel string) {
	switch s {
	case store.StateReceived:
		text = "waiting for the processor"
	case store.StateProcessing:
		text = "being delivered to the CRM"
	case store.StateSucceeded:
		text = "in the CRM"
	case store.StateFailed:
		text = "failed; Pub/Sub will redeliver it"
	case store.StateParked:
		text = "parked until its CRM can take it"
	case store.StateQuarantined:
		text = "in the dead-letter queue"
	case store.StateDiscarded:
		text = "discarded by an operator; it will not reach the CRM"
	}
	switch {
	case !hasFailure || s == store.StateSucceeded:
	case s == store.StateFailed || s == store.StateQuarantined || s == store.StateDiscarded || s == store.StateParked:
		failureLabel = "Failure"
	default:
		failureLabel = "Last failure"
	}
	return text, failureLabel
}
