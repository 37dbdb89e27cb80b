// Package config loads a service's configuration from environment variables.
//
// Each service declares one Config struct with `env` tags (sethvargo/go-envconfig) and,
// optionally, a Validate method. Tests inject a Lookuper instead of touching the process
// environment.
package config

import (
	"context"
	"fmt"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Validator is implemented by config structs that check themselves after loading.
type Validator interface {
	Validate() error
}

// Lookuper finds environment values. envconfig.OsLookuper and envconfig.MapLookuper satisfy it.
type Lookuper = envconfig.Lookuper

// OSLookuper reads the process environment.
func OSLookuper() Lookuper { return envconfig.OsLookuper() }

// MapLookuper reads from a map; for tests.
func MapLookuper(m map[string]string) Lookuper { return envconfig.MapLookuper(m) }

// Load fills cfg (a pointer to a struct) from l, applying defaults, then calls
// cfg.Validate if cfg implements Validator. A nil l means the process environment.
func Load(ctx context.Context, cfg any, l Lookuper) error {
	if l == nil {
		l = envconfig.OsLookuper()
	}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: cfg, Lookuper: l}); err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("invalid config: %w", err)
		}
	}
	return nil
}

// Base is what every service loads besides its own fields; each service's Config returns it
// from a Base method so the one runner (common/app.Runner) can read it.
type Base struct {
	Server    Server
	GCP       GCP
	Telemetry Telemetry
	Logging   Logging
}

// Server holds what every HTTP service reads.
type Server struct {
	// Port to listen on (Cloud Run sets PORT). Default 8080.
	Port string `env:"PORT, default=8080"`
	// ShutdownTimeout bounds graceful shutdown after SIGTERM; Cloud Run allows 10 s. Default 8s.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT, default=8s"`
}

// GCP names the Google Cloud project and the shared resources every service uses.
type GCP struct {
	// ProjectID is required: GOOGLE_CLOUD_PROJECT.
	ProjectID string `env:"GOOGLE_CLOUD_PROJECT, required"`
	// LeadsTopic is the topic normalized events are published to. Default "leads".
	LeadsTopic string `env:"LEADS_TOPIC, default=leads"`
	// DLQTopic is the dead-letter topic. Default "leads-dlq".
	DLQTopic string `env:"DLQ_TOPIC, default=leads-dlq"`
	// RawBucket holds raw payloads (write-once). Default "<project>-leadpipe-raw" when empty.
	RawBucket string `env:"RAW_BUCKET"`
	// FirestoreDatabase is the Firestore database id. Default "(default)".
	FirestoreDatabase string `env:"FIRESTORE_DATABASE, default=(default)"`
	// FirestoreOpsDatabase is the database of DLQ records, the audit log and replay jobs, when
	// the deployment keeps them apart from the events (so ingest, granted the events database
	// alone, cannot write them). Empty: the same database as FIRESTORE_DATABASE.
	FirestoreOpsDatabase string `env:"FIRESTORE_OPS_DATABASE"`
}

// OpsDatabase is the operations database id: FirestoreOpsDatabase, or FirestoreDatabase.
func (g GCP) OpsDatabase() string {
	if g.FirestoreOpsDatabase != "" {
		return g.FirestoreOpsDatabase
	}
	return g.FirestoreDatabase
}

// Bucket returns RawBucket or its default.
func (g GCP) Bucket() string {
	if g.RawBucket != "" {
		return g.RawBucket
	}
	return g.ProjectID + "-leadpipe-raw"
}

// Telemetry selects the OpenTelemetry exporters.
type Telemetry struct {
	// Exporter is one of none, stdout, otlp, gcp. Default none.
	Exporter string `env:"OTEL_EXPORTER, default=none"`
	// ServiceName overrides the service name in traces and metrics (default: the binary's name).
	ServiceName string `env:"OTEL_SERVICE_NAME"`
	// SampleRatio is the fraction of root traces sampled (0..1). Default 1.
	SampleRatio float64 `env:"OTEL_SAMPLE_RATIO, default=1"`
}

// Validate checks the exporter name.
func (t Telemetry) Validate() error {
	switch t.Exporter {
	case "none", "stdout", "otlp", "gcp":
	default:
		return fmt.Errorf("OTEL_EXPORTER=%q: want none, stdout, otlp or gcp", t.Exporter)
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		return fmt.Errorf("OTEL_SAMPLE_RATIO=%v: want 0..1", t.SampleRatio)
	}
	return nil
}

// Logging configures the JSON logger.
type Logging struct {
	// Level is debug, info, warn or error. Default info.
	Level string `env:"LOG_LEVEL, default=info"`
}
