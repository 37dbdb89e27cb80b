// Package service wires the ingest service: it loads its configuration, builds its
// dependencies and serves HTTP until the context ends. The command in cmd/ingest and devstack
// both call Run.
package service

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/api/option"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/outbox"
	"github.com/leadpipe/leadpipe/common/secrets"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry"
	"github.com/leadpipe/leadpipe/ingest/internal/signature"
	"github.com/leadpipe/leadpipe/ingest/internal/webhook"
)

// Run serves the ingest service on srv until ctx ends, reading configuration through env.
// Secrets referenced as env:NAME in the sources file are read through env too.
func Run(ctx context.Context, env config.Lookuper, srv *server.Server) error {
	var cfg Config
	if err := config.Load(ctx, &cfg, env); err != nil {
		return err
	}
	stopTelemetry, err := telemetry.Setup(ctx, cfg.Telemetry, "ingest", cfg.GCP.ProjectID)
	if err != nil {
		return err
	}
	defer func() { _ = stopTelemetry(context.WithoutCancel(ctx)) }()
	a, err := build(ctx, cfg, env, clientOptions{})
	if err != nil {
		return err
	}
	defer a.Close()
	if cfg.SweepInterval > 0 {
		go a.sweepLoop(ctx, cfg.SweepInterval)
	}
	srv.WithShutdownTimeout(cfg.Server.ShutdownTimeout)
	return srv.ServeHTTP(ctx, a.handler)
}

// clientOptions lets tests and benchmarks instrument the Google clients.
type clientOptions struct {
	firestore, pubsub, storage []option.ClientOption
}

// service is the built ingest service.
type service struct {
	cfg     Config
	engine  *gin.Engine
	handler http.Handler // engine with OpenTelemetry server spans
	store   *store.Store
	outbox  *outbox.Outbox
	closers []func() error
}

func build(ctx context.Context, cfg Config, env config.Lookuper, co clientOptions) (_ *service, err error) {
	s := &service{cfg: cfg}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	srcs, err := mapping.LoadSources(cfg.SourcesFile)
	if err != nil {
		return nil, err
	}
	resolver := secrets.NewResolver(env)
	s.closers = append(s.closers, resolver.Close)
	sources := resolveSources(ctx, srcs, resolver, cfg.SignatureTolerance)

	fs, err := firestore.NewClientWithDatabase(ctx, cfg.GCP.ProjectID, cfg.GCP.FirestoreDatabase, co.firestore...)
	if err != nil {
		return nil, fmt.Errorf("firestore client: %w", err)
	}
	s.closers = append(s.closers, fs.Close)
	gcs, err := storage.NewClient(ctx, co.storage...)
	if err != nil {
		return nil, fmt.Errorf("storage client: %w", err)
	}
	s.closers = append(s.closers, gcs.Close)
	ps, err := pubsub.NewClient(ctx, cfg.GCP.ProjectID, co.pubsub...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	s.closers = append(s.closers, ps.Close)
	leads, dlq := publisher(ps, cfg.GCP.LeadsTopic, cfg), publisher(ps, cfg.GCP.DLQTopic, cfg)
	// Publishers stop (flushing) before the client closes: closers run in reverse.
	s.closers = append(s.closers, func() error { leads.Stop(); dlq.Stop(); return nil })

	s.store = store.New(fs)
	s.outbox = outbox.New(s.store, leads, dlq, outbox.Options{
		Delay: cfg.OutboxDelay, Grace: cfg.PublishGrace, PublishTimeout: cfg.PublishTimeout,
	})
	h := webhook.New(sources, s.store, archive.New(gcs, cfg.GCP.Bucket()), s.outbox, webhook.Options{
		MaxBodyBytes: cfg.MaxBodyBytes, PersistTimeout: cfg.PersistTimeout, RetryAfter: cfg.RetryAfter,
	})

	var sweepToken string
	if cfg.SweepToken != "" {
		if sweepToken, err = resolver.Resolve(ctx, cfg.SweepToken); err != nil {
			return nil, fmt.Errorf("SWEEP_TOKEN: %w", err)
		}
	}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(gin.Recovery(), withLogger(logging.FromContext(ctx)), routeSpan)
	e.HandleMethodNotAllowed = true
	h.Register(e)
	e.POST("/internal/sweep", s.sweepHandler(sweepToken))
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
	return s, nil
}

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

// Close releases the clients, in reverse order of creation.
func (s *service) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
	s.closers = nil
}

// ready reports whether Firestore answers (a read of a document that does not exist).
func (s *service) ready(ctx context.Context) error {
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
func (s *service) sweepHandler(token string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if token != "" && subtle.ConstantTimeCompare([]byte(c.GetHeader("Authorization")), []byte("Bearer "+token)) != 1 {
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"status": "error", "error": "sweep token required"})
			return
		}
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
func (s *service) sweepLoop(ctx context.Context, every time.Duration) {
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
