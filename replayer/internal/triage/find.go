package triage

import (
	"errors"
	"net/http"
	"strings"

	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/api"
)

// maxQuery bounds the search box: keys and ids are far shorter, and Firestore refuses
// indexed values over 1500 bytes.
const maxQuery = 1500

type findData struct {
	view
	// W is the lead; nil when nothing matched the query or it was refused.
	W *api.Where
	// NotFound: the lookup ran and found no lead.
	NotFound bool
	// StateText says what the state means for the operator.
	StateText string
	// FailureLabel names the failure row; empty hides it (no failure, or the lead succeeded).
	FailureLabel string
}

// find serves GET /ui/events?q=: the lead with that idempotency key, event document id or
// event id (api.Where, the lookup behind GET /v1/events/{key}). Statuses:
//
//	200 found
//	303 to / when q is empty (or blank)
//	400 q longer than maxQuery
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
	if len(q) > maxQuery {
		data.Error = "That search is too long for a key or id."
		render(w, r, tmplFind, http.StatusBadRequest, data)
		return
	}
	where, err := p.API.Where(r.Context(), q)
	switch {
	case errors.Is(err, store.ErrNotFound):
		data.Title, data.NotFound = "Lead not found", true
		render(w, r, tmplFind, http.StatusNotFound, data)
		return
	case err != nil:
		p.fail(w, r, err)
		return
	}
	data.W = where
	data.Title = "Lead " + where.Event.ID[:min(12, len(where.Event.ID))]
	data.StateText, data.FailureLabel = describe(store.State(where.Event.State), where.Event.FailureClass != "")
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
	case store.StateQuarantined:
		text = "in the dead-letter queue"
	case store.StateDiscarded:
		text = "discarded by an operator; it will not reach the CRM"
	}
	switch {
	case !hasFailure || s == store.StateSucceeded:
	case s == store.StateFailed || s == store.StateQuarantined || s == store.StateDiscarded:
		failureLabel = "Failure"
	default:
		failureLabel = "Last failure"
	}
	return text, failureLabel
}
