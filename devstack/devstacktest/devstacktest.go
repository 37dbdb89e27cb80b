// Package devstacktest is the test harness: it starts the Firestore, Pub/Sub and GCS emulators
// in-process once per test binary (call Start from TestMain), points the Google client
// libraries at them through their usual environment variables, and provisions the production
// topology. Services under test run in the same process through their service.Run.
package devstacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/leadpipe/leadpipe/common/store"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/devstack/emulators"
	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
	"github.com/leadpipe/leadpipe/devstack/gcsemu"
	"github.com/leadpipe/leadpipe/devstack/provision"
	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
)

// DefaultProject is the project id tests use (with a random suffix on shared emulators).
const DefaultProject = "leadpipe-test"

// ModeVar selects the emulators the harness uses: embedded (default, in-process), external
// (already running, named by FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST and
// STORAGE_EMULATOR_HOST; `make test-google` runs Google's this way) or google (Google's,
// started by this test binary).
const ModeVar = "DEVSTACK_EMULATORS"

// Env is a running set of emulators.
type Env struct {
	Mode      emulators.Mode
	ProjectID string
	Bucket    string
	// The in-process emulators; nil where the mode does not run them (Firestore and Pub/Sub
	// outside embedded mode). Tests that need their hooks call NeedEmbedded first.
	Firestore *firestoreemu.Server
	PubSub    *pubsubemu.Server
	GCS       *gcsemu.Server

	set *emulators.Set
	rec *recorder
}

// Options tune Start. The zero value is what most tests want.
type Options struct {
	ProjectID string
	// PushTimeout replaces the ack deadline as the push request timeout (Pub/Sub's minimum is
	// 10 s; tests want faster redelivery after a hung handler). Default 0: the ack deadline.
	// Embedded mode only.
	PushTimeout time.Duration
	// MaxPushBackoff caps the subscription-wide pause after nacks. Default 2 s for tests.
	// Embedded mode only.
	MaxPushBackoff time.Duration
	// Logger for the emulators; default discards.
	Logger *slog.Logger
}

// Mode is the emulator mode named by DEVSTACK_EMULATORS (embedded when unset).
func Mode() (emulators.Mode, error) { return emulators.ParseMode(os.Getenv(ModeVar)) }

// Project returns base, or on shared emulators (external mode) base plus a random suffix, so
// test binaries running at once on one pair of emulators never see each other's topics,
// subscriptions, documents or buckets.
func Project(base string) string {
	if m, _ := Mode(); m == emulators.External {
		return base + "-" + hex.EncodeToString(randomBytes(4))
	}
	return base
}

// Start starts (or, in external mode, finds) the three emulators and sets
// FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT
// in the process environment. Call it once from TestMain and Close the Env when the tests end.
func Start(ctx context.Context, opts ...Options) (*Env, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	mode, err := Mode()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ModeVar, err)
	}
	if o.ProjectID == "" {
		o.ProjectID = DefaultProject
	}
	o.ProjectID = Project(o.ProjectID)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MaxPushBackoff == 0 {
		o.MaxPushBackoff = 2 * time.Second
	}
	e := &Env{Mode: mode, ProjectID: o.ProjectID, Bucket: o.ProjectID + "-leadpipe-raw"}
	e.set, err = emulators.Start(ctx, emulators.Options{
		Mode: mode, ProjectID: o.ProjectID, Logger: func(string) *slog.Logger { return o.Logger },
		Buckets: []string{e.Bucket}, PushTimeout: o.PushTimeout, MaxPushBackoff: o.MaxPushBackoff,
	})
	if err != nil {
		return nil, err
	}
	e.Firestore, e.PubSub, e.GCS = e.set.Firestore, e.set.PubSub, e.set.GCS
	for k, v := range e.Vars() {
		if err := os.Setenv(k, v); err != nil {
			e.Close()
			return nil, fmt.Errorf("setenv %s: %w", k, err)
		}
	}
	if e.PubSub == nil {
		e.rec = &recorder{env: e, subs: map[string]string{}}
	}
	if !e.Embedded() {
		// Google's Firestore emulator answers a project's first requests slowly (seconds, while
		// the JVM warms up); take that here, not inside a test's timeout.
		if err := e.warmUp(ctx); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Embedded reports whether the in-process emulators (and their fault injection and
// inspection hooks) are running.
func (e *Env) Embedded() bool { return e.Mode == emulators.Embedded }

// NeedEmbedded skips the test unless the embedded emulators run, saying what it needs that
// Google's emulators lack.
func (e *Env) NeedEmbedded(t testing.TB, why string) {
	t.Helper()
	if !e.Embedded() {
		t.Skipf("needs devstack's embedded emulators (%s), which Google's emulators lack (%s=%s)", why, ModeVar, e.Mode)
	}
}

// ClearFaults clears the embedded Firestore emulator's injected faults (nothing elsewhere).
func (e *Env) ClearFaults() {
	if e.Firestore != nil {
		e.Firestore.Faults().Clear()
	}
}

// FirestoreAddr is FIRESTORE_EMULATOR_HOST.
func (e *Env) FirestoreAddr() string { return e.set.FirestoreAddr }

// PubSubAddr is PUBSUB_EMULATOR_HOST.
func (e *Env) PubSubAddr() string { return e.set.PubSubAddr }

// Vars are the environment variables that point clients at the emulators.
func (e *Env) Vars() map[string]string {
	m := e.set.Vars()
	m["GOOGLE_CLOUD_PROJECT"] = e.ProjectID
	m["RAW_BUCKET"] = e.Bucket
	return m
}

// Lookuper returns the configuration environment for service.Run: the emulator variables plus
// overrides (overrides win).
func (e *Env) Lookuper(overrides map[string]string) config.Lookuper {
	m := e.Vars()
	m["LOG_LEVEL"] = "warn"
	m["PII_HASH_KEY"] = TestPIIHashKey
	for k, v := range overrides {
		m[k] = v
	}
	return config.MapLookuper(m)
}

// FirestoreClient returns a client on the emulator; the caller closes it.
func (e *Env) FirestoreClient(ctx context.Context) (*firestore.Client, error) {
	return firestore.NewClient(ctx, e.ProjectID)
}

// SplitStore is store.NewSplit on events (a client on the "(default)" database) and a new client
// on emulators.OpsDatabase, which closeOps closes: the store a test shares a client with.
func (e *Env) SplitStore(ctx context.Context, events *firestore.Client) (_ *store.Store, closeOps func() error, err error) {
	ops, err := firestore.NewClientWithDatabase(ctx, e.ProjectID, emulators.OpsDatabase)
	if err != nil {
		return nil, nil, err
	}
	return store.NewSplit(events, ops), ops.Close, nil
}

// PubSubClient returns a client on the emulator; the caller closes it.
func (e *Env) PubSubClient(ctx context.Context) (*pubsub.Client, error) {
	return pubsub.NewClient(ctx, e.ProjectID)
}

// StorageClient returns a client on the emulator; the caller closes it.
func (e *Env) StorageClient(ctx context.Context) (*storage.Client, error) {
	return storage.NewClient(ctx)
}

// Topology is provision.Topology; ProjectID is filled in by Provision.
type Topology = provision.Topology

// Provision creates topics leads and leads-dlq and their subscriptions as infra/ does.
// Tests usually pass small MinBackoff/MaxBackoff. Outside embedded mode it also starts
// recording both topics for Messages.
func (e *Env) Provision(ctx context.Context, t Topology) error {
	t.ProjectID = e.ProjectID
	c, err := e.PubSubClient(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := provision.PubSub(ctx, c, t); err != nil {
		return err
	}
	if e.rec != nil {
		for _, p := range [][2]string{{t.LeadsTopic, "leads"}, {t.DLQTopic, "leads-dlq"}} {
			topic := p[0]
			if topic == "" {
				topic = p[1]
			}
			if err := e.Record(ctx, topic); err != nil {
				return err
			}
		}
	}
	return nil
}

// Reset deletes all Firestore data of the project.
func (e *Env) Reset(ctx context.Context) error { return e.set.ResetFirestore(ctx, e.ProjectID) }

// Close stops the emulators (what Start started; nothing in external mode).
func (e *Env) Close() {
	if e.rec != nil {
		e.rec.close()
	}
	if err := e.set.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "devstacktest: close:", err)
	}
}

// TestPIIHashKey is the PII_HASH_KEY Lookuper gives the services under test (tests compute
// the same tokens with pii.NewHasher([]byte(TestPIIHashKey))).
const TestPIIHashKey = "devstacktest-pii-hash-key-0123456789"

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func (e *Env) warmUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := e.FirestoreClient(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	doc := c.Collection("devstacktest").Doc("warm-up")
	if err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if _, err := tx.Get(doc); err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		return tx.Set(doc, map[string]any{"at": time.Now()})
	}); err != nil {
		return fmt.Errorf("warm up firestore: %w", err)
	}
	if _, err := doc.Delete(ctx); err != nil {
		return fmt.Errorf("warm up firestore: %w", err)
	}
	return nil
}
