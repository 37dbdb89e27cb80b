package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/replayer/internal/reconcile"
)

// Auth modes.
const (
	AuthOIDC   = "oidc"
	AuthStatic = "static"
)

// Config is the replayer's configuration, read from the environment (see README.md).
type Config struct {
	Server    config.Server
	GCP       config.GCP
	Telemetry config.Telemetry
	Logging   config.Logging

	// AuthMode is oidc (Google ID tokens; default) or static (REPLAYER_TOKENS).
	AuthMode string `env:"AUTH_MODE, default=oidc"`
	// AuthAudience is the audience ID tokens must carry (oidc; required there): the service URL.
	AuthAudience string `env:"AUTH_AUDIENCE"`
	// AllowedPrincipals are the emails allowed to call the API (oidc; required there).
	AllowedPrincipals []string `env:"AUTH_ALLOWED_PRINCIPALS"`
	// Tokens is "token1=alice,token2=bob" (static; required there).
	Tokens string `env:"REPLAYER_TOKENS"`
	// RawReaders are the actors allowed to read raw payloads and normalized events.
	RawReaders []string `env:"REPLAYER_RAW_READERS"`
	// SessionKey signs triage page session cookies (at least 32 bytes). Default: random per
	// process (sessions then do not survive a restart or span instances).
	SessionKey string `env:"SESSION_KEY"`
	// SessionTTL is the triage page session lifetime. Default 8h.
	SessionTTL time.Duration `env:"SESSION_TTL, default=8h"`

	// PushAuth is oidc (default) or none (local emulator only) for POST /pubsub/dlq.
	PushAuth string `env:"PUSH_AUTH, default=oidc"`
	// PushAudience is the audience of push ID tokens (oidc; required there).
	PushAudience string `env:"PUSH_AUDIENCE"`
	// PushServiceAccounts are the push subscription's service account emails (oidc; required).
	PushServiceAccounts []string `env:"PUSH_SERVICE_ACCOUNTS"`

	// ReplayRatePerSec bounds replays per second of bulk jobs and auto-replay. Default 10.
	ReplayRatePerSec float64 `env:"REPLAY_RATE_PER_SEC, default=10"`
	// BulkMax caps one bulk job. Default 10000.
	BulkMax int `env:"BULK_MAX, default=10000"`
	// ReplayOutboxGrace is how long after a replay the outbox sweep may republish it if the
	// replayer's own publish failed. Default 30s.
	ReplayOutboxGrace time.Duration `env:"REPLAY_OUTBOX_GRACE, default=30s"`
	// AutoReplayInterval runs auto-replay on a ticker; 0 (default) leaves it to Cloud Scheduler
	// calling POST /internal/auto-replay.
	AutoReplayInterval time.Duration `env:"AUTO_REPLAY_INTERVAL, default=0"`
	// AutoReplayCooldown: with no CRM health document, records this old are auto-replayed. Default 5m.
	AutoReplayCooldown time.Duration `env:"AUTO_REPLAY_COOLDOWN, default=5m"`
	// AutoReplayMaxReplays leaves events replayed this often to operators. Default 3.
	AutoReplayMaxReplays int `env:"AUTO_REPLAY_MAX_REPLAYS, default=3"`
	// SourcesFile is the sources YAML (same as ingest's) for renormalizing replays. Optional:
	// without it renormalize requests fail with 422.
	SourcesFile string `env:"SOURCES_FILE"`
	// PIIHashKey keys the hashes of the "find a lead" index (emails, phones, CRM external ids;
	// the same key as ingest's, at least 16 bytes). Optional: without it the search by those
	// is off and the page and API say so.
	PIIHashKey string `env:"PII_HASH_KEY"`

	Reconcile ReconcileConfig
}

// Base is the shared part of the configuration.
func (c *Config) Base() config.Base {
	return config.Base{Server: c.Server, GCP: c.GCP, Telemetry: c.Telemetry, Logging: c.Logging}
}

// ReconcileConfig configures reconcile with the source (POST /v1/reconcile, POST
// /internal/reconcile). Reconcile needs META_ACCESS_TOKEN and SOURCES_FILE; without them its
// endpoints answer 422.
type ReconcileConfig struct {
	// MetaGraphURL is the Graph API base URL. Default https://graph.facebook.com.
	MetaGraphURL string `env:"META_GRAPH_URL, default=https://graph.facebook.com"`
	// MetaGraphVersion is the Graph API version. Default v19.0.
	MetaGraphVersion string `env:"META_GRAPH_VERSION, default=v19.0"`
	// MetaAccessToken reads the forms' leads (a page or system user token with leads_retrieval).
	// Optional; a secret reference in production.
	MetaAccessToken string `env:"META_ACCESS_TOKEN"`
	// Forms are the forms POST /internal/reconcile covers: "source:form_id[:page_id]", comma
	// separated. Default none.
	Forms []string `env:"RECONCILE_FORMS"`
	// Lookback is the window of a scheduled run: leads created in the last Lookback. Default 2h
	// (an hourly schedule then looks at every lead twice).
	Lookback time.Duration `env:"RECONCILE_LOOKBACK, default=2h"`
	// MaxLeads bounds the leads one run looks at. Default 10000.
	MaxLeads int `env:"RECONCILE_MAX_LEADS, default=10000"`
	// PageSize is the Graph listing page size (1..100). Default 100.
	PageSize int `env:"RECONCILE_PAGE_SIZE, default=100"`
}

// Validate checks the combinations.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.AuthMode {
	case AuthOIDC:
		if c.AuthAudience == "" || len(c.AllowedPrincipals) == 0 {
			errs = append(errs, errors.New("AUTH_MODE=oidc needs AUTH_AUDIENCE and AUTH_ALLOWED_PRINCIPALS"))
		}
	case AuthStatic:
		if c.Tokens == "" {
			errs = append(errs, errors.New("AUTH_MODE=static needs REPLAYER_TOKENS"))
		}
	default:
		errs = append(errs, fmt.Errorf("AUTH_MODE=%q: want oidc or static", c.AuthMode))
	}
	switch c.PushAuth {
	case "oidc":
		if c.PushAudience == "" || len(c.PushServiceAccounts) == 0 {
			errs = append(errs, errors.New("PUSH_AUTH=oidc needs PUSH_AUDIENCE and PUSH_SERVICE_ACCOUNTS"))
		}
	case "none":
	default:
		errs = append(errs, fmt.Errorf("PUSH_AUTH=%q: want oidc or none", c.PushAuth))
	}
	if c.SessionKey != "" && len(c.SessionKey) < 32 {
		errs = append(errs, errors.New("SESSION_KEY must be at least 32 bytes"))
	}
	if c.ReplayRatePerSec <= 0 {
		errs = append(errs, errors.New("REPLAY_RATE_PER_SEC must be > 0"))
	}
	if _, err := reconcile.ParseForms(c.Reconcile.Forms); err != nil {
		errs = append(errs, fmt.Errorf("RECONCILE_FORMS: %w", err))
	}
	if c.Reconcile.Lookback <= 0 || c.Reconcile.MaxLeads <= 0 || c.Reconcile.PageSize < 1 || c.Reconcile.PageSize > 100 {
		errs = append(errs, errors.New("RECONCILE_LOOKBACK and RECONCILE_MAX_LEADS must be > 0, RECONCILE_PAGE_SIZE 1..100"))
	}
	if c.BulkMax <= 0 {
		errs = append(errs, errors.New("BULK_MAX must be > 0"))
	}
	return errors.Join(errs...)
}
