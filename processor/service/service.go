// Package service builds the processor service: New(ctx, cfg, deps) returns a Service with
// Handler and Close, and Run (app.Runner over New) is what the command, devstack and the tests
// run.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry"
	"github.com/leadpipe/leadpipe/processor/internal/breaker"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
	"github.com/leadpipe/leadpipe/processor/internal/crm/hubspot"
	"github.com/leadpipe/leadpipe/processor/internal/crm/salesforce"
	"github.com/leadpipe/leadpipe/processor/internal/crm/webhook"
	"github.com/leadpipe/leadpipe/processor/internal/dlq"
	"github.com/leadpipe/leadpipe/processor/internal/enrich"
	"github.com/leadpipe/leadpipe/processor/internal/identity"
	"github.com/leadpipe/leadpipe/processor/internal/push"
	"github.com/leadpipe/leadpipe/processor/internal/pushauth"
	"github.com/leadpipe/leadpipe/processor/internal/ratelimit"
	"github.com/leadpipe/leadpipe/processor/internal/retry"
)

// Run serves the processor until ctx ends, with configuration from env, on srv (nil: on
// PORT). It is app.Runner over New: the command, devstack and the tests all run it.
func Run(ctx context.Context, env config.Lookuper, srv *server.Server) error {
	return run(ctx, env, srv)
}

var run = app.Runner("processor", func(ctx context.Context, cfg *Config, d app.Deps) (app.Service, error) {
	return New(ctx, cfg, d)
})

// Service is the built processor: the push endpoint and health, and the drain of parked
// events running beside them.
type Service struct {
	handler http.Handler
	closers []func()
}

var _ app.Service = (*Service)(nil)

// New builds the processor on deps (Store and PubSub; Storage for the fetched-lead archive of
// Meta enrichment; MeterProvider for the breaker gauge).
// ctx carries the logger; breaker transitions are written with its values.
func New(ctx context.Context, cfg *Config, deps app.Deps) (_ *Service, err error) {
	if cfg.InstanceID == "" {
		cfg.InstanceID = instanceID()
	}
	s := &Service{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	st := deps.Store
	pub := dlq.New(deps.PubSub, cfg.GCP.DLQTopic)
	s.closers = append(s.closers, pub.Stop)
	hasher, err := pii.NewHasher([]byte(cfg.PIIHashKey))
	if err != nil {
		return nil, fmt.Errorf("PII_HASH_KEY: %w", err)
	}
	cfg.hasher = hasher
	var raw *archive.Archive // fetched Meta leads, beside the raw webhooks
	if cfg.MetaAccessToken != "" && deps.Storage != nil {
		raw = archive.New(deps.Storage, cfg.GCP.Bucket())
	}

	ids, err := identitySteps(cfg, st)
	if err != nil {
		return nil, err
	}
	drain, closeDrainOutbox := newDrainer(cfg, deps)
	s.closers = append(s.closers, closeDrainOutbox)
	h := &push.Handler{
		Store: st,
		Lease: store.LeasePolicy{Owner: cfg.InstanceID, TTL: cfg.LeaseDuration, MaxAttempts: cfg.MaxAttempts,
			Retention: cfg.EventRetention},
		DLQ:        pub,
		Routes:     routes(ctx, cfg, st, raw, ids, &s.closers, drain.Kick),
		Budget:     cfg.ProcessBudget,
		Metrics:    push.NewMetrics(),
		ParkOnOpen: cfg.ParkOnOpenCircuit,
	}
	stopDrain, err := startDrain(ctx, cfg, drain, h.Routes)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, stopDrain)
	var breakers []*breaker.Breaker
	for _, r := range h.Routes {
		if b, ok := r.Gate.(*breaker.Breaker); ok {
			breakers = append(breakers, b)
		}
	}
	mp := deps.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	reg, err := breaker.Observe(mp.Meter(crm.MeterName), breakers...)
	if err != nil {
		return nil, fmt.Errorf("breaker gauge: %w", err)
	}
	s.closers = append(s.closers, func() { _ = reg.Unregister() })
	var pushHandler http.Handler = h
	if cfg.PushAuth == "oidc" {
		pushHandler = pushauth.Middleware(pushauth.Config{Audience: cfg.PushAudience, ServiceAccount: cfg.PushServiceAccount})(h)
	}
	log := logging.FromContext(ctx)
	mux := http.NewServeMux()
	mux.Handle("POST /pubsub/push", withLogger(log, pushHandler))
	app.Health(mux, nil)
	log.InfoContext(ctx, "processor built", "instance", cfg.InstanceID, "crms", len(h.Routes))
	s.handler = telemetry.Handler(mux)
	return s, nil
}

// Handler serves POST /pubsub/push, /healthz and /readyz.
func (s *Service) Handler() http.Handler { return s.handler }

// Close stops the drain of parked events, flushes the publishers and unregisters the breaker
// gauge.
func (s *Service) Close() error {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	return nil
}

// routes builds each configured CRM's chain: retry(enrich(identity(rate limit(breaker(adapter)))))
// (identity when ids is not nil). The limiter sits outside the breaker so that a long wait for a
// token never counts as a CRM failure; identity runs after enrichment, which gives thin events
// their email and phone.
//
// onClosed (may be nil) is told the CRM's name whenever its circuit closes (the drain of
// parked events).
func routes(ctx context.Context, cfg *Config, st *store.Store, raw *archive.Archive, ids func(string) identity.Config, closers *[]func(), onClosed func(string)) map[string]push.Route {
	// One client per CRM: each request is a client span and is measured with the CRM's name.
	client := func(name string, routes []string) *http.Client {
		return &http.Client{Timeout: 15 * time.Second, Transport: crm.Transport(name, nil, routes...)}
	}
	adapters := map[string]crm.Upserter{}
	hasher := cfg.hasher
	if cfg.SalesforceInstanceURL != "" {
		adapters["salesforce"] = salesforce.New(salesforce.Config{InstanceURL: cfg.SalesforceInstanceURL, TokenURL: cfg.SalesforceTokenURL,
			ClientID: cfg.SalesforceClientID, ClientSecret: cfg.SalesforceClientSecret, APIVersion: cfg.SalesforceAPIVersion, HTTPClient: client("salesforce", salesforce.Routes), Hasher: hasher})
	}
	if cfg.HubSpotBaseURL != "" {
		adapters["hubspot"] = hubspot.New(hubspot.Config{BaseURL: cfg.HubSpotBaseURL, AccessToken: cfg.HubSpotAccessToken, HTTPClient: client("hubspot", hubspot.Routes), Hasher: hasher})
	}
	if cfg.WebhookCRMURL != "" {
		adapters["webhook"] = webhook.New(webhook.Config{URL: cfg.WebhookCRMURL, HTTPClient: client("webhook", nil)})
	}
	var meta *enrich.Meta
	if cfg.MetaAccessToken != "" {
		meta = &enrich.Meta{BaseURL: cfg.MetaGraphURL, Version: cfg.MetaGraphVersion, AccessToken: cfg.MetaAccessToken,
			HTTPClient: &http.Client{Timeout: 15 * time.Second,
				Transport: telemetry.ClientTransport(nil, telemetry.Client{Name: "meta graph", Routes: enrich.Routes})}}
		if raw != nil {
			meta.Archive = raw
		}
	}
	policy := retry.Default
	policy.Spacing = cfg.RetrySpacing
	out := map[string]push.Route{}
	for name, a := range adapters {
		b := breaker.New(name, cfg.BreakerThreshold, cfg.BreakerCooldown, onBreakerChange(name, healthWriter(ctx, st, name), onClosed))
		mws := []crm.Middleware{retry.Middleware(policy), enrich.Middleware(meta)}
		route := push.Route{Gate: b}
		if ids != nil {
			ic := ids(name)
			mws = append(mws, identity.Middleware(ic))
			route.Contact = identity.Prerequest(ic)
		}
		lim := newLimiter(ctx, cfg, st, name, a)
		*closers = append(*closers, lim.Close)
		mws = append(mws, ratelimit.Middleware(lim), breaker.Middleware(b))
		route.Upserter = crm.Chain(a, mws...)
		out[name] = route
	}
	return out
}

// healthWriter records breaker transitions in crm_health/{crm} for the replayer's auto-replay.
func healthWriter(ctx context.Context, st *store.Store, name string) func(store.CRMState) {
	return func(state store.CRMState) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		now := st.Now()
		h := store.CRMHealth{CRM: name, State: state, ChangedAt: now}
		if state == store.CRMClosed {
			h.LastSuccessAt = now
		} else {
			h.LastFailureAt = now
		}
		log := logging.FromContext(ctx)
		log.WarnContext(wctx, "crm circuit changed", "crm", name, "circuit", state)
		if err := st.SetCRMHealth(wctx, h); err != nil {
			log.ErrorContext(wctx, "crm health not written", "crm", name, "error", err.Error())
		}
	}
}

// withLogger puts the service's logger into each request's context.
func withLogger(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(logging.WithLogger(r.Context(), log)))
	})
}

func instanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}
