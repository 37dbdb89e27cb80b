// Package service builds the ingest service: New(ctx, cfg, deps) returns a Service with
// Handler and Close, and Run (app.Runner over New) is what the command, devstack and the tests
// run.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/idauth"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/outbox"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/secrets"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry"
	"github.com/leadpipe/leadpipe/ingest/internal/signature"
	"github.com/leadpipe/leadpipe/ingest/internal/webhook"
)

// Run serves ingest until ctx ends, with configuration from env, on srv (nil: on PORT). It is
// app.Runner over New: the command, devstack and the tests all run it. Secrets referenced as
// env:NAME in the sources file are read through env too.
func Run(ctx context.Context, env config.Lookuper, srv *server.Server) error {
	return run(ctx, env, srv)
}

// sweepValidate replaces idtoken.Validate for the sweep's OIDC check (tests sign tokens
// locally); nil in production.
var sweepValidate idauth.Validator

var run = app.Runner("ingest", func(ctx context.Context, cfg *Config, d app.Deps) (app.Service, error) {
	return New(ctx, cfg, d)
})

// Service is the built ingest service: the webhook endpoints, the outbox sweep and health.
type Service struct {
	cfg     Config
	engine  *gin.Engine
	handler http.Handler // engine with OpenTelemetry server spans
	store   *store.Store
	outbox  *outbox.Outbox
	closers []func() error
}

var _ app.Service = (*Service)(nil)

// New builds ingest on deps (Store, PubSub, Storage; Env resolves the sources' secrets) and,
// with SWEEP_INTERVAL, starts the outbox sweep ticker on ctx until Close.
func New(ctx context.Context, cfg *Config, deps app.Deps) (_ *Service, err error) {
	s := &Service{cfg: *cfg}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	hasher, err := pii.NewHasher([]byte(cfg.PIIHashKey))
	if err != nil {
		return nil, fmt.Errorf("PII_HASH_KEY: %w", err)
	}
	srcs, err := mapping.LoadSources(cfg.SourcesFile)
	if err != nil {
		return nil, err
	}
	resolver := secrets.NewResolver(deps.Env)
	s.closers = append(s.closers, resolver.Close)
	srcs.UseHasher(hasher)
	sources := resolveSources(ctx, srcs, resolver, cfg.SignatureTolerance)

	ps := deps.PubSub
	leads, dlq := publisher(ps, cfg.GCP.LeadsTopic, *cfg), publisher(ps, cfg.GCP.DLQTopic, *cfg)
	// Publishers stop (flushing) before the client closes: closers run in reverse.
	s.closers = append(s.closers, func() error { leads.Stop(); dlq.Stop(); return nil })

	s.store = deps.Store
	s.outbox = outbox.New(s.store, leads, dlq, outbox.Options{Hasher: hasher,
		Delay: cfg.OutboxDelay, Grace: cfg.PublishGrace, PublishTimeout: cfg.PublishTimeout, MarkDelay: cfg.PublishMarkDelay,
	})
	// Deferred publish marks are written before the publishers stop and the clients close.
	s.closers = append(s.closers, s.outbox.Close)
	h := webhook.New(sources, s.store, archive.New(deps.Storage, cfg.GCP.Bucket()), s.outbox, webhook.Options{
		MaxBodyBytes: cfg.MaxBodyBytes, PersistTimeout: cfg.PersistTimeout, RetryAfter: cfg.RetryAfter,
		Hasher: hasher,
	})

	sweepAuth, err := sweepAuthenticator(ctx, *cfg, resolver, sweepValidate)
	if err != nil {
		return nil, err
	}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(gin.Recovery(), withLogger(logging.FromContext(ctx)), routeSpan)
	e.HandleMethodNotAllowed = true
	h.Register(e)
	e.POST("/internal/sweep", requireCaller(sweepAuth), s.sweepHandler())
	mux := http.NewServeMux()
	app.Health(mux, s.ready)
	e.GET("/healthz", gin.WrapH(mux))
	e.GET("/readyz", gin.WrapH(mux))
	s.engine = e
	// Webhook senders are strangers: their traceparent, if any, becomes a link, not the parent
	// of our trace (nor our sampling decision).
	s.handler = otelhttp.NewHandler(e, "ingest", otelhttp.WithPublicEndpointFn(func(r *http.Request) bool {
		return strings.HasPrefix(r.URL.Path, "/v1/webhooks/")
	}))
	if cfg.SweepInterval > 0 {
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.sweepLoop(sctx, cfg.SweepInterval)
		}()
		s.closers = append(s.closers, func() error { stop(); <-done; return nil })
	}
	return s, nil
}

// Handler serves the webhooks, POST /internal/sweep and health.
func (s *Service) Handler() http.Handler { return s.handler }

func publisher(c *pubsub.Client, topic string, cfg Config) *pubsub.Publisher {
	p := c.Publisher(topic)
	p.EnableMessageOrdering = true
	p.PublishSettings.DelayThreshold = cfg.PublishBatchDelay
	p.PublishSettings.Timeout = cfg.PublishTimeout
	return p
}

// resolveSources resolves every source's secrets. A source whose secrets cannot be resolved
// stays configured but unusable (503), so one missing secret does not take down the others.
func resolveSources(ctx context.Context, srcs *mapping.Sources, r *secrets.Resolver, tolerance time.Duration) map[string]*webhook.Source {
	log := logging.FromContext(ctx)
	out := make(map[string]*webhook.Source)
	for _, name := range srcs.Names() {
		ms, _ := srcs.Get(name)
		src := &webhook.Source{Source: ms}
		out[name] = src
		vals := make([]string, 0, len(ms.Secrets))
		for _, ref := range ms.Secrets {
			v, err := r.Resolve(ctx, ref)
			if err != nil {
				src.Err = err
				break
			}
			vals = append(vals, v)
		}
		if src.Err == nil && ms.VerifyToken != "" {
			src.VerifyToken, src.Err = r.Resolve(ctx, ms.VerifyToken)
		}
		if src.Err == nil {
			src.Verifier, src.Err = signature.New(ms.Signature, vals, tolerance)
		}
		if src.Err != nil {
			src.Verifier = nil
			log.WarnContext(ctx, "source unusable until its secrets resolve", "source", name, "error", src.Err.Error())
		}
	}
	return out
}

// Close stops the sweep ticker, flushes the publishers and closes the secret resolver, in
// reverse order of creation.
func (s *Service) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// ready reports whether Firestore answers (a read of a document that does not exist).
func (s *Service) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := s.store.GetEvent(ctx, "readyz")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return errors.New("firestore unavailable")
	}
	return nil
}

// sweepHandler serves POST /internal/sweep: one bounded sweep, answering its counts. 200
// even when some publishes failed (they stay due); 503 when the outbox cannot be read, so
// Cloud Scheduler retries.
func (s *Service) sweepHandler() gin.HandlerFunc {
	return func(c *gin.Context) {
		res, err := s.outbox.Sweep(c.Request.Context(), s.cfg.SweepBatch, s.cfg.SweepMaxBatches)
		if err != nil {
			logging.FromContext(c.Request.Context()).ErrorContext(c.Request.Context(), "sweep", "error", err.Error())
			c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"status": "error", "error": "outbox unavailable", "result": res})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok", "result": res})
	}
}

// sweepLoop sweeps every interval until ctx ends.
func (s *Service) sweepLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.outbox.Sweep(ctx, s.cfg.SweepBatch, s.cfg.SweepMaxBatches); err != nil && ctx.Err() == nil {
				logging.FromContext(ctx).WarnContext(ctx, "sweep", "error", err.Error())
			}
		}
	}
}

// routeSpan names the request's server span after the gin route that served it
// ("POST /v1/webhooks/:source"); unmatched paths keep the method alone.
func routeSpan(c *gin.Context) {
	c.Next()
	telemetry.NameServerSpan(c.Request, c.FullPath())
}

// withLogger puts the service logger into each request's context. The context already carries
// the request's server span (otelhttp wraps the engine), so every line logged with it names
// the trace (logging.googleapis.com/trace).
func withLogger(l *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request = c.Request.WithContext(logging.WithLogger(c.Request.Context(), l))
		c.Next()
	}
}
