package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/leadpipe/leadpipe/common/config"
)

// Config is the ingest service's configuration, read from environment variables (documented in
// ingest/README.md).
type Config struct {
	Server    config.Server
	GCP       config.GCP
	Telemetry config.Telemetry
	Logging   config.Logging

	// SourcesFile is the path of the sources YAML file. Required.
	SourcesFile string `env:"SOURCES_FILE, required"`
	// MaxBodyBytes is the largest accepted webhook body (413 above). Default 1 MiB.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES, default=1048576"`
	// SignatureTolerance bounds the age (either way) of a signed timestamp; 0 disables the
	// check. Default 5m.
	SignatureTolerance time.Duration `env:"SIGNATURE_TOLERANCE, default=5m"`
	// PersistTimeout bounds the GCS and Firestore writes of one delivery. Default 10s.
	PersistTimeout time.Duration `env:"PERSIST_TIMEOUT, default=10s"`
	// RetryAfter is the Retry-After of a 503 when the storage error gives none. Default 5s.
	RetryAfter time.Duration `env:"RETRY_AFTER, default=5s"`
	// OutboxDelay is how long an event may stay unpublished before the sweep publishes it,
	// and how long a publish claim holds it. Default 30s.
	OutboxDelay time.Duration `env:"OUTBOX_DELAY, default=30s"`
	// PublishGrace is how old an unpublished event must be before a duplicate delivery
	// publishes it (younger ones are still being published by their first delivery). Default 5s.
	PublishGrace time.Duration `env:"PUBLISH_GRACE, default=5s"`
	// PublishTimeout bounds one publish. Default 5s.
	PublishTimeout time.Duration `env:"PUBLISH_TIMEOUT, default=5s"`
	// PublishBatchDelay is the Pub/Sub client's batching delay (latency vs. fewer calls).
	// Default 1ms.
	PublishBatchDelay time.Duration `env:"PUBLISH_BATCH_DELAY, default=1ms"`
	// SweepInterval runs the outbox sweep on a ticker when > 0 (local runs; in the cloud,
	// Cloud Scheduler calls POST /internal/sweep). Default 0: off.
	SweepInterval time.Duration `env:"SWEEP_INTERVAL, default=0"`
	// SweepBatch is the number of outbox entries read per query. Default 100.
	SweepBatch int `env:"SWEEP_BATCH, default=100"`
	// SweepMaxBatches bounds the queries of one sweep call. Default 10.
	SweepMaxBatches int `env:"SWEEP_MAX_BATCHES, default=10"`
	// SweepToken, when set, is a secret reference (env:NAME or a Secret Manager version) to
	// a bearer token that POST /internal/sweep requires. Default empty: no token (rely on
	// Cloud Run ingress / IAM).
	SweepToken string `env:"SWEEP_TOKEN"`
	// PIIHashKey keys the hashes of the "find a lead" index written beside every event (the
	// replayer's key; at least 16 bytes). Optional: without it no index entries are written
	// and leads cannot be found by email, phone or CRM external id.
	PIIHashKey string `env:"PII_HASH_KEY"`
}

// Base is the shared part of the configuration.
func (c *Config) Base() config.Base {
	return config.Base{Server: c.Server, GCP: c.GCP, Telemetry: c.Telemetry, Logging: c.Logging}
}

// Validate checks bounds.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SourcesFile == "" {
		errs = append(errs, errors.New("SOURCES_FILE is required"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("MAX_BODY_BYTES=%d: want > 0", c.MaxBodyBytes))
	}
	if c.SignatureTolerance < 0 {
		errs = append(errs, errors.New("SIGNATURE_TOLERANCE: want >= 0"))
	}
	for name, d := range map[string]time.Duration{
		"PERSIST_TIMEOUT": c.PersistTimeout, "RETRY_AFTER": c.RetryAfter, "OUTBOX_DELAY": c.OutboxDelay,
		"PUBLISH_TIMEOUT": c.PublishTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%v: want > 0", name, d))
		}
	}
	if c.PublishGrace < 0 || c.SweepInterval < 0 || c.PublishBatchDelay < 0 {
		errs = append(errs, errors.New("PUBLISH_GRACE, SWEEP_INTERVAL and PUBLISH_BATCH_DELAY must be >= 0"))
	}
	if c.SweepBatch < 1 || c.SweepBatch > 500 {
		errs = append(errs, fmt.Errorf("SWEEP_BATCH=%d: want 1..500", c.SweepBatch))
	}
	if c.SweepMaxBatches < 1 {
		errs = append(errs, fmt.Errorf("SWEEP_MAX_BATCHES=%d: want >= 1", c.SweepMaxBatches))
	}
	return errors.Join(errs...)
}
