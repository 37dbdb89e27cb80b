// Package push is the processor's Pub/Sub push handler: decode the envelope, claim the event,
// upsert it through the CRM chain, record the verdict and answer so that Pub/Sub acks (2xx) or
// redelivers (anything else). Every status is chosen on purpose; see Handler.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
	"github.com/leadpipe/leadpipe/processor/internal/dlq"
	"github.com/leadpipe/leadpipe/processor/internal/retry"
)

// Publisher sends quarantined events to leads-dlq.
type Publisher interface {
	Publish(ctx context.Context, m dlq.Message) (string, error)
}

var _ Publisher = (*dlq.Publisher)(nil)

// Lifecycle is the part of the event lifecycle the handler drives (store.Store implements it):
// claim the event, then record exactly one verdict with the lease.
type Lifecycle interface {
	// ClaimFirst is Claim, in one commit when the delivery names the document version its
	// creator wrote (pushmsg.AttrDocVersion).
	ClaimFirst(ctx context.Context, ev *event.Event, p store.LeasePolicy, fd store.FirstDelivery) (*store.Lease, error)
	Complete(ctx context.Context, l *store.Lease, r store.Result, att *store.Attempt) (store.State, error)
	Fail(ctx context.Context, l *store.Lease, r store.Reason, att *store.Attempt) (store.State, error)
	Park(ctx context.Context, l *store.Lease, r store.Reason, att *store.Attempt) (store.State, error)
	Quarantine(ctx context.Context, l *store.Lease, r store.Reason, att *store.Attempt) (store.EventDoc, error)
	MarkDLQPublished(ctx context.Context, docID string) error
	Resolve(ctx context.Context, docID string) (bool, error)
	AddAttempt(ctx context.Context, docID string, a store.Attempt) error
	Now() time.Time
}

var _ Lifecycle = (*store.Store)(nil)

// Gate reports whether a CRM refuses calls right now (its circuit is open).
type Gate interface{ Open() bool }

// Route is one CRM: its middleware chain and its breaker.
type Route struct {
	Upserter crm.Upserter
	Gate     Gate // may be nil
	// Contact builds the contact resolution request the claim may settle in its own commit
	// (identity.Prerequest); nil, or a nil request, leaves it to the chain's identity step.
	Contact func(*event.Event) *store.ContactRequest
}

// Handler handles POST /pubsub/push. It is safe for concurrent use. Statuses:
//
//	200 ack: succeeded, duplicate (already succeeded), terminal (quarantined or discarded),
//	    parked (already, or now: with ParkOnOpen, the CRM's circuit was open at arrival or
//	    opened during the call; the drain republishes it once the circuit closes),
//	    quarantined now (and published to leads-dlq), malformed envelope or unusable event
//	    (recorded in the log, and published to leads-dlq when the message is readable)
//	429 nack: another instance holds a live lease on the event; retry after backoff
//	503 nack: a retryable failure outlasted the in-request retries, the CRM's circuit is open
//	    (crm_circuit_open before the claim, or failed with class outage, only without
//	    ParkOnOpen), Firestore or the DLQ publish failed, or a newer claim superseded this one
//	500 nack: an unexpected internal error
//
// Every non-2xx makes Pub/Sub redeliver (and slows the subscription), so only real failures
// answer one. An open circuit is not one: a nack would wait out Pub/Sub's backoff (and spend
// delivery attempts) after the CRM is back, so the event is parked instead.
type Handler struct {
	Store Lifecycle
	// Lease is the claim policy: this instance as owner, the lease's TTL, the quarantine
	// threshold (MaxAttempts) and the retention of succeeded events.
	Lease  store.LeasePolicy
	DLQ    Publisher
	Routes map[string]Route
	// ParkOnOpen parks an event whose CRM's circuit is open (at arrival, or opened during the
	// call) and acks, instead of answering 503 (PARK_ON_OPEN_CIRCUIT, default true).
	ParkOnOpen bool
	// Budget bounds the work of one request, well under the subscription's ack deadline.
	Budget time.Duration
	// MaxBody bounds the envelope; default 1 MiB.
	MaxBody int64
	// Metrics records outcomes and delivery attempts; nil records nothing (every handled
	// message is still a span).
	Metrics *Metrics
}

type answer struct {
	status  int
	Outcome string `json:"outcome"`
	Attempt int    `json:"attempt,omitempty"`
	Class   string `json:"failure_class,omitempty"`
	// crm is the route's name for metrics: "none" before the event is read, "unconfigured"
	// for a CRM no adapter serves.
	crm string
}

// ServeHTTP handles one push delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := h.handle(r.Context(), r)
	h.Metrics.outcome(r.Context(), a)
	w.Header().Set("Content-Type", "application/json")
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a)
}

func (h *Handler) handle(ctx context.Context, r *http.Request) (a answer) {
	log := logging.FromContext(ctx)
	limit := h.MaxBody
	if limit <= 0 {
		limit = 1 << 20
	}
	env, err := pushmsg.Decode(r.Body, limit)
	if err != nil {
		log.ErrorContext(ctx, "malformed push envelope: acked", "error", err.Error())
		return answer{status: http.StatusOK, Outcome: "malformed", crm: "none"}
	}
	msg := env.Message
	h.Metrics.deliveryAttempt(ctx, env.Attempt())
	// From here on ctx carries the handling span, in the trace of the ingest request that
	// published the message, so log lines name that trace.
	ctx, span := startSpan(ctx, env)
	crmName := "none"
	defer func() {
		a.crm = crmName
		endSpan(span, a)
	}()
	log = log.With("message_id", msg.MessageID)
	var ev event.Event
	if err := json.Unmarshal(msg.Data, &ev); err != nil {
		return h.unusable(ctx, env, "undecodable event data")
	}
	if err := ev.Validate(); err != nil {
		return h.unusable(ctx, env, "invalid event: "+err.Error())
	}
	log = log.With("event_id", ev.EventID, "doc_id", event.DocID(ev.IdempotencyKey))
	ctx = logging.WithLogger(ctx, log)
	route, known := h.Routes[ev.Routing.CRM]
	crmName = "unconfigured"
	if known {
		crmName = ev.Routing.CRM
	}
	annotate(span, &ev)
	circuitOpen := known && route.Gate != nil && route.Gate.Open()
	if circuitOpen && !h.ParkOnOpen {
		log.InfoContext(ctx, "lead waiting: CRM circuit open", "crm", crmName)
		return answer{status: http.StatusServiceUnavailable, Outcome: "crm_circuit_open", Class: string(failure.Outage)}
	}
	ctx, cancel := context.WithTimeout(ctx, h.Budget)
	defer cancel()
	fd := store.FirstDelivery{Version: pushmsg.ParseVersion(msg.Attributes[pushmsg.AttrDocVersion]), MessageID: msg.MessageID}
	// An event parked at arrival never reaches the identity step, so its claim settles no contact.
	if known && route.Contact != nil && !fd.Version.IsZero() && !circuitOpen {
		fd.Contact = route.Contact(&ev)
	}
	lease, err := h.Store.ClaimFirst(ctx, &ev, h.Lease, fd)
	switch {
	case errors.Is(err, store.ErrSucceeded):
		return answer{status: http.StatusOK, Outcome: "duplicate"}
	case errors.Is(err, store.ErrTerminal):
		return answer{status: http.StatusOK, Outcome: "terminal"}
	case errors.Is(err, store.ErrParked):
		return answer{status: http.StatusOK, Outcome: "parked"}
	case errors.Is(err, store.ErrLeaseHeld):
		return answer{status: http.StatusTooManyRequests, Outcome: "lease_held"}
	case errors.Is(err, store.ErrPendingDLQ):
		return h.publish(ctx, env, lease.Doc)
	case err != nil:
		log.ErrorContext(ctx, "claim failed", "error", err.Error())
		return answer{status: http.StatusServiceUnavailable, Outcome: "store_unavailable"}
	}
	log.InfoContext(ctx, "lead claimed", "attempt", lease.Attempt, "fence", lease.Fence, "crm", crmName)
	att := store.Attempt{Number: lease.Attempt, Fence: lease.Fence, Owner: lease.Owner, MessageID: msg.MessageID,
		Delivery: env.Attempt(), ReplayID: msg.Attributes[pushmsg.AttrReplayID], StartedAt: lease.StartedAt}
	if !known {
		return h.quarantine(ctx, env, lease, &att, failure.New(failure.Permanent, 0, "no CRM adapter configured for "+ev.Routing.CRM))
	}
	if circuitOpen {
		// Claimed so that the park is fenced and recorded; the CRM is not called.
		fe := failure.New(failure.Outage, 0, crmName+" circuit open")
		att.Class, att.Message = fe.Class, fe.Message
		return h.park(ctx, lease, &att, fe)
	}
	var tries atomic.Int32
	start := time.Now()
	// The lease rides along so the identity step in the chain can fence its store writes.
	res, cerr := route.Upserter.Upsert(store.WithLease(retry.WithCounter(ctx, &tries), lease), &ev)
	att.Tries = int(tries.Load())
	// The verdict is written even when the push request was cancelled: the CRM call happened.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	if cerr == nil {
		return h.succeed(wctx, lease, &att, res, time.Since(start))
	}
	fe := classified(cerr)
	att.Class, att.Code, att.Message = fe.Class, fe.Code, fe.Message
	// Open now: the call failed on the breaker, or waited out its budget for a send token while
	// the circuit opened (the limiter sits outside the breaker).
	openNow := route.Gate != nil && route.Gate.Open()
	switch v, fe := decide(fe, lease.Relative, h.Lease.MaxAttempts, h.ParkOnOpen, openNow); v {
	case verdictFail:
		return h.fail(wctx, lease, &att, fe)
	case verdictPark:
		return h.park(wctx, lease, &att, fe)
	default:
		return h.quarantine(wctx, env, lease, &att, fe)
	}
}

// verdict is what a failed attempt does to its event.
type verdict int

const (
	// verdictFail records the failure and nacks: Pub/Sub redelivers and the event is retried.
	verdictFail verdict = iota
	// verdictQuarantine dead-letters the event now, with its reason, and acks.
	verdictQuarantine
	// verdictPark parks the event until its CRM's circuit closes, without charge, and acks.
	verdictPark
)

// decide is the retry/quarantine policy for a classified CRM failure on the event's attempt
// relative (counted since its last replay) out of maxAttempts: an outage (the circuit is open)
// parks when park is set and otherwise fails, without charge either way; with park, a
// retryable failure while the circuit is open (circuitOpen: the CRM is down, the event would
// only be parked on its redelivery) parks too; otherwise a retryable failure fails until the
// attempts run out, then quarantines with "gave up after n attempts"; conflict, permanent and
// auth quarantine at once (conflicts were already retried in-request). It returns the failure
// to record.
func decide(fe *failure.Error, relative, maxAttempts int, park, circuitOpen bool) (verdict, *failure.Error) {
	switch {
	case park && (fe.Class == failure.Outage || fe.Class == failure.Retryable && circuitOpen):
		return verdictPark, fe
	case fe.Class == failure.Outage:
		return verdictFail, fe
	case fe.Class == failure.Retryable && relative < maxAttempts:
		return verdictFail, fe
	case fe.Class == failure.Retryable:
		return verdictQuarantine, &failure.Error{Class: fe.Class, Code: fe.Code, Message: "gave up after " + strconv.Itoa(relative) + " attempts: " + fe.Message}
	}
	return verdictQuarantine, fe
}

// classified returns err's failure, treating unclassified errors (the budget ran out) as
// retryable.
func classified(err error) *failure.Error {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe
	}
	msg := "unclassified error"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "processing budget exceeded"
	} else if errors.Is(err, context.Canceled) {
		msg = "request cancelled"
	}
	return &failure.Error{Class: failure.Retryable, Message: msg, Err: err}
}

func (h *Handler) record(ctx context.Context, lease *store.Lease, att *store.Attempt, outcome store.AttemptOutcome) {
	att.Outcome, att.FinishedAt = outcome, h.Store.Now()
	att.ExpireAt = lease.ExpireAt(att.FinishedAt)
	if err := h.Store.AddAttempt(ctx, lease.DocID, *att); err != nil {
		logging.FromContext(ctx).WarnContext(ctx, "attempt history not written", "error", err.Error())
	}
}

func (h *Handler) succeed(ctx context.Context, lease *store.Lease, att *store.Attempt, res crm.Result, d time.Duration) answer {
	att.Code = res.StatusCode
	state, err := h.Store.Complete(ctx, lease, store.Result{RecordID: res.RecordID, RequestID: res.RequestID, StatusCode: res.StatusCode, Duration: d}, att)
	switch {
	case errors.Is(err, store.ErrFenceSuperseded):
		h.record(ctx, lease, att, store.AttemptSuperseded)
		if state == store.StateSucceeded {
			return answer{status: http.StatusOK, Outcome: "duplicate", Attempt: lease.Attempt}
		}
		// The newer holder has not finished; its verdict decides. Redeliver to learn it.
		return answer{status: http.StatusServiceUnavailable, Outcome: "superseded", Attempt: lease.Attempt}
	case err != nil:
		logging.FromContext(ctx).ErrorContext(ctx, "result not written", "error", err.Error())
		return answer{status: http.StatusServiceUnavailable, Outcome: "store_unavailable", Attempt: lease.Attempt}
	}
	logging.FromContext(ctx).InfoContext(ctx, "lead written to CRM", "crm", lease.Doc.Event.Routing.CRM, "record_id", res.RecordID,
		"status_code", res.StatusCode, "created", res.Created, "attempt", lease.Attempt, "ms", d.Milliseconds())
	if lease.Doc.ReplayCount > 0 {
		// A replayed lead landed: its DLQ record is resolved now, not at the next auto-replay.
		if _, err := h.Store.Resolve(ctx, lease.DocID); err != nil {
			logging.FromContext(ctx).WarnContext(ctx, "dlq record not resolved", "error", err.Error())
		}
	}
	return answer{status: http.StatusOK, Outcome: "succeeded", Attempt: lease.Attempt}
}

func (h *Handler) fail(ctx context.Context, lease *store.Lease, att *store.Attempt, fe *failure.Error) answer {
	switch _, err := h.Store.Fail(ctx, lease, store.ReasonOf(fe), att); {
	case errors.Is(err, store.ErrFenceSuperseded):
		h.record(ctx, lease, att, store.AttemptSuperseded)
	case err != nil:
		logging.FromContext(ctx).ErrorContext(ctx, "failure not written", "error", err.Error())
		h.record(ctx, lease, att, store.AttemptFailed)
	}
	logging.FromContext(ctx).InfoContext(ctx, "lead failed, will be retried", "failure_class", fe.Class, "code", fe.Code, "attempt", lease.Attempt)
	return answer{status: http.StatusServiceUnavailable, Outcome: "failed", Attempt: lease.Attempt, Class: string(fe.Class)}
}

// park holds the event until its CRM's circuit closes (nothing charged to its attempts) and
// acks: the drain (processor/internal/park) republishes it then.
func (h *Handler) park(ctx context.Context, lease *store.Lease, att *store.Attempt, fe *failure.Error) answer {
	_, err := h.Store.Park(ctx, lease, store.ReasonOf(fe), att)
	switch {
	case errors.Is(err, store.ErrFenceSuperseded):
		h.record(ctx, lease, att, store.AttemptSuperseded)
		return answer{status: http.StatusServiceUnavailable, Outcome: "superseded", Attempt: lease.Attempt}
	case err != nil:
		logging.FromContext(ctx).ErrorContext(ctx, "park not written", "error", err.Error())
		h.record(ctx, lease, att, store.AttemptFailed)
		return answer{status: http.StatusServiceUnavailable, Outcome: "store_unavailable", Attempt: lease.Attempt, Class: string(fe.Class)}
	}
	logging.FromContext(ctx).InfoContext(ctx, "lead parked: CRM circuit open", "crm", lease.Doc.Event.Routing.CRM, "attempt", lease.Attempt)
	return answer{status: http.StatusOK, Outcome: "parked", Attempt: lease.Attempt, Class: string(fe.Class)}
}

func (h *Handler) quarantine(ctx context.Context, env *pushmsg.Envelope, lease *store.Lease, att *store.Attempt, fe *failure.Error) answer {
	doc, err := h.Store.Quarantine(ctx, lease, store.ReasonOf(fe), att)
	if errors.Is(err, store.ErrFenceSuperseded) {
		// A newer lease, a replay, a discard or a dead-letter moved the event on: its state
		// stands. Redeliver to learn it.
		h.record(ctx, lease, att, store.AttemptSuperseded)
		return answer{status: http.StatusServiceUnavailable, Outcome: "superseded", Attempt: lease.Attempt}
	}
	if err != nil {
		logging.FromContext(ctx).ErrorContext(ctx, "quarantine not written", "error", err.Error())
		h.record(ctx, lease, att, store.AttemptFailed)
		return answer{status: http.StatusServiceUnavailable, Outcome: "store_unavailable", Attempt: lease.Attempt}
	}
	logging.FromContext(ctx).WarnContext(ctx, "lead quarantined", "failure_class", fe.Class, "error_message", fe.Message, "attempt", lease.Attempt)
	a := h.publish(ctx, env, doc)
	a.Attempt = lease.Attempt
	return a
}

// publish sends the quarantined event to leads-dlq and marks it published; a failed publish
// nacks so the next delivery publishes again (the claim returns ErrPendingDLQ).
func (h *Handler) publish(ctx context.Context, env *pushmsg.Envelope, doc store.EventDoc) answer {
	if _, err := h.DLQ.Publish(ctx, dlq.FromDoc(env.Message.Data, env.Message.Attributes, doc)); err != nil {
		logging.FromContext(ctx).ErrorContext(ctx, "dlq publish failed", "error", err.Error())
		return answer{status: http.StatusServiceUnavailable, Outcome: "dlq_unavailable", Class: string(doc.FailureClass)}
	}
	if err := h.Store.MarkDLQPublished(ctx, doc.DocID); err != nil {
		// Published but not marked: a redelivery publishes again; the replayer keeps one DLQ
		// record per event, so the duplicate is harmless.
		logging.FromContext(ctx).WarnContext(ctx, "dlq publish not marked", "error", err.Error())
	}
	return answer{status: http.StatusOK, Outcome: "quarantined", Class: string(doc.FailureClass)}
}

// unusable dead-letters a message whose data is not a valid event, then acks: retrying cannot
// fix it.
func (h *Handler) unusable(ctx context.Context, env *pushmsg.Envelope, reason string) answer {
	now := time.Now().UTC()
	if _, err := h.DLQ.Publish(ctx, dlq.Message{Data: env.Message.Data, Attributes: env.Message.Attributes,
		FailureClass: failure.Permanent, ErrorMessage: reason, AttemptCount: 1, FirstReceivedAt: env.Message.PublishTime, LastAttemptAt: now}); err != nil {
		logging.FromContext(ctx).ErrorContext(ctx, "dlq publish failed", "error", err.Error())
		return answer{status: http.StatusServiceUnavailable, Outcome: "dlq_unavailable"}
	}
	logging.FromContext(ctx).WarnContext(ctx, "unusable event dead-lettered", "reason", reason)
	return answer{status: http.StatusOK, Outcome: "unusable", Class: string(failure.Permanent)}
}
