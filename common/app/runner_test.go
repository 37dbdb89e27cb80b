package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/server"
)

type testConfig struct {
	Server    config.Server
	GCP       config.GCP
	Telemetry config.Telemetry
	Logging   config.Logging
	Greeting  string `env:"GREETING, default=hello"`
}

func (c *testConfig) Base() config.Base {
	return config.Base{Server: c.Server, GCP: c.GCP, Telemetry: c.Telemetry, Logging: c.Logging}
}

type testService struct {
	greeting string
	closed   *atomic.Bool
}

func (s *testService) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, s.greeting) })
}

func (s *testService) Close() error { s.closed.Store(true); return nil }

// TestRunner: the runner loads the service's config, applies LOG_LEVEL to Main's logger, gives
// New the clients, serves its Handler, and closes it when the context ends.
func TestRunner(t *testing.T) {
	// The client libraries only dial on first use; the emulator variables keep them from
	// looking for credentials.
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
	t.Setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
	var closed atomic.Bool
	var gotDeps Deps
	run := Runner("test", func(ctx context.Context, cfg *testConfig, d Deps) (Service, error) {
		gotDeps = d
		return &testService{greeting: cfg.Greeting, closed: &closed}, nil
	})
	level := new(slog.LevelVar)
	ctx, cancel := context.WithCancel(logging.WithLogger(context.WithValue(context.Background(), levelKey{}, level),
		logging.New(io.Discard, logging.Options{Level: level})))
	srv, err := server.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config.MapLookuper(map[string]string{
			"GOOGLE_CLOUD_PROJECT": "p", "GREETING": "hi", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "1s",
		}), srv)
	}()
	// The listener is open already: the request waits in its backlog until the runner serves.
	c := &http.Client{Timeout: 10 * time.Second}
	var body string
	if resp, err := c.Get(srv.URL()); err != nil {
		t.Errorf("get: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
	}
	if body != "hi" {
		t.Errorf("served body: got %q, want %q (GREETING from the config)", body, "hi")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if !closed.Load() {
		t.Error("service not closed after the context ended")
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level: got %v, want debug (LOG_LEVEL)", level.Level())
	}
	if gotDeps.Store == nil || gotDeps.PubSub == nil || gotDeps.Storage == nil || gotDeps.Env == nil || gotDeps.TracerProvider == nil || gotDeps.MeterProvider == nil {
		t.Errorf("deps: got %+v, want every client and provider", gotDeps)
	}
}

func TestRunnerConfigError(t *testing.T) {
	run := Runner("test", func(context.Context, *testConfig, Deps) (Service, error) {
		t.Error("New called with an invalid config")
		return nil, nil
	})
	if err := run(context.Background(), config.MapLookuper(map[string]string{}), nil); err == nil {
		t.Error("run without GOOGLE_CLOUD_PROJECT: got nil, want a config error")
	}
}
