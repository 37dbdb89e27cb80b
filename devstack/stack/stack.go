// Package stack runs the whole pipeline on one machine: the Firestore, Pub/Sub and GCS
// emulators, the fake CRM, and the ingest, processor and replayer services, all in one process,
// wired and provisioned as infra/ wires them in the cloud. `devstack up` and the end-to-end
// tests use it.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/telemetry"
	devconfig "github.com/leadpipe/leadpipe/devstack/config"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
	"github.com/leadpipe/leadpipe/devstack/gcsemu"
	"github.com/leadpipe/leadpipe/devstack/provision"
	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
	ingest "github.com/leadpipe/leadpipe/ingest/service"
	processor "github.com/leadpipe/leadpipe/processor/service"
	replayer "github.com/leadpipe/leadpipe/replayer/service"
)

// Ports holds the listen ports; 0 picks a free one.
type Ports struct {
	Firestore, PubSub, GCS, Ingest, Processor, Replayer, CRM int
}

// DefaultPorts are the documented defaults.
var DefaultPorts = Ports{Firestore: 8080, PubSub: 8085, GCS: 4443, Ingest: 8081, Processor: 8082, Replayer: 8083, CRM: 8084}

// Options configure Up and Emulators.
type Options struct {
	ProjectID string // default "leadpipe-local"
	Host      string // default "127.0.0.1"
	Ports     Ports
	// Logs receives the services' and emulators' JSON log lines (each with a "service" field).
	// Default os.Stderr.
	Logs io.Writer
	// LogLevel for the services. Default info.
	LogLevel slog.Level
	// Env overrides service configuration (e.g. SALESFORCE_INSTANCE_URL to use a real sandbox).
	// Values from the process environment with the same names also override the defaults.
	Env map[string]string
	// Topology overrides for the subscriptions (tests use short backoffs).
	Topology provision.Topology
	// PushTimeout for the Pub/Sub emulator (0: the ack deadline).
	PushTimeout time.Duration
	// MaxPushBackoff for the Pub/Sub emulator. Default 10 s locally.
	MaxPushBackoff time.Duration
}

// Stack is a running local pipeline.
type Stack struct {
	Firestore *firestoreemu.Server
	PubSub    *pubsubemu.Server
	GCS       *gcsemu.Server
	CRM       *fakecrm.Server

	ProjectID                             string
	IngestURL, ProcessorURL, ReplayerURL  string
	DemoSource, DemoSecret, ReplayerToken string
	// SourceSecrets are the example sources' secrets (name, value), exported for senders.
	SourceSecrets [][2]string

	cancel context.CancelFunc
	// stopTelemetry unpins and flushes the process-wide telemetry providers.
	stopTelemetry func()
	wg            sync.WaitGroup
	mu            sync.Mutex
	errs          []error
	tmpDir        string
}

func (o *Options) defaults() {
	if o.ProjectID == "" {
		o.ProjectID = "leadpipe-local"
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Logs == nil {
		o.Logs = os.Stderr
	}
	if o.MaxPushBackoff == 0 {
		o.MaxPushBackoff = 10 * time.Second
	}
}

func (o *Options) addr(port int) string { return net.JoinHostPort(o.Host, strconv.Itoa(port)) }

func (o *Options) logger(service string) *slog.Logger {
	return logging.New(o.Logs, logging.Options{Level: o.LogLevel, ProjectID: o.ProjectID, Service: service})
}

// Emulators starts only the Firestore, Pub/Sub and GCS emulators and points this process's
// Google clients at them.
func Emulators(ctx context.Context, o Options) (*Stack, error) {
	o.defaults()
	s := &Stack{ProjectID: o.ProjectID}
	var err error
	if s.Firestore, err = firestoreemu.Start(firestoreemu.Options{Addr: o.addr(o.Ports.Firestore), Logger: o.logger("firestore-emulator")}); err != nil {
		return nil, err
	}
	if s.PubSub, err = pubsubemu.Start(ctx, pubsubemu.Options{
		Addr: o.addr(o.Ports.PubSub), Logger: o.logger("pubsub-emulator"),
		PushTimeout: o.PushTimeout, MaxPushBackoff: o.MaxPushBackoff,
	}); err != nil {
		s.Close()
		return nil, err
	}
	if s.GCS, err = gcsemu.Start(gcsemu.Options{Addr: o.addr(o.Ports.GCS), Logger: o.logger("gcs-emulator"), Buckets: []string{s.Bucket()}}); err != nil {
		s.Close()
		return nil, err
	}
	for k, v := range s.emulatorVars() {
		if err := os.Setenv(k, v); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Bucket is the raw payload bucket.
func (s *Stack) Bucket() string { return s.ProjectID + "-leadpipe-raw" }

func (s *Stack) emulatorVars() map[string]string {
	return map[string]string{
		"GOOGLE_CLOUD_PROJECT":    s.ProjectID,
		"FIRESTORE_EMULATOR_HOST": s.Firestore.Addr(),
		"PUBSUB_EMULATOR_HOST":    s.PubSub.Addr(),
		"STORAGE_EMULATOR_HOST":   s.GCS.URL(),
	}
}

// Up starts the emulators, the fake CRM and the three services, provisions the topology and
// returns once everything serves. Close (or cancelling ctx) stops it all.
func Up(ctx context.Context, o Options) (*Stack, error) {
	o.defaults()
	s, err := Emulators(ctx, o)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Stack, error) { s.Close(); return nil, err }
	if s.CRM, err = fakecrm.Start(fakecrm.Options{Addr: o.addr(o.Ports.CRM)}); err != nil {
		return fail(err)
	}
	ingestSrv, err := server.New(o.addr(o.Ports.Ingest))
	if err != nil {
		return fail(err)
	}
	procSrv, err := server.New(o.addr(o.Ports.Processor))
	if err != nil {
		return fail(err)
	}
	replSrv, err := server.New(o.addr(o.Ports.Replayer))
	if err != nil {
		return fail(err)
	}
	s.IngestURL, s.ProcessorURL, s.ReplayerURL = ingestSrv.URL(), procSrv.URL(), replSrv.URL()

	s.tmpDir, err = os.MkdirTemp("", "devstack-")
	if err != nil {
		return fail(err)
	}
	sourcesFile := filepath.Join(s.tmpDir, "sources.yaml")
	if err := os.WriteFile(sourcesFile, devconfig.SourcesYAML, 0o600); err != nil {
		return fail(err)
	}
	s.DemoSource = "demo"
	s.DemoSecret = "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(24))
	s.ReplayerToken = "lp_" + hex.EncodeToString(randomBytes(16))

	env := s.emulatorVars()
	env["RAW_BUCKET"] = s.Bucket()
	env["LOG_LEVEL"] = o.LogLevel.String()
	env["SOURCES_FILE"] = sourcesFile
	env["DEMO_WEBHOOK_SECRET"] = s.DemoSecret
	env["SWEEP_INTERVAL"] = "5s"
	env["PUSH_AUTH"] = "none"
	env["PII_HASH_KEY"] = hex.EncodeToString(randomBytes(32))
	crm := s.CRM.URL()
	for k, v := range map[string]string{
		"SALESFORCE_INSTANCE_URL":  crm,
		"SALESFORCE_TOKEN_URL":     crm + "/services/oauth2/token",
		"SALESFORCE_CLIENT_ID":     demoClientID,
		"SALESFORCE_CLIENT_SECRET": demoClientSecret,
		"SALESFORCE_API_VERSION":   "v61.0",
		"HUBSPOT_BASE_URL":         crm,
		"HUBSPOT_ACCESS_TOKEN":     demoHubSpotToken,
		"WEBHOOK_CRM_URL":          crm + "/webhook",
		"META_GRAPH_URL":           crm,
		"META_ACCESS_TOKEN":        "demo-meta-token",
		"AUTH_MODE":                "static",
		"REPLAYER_TOKENS":          s.ReplayerToken + "=local-operator",
		"REPLAYER_RAW_READERS":     "local-operator",
		"AUTO_REPLAY_INTERVAL":     "30s",
	} {
		env[k] = v
	}
	// A user's own CRM settings win over the fake CRM, then explicit options win over both.
	for _, k := range []string{"SALESFORCE_INSTANCE_URL", "SALESFORCE_TOKEN_URL", "SALESFORCE_CLIENT_ID",
		"SALESFORCE_CLIENT_SECRET", "SALESFORCE_API_VERSION", "HUBSPOT_BASE_URL", "HUBSPOT_ACCESS_TOKEN", "WEBHOOK_CRM_URL"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range o.Env {
		env[k] = v
	}
	// Sources read their secrets by reference (env:NAME in sources.yaml) from the services'
	// configuration environment. The example sources get generated secrets unless the user
	// brought their own.
	for _, name := range exampleSecrets {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			v = hex.EncodeToString(randomBytes(16))
		}
		env[name] = v
		s.SourceSecrets = append(s.SourceSecrets, [2]string{name, v})
	}

	topo := o.Topology
	topo.ProjectID = s.ProjectID
	topo.ProcessorURL, topo.ReplayerURL = s.ProcessorURL, s.ReplayerURL
	if err := s.provision(ctx, topo); err != nil {
		return fail(err)
	}

	// The services share this process, so they share one set of telemetry providers: set up
	// once here (OTEL_EXPORTER from the environment, default none) and pinned, so one trace
	// follows a lead from ingest through the processor to the replayer.
	if s.stopTelemetry, err = setupTelemetry(ctx, s.ProjectID); err != nil {
		return fail(err)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	lookup := config.MapLookuper(env)
	s.run(runCtx, o, "ingest", func(ctx context.Context) error { return ingest.Run(ctx, lookup, ingestSrv) })
	s.run(runCtx, o, "processor", func(ctx context.Context) error { return processor.Run(ctx, lookup, procSrv) })
	s.run(runCtx, o, "replayer", func(ctx context.Context) error { return replayer.Run(ctx, lookup, replSrv) })
	if err := s.waitReady(ctx); err != nil {
		return fail(err)
	}
	return s, nil
}

func (s *Stack) run(ctx context.Context, o Options, name string, fn func(context.Context) error) {
	ctx = logging.WithLogger(ctx, o.logger(name))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(ctx); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.mu.Unlock()
			logging.FromContext(ctx).Error("service stopped", "error", err.Error())
		}
	}()
}

// Err returns the errors of services that stopped on their own.
func (s *Stack) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Exports are the `export NAME=VALUE` pairs devstack prints, in order.
func (s *Stack) Exports() [][2]string {
	out := [][2]string{
		{"GOOGLE_CLOUD_PROJECT", s.ProjectID},
		{"FIRESTORE_EMULATOR_HOST", s.Firestore.Addr()},
		{"PUBSUB_EMULATOR_HOST", s.PubSub.Addr()},
		{"STORAGE_EMULATOR_HOST", s.GCS.URL()},
	}
	if s.IngestURL != "" {
		out = append(out,
			[2]string{"INGEST_URL", s.IngestURL},
			[2]string{"PROCESSOR_URL", s.ProcessorURL},
			[2]string{"REPLAYER_URL", s.ReplayerURL},
			[2]string{"CRM_URL", s.CRM.URL()},
			[2]string{"DEMO_SOURCE", s.DemoSource},
			[2]string{"DEMO_WEBHOOK_SECRET", s.DemoSecret},
			[2]string{"REPLAYER_TOKEN", s.ReplayerToken},
		)
		out = append(out, s.SourceSecrets...)
	}
	return out
}

// Close stops the services (gracefully), then the fake CRM and the emulators.
func (s *Stack) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.stopTelemetry != nil {
		s.stopTelemetry()
	}
	if s.CRM != nil {
		_ = s.CRM.Close()
	}
	if s.PubSub != nil {
		_ = s.PubSub.Close()
	}
	if s.GCS != nil {
		_ = s.GCS.Close()
	}
	if s.Firestore != nil {
		_ = s.Firestore.Close()
	}
	if s.tmpDir != "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// exampleSecrets are the secret references of the example sources in devstack/config/sources.yaml.
var exampleSecrets = []string{"META_APP_SECRET", "META_VERIFY_TOKEN", "TYPEFORM_WEBHOOK_SECRET", "PARTNER_WEBHOOK_SECRET"}

// Demo credentials the fake CRM accepts; devstack wires them into the processor.
const (
	demoClientID     = "leadpipe-local"
	demoClientSecret = "leadpipe-local-secret"
	demoHubSpotToken = "pat-local-demo"
)

func setupTelemetry(ctx context.Context, projectID string) (func(), error) {
	cfg := config.Telemetry{Exporter: "none", SampleRatio: 1}
	if v := os.Getenv("OTEL_EXPORTER"); v != "" {
		cfg.Exporter = v
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	shutdown, err := telemetry.Setup(ctx, cfg, "devstack", projectID)
	if err != nil {
		return nil, err
	}
	unpin := telemetry.Pin(otel.GetTracerProvider(), otel.GetMeterProvider())
	return func() {
		unpin()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	}, nil
}
