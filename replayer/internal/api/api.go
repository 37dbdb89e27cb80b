// Package api is the replayer's JSON API (documented in replayer/openapi.yaml): the DLQ list
// and records, single and bulk replay, discard, where-is-this-lead, the audit log, and the
// internal endpoints Cloud Scheduler calls. Every route requires an authenticated actor.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/auth"
	"github.com/leadpipe/leadpipe/replayer/internal/autoreplay"
	"github.com/leadpipe/leadpipe/replayer/internal/bulk"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

// maxReason bounds reasons; they are operator notes, not documents.
const maxReason = views.MaxReason

// API serves the JSON API. It reads through the read model (views), which the triage page
// renders from too, and acts through the replay and bulk packages.
type API struct {
	Views    *views.Reader
	Replayer *replay.Replayer
	Jobs     *bulk.Runner
	Auto     *autoreplay.AutoReplayer
}

// Register adds the routes to mux behind authn.
func (a *API) Register(mux *http.ServeMux, authn func(http.Handler) http.Handler) {
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) error) {
		mux.Handle(pattern, authn(handler(f)))
	}
	h("GET /v1/overview", a.overview)
	h("GET /v1/events", a.find)
	h("GET /v1/identity-conflicts", a.identityConflicts)
	h("GET /v1/dlq", a.list)
	h("GET /v1/dlq/{id}", a.get)
	h("POST /v1/dlq/{idaction}", a.action)
	h("POST /v1/dlq:replay", a.bulkReplay)
	h("GET /v1/replays/{job_id}", a.job)
	h("GET /v1/events/{key...}", a.where)
	h("GET /v1/audit", a.audit)
	h("POST /internal/auto-replay", a.autoReplay)
	h("POST /internal/replay-jobs/resume", a.resume)
}

// handler turns an error-returning handler into an http.Handler that writes the error as JSON
// with its status (see Status).
func handler(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			code := Status(err)
			if code >= 500 {
				logging.FromContext(r.Context()).ErrorContext(r.Context(), "api: request failed",
					"path", r.URL.Path, "status", code, "error", err.Error())
			}
			writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": publicMessage(err, code)}})
		}
	})
}

// Status is the HTTP status of an error:
//
//	400 bad request (no reason, bad JSON, bad filter or page token, bad max)
//	403 raw payload without the permission
//	404 no such record, event or job
//	409 discarded, no event to replay, already succeeded, in flight
//	422 renormalizing failed or changed the idempotency key
//	503 the store or Pub/Sub is unavailable (retry later)
//	500 anything else
func Status(err error) int {
	var bad *badRequest
	switch {
	case errors.As(err, &bad), errors.Is(err, replay.ErrReasonRequired), errors.Is(err, bulk.ErrInvalid),
		errors.Is(err, store.ErrBadPageToken), errors.Is(err, views.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, views.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, replay.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, replay.ErrDiscarded), errors.Is(err, replay.ErrNoEvent),
		errors.Is(err, replay.ErrSucceeded), errors.Is(err, replay.ErrInFlight):
		return http.StatusConflict
	case errors.Is(err, replay.ErrKeyChanged), errors.Is(err, replay.ErrRenormalize):
		return http.StatusUnprocessableEntity
	case failure.Is(err, failure.Retryable), failure.Is(err, failure.Outage):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func publicMessage(err error, code int) string {
	if code >= 500 {
		return http.StatusText(code)
	}
	return err.Error()
}

type badRequest struct{ msg string }

func (b *badRequest) Error() string { return b.msg }

func badf(format string, args ...any) error { return &badRequest{msg: fmt.Sprintf(format, args...)} }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badf("invalid JSON body: %v", err)
	}
	return nil
}

func pageSize(r *http.Request) (int, error) {
	s := r.URL.Query().Get("page_size")
	if s == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 500 {
		return 0, badf("page_size must be 1..500")
	}
	return n, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	f, err := views.ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	n, err := pageSize(r)
	if err != nil {
		return err
	}
	page, err := a.Views.ListDLQ(r.Context(), f, n, r.URL.Query().Get("page_token"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ListResponse{Records: page.Records, NextPageToken: page.NextPageToken})
	return nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	ctx := views.WithReadReason(r.Context(), r.URL.Query().Get("reason"))
	d, err := a.Views.Detail(ctx, r.PathValue("id"), auth.Actor(r.Context()), r.URL.Query().Get("include") == "raw")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// action serves POST /v1/dlq/{id}:replay and /v1/dlq/{id}:discard (the ServeMux cannot match a
// suffix inside a segment, so the segment is split here).
func (a *API) action(w http.ResponseWriter, r *http.Request) error {
	id, verb, ok := strings.Cut(r.PathValue("idaction"), ":")
	if !ok || id == "" {
		return fmt.Errorf("%s: %w", r.URL.Path, store.ErrNotFound)
	}
	id, err := a.Views.ResolveID(r.Context(), id)
	if err != nil {
		return err
	}
	var body ActionRequest
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if len(body.Reason) > maxReason {
		return badf("reason longer than %d bytes", maxReason)
	}
	req := replay.Request{ID: id, Reason: body.Reason, Actor: auth.Actor(r.Context()), Renormalize: body.Renormalize, Force: body.Force}
	var res *replay.Result
	switch verb {
	case "replay":
		res, err = a.Replayer.Replay(r.Context(), req)
	case "discard":
		if body.Renormalize {
			return badf("renormalize applies to replays only")
		}
		res, err = a.Replayer.Discard(r.Context(), req)
	default:
		return fmt.Errorf("action %q: %w", verb, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *API) bulkReplay(w http.ResponseWriter, r *http.Request) error {
	var body BulkRequest
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if len(body.Reason) > maxReason {
		return badf("reason longer than %d bytes", maxReason)
	}
	j, err := a.Jobs.Submit(r.Context(), &store.ReplayJob{
		Filter: body.Filter, Reason: body.Reason, Actor: auth.Actor(r.Context()),
		DryRun: body.DryRun, Max: body.Max, Renormalize: body.Renormalize,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/replays/"+j.ID)
	writeJSON(w, http.StatusAccepted, j)
	return nil
}

func (a *API) job(w http.ResponseWriter, r *http.Request) error {
	j, err := a.Views.Job(r.Context(), r.PathValue("job_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (a *API) where(w http.ResponseWriter, r *http.Request) error {
	out, err := a.Views.Where(r.Context(), r.PathValue("key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return badf("%s must be RFC 3339", p.name)
			}
			*p.dst = t.UTC()
		}
	}
	if f.Target != "" {
		// Short ids (the 12 characters lists show) name a record too.
		t, err := a.Views.ResolveID(r.Context(), f.Target)
		if err != nil {
			return err
		}
		f.Target = t
	}
	n, err := pageSize(r)
	if err != nil {
		return err
	}
	page, err := a.Views.Audit(r.Context(), f, n, q.Get("page_token"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, AuditResponse{Entries: page.Entries, NextPageToken: page.NextPageToken})
	return nil
}

func (a *API) autoReplay(w http.ResponseWriter, r *http.Request) error {
	sum, err := a.Auto.RunOnce(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

func (a *API) resume(w http.ResponseWriter, r *http.Request) error {
	n, err := a.Jobs.Resume(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"queued": n})
	return nil
}

// overview serves GET /v1/overview?window=24h.
func (a *API) overview(w http.ResponseWriter, r *http.Request) error {
	win, err := views.ParseWindow(r.URL.Query().Get("window"))
	if err != nil {
		return err
	}
	o, err := a.Views.Overview(r.Context(), win)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// identityConflicts serves GET /v1/identity-conflicts?limit=N: the newest identity conflicts the
// processor recorded (one email and one phone pointing at two contacts), newest first.
func (a *API) identityConflicts(w http.ResponseWriter, r *http.Request) error {
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return badf("limit must be 1..500")
		}
		limit = n
	}
	cs, err := a.Views.IdentityConflicts(r.Context(), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"conflicts": cs})
	return nil
}

// find serves GET /v1/events?q=: every lead the query identifies (views.Reader.Find); 200 with
// an empty list when none.
func (a *API) find(w http.ResponseWriter, r *http.Request) error {
	res, err := a.Views.Find(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
