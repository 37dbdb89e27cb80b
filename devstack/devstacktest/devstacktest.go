// Package devstacktest is the test harness: it starts the Firestore, Pub/Sub and GCS emulators
// in-process once per test binary (call Start from TestMain), points the Google client
// libraries at them through their usual environment variables, and provisions the production
// topology. Services under test run in the same process through their service.Run.
package devstacktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
	"github.com/leadpipe/leadpipe/devstack/gcsemu"
	"github.com/leadpipe/leadpipe/devstack/provision"
	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
)

// DefaultProject is the project id tests use.
const DefaultProject = "leadpipe-test"

// Env is a running set of emulators.
type Env struct {
	ProjectID string
	Bucket    string
	Firestore *firestoreemu.Server
	PubSub    *pubsubemu.Server
	GCS       *gcsemu.Server
}

// Options tune Start. The zero value is what most tests want.
type Options struct {
	ProjectID string
	// PushTimeout replaces the ack deadline as the push request timeout (Pub/Sub's minimum is
	// 10 s; tests want faster redelivery after a hung handler). Default 0: the ack deadline.
	PushTimeout time.Duration
	// MaxPushBackoff caps the subscription-wide pause after nacks. Default 2 s for tests.
	MaxPushBackoff time.Duration
	// Logger for the emulators; default discards.
	Logger *slog.Logger
}

// Start starts the three emulators and sets FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST,
// STORAGE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT in the process environment. Call it once from
// TestMain and Close the Env when the tests end.
func Start(ctx context.Context, opts ...Options) (*Env, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.ProjectID == "" {
		o.ProjectID = DefaultProject
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MaxPushBackoff == 0 {
		o.MaxPushBackoff = 2 * time.Second
	}
	e := &Env{ProjectID: o.ProjectID, Bucket: o.ProjectID + "-leadpipe-raw"}
	var err error
	if e.Firestore, err = firestoreemu.Start(firestoreemu.Options{Logger: o.Logger}); err != nil {
		return nil, err
	}
	if e.PubSub, err = pubsubemu.Start(ctx, pubsubemu.Options{
		Logger: o.Logger, MaxPushBackoff: o.MaxPushBackoff, PushTimeout: o.PushTimeout,
	}); err != nil {
		e.Close()
		return nil, err
	}
	if e.GCS, err = gcsemu.Start(gcsemu.Options{Logger: o.Logger, Buckets: []string{e.Bucket}}); err != nil {
		e.Close()
		return nil, err
	}
	for k, v := range e.Vars() {
		if err := os.Setenv(k, v); err != nil {
			e.Close()
			return nil, fmt.Errorf("setenv %s: %w", k, err)
		}
	}
	return e, nil
}

// Vars are the environment variables that point clients at the emulators.
func (e *Env) Vars() map[string]string {
	return map[string]string{
		"GOOGLE_CLOUD_PROJECT":    e.ProjectID,
		"FIRESTORE_EMULATOR_HOST": e.Firestore.Addr(),
		"PUBSUB_EMULATOR_HOST":    e.PubSub.Addr(),
		"STORAGE_EMULATOR_HOST":   e.GCS.URL(),
		"RAW_BUCKET":              e.Bucket,
	}
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
// Tests usually pass small MinBackoff/MaxBackoff.
func (e *Env) Provision(ctx context.Context, t Topology) error {
	t.ProjectID = e.ProjectID
	c, err := e.PubSubClient(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return provision.PubSub(ctx, c, t)
}

// Reset deletes all Firestore data.
func (e *Env) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete,
		"http://"+e.Firestore.Addr()+"/emulator/v1/projects/"+e.ProjectID+"/databases/(default)/documents", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset firestore: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset firestore: status %d", resp.StatusCode)
	}
	return nil
}

// Close stops the emulators.
func (e *Env) Close() {
	var errs []error
	if e.GCS != nil {
		errs = append(errs, e.GCS.Close())
	}
	if e.PubSub != nil {
		errs = append(errs, e.PubSub.Close())
	}
	if e.Firestore != nil {
		errs = append(errs, e.Firestore.Close())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "devstacktest: close:", err)
	}
}

// TestPIIHashKey is the PII_HASH_KEY Lookuper gives the services under test (tests compute
// the same tokens with pii.NewHasher([]byte(TestPIIHashKey))).
const TestPIIHashKey = "devstacktest-pii-hash-key-0123456789"
