// Package webhook is the ingest HTTP handler: POST /v1/webhooks/{source} takes a delivery
// through size limit, signature, normalization, durable persistence (raw payload in GCS and
// event document in Firestore, concurrently) and publish, and answers; GET /v1/webhooks/{source}
// answers Meta's subscription handshake.
//
// Answers (see ingest/openapi.yaml): 202 accepted, 200 duplicate, 202 quarantined (signed but
// unusable: stored and sent to the DLQ), 401 signature, 404 source, 413 size, 415 content type,
// 503 + Retry-After when Firestore or GCS cannot be written. No 2xx is sent before both writes
// are durable; a publish failure after them still answers 202 (the outbox sweep publishes).
package webhook

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/ingest/internal/signature"
)

// Source is a configured source with its secrets resolved. A source whose secrets could not
// be resolved has a nil Verifier and answers 503 (an operator can fix the secret; the sender
// retries).
type Source struct {
	*mapping.Source
	Verifier    signature.Verifier
	VerifyToken string
	// Err says why the source is not usable (no personal data, no secret values).
	Err error
}

// Publisher publishes persisted events; *outbox.Outbox implements it.
type Publisher interface {
	// Publish publishes a document the caller just created. Errors mean the sweep will.
	Publish(ctx context.Context, doc *store.EventDoc) error
	// Republish publishes an unpublished document found by a duplicate delivery, if it is
	// due and the caller wins the claim; nil when there was nothing to do.
	Republish(ctx context.Context, doc *store.EventDoc) error
	// Delay is the outbox delay: how long after receipt the sweep publishes an event.
	Delay() time.Duration
}

// Options tune the handler.
type Options struct {
	// MaxBodyBytes is the largest accepted body. Default 1 MiB.
	MaxBodyBytes int64
	// PersistTimeout bounds the GCS and Firestore writes. Default 10 s.
	PersistTimeout time.Duration
	// RetryAfter is the Retry-After of a 503 when the failure gives none. Default 5 s.
	RetryAfter time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Hasher keys the "find a lead" index entries (store.IndexEvent) written with every event;
	// nil writes none (PII_HASH_KEY unset).
	Hasher *pii.Hasher
}

// Handler serves the webhook endpoints. It is safe for concurrent use.
type Handler struct {
	sources map[string]*Source
	store   *store.Store
	archive *archive.Archive
	pub     Publisher
	opts    Options
	metrics metrics
}

// New returns a Handler.
func New(sources map[string]*Source, st *store.Store, ar *archive.Archive, pub Publisher, opts Options) *Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.PersistTimeout <= 0 {
		opts.PersistTimeout = 10 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{sources: sources, store: st, archive: ar, pub: pub, opts: opts, metrics: newMetrics()}
}

// Register mounts the endpoints on r.
func (h *Handler) Register(r gin.IRouter) {
	r.POST("/v1/webhooks/:source", h.Receive)
	r.GET("/v1/webhooks/:source", h.Handshake)
}

// Answer is the JSON body of every answer.
type Answer struct {
	Status         string        `json:"status"`
	EventID        string        `json:"event_id,omitempty"`
	IdempotencyKey string        `json:"idempotency_key,omitempty"`
	CorrelationID  string        `json:"correlation_id,omitempty"`
	Reason         string        `json:"reason,omitempty"`
	Detail         string        `json:"detail,omitempty"`
	Events         []EventAnswer `json:"events,omitempty"`
	Error          string        `json:"error,omitempty"`
}

// EventAnswer is the outcome of one event of a delivery that carried several.
type EventAnswer struct {
	Status         string `json:"status"`
	EventID        string `json:"event_id"`
	IdempotencyKey string `json:"idempotency_key"`
}

// Statuses in answers.
const (
	StatusAccepted    = "accepted"
	StatusDuplicate   = "duplicate"
	StatusQuarantined = "quarantined"
	StatusError       = "error"
)

func fail(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(code, Answer{Status: StatusError, Error: msg})
}

// Receive handles POST /v1/webhooks/{source}. Every delivery is counted and timed (see
// observe) and annotates the request's span.
func (h *Handler) Receive(c *gin.Context) {
	defer h.observe(c, time.Now())
	ctx := c.Request.Context()
	log := logging.FromContext(ctx)
	src, ok := h.sources[c.Param("source")]
	if !ok {
		fail(c, http.StatusNotFound, "unknown source")
		return
	}
	log = log.With("source", src.Name, "trust", src.Trust)
	if src.Verifier == nil {
		log.ErrorContext(ctx, "source not usable", "error", src.Err.Error())
		h.unavailable(c, nil)
		return
	}
	if !src.AcceptsContentType(c.ContentType()) {
		fail(c, http.StatusUnsupportedMediaType, "content type not accepted by this source")
		return
	}
	if c.Request.ContentLength > h.opts.MaxBodyBytes {
		fail(c, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(c, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		fail(c, http.StatusBadRequest, "body could not be read")
		return
	}
	now := h.opts.Now().UTC()
	keyIndex, err := src.Verifier.Verify(c.Request.Header, body, now)
	if err != nil {
		log.WarnContext(ctx, "signature rejected", "reason", err.Error())
		fail(c, http.StatusUnauthorized, "bad or missing signature")
		return
	}
	d := &delivery{
		src: src, body: body, receivedAt: now, correlationID: correlationID(c.Request.Header),
		raw: &archive.Raw{
			Source: src.Name, ReceivedAt: now, ContentType: c.GetHeader("Content-Type"),
			Headers:   archive.SafeHeaders(c.Request.Header),
			Signature: archive.SignatureResult{Scheme: src.Verifier.Scheme(), Verified: true, KeyIndex: keyIndex},
			Body:      body,
		},
	}
	d.rawRef = h.archive.Ref(archive.ObjectName(src.Name, body))
	evs, err := src.Normalize(body, c.Request.Header, now)
	var ue *mapping.UnusableError
	switch {
	case errors.As(err, &ue):
		d.docs = []*store.EventDoc{d.quarantineDoc(ue, h.pub.Delay())}
	case err != nil:
		log.ErrorContext(ctx, "normalize", "error", err.Error())
		fail(c, http.StatusInternalServerError, "normalization failed")
		return
	default:
		for _, ev := range evs {
			d.docs = append(d.docs, d.eventDoc(ev, h.pub.Delay()))
		}
	}
	created, err := h.persist(ctx, d)
	if err != nil {
		log.ErrorContext(ctx, "persist failed", "error", err.Error(), "class", classOf(err))
		h.unavailable(c, err)
		return
	}
	h.answer(c, d, ue, created)
}

// unavailable answers 503 with Retry-After.
func (h *Handler) unavailable(c *gin.Context, err error) {
	after := failure.RetryAfter(err)
	if after <= 0 {
		after = h.opts.RetryAfter
	}
	c.Header("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
	fail(c, http.StatusServiceUnavailable, "storage unavailable, retry later")
}

// answer publishes what the delivery created (or re-publishes what an earlier delivery left
// unpublished) and writes the answer. Publishing runs without the request's cancellation: the
// events are durable, and a sender that hung up should not leave them for the sweep.
func (h *Handler) answer(c *gin.Context, d *delivery, ue *mapping.UnusableError, created []bool) {
	ctx := context.WithoutCancel(c.Request.Context())
	log := logging.FromContext(ctx).With("source", d.src.Name)
	done := make(chan struct{}, len(d.docs))
	for i, doc := range d.docs {
		go func() {
			defer func() { done <- struct{}{} }()
			h.publish(ctx, doc, created[i], log)
		}()
	}
	for range d.docs {
		<-done
	}

	first := d.docs[0]
	code, a := answerFor(d.docs, created, ue)
	c.Set(keyStatus, a.Status)
	c.Set(keyEvents, len(d.docs))
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(AttrCorrelationID, a.CorrelationID))
	log.InfoContext(ctx, "delivery", "status", a.Status, "events", len(d.docs), "doc_id", first.DocID, "correlation_id", a.CorrelationID)
	for i, doc := range d.docs {
		if created[i] && doc.State == store.StateReceived {
			// Milestone: ids and routing only, never the lead's identity.
			log.InfoContext(ctx, "lead accepted", "doc_id", doc.DocID, "event_id", doc.EventID, "crm", doc.Event.Routing.CRM)
		}
	}
	c.JSON(code, a)
}

// answerFor is the answer to a persisted delivery of docs (created[i]: docs[i] was new; ue:
// the payload was unusable and docs holds its quarantined document):
//
//	202 accepted     at least one event is new
//	202 quarantined  the payload is unusable (valid signature): kept and dead-lettered
//	200 duplicate    every event was already known
//
// A delivery of several events lists each one's status.
func answerFor(docs []*store.EventDoc, created []bool, ue *mapping.UnusableError) (int, Answer) {
	anyCreated := false
	for _, c := range created {
		anyCreated = anyCreated || c
	}
	first := docs[0]
	a := Answer{EventID: first.EventID, IdempotencyKey: first.IdempotencyKey, CorrelationID: first.CorrelationID}
	code := http.StatusAccepted
	switch {
	case !anyCreated:
		a.Status, code = StatusDuplicate, http.StatusOK
	case ue != nil:
		a.Status, a.Reason, a.Detail = StatusQuarantined, ue.Code(), ue.Detail
	default:
		a.Status = StatusAccepted
	}
	if len(docs) > 1 {
		for i, doc := range docs {
			s := StatusAccepted
			if !created[i] {
				s = StatusDuplicate
			}
			a.Events = append(a.Events, EventAnswer{Status: s, EventID: doc.EventID, IdempotencyKey: doc.IdempotencyKey})
		}
	}
	return code, a
}

func (h *Handler) publish(ctx context.Context, doc *store.EventDoc, created bool, log *slog.Logger) {
	var err error
	if created {
		err = h.pub.Publish(ctx, doc)
	} else {
		err = h.pub.Republish(ctx, doc)
	}
	if err != nil {
		log.WarnContext(ctx, "publish deferred to the outbox sweep", "doc_id", doc.DocID, "error", err.Error())
	}
}

func classOf(err error) string {
	c, _ := failure.ClassOf(err)
	return string(c)
}

var correlationRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// correlationID takes the sender's X-Correlation-ID when it is a plain token, else makes one.
func correlationID(h http.Header) string {
	if v := h.Get("X-Correlation-ID"); correlationRE.MatchString(v) {
		return v
	}
	return uuid.NewString()
}

// Handshake handles GET /v1/webhooks/{source}: Meta's subscription check. It echoes
// hub.challenge when hub.mode is subscribe and hub.verify_token matches the source's token.
func (h *Handler) Handshake(c *gin.Context) {
	src, ok := h.sources[c.Param("source")]
	if !ok || src.VerifyToken == "" {
		fail(c, http.StatusNotFound, "unknown source")
		return
	}
	token := c.Query("hub.verify_token")
	if c.Query("hub.mode") != "subscribe" || subtle.ConstantTimeCompare([]byte(token), []byte(src.VerifyToken)) != 1 {
		fail(c, http.StatusForbidden, "verification failed")
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(c.Query("hub.challenge")))
}
