// Package service wires the replayer service: it loads its configuration, builds its
// dependencies and serves HTTP until the context ends. The command in cmd/replayer and devstack
// both call Run.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"go.opentelemetry.io/otel"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
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
)

// Run serves the replayer service on srv until ctx ends, reading configuration through env.
// Bulk replay jobs and the auto-replay ticker run on goroutines of ctx and are waited for
// before Run returns.
func Run(ctx context.Context, env config.Lookuper, srv *server.Server) error {
	var cfg Config
	if err := config.Load(ctx, &cfg, env); err != nil {
		return err
	}
	srv.WithShutdownTimeout(cfg.Server.ShutdownTimeout)
	shutdown, err := telemetry.Setup(ctx, cfg.Telemetry, "replayer", cfg.GCP.ProjectID)
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(context.WithoutCancel(ctx)) }()

	fs, err := firestore.NewClientWithDatabase(ctx, cfg.GCP.ProjectID, cfg.GCP.FirestoreDatabase)
	if err != nil {
		return fmt.Errorf("firestore: %w", err)
	}
	defer fs.Close()
	ps, err := pubsub.NewClient(ctx, cfg.GCP.ProjectID)
	if err != nil {
		return fmt.Errorf("pubsub: %w", err)
	}
	defer ps.Close()
	gcs, err := storage.NewClient(ctx)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer gcs.Close()

	st := store.New(fs)
	raw := archive.New(gcs, cfg.GCP.Bucket())
	topic := replay.NewTopicPublisher(ps, cfg.GCP.LeadsTopic)
	defer topic.Stop()
	pub := newTracedPublisher(topic)
	opts := replay.Options{OutboxGrace: cfg.ReplayOutboxGrace}
	var sources *renormalize.File
	if cfg.SourcesFile != "" {
		if sources, err = renormalize.LoadFile(cfg.SourcesFile); err != nil {
			return err
		}
		opts.Renormalizer = renormalize.New(sources, raw)
	}
	rec, stopRec := newReconcile(ps, st, raw, sources, &cfg)
	defer stopRec()
	rp := replay.New(st, pub, opts)
	tracer := otel.Tracer(meterName)
	jobs := bulk.NewRunner(st, kindReplayer{rp, actorBulk, tracer}, bulk.Options{RatePerSec: cfg.ReplayRatePerSec, MaxPerJob: cfg.BulkMax})
	auto := autoreplay.New(st, kindReplayer{rp, actorAuto, tracer}, autoreplay.Options{
		Cooldown: cfg.AutoReplayCooldown, MaxReplays: cfg.AutoReplayMaxReplays, RatePerSec: cfg.ReplayRatePerSec,
	})

	authn, err := authenticator(&cfg)
	if err != nil {
		return err
	}
	key := []byte(cfg.SessionKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	sessions, err := auth.NewSessions(key, cfg.SessionTTL)
	if err != nil {
		return err
	}

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
	a := &api.API{St: st, Replayer: rp, Jobs: jobs, Auto: auto, Raw: raw, RawReaders: cfg.RawReaders}
	a.Register(mux, auth.Require(authn))
	(&triage.Page{API: a, Authn: authn, Sessions: sessions}).Register(mux)
	rec.Register(mux, auth.Require(authn))

	bg, stopBG := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		background(bg, jobs, auto, cfg.AutoReplayInterval)
	}()
	logging.FromContext(ctx).InfoContext(ctx, "replayer: serving", "addr", srv.Addr(), "auth_mode", cfg.AuthMode, "push_auth", cfg.PushAuth)
	err = srv.ServeHTTP(ctx, telemetry.Handler(mux))
	stopBG()
	<-done
	return err
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
