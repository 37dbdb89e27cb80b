// Package reconcile finds the leads a source has that the pipeline never received, and takes
// them in. For a Meta Lead Ads form it lists the leads created in a window through the Graph
// API (GET /{form_id}/leads, time-filtered, paged), rebuilds for each the leadgen change Meta's
// webhook would have carried, normalizes it with the source's own mapping (so its idempotency
// key, document id and event id are the webhook's) and, when no event has that key, persists
// and publishes it through the same intake and outbox as ingest. A lead that arrived by webhook
// is found existing and left alone; a second run over the same window adds nothing.
//
// Each run is audited (actor, reason, counts, the added event document ids) and reports counts
// and event ids only, never lead data.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/intake"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/metagraph"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
)

// Errors of a request.
var (
	// ErrInvalid: the request is malformed (no source, form, since or reason; bad window).
	ErrInvalid = errors.New("invalid reconcile request")
	// ErrSource: the source is not configured or is not a Meta Lead Ads source.
	ErrSource = errors.New("source cannot be reconciled")
	// ErrNotConfigured: no Graph API token or no sources file.
	ErrNotConfigured = errors.New("reconcile is not configured")
)

// Graph lists a form's leads; *metagraph.Client implements it.
type Graph interface {
	FormLeads(ctx context.Context, formID string, w metagraph.Window, pageSize int, fn func(*metagraph.Page) error) error
}

var _ Graph = (*metagraph.Client)(nil)

// Publisher publishes a document just created; *outbox.Outbox implements it. A failure leaves
// the document in the outbox for the ingest sweep.
type Publisher interface {
	Publish(ctx context.Context, doc *store.EventDoc) error
}

// Sources gives the configured sources; *renormalize.File implements it.
type Sources interface {
	Current() (*mapping.Sources, error)
}

// Options tune a Reconciler.
type Options struct {
	// PageSize is the Graph listing page size. Default 100.
	PageSize int
	// MaxLeads bounds the leads one run looks at; the run stops there and says so. Default 10000.
	MaxLeads int
	// MaxWindow bounds until - since. Default 90 days (Meta keeps leads 90 days).
	MaxWindow time.Duration
	// OutboxDelay: how long after a reconciled event is stored the ingest sweep may publish it
	// if this publish failed. Default 30 s.
	OutboxDelay time.Duration
	// Concurrency bounds leads handled at once within a page. Default 8.
	Concurrency int
	// Hasher keys the "find a lead" index entries written with every event taken in, as ingest
	// writes them (intake.Persist); nil writes none (PII_HASH_KEY unset).
	Hasher *pii.Hasher
}

// Reconciler runs reconciles. It is safe for concurrent use.
type Reconciler struct {
	st      *store.Store
	ar      *archive.Archive
	graph   Graph
	pub     Publisher
	sources Sources
	opts    Options
	newID   func() string
	leads   metric.Int64Counter
}

// New returns a Reconciler. graph or sources nil makes every run fail with ErrNotConfigured.
func New(st *store.Store, ar *archive.Archive, graph Graph, pub Publisher, sources Sources, o Options) *Reconciler {
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.MaxLeads <= 0 {
		o.MaxLeads = 10000
	}
	if o.MaxWindow <= 0 {
		o.MaxWindow = 90 * 24 * time.Hour
	}
	if o.OutboxDelay <= 0 {
		o.OutboxDelay = 30 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	// An instrument error only comes from an invalid name; the no-op instrument keeps working.
	leads, _ := otel.Meter("leadpipe/replayer").Int64Counter("leadpipe.replayer.reconcile.leads", metric.WithUnit("{lead}"),
		metric.WithDescription("Leads reconcile looked at, by source and result: existing, added, missing (dry run or lost a race), skipped. "+
			"A steady rate of added means webhooks are being lost."))
	return &Reconciler{st: st, ar: ar, graph: graph, pub: pub, sources: sources, opts: o, newID: uuid.NewString, leads: leads}
}

// Request is one reconcile of one form.
type Request struct {
	Source string    `json:"source"`            // a facebook_leads source, e.g. meta
	FormID string    `json:"form_id"`           // the Lead Ads form
	PageID string    `json:"page_id,omitempty"` // optional: recorded in the event's refs
	Since  time.Time `json:"since"`             // inclusive
	Until  time.Time `json:"until,omitzero"`    // exclusive; zero: now
	DryRun bool      `json:"dry_run,omitempty"` // report what is missing, change nothing
	Actor  string    `json:"-"`
	Reason string    `json:"reason"`
}

// maxIDs bounds the event ids a report and its audit entry list.
const maxIDs = 1000

// Report is what a run found and did: counts and event ids, no lead data.
type Report struct {
	RunID  string    `json:"run_id"`
	Source string    `json:"source"`
	FormID string    `json:"form_id"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	DryRun bool      `json:"dry_run"`
	// Found is how many leads the Graph API listed in the window.
	Found int `json:"found"`
	// Existing were already received (by webhook or an earlier reconcile).
	Existing int `json:"existing"`
	// Missing had no event; in a real run each is added (or found existing if the webhook won a
	// race), in a dry run nothing is written.
	Missing int `json:"missing"`
	// Added were stored (and published, or left to the outbox sweep) by this run.
	Added int `json:"added"`
	// Skipped could not be turned into an event (no usable id or time); see the log.
	Skipped int `json:"skipped"`
	// MissingEventIDs / AddedEventIDs list event ids (at most 1000 each; Truncated says more).
	MissingEventIDs []string `json:"missing_event_ids"`
	AddedEventIDs   []string `json:"added_event_ids"`
	Truncated       bool     `json:"truncated,omitempty"`
	// Stopped says the run ended before the window did (MaxLeads reached).
	Stopped string `json:"stopped,omitempty"`
	// Error is the failure that ended the run early, if any (no lead data).
	Error   string `json:"error,omitempty"`
	AuditID string `json:"audit_id,omitempty"`

	mu      sync.Mutex
	addedIn []string // document ids added, for the audit targets
}

func (r *Report) add(f func(r *Report)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func appendID(ids []string, id string, truncated *bool) []string {
	if len(ids) >= maxIDs {
		*truncated = true
		return ids
	}
	return append(ids, id)
}

// Validate checks the request against o.
func (req *Request) validate(now time.Time, maxWindow time.Duration) error {
	var problems []string
	if strings.TrimSpace(req.Source) == "" {
		problems = append(problems, "source is required")
	}
	if strings.TrimSpace(req.FormID) == "" || strings.ContainsAny(req.FormID, "/?#") {
		problems = append(problems, "form_id is required (a Graph id)")
	}
	if strings.TrimSpace(req.Reason) == "" {
		problems = append(problems, "reason is required")
	}
	if req.Since.IsZero() {
		problems = append(problems, "since is required")
	}
	until := req.Until
	if until.IsZero() {
		until = now
	}
	if !req.Since.IsZero() && !until.After(req.Since) {
		problems = append(problems, "until must be after since")
	}
	if !req.Since.IsZero() && until.Sub(req.Since) > maxWindow {
		problems = append(problems, fmt.Sprintf("window longer than %s", maxWindow))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	req.Until = until
	return nil
}

// Run reconciles one form over the window and audits the run. It returns the report also when
// the run failed part-way (Graph failures come back classified: auth for a bad token, retryable
// for a rate limit or outage), so the caller sees what was added before the failure; a later
// run over the same window picks up where it stopped. ctx cancellation stops the listing.
func (rc *Reconciler) Run(ctx context.Context, req Request) (*Report, error) {
	if rc.graph == nil || rc.sources == nil {
		return nil, ErrNotConfigured
	}
	now := rc.st.Now()
	if err := req.validate(now, rc.opts.MaxWindow); err != nil {
		return nil, err
	}
	sources, err := rc.sources.Current()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotConfigured, err)
	}
	src, ok := sources.Get(req.Source)
	if !ok || src.Kind != mapping.KindFacebookLeads {
		return nil, fmt.Errorf("%w: %q is not a configured facebook_leads source", ErrSource, req.Source)
	}
	rep := &Report{RunID: rc.newID(), Source: src.Name, FormID: req.FormID, Since: req.Since.UTC(), Until: req.Until.UTC(),
		DryRun: req.DryRun, MissingEventIDs: []string{}, AddedEventIDs: []string{}}
	log := logging.FromContext(ctx).With("run_id", rep.RunID, "source", src.Name, "form_id", req.FormID)
	errStop := errors.New("stop")
	runErr := rc.graph.FormLeads(ctx, req.FormID, metagraph.Window{Since: req.Since, Until: req.Until}, rc.opts.PageSize, func(p *metagraph.Page) error {
		leads := p.Leads
		if room := rc.opts.MaxLeads - rep.Found; len(leads) > room {
			leads = leads[:room]
			rep.Stopped = fmt.Sprintf("stopped after %d leads (RECONCILE_MAX_LEADS); run again with a later since", rc.opts.MaxLeads)
		}
		rep.Found += len(leads)
		if err := rc.page(ctx, src, &req, rep, p, leads); err != nil {
			return err
		}
		if rep.Stopped != "" {
			return errStop
		}
		return nil
	})
	if errors.Is(runErr, errStop) {
		runErr = nil
	}
	if runErr != nil {
		rep.Error = publicError(runErr)
	}
	rc.count(context.WithoutCancel(ctx), rep)
	if err := rc.audit(context.WithoutCancel(ctx), &req, rep); err != nil {
		log.ErrorContext(ctx, "reconcile: audit not written", "error", err.Error())
		runErr = errors.Join(runErr, err)
	}
	log.InfoContext(ctx, "reconcile: done", "found", rep.Found, "existing", rep.Existing, "missing", rep.Missing,
		"added", rep.Added, "skipped", rep.Skipped, "dry_run", rep.DryRun, "error", rep.Error)
	if runErr != nil {
		return rep, fmt.Errorf("reconcile %s form %s: %w", src.Name, req.FormID, runErr)
	}
	return rep, nil
}

// page handles one listing page, o.Concurrency leads at a time; the first error is returned.
func (rc *Reconciler) page(ctx context.Context, src *mapping.Source, req *Request, rep *Report, p *metagraph.Page, leads []metagraph.Lead) error {
	sem := make(chan struct{}, rc.opts.Concurrency)
	errs := make([]error, len(leads))
	var wg sync.WaitGroup
	for i := range leads {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = rc.lead(ctx, src, req, rep, &leads[i], p.Raw[i])
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lead takes one listed lead in if no event has its key.
func (rc *Reconciler) lead(ctx context.Context, src *mapping.Source, req *Request, rep *Report, l *metagraph.Lead, raw []byte) error {
	log := logging.FromContext(ctx)
	created, err := l.Created()
	if err != nil || l.ID == "" {
		log.WarnContext(ctx, "reconcile: lead skipped", "run_id", rep.RunID, "reason", "no id or created_time")
		rep.add(func(r *Report) { r.Skipped++ })
		return nil
	}
	formID := l.FormID
	if formID == "" {
		formID = req.FormID
	}
	body := mapping.FacebookWebhookBody(mapping.LeadgenChange{LeadgenID: l.ID, PageID: req.PageID, FormID: formID, AdID: l.AdID, Created: created})
	now := rc.st.Now()
	evs, err := src.Normalize(body, http.Header{}, now)
	if err != nil || len(evs) != 1 {
		log.WarnContext(ctx, "reconcile: lead skipped", "run_id", rep.RunID, "leadgen_id", l.ID, "reason", fmt.Sprint(err))
		rep.add(func(r *Report) { r.Skipped++ })
		return nil
	}
	ev := evs[0]
	docID := event.DocID(ev.IdempotencyKey)
	switch _, err := rc.st.GetEvent(ctx, docID); {
	case err == nil:
		rep.add(func(r *Report) { r.Existing++ })
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("lead %s: %w", l.ID, err)
	}
	rep.add(func(r *Report) {
		r.Missing++
		r.MissingEventIDs = appendID(r.MissingEventIDs, ev.EventID, &r.Truncated)
	})
	if req.DryRun {
		return nil
	}
	// The listing already holds the lead's fields: archive them, so enrichment needs no second
	// Graph call. Best effort: enrichment fetches (and archives) it itself otherwise.
	if _, err := rc.ar.PutFetched(ctx, &archive.Fetched{Source: src.Name, Provider: mapping.EnrichMetaGraph, ID: l.ID, FetchedAt: now, Body: raw}); err != nil {
		log.WarnContext(ctx, "reconcile: fetched lead not archived", "run_id", rep.RunID, "leadgen_id", l.ID, "error", err.Error())
	}
	rawObj := &archive.Raw{
		Source: src.Name, ReceivedAt: now, ContentType: "application/json",
		Headers:   map[string][]string{HeaderRun: {rep.RunID}},
		Signature: archive.SignatureResult{Scheme: SignatureScheme, Verified: false, KeyIndex: -1},
		Body:      body,
	}
	doc := intake.EventDoc(ev, intake.Receipt{RawRef: rc.ar.Ref(archive.ObjectName(src.Name, body)), CorrelationID: "reconcile-" + rep.RunID,
		ReceivedAt: now, OutboxDelay: rc.opts.OutboxDelay})
	docs := []*store.EventDoc{doc}
	createdNow, err := intake.Persist(ctx, rc.st, rc.ar, rc.opts.Hasher, rawObj, docs)
	if err != nil {
		return fmt.Errorf("lead %s: %w", l.ID, err)
	}
	if !createdNow[0] {
		// The webhook arrived between the read and the create.
		rep.add(func(r *Report) { r.Existing++ })
		return nil
	}
	if err := rc.pub.Publish(context.WithoutCancel(ctx), docs[0]); err != nil {
		log.WarnContext(ctx, "reconcile: publish deferred to the outbox sweep", "run_id", rep.RunID, "doc_id", docID, "error", err.Error())
	}
	rep.add(func(r *Report) {
		r.Added++
		r.AddedEventIDs = appendID(r.AddedEventIDs, ev.EventID, &r.Truncated)
		if len(r.addedIn) < maxIDs {
			r.addedIn = append(r.addedIn, docID)
		}
	})
	return nil
}

func (rc *Reconciler) count(ctx context.Context, rep *Report) {
	for result, n := range map[string]int{"existing": rep.Existing, "added": rep.Added, "missing": rep.Missing - rep.Added, "skipped": rep.Skipped} {
		if n > 0 {
			rc.leads.Add(ctx, int64(n), metric.WithAttributes(attribute.String("source", rep.Source), attribute.String("result", result)))
		}
	}
}

// HeaderRun names the reconcile run in the archived raw payload of a reconciled lead.
const HeaderRun = "X-Leadpipe-Reconcile-Run"

// SignatureScheme marks a raw payload reconcile synthesized from the Graph API: Meta did not
// sign it; the pipeline read the lead with its own token.
const SignatureScheme = "reconcile_graph_api"

// Audit outcomes.
const (
	OutcomeReconciled = "reconciled"
	OutcomeDryRun     = "dry_run"
	OutcomeFailed     = "failed"
)

func (rc *Reconciler) audit(ctx context.Context, req *Request, rep *Report) error {
	outcome := OutcomeReconciled
	switch {
	case rep.Error != "":
		outcome = OutcomeFailed
	case rep.DryRun:
		outcome = OutcomeDryRun
	}
	detail := fmt.Sprintf("run %s: source %s form %s window [%s, %s): found %d, existing %d, missing %d, added %d, skipped %d",
		rep.RunID, rep.Source, rep.FormID, rep.Since.Format(time.RFC3339), rep.Until.Format(time.RFC3339),
		rep.Found, rep.Existing, rep.Missing, rep.Added, rep.Skipped)
	if rep.Error != "" {
		detail += "; " + rep.Error
	}
	targets := rep.addedIn
	if targets == nil {
		targets = []string{}
	}
	id, err := rc.st.AppendAudit(ctx, store.AuditEntry{At: rc.st.Now(), Actor: req.Actor, Action: "reconcile", Reason: req.Reason,
		Targets: targets, JobID: rep.RunID, Detail: detail, Outcome: outcome})
	rep.AuditID = id
	return err
}

// publicError is err's class and failure message for the report: no lead data (Graph's
// message text is never kept by metagraph).
func publicError(err error) string {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe.Error()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled: " + err.Error()
	}
	return "error: " + err.Error()
}

// Form is a form the scheduled reconcile covers.
type Form struct {
	Source string `json:"source"`
	FormID string `json:"form_id"`
	PageID string `json:"page_id,omitempty"`
}

// ParseForms reads RECONCILE_FORMS entries "source:form_id" or "source:form_id:page_id".
func ParseForms(entries []string) ([]Form, error) {
	var out []Form
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		parts := strings.Split(e, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("reconcile form %q: want source:form_id[:page_id]", e)
		}
		f := Form{Source: parts[0], FormID: parts[1]}
		if len(parts) == 3 {
			f.PageID = parts[2]
		}
		out = append(out, f)
	}
	return out, nil
}
