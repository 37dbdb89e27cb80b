// Package service builds the replayer service: New(ctx, cfg, deps) returns a Service with
// Handler and Close, and Run (app.Runner over New) is what the command, devstack and the tests
// run.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry"
	"github.com/leadpipe/leadpipe/replayer/internal/api"
	"github.com/leadpipe/leadpipe/replayer/internal/auth"
	"github.com/leadpipe/leadpipe/replayer/internal/autoreplay"
	"github.com/leadpipe/leadpipe/replayer/internal/bulk"
	"github.com/leadpipe/leadpipe/replayer/internal/dlq"
	"github.com/leadpipe/leadpipe/replayer/internal/renormalize"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
	"github.com/leadpipe/leadpipe/replayer/internal/triage"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

// Run serves the replayer until ctx ends, with configuration from env, on srv (nil: on PORT).
// It is app.Runner over New: the command, devstack and the tests all run it.
func Run(ctx context.Context, env config.Lookuper, srv *server.Server) error {
	return run(ctx, env, srv)
}

var run = app.Runner("replayer", func(ctx context.Context, cfg *Config, d app.Deps) (app.Service, error) {
	return New(ctx, cfg, d)
})

// Service is the built replayer: the DLQ push endpoint, the API, the triage page, and the bulk
// jobs and auto-replay ticker running in the background until Close.
type Service struct {
	handler http.Handler
	stopBG  context.CancelFunc
	done    chan struct{}
	topic   *replay.TopicPublisher
	stopRec func()              // reconcile's leads and leads-dlq publishers
	gauge   metric.Registration // leadpipe.dlq.open (infra/monitoring.tf)
}

var _ app.Service = (*Service)(nil)

// New builds the replayer on deps (Store, PubSub, Storage; TracerProvider for replay spans)
// and starts its background work (bulk jobs, auto-replay) on a context derived from ctx.
func New(ctx context.Context, cfg *Config, deps app.Deps) (*Service, error) {
	st := deps.Store
	raw := archive.New(deps.Storage, cfg.GCP.Bucket())
	hasher, err := pii.NewHasher([]byte(cfg.PIIHashKey))
	if err != nil {
		return nil, fmt.Errorf("PII_HASH_KEY: %w", err)
	}
	opts := replay.Options{OutboxGrace: cfg.ReplayOutboxGrace, Hasher: hasher}
	var sources *renormalize.File
	if cfg.SourcesFile != "" {
		if sources, err = renormalize.LoadFile(cfg.SourcesFile, hasher); err != nil {
			return nil, err
		}
		opts.Renormalizer = renormalize.New(sources, raw)
	}
	authn, err := authenticator(cfg)
	if err != nil {
		return nil, err
	}
	key := []byte(cfg.SessionKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	sessions, err := auth.NewSessions(key, cfg.SessionTTL)
	if err != nil {
		return nil, err
	}
	sessions.Gens = sessionGenerations{st}
	topic := replay.NewTopicPublisher(deps.PubSub, cfg.GCP.LeadsTopic)
	pub := newTracedPublisher(topic)
	rp := replay.New(st, pub, opts)
	tp := deps.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tracer := tp.Tracer(meterName)
	jobs := bulk.NewRunner(st, kindReplayer{rp, actorBulk, tracer}, bulk.Options{RatePerSec: cfg.ReplayRatePerSec, MaxPerJob: cfg.BulkMax})
	auto := autoreplay.New(st, kindReplayer{rp, actorAuto, tracer}, autoreplay.Options{
		Cooldown: cfg.AutoReplayCooldown, MaxReplays: cfg.AutoReplayMaxReplays, RatePerSec: cfg.ReplayRatePerSec,
	})

	mux := http.NewServeMux()
	app.Health(mux, func(ctx context.Context) error {
		// A read that reaches Firestore (found or not) means the store is usable.
		if _, err := st.CRMHealth(ctx, "_readyz"); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	intake := http.Handler(dlq.NewIntake(st))
	if cfg.PushAuth == "oidc" {
		intake = (&auth.Push{Audience: cfg.PushAudience, ServiceAccounts: cfg.PushServiceAccounts}).Verify(intake)
	}
	mux.Handle("POST /pubsub/dlq", intake)
	reader := views.New(st, raw, cfg.RawReaders, hasher)
	(&api.API{Views: reader, Replayer: rp, Jobs: jobs, Auto: auto}).Register(mux, auth.Require(authn))
	(&triage.Page{Views: reader, Replayer: rp, Jobs: jobs, Authn: authn, Sessions: sessions}).Register(mux)
	rec, stopRec := newReconcile(deps.PubSub, st, raw, sources, hasher, cfg)
	rec.Register(mux, auth.Require(authn))

	mp := deps.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	gauge, err := dlq.ObserveOpen(mp.Meter(meterName), st)
	if err != nil {
		stopRec()
		return nil, fmt.Errorf("dlq open gauge: %w", err)
	}

	bg, stopBG := context.WithCancel(ctx)
	s := &Service{handler: telemetry.Handler(mux), stopBG: stopBG, done: make(chan struct{}), topic: topic, stopRec: stopRec, gauge: gauge}
	go func() {
		defer close(s.done)
		background(bg, jobs, auto, cfg.AutoReplayInterval)
	}()
	logging.FromContext(ctx).InfoContext(ctx, "replayer built", "auth_mode", cfg.AuthMode, "push_auth", cfg.PushAuth)
	return s, nil
}

// Handler serves the DLQ push endpoint, the API, the triage page and health.
func (s *Service) Handler() http.Handler { return s.handler }

// Close stops the bulk jobs and the auto-replay ticker, waits for them, and flushes the leads
// publishers (replays' and reconcile's).
func (s *Service) Close() error {
	s.stopBG()
	<-s.done
	s.topic.Stop()
	s.stopRec()
	return s.gauge.Unregister()
}

// background runs bulk jobs and, with an interval, the auto-replay ticker, until ctx ends.
func background(ctx context.Context, jobs *bulk.Runner, auto *autoreplay.AutoReplayer, interval time.Duration) {
	if interval > 0 {
		go func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, err := auto.RunOnce(ctx); err != nil && ctx.Err() == nil {
						logging.FromContext(ctx).WarnContext(ctx, "auto-replay: run failed", "error", err.Error())
					}
				}
			}
		}()
	}
	jobs.Run(ctx)
}

func authenticator(cfg *Config) (auth.Authenticator, error) {
	if cfg.AuthMode == AuthStatic {
		return auth.ParseStatic(cfg.Tokens)
	}
	return &auth.OIDC{Audience: cfg.AuthAudience, Allowed: cfg.AllowedPrincipals}, nil
}

// sessionGenerations keeps the triage sessions' generations in Firestore, shared by every
// instance, so a logout or revocation ends the actor's sessions everywhere.
type sessionGenerations struct{ st *store.Store }

func (g sessionGenerations) Generation(ctx context.Context, actor string) (int64, error) {
	return g.st.SessionGeneration(ctx, actor)
}

func (g sessionGenerations) Revoke(ctx context.Context, actor string) error {
	return g.st.RevokeSessions(ctx, actor)
}
