package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/leadpipe/leadpipe/common/config"
)

// Config is the processor's configuration, read from the environment (see README.md).
type Config struct {
	Server    config.Server
	GCP       config.GCP
	Telemetry config.Telemetry
	Logging   config.Logging

	// PushAuth is "oidc" (verify Pub/Sub's push token; default) or "none" (local stacks only).
	PushAuth string `env:"PUSH_AUTH, default=oidc"`
	// PushAudience is the audience of the push token; required with oidc.
	PushAudience string `env:"PUSH_AUDIENCE"`
	// PushServiceAccount is the email the push token must carry; required with oidc.
	PushServiceAccount string `env:"PUSH_SERVICE_ACCOUNT"`

	// Salesforce: the adapter is enabled when SALESFORCE_INSTANCE_URL is set; then the token
	// URL, client id and secret are required. API version default v61.0.
	SalesforceInstanceURL  string `env:"SALESFORCE_INSTANCE_URL"`
	SalesforceTokenURL     string `env:"SALESFORCE_TOKEN_URL"`
	SalesforceClientID     string `env:"SALESFORCE_CLIENT_ID"`
	SalesforceClientSecret string `env:"SALESFORCE_CLIENT_SECRET"`
	SalesforceAPIVersion   string `env:"SALESFORCE_API_VERSION, default=v61.0"`
	// HubSpot: enabled when HUBSPOT_BASE_URL is set; the token is then required.
	HubSpotBaseURL     string `env:"HUBSPOT_BASE_URL"`
	HubSpotAccessToken string `env:"HUBSPOT_ACCESS_TOKEN"`
	// WebhookCRMURL enables the generic webhook adapter.
	WebhookCRMURL string `env:"WEBHOOK_CRM_URL"`
	// Meta Graph API for enriching thin Meta Lead Ads events; enabled when META_ACCESS_TOKEN
	// is set. Default URL https://graph.facebook.com, version v19.0.
	MetaGraphURL     string `env:"META_GRAPH_URL, default=https://graph.facebook.com"`
	MetaGraphVersion string `env:"META_GRAPH_VERSION, default=v19.0"`
	MetaAccessToken  string `env:"META_ACCESS_TOKEN"`

	// CRMRatePerSec is each CRM's send rate ceiling (AIMD works below it). Default 10.
	CRMRatePerSec float64 `env:"CRM_RATE_PER_SEC, default=10"`
	// RateMaxWait bounds the in-request wait for a send token. Default 10s.
	RateMaxWait time.Duration `env:"RATE_MAX_WAIT, default=10s"`
	// BreakerThreshold consecutive retryable CRM failures open the circuit. Default 5.
	BreakerThreshold int `env:"BREAKER_THRESHOLD, default=5"`
	// BreakerCooldown is how long an open circuit refuses calls before a probe. Default 15s.
	BreakerCooldown time.Duration `env:"BREAKER_COOLDOWN, default=15s"`
	// RetrySpacing is the wait between the spaced in-request tries. Default 1s.
	RetrySpacing time.Duration `env:"RETRY_SPACING, default=1s"`
	// MaxAttempts is the processor's quarantine threshold on its own attempt counter (relative
	// to the last replay). Default 8, below the subscription's max_delivery_attempts (10).
	MaxAttempts int `env:"MAX_ATTEMPTS, default=8"`
	// LeaseDuration is how long a claim holds an event. Default 45s (> ProcessBudget).
	LeaseDuration time.Duration `env:"LEASE_DURATION, default=45s"`
	// ProcessBudget bounds one push request's work, under the ack deadline (60 s). Default 25s.
	ProcessBudget time.Duration `env:"PROCESS_BUDGET, default=25s"`
	// EventRetention is how long a succeeded event (and its attempt history) is kept: it sets
	// expire_at, which Firestore's TTL policy (infra/firestore.tf) deletes after. It is also the
	// idempotency window: a delivery older than this after success is processed again (the CRM
	// write is an upsert, so that updates rather than duplicates). Default 2160h (90 days);
	// 0 keeps events forever.
	EventRetention time.Duration `env:"EVENT_RETENTION, default=2160h"`
	// PIIHashKey keys the hashes of the identity index (common/pii; the same key on every
	// service). With it the identity step runs: one contact across sources per CRM, and field
	// trust and freshness. Unset: events are written as they come.
	PIIHashKey string `env:"PII_HASH_KEY"`
	// IdentityGmailCanonical folds Gmail dots and +tags when matching emails. Default false.
	IdentityGmailCanonical bool `env:"IDENTITY_GMAIL_CANONICAL, default=false"`
	// SourcesFile is the sources file (ingest's) whose per-field-group trust levels the
	// identity step applies; unset trusts every source "standard".
	SourcesFile string `env:"SOURCES_FILE"`
	// InstanceID names this instance as lease owner. Default: host name plus a random suffix.
	InstanceID string `env:"INSTANCE_ID"`
}

// Base is the shared part of the configuration.
func (c *Config) Base() config.Base {
	return config.Base{Server: c.Server, GCP: c.GCP, Telemetry: c.Telemetry, Logging: c.Logging}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.PushAuth {
	case "oidc":
		if c.PushAudience == "" || c.PushServiceAccount == "" {
			errs = append(errs, errors.New("PUSH_AUTH=oidc needs PUSH_AUDIENCE and PUSH_SERVICE_ACCOUNT"))
		}
	case "none":
	default:
		errs = append(errs, fmt.Errorf("PUSH_AUTH=%q: want oidc or none", c.PushAuth))
	}
	if c.SalesforceInstanceURL != "" && (c.SalesforceTokenURL == "" || c.SalesforceClientID == "" || c.SalesforceClientSecret == "") {
		errs = append(errs, errors.New("SALESFORCE_INSTANCE_URL needs SALESFORCE_TOKEN_URL, SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET"))
	}
	if c.HubSpotBaseURL != "" && c.HubSpotAccessToken == "" {
		errs = append(errs, errors.New("HUBSPOT_BASE_URL needs HUBSPOT_ACCESS_TOKEN"))
	}
	if c.SalesforceInstanceURL == "" && c.HubSpotBaseURL == "" && c.WebhookCRMURL == "" {
		errs = append(errs, errors.New("no CRM configured: set SALESFORCE_INSTANCE_URL, HUBSPOT_BASE_URL or WEBHOOK_CRM_URL"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MAX_ATTEMPTS=%d: want at least 1", c.MaxAttempts))
	}
	if c.CRMRatePerSec <= 0 {
		errs = append(errs, fmt.Errorf("CRM_RATE_PER_SEC=%v: want > 0", c.CRMRatePerSec))
	}
	if c.LeaseDuration <= 0 || c.ProcessBudget <= 0 {
		errs = append(errs, errors.New("LEASE_DURATION and PROCESS_BUDGET must be positive"))
	}
	return errors.Join(errs...)
}
