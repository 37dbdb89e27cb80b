package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/replayer/internal/auth"
	"github.com/leadpipe/leadpipe/replayer/internal/reconcile"
)

// Reconcile serves the reconcile endpoints (replayer/openapi.yaml, "Reconcile"):
//
//	POST /v1/reconcile         an operator reconciles one form over a window (or dry-runs it)
//	POST /internal/reconcile   Cloud Scheduler reconciles every configured form over the lookback
//
// Statuses: 200 the report(s); 400 a malformed request; 422 the source cannot be reconciled or
// reconcile is not configured; 502 the Graph API refused the token (auth: fix the token, then
// run again); 503 + Retry-After a rate limit or an outage of the Graph API or the store (run
// again later); 500 anything else. A 502 or 503 body still carries the report of what was done.
type Reconcile struct {
	Runner *reconcile.Reconciler
	// Forms are what POST /internal/reconcile covers (RECONCILE_FORMS).
	Forms []reconcile.Form
	// Lookback is the scheduled window: the last Lookback before now (RECONCILE_LOOKBACK).
	Lookback time.Duration
}

// Register adds the routes to mux behind authn.
func (rc *Reconcile) Register(mux *http.ServeMux, authn func(http.Handler) http.Handler) {
	mux.Handle("POST /v1/reconcile", authn(http.HandlerFunc(rc.operator)))
	mux.Handle("POST /internal/reconcile", authn(http.HandlerFunc(rc.scheduled)))
}

// ReconcileRequest is the body of POST /v1/reconcile.
type ReconcileRequest struct {
	Source string    `json:"source"`
	FormID string    `json:"form_id"`
	PageID string    `json:"page_id,omitempty"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until,omitzero"`
	DryRun bool      `json:"dry_run,omitempty"`
	Reason string    `json:"reason"`
}

// ScheduledReconcile is the answer of POST /internal/reconcile.
type ScheduledReconcile struct {
	Runs   []*reconcile.Report `json:"runs"`
	Failed int                 `json:"failed"`
}

func (rc *Reconcile) operator(w http.ResponseWriter, r *http.Request) {
	var body ReconcileRequest
	if err := decodeBody(r, &body); err != nil {
		writeReconcileError(w, r, err, nil)
		return
	}
	if len(body.Reason) > maxReason {
		writeReconcileError(w, r, badf("reason longer than %d bytes", maxReason), nil)
		return
	}
	rep, err := rc.Runner.Run(r.Context(), reconcile.Request{Source: body.Source, FormID: body.FormID, PageID: body.PageID,
		Since: body.Since, Until: body.Until, DryRun: body.DryRun, Reason: body.Reason, Actor: auth.Actor(r.Context())})
	if err != nil {
		writeReconcileError(w, r, err, rep)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (rc *Reconcile) scheduled(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC()
	out := ScheduledReconcile{Runs: []*reconcile.Report{}}
	var worst error
	for _, f := range rc.Forms {
		rep, err := rc.Runner.Run(r.Context(), reconcile.Request{Source: f.Source, FormID: f.FormID, PageID: f.PageID,
			Since: now.Add(-rc.Lookback), Until: now, Reason: "scheduled reconcile", Actor: auth.Actor(r.Context())})
		if rep != nil {
			out.Runs = append(out.Runs, rep)
		}
		if err != nil {
			out.Failed++
			if worst == nil || reconcileStatus(err) > reconcileStatus(worst) {
				worst = err
			}
		}
	}
	if worst != nil {
		logging.FromContext(r.Context()).ErrorContext(r.Context(), "reconcile: scheduled run failed", "failed", out.Failed, "error", worst.Error())
		setRetryAfter(w, worst)
		writeJSON(w, reconcileStatus(worst), out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// reconcileStatus is the HTTP status of a reconcile error (see Reconcile).
func reconcileStatus(err error) int {
	var bad *badRequest
	switch {
	case errors.As(err, &bad), errors.Is(err, reconcile.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, reconcile.ErrSource), errors.Is(err, reconcile.ErrNotConfigured):
		return http.StatusUnprocessableEntity
	case failure.Is(err, failure.Auth):
		return http.StatusBadGateway
	case failure.Is(err, failure.Retryable), failure.Is(err, failure.Outage):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func setRetryAfter(w http.ResponseWriter, err error) {
	if d := failure.RetryAfter(err); d > 0 && reconcileStatus(err) == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
}

// writeReconcileError answers err with its status; the message is the error itself for 4xx and
// the report's (classified, free of lead data) error for 502/503.
func writeReconcileError(w http.ResponseWriter, r *http.Request, err error, rep *reconcile.Report) {
	code := reconcileStatus(err)
	msg := err.Error()
	switch {
	case code == http.StatusInternalServerError:
		msg = http.StatusText(code)
	case code >= 500 && rep != nil:
		msg = rep.Error
	}
	if code >= 500 {
		logging.FromContext(r.Context()).ErrorContext(r.Context(), "reconcile: request failed", "status", code, "error", err.Error())
	}
	setRetryAfter(w, err)
	body := map[string]any{"error": map[string]any{"code": code, "message": msg}}
	if rep != nil {
		body["report"] = rep
	}
	writeJSON(w, code, body)
}
