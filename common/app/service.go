package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/api/option"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry"
)

// Service is a built service: every one of the three is New(ctx, cfg, deps) returning one.
type Service interface {
	// Handler serves the service's HTTP API (push endpoints, webhooks, health, pages).
	Handler() http.Handler
	// Close stops the service's background work (waiting for it) and its own publishers.
	// It does not close the clients in Deps: whoever built them closes them.
	Close() error
}

// Configured is a service's Config: it exposes the sub-configs every service loads.
type Configured interface {
	Base() config.Base
}

// Deps are the clients and telemetry providers a service runs on. Mains build them with Dial;
// devstack and tests build them on the emulators (often with instrumented clients). A service
// uses what it needs and ignores the rest (the processor has no Storage).
type Deps struct {
	// Store is the Firestore store (events, DLQ records, audit, jobs, CRM health).
	Store *store.Store
	// PubSub publishes to the leads and leads-dlq topics.
	PubSub *pubsub.Client
	// Storage reads and writes the raw payload archive.
	Storage *storage.Client
	// Env resolves secrets referenced as env:NAME (and is what the config was loaded from).
	Env config.Lookuper
	// TracerProvider and MeterProvider are the service's own instruments. The Google client
	// libraries and otelhttp use the global providers, which Run installs as these.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// ClientOptions are extra options for the clients Dial builds (tests instrument them).
type ClientOptions struct {
	Firestore, PubSub, Storage []option.ClientOption
}

// Dial builds Deps from the GCP config: Firestore, Pub/Sub and Storage clients (each honours
// its *_EMULATOR_HOST variable) and the global telemetry providers. closeAll closes the
// clients.
func Dial(ctx context.Context, g config.GCP, env config.Lookuper, opts ClientOptions) (_ Deps, closeAll func() error, err error) {
	var closers []func() error
	closeAll = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = closeAll()
		}
	}()
	st, closeStore, err := OpenStore(ctx, g, opts.Firestore...)
	if err != nil {
		return Deps{}, nil, err
	}
	closers = append(closers, closeStore)
	ps, err := pubsub.NewClient(ctx, g.ProjectID, opts.PubSub...)
	if err != nil {
		return Deps{}, nil, fmt.Errorf("pubsub client: %w", err)
	}
	closers = append(closers, ps.Close)
	gcs, err := storage.NewClient(ctx, opts.Storage...)
	if err != nil {
		return Deps{}, nil, fmt.Errorf("storage client: %w", err)
	}
	closers = append(closers, gcs.Close)
	return Deps{Store: st, PubSub: ps, Storage: gcs, Env: env,
		TracerProvider: otel.GetTracerProvider(), MeterProvider: otel.GetMeterProvider()}, closeAll, nil
}

// OpenStore opens the store on the configured Firestore database, and on a second client for
// the operations database when FIRESTORE_OPS_DATABASE names another one. closeStore closes the
// clients.
func OpenStore(ctx context.Context, g config.GCP, opts ...option.ClientOption) (_ *store.Store, closeStore func() error, err error) {
	fs, err := firestore.NewClientWithDatabase(ctx, g.ProjectID, g.FirestoreDatabase, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("firestore client: %w", err)
	}
	ops := g.OpsDatabase()
	if ops == g.FirestoreDatabase {
		return store.New(fs), fs.Close, nil
	}
	opsFS, err := firestore.NewClientWithDatabase(ctx, g.ProjectID, ops, opts...)
	if err != nil {
		_ = fs.Close()
		return nil, nil, fmt.Errorf("firestore client (operations database %s): %w", ops, err)
	}
	return store.NewSplit(fs, opsFS), func() error { return errors.Join(opsFS.Close(), fs.Close()) }, nil
}

// RunFunc runs one service until ctx ends: the shape the mains, devstack's stack and the test
// harnesses share. env is the configuration; srv is the listener to serve on, or nil to open
// one on the config's PORT.
type RunFunc func(ctx context.Context, env config.Lookuper, srv *server.Server) error

// Runner is the one way a service runs: load its Config from env, set up telemetry (a no-op
// while providers are pinned, as in devstack and tests), set the log level (when the context's
// logger came from Main), Dial the clients, build the service with newService, serve its
// Handler on srv (or on PORT) until ctx ends, drain within SHUTDOWN_TIMEOUT, then Close the
// service and the clients.
func Runner[C any, PC interface {
	*C
	Configured
}](name string, newService func(ctx context.Context, cfg *C, deps Deps) (Service, error)) RunFunc {
	return func(ctx context.Context, env config.Lookuper, srv *server.Server) (err error) {
		cfg := PC(new(C))
		if err := config.Load(ctx, cfg, env); err != nil {
			return err
		}
		base := cfg.Base()
		setLevel(ctx, base.Logging.Level)
		stopTelemetry, err := telemetry.Setup(ctx, base.Telemetry, name, base.GCP.ProjectID)
		if err != nil {
			return err
		}
		defer func() { _ = stopTelemetry(context.WithoutCancel(ctx)) }()
		if srv == nil {
			if srv, err = server.New(base.Server.Port); err != nil {
				return err
			}
		}
		srv.WithShutdownTimeout(base.Server.ShutdownTimeout)
		deps, closeDeps, err := Dial(ctx, base.GCP, env, ClientOptions{})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, closeDeps()) }()
		svc, err := newService(ctx, (*C)(cfg), deps)
		if err != nil {
			return err
		}
		logging.FromContext(ctx).InfoContext(ctx, name+" serving", "addr", srv.Addr())
		serveErr := srv.ServeHTTP(ctx, svc.Handler())
		return errors.Join(serveErr, svc.Close())
	}
}

// levelKey carries Main's level, so Runner can apply LOG_LEVEL from the loaded config.
type levelKey struct{}

func setLevel(ctx context.Context, level string) {
	if v, ok := ctx.Value(levelKey{}).(*slog.LevelVar); ok && level != "" {
		v.Set(logging.ParseLevel(level))
	}
}
