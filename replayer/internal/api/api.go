// Package api is the replayer's JSON API (documented in replayer/openapi.yaml): the DLQ list
// and records, single and bulk replay, discard, where-is-this-lead, the audit log, and the
// internal endpoints Cloud Scheduler calls. Every route requires an authenticated actor.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/auth"
	"github.com/leadpipe/leadpipe/replayer/internal/autoreplay"
	"github.com/leadpipe/leadpipe/replayer/internal/bulk"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
)

// RawStore reads archived raw payloads.
type RawStore interface {
	Get(ctx context.Context, ref string) (*archive.Raw, error)
}

var _ RawStore = (*archive.Archive)(nil)

// ErrForbidden: the actor lacks the permission (raw payloads).
var ErrForbidden = errors.New("forbidden")

// maxReason bounds reasons; they are operator notes, not documents.
const maxReason = 2000

// API serves the JSON API. Its lookup methods are shared with the triage page.
type API struct {
	St         *store.Store
	Replayer   *replay.Replayer
	Jobs       *bulk.Runner
	Auto       *autoreplay.AutoReplayer
	Raw        RawStore
	RawReaders []string
}

// CanReadRaw reports whether actor may see raw payloads and normalized events.
func (a *API) CanReadRaw(actor string) bool { return slices.Contains(a.RawReaders, actor) }

// Register adds the routes to mux behind authn.
func (a *API) Register(mux *http.ServeMux, authn func(http.Handler) http.Handler) {
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) error) {
		mux.Handle(pattern, authn(handler(f)))
	}
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
		errors.Is(err, store.ErrBadPageToken):
		return http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
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

// ParseFilter reads source, failure_class, status, since and until (RFC 3339) from q.
func ParseFilter(q map[string][]string) (store.DLQFilter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	f := store.DLQFilter{Source: get("source"), FailureClass: failure.Class(get("failure_class")), Status: store.DLQStatus(get("status"))}
	switch f.Status {
	case "", store.DLQOpen, store.DLQReplayed, store.DLQDiscarded, store.DLQResolved:
	default:
		return f, badf("status must be open, replayed, discarded or resolved")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return f, badf("%s must be RFC 3339", p.name)
			}
			*p.dst = t.UTC()
		}
	}
	return f, nil
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
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	n, err := pageSize(r)
	if err != nil {
		return err
	}
	page, err := a.St.ListDLQ(r.Context(), f, n, r.URL.Query().Get("page_token"))
	if err != nil {
		return err
	}
	if page.Records == nil {
		page.Records = []*store.DLQRecord{}
	}
	writeJSON(w, http.StatusOK, ListResponse{Records: page.Records, NextPageToken: page.NextPageToken})
	return nil
}

// Detail gathers a record, its event and attempts, and with includeRaw the normalized event
// and raw payload (ErrForbidden unless actor may read them). A raw read needs a reason (see
// WithReadReason) and is written to the audit log (action read_raw) with actor and reason
// before anything is returned.
func (a *API) Detail(ctx context.Context, id, actor string, includeRaw bool) (*Detail, error) {
	if includeRaw && !a.CanReadRaw(actor) {
		return nil, fmt.Errorf("raw payload: %w", ErrForbidden)
	}
	if includeRaw {
		reason := readReason(ctx)
		if reason == "" {
			return nil, badf("a reason is required to read the raw payload and normalized event")
		}
		if len(reason) > maxReason {
			return nil, badf("reason longer than %d bytes", maxReason)
		}
		if _, err := a.St.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: ActionReadRaw, Reason: reason, Targets: []string{id}}); err != nil {
			return nil, err
		}
	}
	rec, err := a.St.GetDLQ(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &Detail{Record: rec, Attempts: []store.Attempt{}}
	doc, err := a.St.GetEvent(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, nil
	case err != nil:
		return nil, err
	}
	d.Event = NewEventView(doc)
	if d.Attempts, err = a.St.Attempts(ctx, id); err != nil {
		return nil, err
	}
	if includeRaw {
		ev := doc.Event
		d.Normalized = &ev
		if ref := first(rec.RawEventRef, d.Event.RawEventRef); ref != "" && a.Raw != nil {
			if d.Raw, err = a.Raw.Get(ctx, ref); err != nil {
				d.RawError = "raw payload unavailable"
				logging.FromContext(ctx).WarnContext(ctx, "api: raw read failed", "dlq_id", id, "error", err.Error())
			}
		}
	}
	return d, nil
}

// ActionReadRaw is the audit action of a raw payload / normalized event read.
const ActionReadRaw = "read_raw"

type readReasonKey struct{}

// WithReadReason returns ctx carrying the operator's reason for a raw read (the reason query
// parameter of the API and the triage page).
func WithReadReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, readReasonKey{}, strings.TrimSpace(reason))
}

func readReason(ctx context.Context) string {
	s, _ := ctx.Value(readReasonKey{}).(string)
	return s
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	ctx := WithReadReason(r.Context(), r.URL.Query().Get("reason"))
	d, err := a.Detail(ctx, r.PathValue("id"), auth.Actor(r.Context()), r.URL.Query().Get("include") == "raw")
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
	var body ActionRequest
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if len(body.Reason) > maxReason {
		return badf("reason longer than %d bytes", maxReason)
	}
	req := replay.Request{ID: id, Reason: body.Reason, Actor: auth.Actor(r.Context()), Renormalize: body.Renormalize, Force: body.Force}
	var res *replay.Result
	var err error
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
	// The replay or discard wrote its audit entry in its transaction; its log line goes here.
	store.LogAudit(r.Context(), res.AuditID, store.AuditEntry{Actor: req.Actor, Action: verb, Targets: []string{id}, ReplayID: res.ReplayID})
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
	j, err := a.St.GetReplayJob(r.Context(), r.PathValue("job_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// Where finds a lead by idempotency key, event document id or event id.
func (a *API) Where(ctx context.Context, key string) (*Where, error) {
	doc, err := a.St.FindEvent(ctx, key)
	if err != nil {
		return nil, err
	}
	out := &Where{Event: NewEventView(doc)}
	if out.Attempts, err = a.St.Attempts(ctx, doc.DocID); err != nil {
		return nil, err
	}
	rec, err := a.St.GetDLQ(ctx, doc.DocID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		out.DLQ = rec
	}
	return out, nil
}

func (a *API) where(w http.ResponseWriter, r *http.Request) error {
	out, err := a.Where(r.Context(), r.PathValue("key"))
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
	n, err := pageSize(r)
	if err != nil {
		return err
	}
	page, err := a.St.ListAudit(r.Context(), f, n, q.Get("page_token"))
	if err != nil {
		return err
	}
	if page.Entries == nil {
		page.Entries = []*store.AuditEntry{}
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
