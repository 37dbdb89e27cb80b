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
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/telemetry"
	"github.com/leadpipe/leadpipe/devstack/emulators"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
	"github.com/leadpipe/leadpipe/devstack/gcsemu"
	"github.com/leadpipe/leadpipe/devstack/procs"
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
	// Emulators selects embedded (default), Google's (google) or already running (external)
	// emulators; see emulators.go.
	Emulators emulators.Mode
	ProjectID string // default "leadpipe-local"
	Host      string // default "127.0.0.1"
	Ports     Ports
	// Logs receives the services' and emulators' JSON log lines (each with a "service" field).
	// Default os.Stderr.
	Logs io.Writer
	// LogLevel for the services. Default info.
	LogLevel slog.Level
	// LogFormat is logging.FormatJSON (default) or logging.FormatText.
	LogFormat string
	// Env overrides service configuration (e.g. SALESFORCE_INSTANCE_URL to use a real sandbox).
	// Values from the process environment with the same names also override the defaults.
	Env map[string]string
	// Processes runs ingest, the processor and the replayer as their own OS processes (the
	// cmd binaries, built into BinDir) instead of goroutines of this process; see procmode.go.
	Processes bool
	// Processors is the number of processor processes in process mode (behind a round-robin
	// proxy on the processor port). Default 1.
	Processors int
	// LogDir receives one log file per service process. Default .devstack/logs.
	LogDir string
	// BinDir is where the service binaries are built. Default the user cache directory's
	// leadpipe-devstack/bin.
	BinDir string
	// Topology overrides for the subscriptions (tests use short backoffs).
	Topology provision.Topology
	// PushTimeout for the Pub/Sub emulator (0: the ack deadline).
	PushTimeout time.Duration
	// MaxPushBackoff for the Pub/Sub emulator. Default 10 s locally.
	MaxPushBackoff time.Duration
	// SourcesFile is the user's own sources file (ingest's SOURCES_FILE format). Default: the
	// shipped devstack/config/sources.yaml.
	SourcesFile string
	// Lookup reads the user's environment: the external emulators' variables and the
	// services' own variables passed through to them (env.go). Default os.LookupEnv.
	Lookup func(string) (string, bool)
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

	// Ingest, Processors and Replayer are the service processes in process mode (nil
	// otherwise). ProcessorURL is then the round-robin proxy in front of Processors.
	Ingest     *procs.Service
	Processors []*procs.Service
	Replayer   *procs.Service

	cancel context.CancelFunc
	// stopTelemetry unpins and flushes the process-wide telemetry providers.
	stopTelemetry func()
	wg            sync.WaitGroup
	mu            sync.Mutex
	errs          []error
	tmpDir        string
	emu           *emulators.Set
	serviceEnv    map[string]string
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
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
}

func (o *Options) addr(port int) string { return net.JoinHostPort(o.Host, strconv.Itoa(port)) }

func (o *Options) logger(service string) *slog.Logger {
	return logging.New(o.Logs, logging.Options{Level: o.LogLevel, ProjectID: o.ProjectID, Service: service, Format: o.LogFormat})
}

// Bucket is the raw payload bucket.
func (s *Stack) Bucket() string { return s.ProjectID + "-leadpipe-raw" }

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
	// In process mode procSrv serves the round-robin proxy in front of the processor processes,
	// and ingest and the replayer get their ports reserved here and bound by their processes.
	var ingestSrv, replSrv *server.Server
	procSrv, err := server.New(o.addr(o.Ports.Processor))
	if err != nil {
		return fail(err)
	}
	if o.Processes {
		if s.IngestURL, err = o.reservePort(o.Ports.Ingest); err != nil {
			return fail(err)
		}
		if s.ReplayerURL, err = o.reservePort(o.Ports.Replayer); err != nil {
			return fail(err)
		}
	} else {
		if ingestSrv, err = server.New(o.addr(o.Ports.Ingest)); err != nil {
			return fail(err)
		}
		if replSrv, err = server.New(o.addr(o.Ports.Replayer)); err != nil {
			return fail(err)
		}
		s.IngestURL, s.ReplayerURL = ingestSrv.URL(), replSrv.URL()
	}
	s.ProcessorURL = procSrv.URL()

	s.tmpDir, err = os.MkdirTemp("", "devstack-")
	if err != nil {
		return fail(err)
	}
	sourcesFile, secretRefs, err := s.sources(o)
	if err != nil {
		return fail(err)
	}
	s.DemoSource = "demo"
	s.DemoSecret = "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(24))
	if v, ok := o.Lookup("DEMO_WEBHOOK_SECRET"); ok && v != "" {
		s.DemoSecret = v
	}
	s.ReplayerToken = "lp_" + hex.EncodeToString(randomBytes(16))

	env := s.emulatorVars()
	env["RAW_BUCKET"] = s.Bucket()
	env["LOG_LEVEL"] = o.LogLevel.String()
	env["SOURCES_FILE"] = sourcesFile
	env["DEMO_WEBHOOK_SECRET"] = s.DemoSecret
	env["SWEEP_INTERVAL"] = "5s"
	// POST /internal/sweep takes a generated bearer token locally (OIDC in the cloud).
	// The keyed-hash secret every service shares (Secret Manager in the cloud).
	env["PII_HASH_KEY"] = hex.EncodeToString(randomBytes(32))
	env["SWEEP_AUTH"] = "token"
	env["SWEEP_TOKEN"] = "env:DEVSTACK_SWEEP_TOKEN"
	env["DEVSTACK_SWEEP_TOKEN"] = hex.EncodeToString(randomBytes(16))
	env["PUSH_AUTH"] = "none"
	// The keyed-hash key, one value shared by the three services: ingest writes the "find a
	// lead" index, the replayer searches it, and the processor keys the identity index with it.
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
	// The user's own values of the services' variables (a real CRM, CRM_RATE_PER_SEC,
	// OTEL_EXPORTER, ...) win over these local defaults, then explicit options win over both.
	s.passThrough(env, o.Lookup)
	for k, v := range o.Env {
		env[k] = v
	}
	// Sources read their secrets by reference (env:NAME in sources.yaml) from the services'
	// configuration environment. The example sources get generated secrets unless the user
	// brought their own.
	for _, name := range secretRefs {
		v, ok := o.Lookup(name)
		if !ok || v == "" {
			v = hex.EncodeToString(randomBytes(16))
		}
		env[name] = v
		s.SourceSecrets = append(s.SourceSecrets, [2]string{name, v})
	}

	s.serviceEnv = env

	topo := o.Topology
	topo.ProjectID = s.ProjectID
	topo.ProcessorURL, topo.ReplayerURL = s.ProcessorURL, s.ReplayerURL
	if err := s.provision(ctx, topo); err != nil {
		return fail(err)
	}

	if o.Processes {
		if err := s.startProcesses(ctx, o, env, procSrv); err != nil {
			return fail(err)
		}
		return s, nil
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
	out := s.emulatorExports()
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
	s.stopProcesses()
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
	s.closeEmulators()
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
