// Package app is the tiny bootstrap every service main uses: a signal-aware context, a JSON
// logger on stderr in Cloud Logging's format carried in the context, and an exit code.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
)

// Main runs realMain with a context cancelled on SIGINT or SIGTERM and exits 1 if it fails.
// The context carries a logger tagged with the service name, at level info until Runner
// applies the configured LOG_LEVEL.
func Main(service string, realMain func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := new(slog.LevelVar)
	logger := logging.New(os.Stderr, logging.Options{
		Level:     level,
		ProjectID: os.Getenv("GOOGLE_CLOUD_PROJECT"),
		Service:   service,
		Format:    logging.ParseFormat(os.Getenv("LOG_FORMAT")),
	})
	ctx = logging.WithLogger(context.WithValue(ctx, levelKey{}, level), logger)
	if err := realMain(ctx); err != nil {
		logger.ErrorContext(ctx, "exiting", "error", err.Error())
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		stop()
		os.Exit(1)
	}
}

// Health answers /healthz (the process is up) and /readyz (ready reports whether the service's
// dependencies are usable). Both are plain JSON.
func Health(mux *http.ServeMux, ready func(ctx context.Context) error) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if ready != nil {
			if err := ready(r.Context()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprintf(w, `{"status":"unavailable","error":%q}`, err.Error())
				return
			}
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
}

// RunService is the whole main of a service: Main plus run (from Runner) with the process
// environment as configuration and a listener on the config's PORT.
func RunService(service string, run RunFunc) {
	Main(service, func(ctx context.Context) error {
		return run(ctx, config.OSLookuper(), nil)
	})
}
