// Package emulators starts, or finds, the Firestore, Pub/Sub and Cloud Storage emulators in one
// of three modes, for `devstack --emulators=MODE`, the stack and the test harness:
//
//   - embedded (default): devstack's in-process emulators (firestoreemu, pubsubemu, gcsemu);
//   - google: Google's own Firestore and Pub/Sub emulators from the Google Cloud CLI, started
//     as child processes (googleemu), and fake-gcs-server in-process for Cloud Storage;
//   - external: emulators already running, named by FIRESTORE_EMULATOR_HOST,
//     PUBSUB_EMULATOR_HOST and STORAGE_EMULATOR_HOST (docker-compose.emulators.yml, or a
//     `devstack emulators` in another shell).
//
// In every mode the Google client libraries reach them through those three variables.
package emulators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
	"github.com/leadpipe/leadpipe/devstack/gcsemu"
	"github.com/leadpipe/leadpipe/devstack/googleemu"
	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
)

// Mode selects which emulators run.
type Mode string

// The three modes.
const (
	Embedded Mode = "embedded"
	Google   Mode = "google"
	External Mode = "external"
)

// Modes lists the valid modes, for flag help.
const Modes = "embedded|google|external"

// ParseMode checks a mode name; "" is Embedded.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return Embedded, nil
	case Embedded, Google, External:
		return m, nil
	default:
		return "", fmt.Errorf("emulators %q: want one of %s", s, Modes)
	}
}

// The environment variables the Google client libraries read.
const (
	FirestoreVar = "FIRESTORE_EMULATOR_HOST"
	PubSubVar    = "PUBSUB_EMULATOR_HOST"
	StorageVar   = "STORAGE_EMULATOR_HOST"
)

// Options configure Start.
type Options struct {
	Mode Mode
	// ProjectID the Pub/Sub emulator is started for (Google's answers for any project).
	ProjectID string
	// Host and ports to listen on (embedded, google); port 0 picks a free one.
	Host                               string
	FirestorePort, PubSubPort, GCSPort int
	// Logger for an emulator ("firestore-emulator", ...). Default discards.
	Logger func(name string) *slog.Logger
	// Buckets to create (in every mode).
	Buckets []string
	// PushTimeout and MaxPushBackoff tune the embedded Pub/Sub emulator (ignored otherwise:
	// Google's uses the ack deadline and its own backoff).
	PushTimeout, MaxPushBackoff time.Duration
	// Lookup reads the external mode's variables. Default os.LookupEnv.
	Lookup func(string) (string, bool)
}

// Set is a running (or found) set of emulators.
type Set struct {
	Mode Mode
	// Addresses as the client variables take them.
	FirestoreAddr, PubSubAddr, StorageHost string
	// The in-process emulators: all three in embedded mode, GCS in google mode, else nil.
	Firestore *firestoreemu.Server
	PubSub    *pubsubemu.Server
	GCS       *gcsemu.Server
	google    *googleemu.Emulators
}

// Start starts or finds the emulators of o.Mode and creates o.Buckets. It does not change the
// process environment (Vars gives what to set).
func Start(ctx context.Context, o Options) (*Set, error) {
	if o.Mode == "" {
		o.Mode = Embedded
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Logger == nil {
		o.Logger = func(string) *slog.Logger { return slog.New(slog.DiscardHandler) }
	}
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	addr := func(port int) string { return net.JoinHostPort(o.Host, strconv.Itoa(port)) }
	s := &Set{Mode: o.Mode}
	var err error
	switch o.Mode {
	case Embedded:
		if s.Firestore, err = firestoreemu.Start(firestoreemu.Options{Addr: addr(o.FirestorePort), Logger: o.Logger("firestore-emulator")}); err != nil {
			return nil, err
		}
		if s.PubSub, err = pubsubemu.Start(ctx, pubsubemu.Options{
			Addr: addr(o.PubSubPort), Logger: o.Logger("pubsub-emulator"),
			PushTimeout: o.PushTimeout, MaxPushBackoff: o.MaxPushBackoff,
		}); err != nil {
			s.Close()
			return nil, err
		}
		s.FirestoreAddr, s.PubSubAddr = s.Firestore.Addr(), s.PubSub.Addr()
	case Google:
		if s.google, err = googleemu.Start(ctx, googleemu.Options{
			Host: o.Host, FirestorePort: o.FirestorePort, PubSubPort: o.PubSubPort,
			ProjectID: o.ProjectID, Logger: o.Logger("google-emulators"),
		}); err != nil {
			return nil, err
		}
		s.FirestoreAddr, s.PubSubAddr = s.google.FirestoreAddr(), s.google.PubSubAddr()
	case External:
		var missing []string
		for _, p := range []struct {
			name string
			dst  *string
		}{{FirestoreVar, &s.FirestoreAddr}, {PubSubVar, &s.PubSubAddr}, {StorageVar, &s.StorageHost}} {
			v, ok := o.Lookup(p.name)
			if *p.dst = strings.TrimSpace(v); !ok || *p.dst == "" {
				missing = append(missing, p.name)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("--emulators=external needs %s in the environment (e.g. from `docker compose -f docker-compose.emulators.yml up`)", strings.Join(missing, ", "))
		}
		if err := s.check(ctx, o.ProjectID); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("emulators: unknown mode %q", o.Mode)
	}
	if o.Mode != External {
		if s.GCS, err = gcsemu.Start(gcsemu.Options{Addr: addr(o.GCSPort), Logger: o.Logger("gcs-emulator")}); err != nil {
			s.Close()
			return nil, err
		}
		s.StorageHost = s.GCS.URL()
	}
	for _, b := range o.Buckets {
		if err := s.CreateBucket(ctx, o.ProjectID, b); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Vars are the three client variables.
func (s *Set) Vars() map[string]string {
	return map[string]string{FirestoreVar: s.FirestoreAddr, PubSubVar: s.PubSubAddr, StorageVar: s.StorageHost,
		OpsDatabaseVar: OpsDatabase}
}

// OpsDatabase is the Firestore database of DLQ records, the audit log and replay jobs locally,
// apart from the events' "(default)" as in the cloud deployment (infra/), so that every local
// run and test exercises the two-database lifecycle; OpsDatabaseVar names it to the services.
const (
	OpsDatabase    = "leadpipe-ops"
	OpsDatabaseVar = "FIRESTORE_OPS_DATABASE"
)

// StorageURL is the storage emulator's base URL (with the scheme).
func (s *Set) StorageURL() string {
	if strings.Contains(s.StorageHost, "://") {
		return s.StorageHost
	}
	return "http://" + s.StorageHost
}

// CreateBucket creates a bucket unless it exists.
func (s *Set) CreateBucket(ctx context.Context, project, name string) error {
	if s.GCS != nil {
		s.GCS.CreateBucket(name)
		return nil
	}
	// The storage client reads STORAGE_EMULATOR_HOST itself, so point it at ours meanwhile.
	prev, had := os.LookupEnv(StorageVar)
	os.Setenv(StorageVar, s.StorageHost)
	defer func() {
		if had {
			os.Setenv(StorageVar, prev)
		} else {
			os.Unsetenv(StorageVar)
		}
	}()
	c, err := storage.NewClient(ctx)
	if err != nil {
		return fmt.Errorf("storage client: %w", err)
	}
	defer c.Close()
	err = c.Bucket(name).Create(ctx, project, nil)
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusConflict {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("create bucket %s on %s: %w", name, s.StorageHost, err)
	}
	return nil
}

// ResetFirestore deletes every document of the project's default and operations databases
// (both emulators answer the same DELETE).
func (s *Set) ResetFirestore(ctx context.Context, project string) error {
	for _, db := range []string{"(default)", OpsDatabase} {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete,
			"http://"+s.FirestoreAddr+"/emulator/v1/projects/"+project+"/databases/"+db+"/documents", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("reset firestore %s: %w", db, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("reset firestore %s: status %d", db, resp.StatusCode)
		}
	}
	return nil
}

// check makes sure external emulators answer: Firestore's `GET /`, a Pub/Sub ListTopics and a
// storage bucket listing.
func (s *Set) check(ctx context.Context, project string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.FirestoreAddr+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s=%s: Firestore emulator not answering: %w", FirestoreVar, s.FirestoreAddr, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "Ok" {
		return fmt.Errorf("%s=%s: GET / answered %d %q, not a Firestore emulator's Ok", FirestoreVar, s.FirestoreAddr, resp.StatusCode, b)
	}
	if project == "" {
		project = "leadpipe-local"
	}
	prev, had := os.LookupEnv(PubSubVar)
	os.Setenv(PubSubVar, s.PubSubAddr)
	c, err := pubsub.NewClient(ctx, project)
	if had {
		os.Setenv(PubSubVar, prev)
	} else {
		os.Unsetenv(PubSubVar)
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", PubSubVar, s.PubSubAddr, err)
	}
	defer c.Close()
	it := c.TopicAdminClient.ListTopics(ctx, &pb.ListTopicsRequest{Project: "projects/" + project})
	if _, err := it.Next(); err != nil && !errors.Is(err, iterator.Done) {
		return fmt.Errorf("%s=%s: Pub/Sub emulator not answering: %w", PubSubVar, s.PubSubAddr, err)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, s.StorageURL()+"/storage/v1/b?project="+project, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s=%s: storage emulator not answering: %w", StorageVar, s.StorageHost, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s=%s: GET /storage/v1/b answered %d", StorageVar, s.StorageHost, resp.StatusCode)
	}
	return nil
}

// Close stops what Start started (nothing in external mode).
func (s *Set) Close() error {
	var errs []error
	if s.GCS != nil {
		errs = append(errs, s.GCS.Close())
	}
	if s.PubSub != nil {
		errs = append(errs, s.PubSub.Close())
	}
	if s.Firestore != nil {
		errs = append(errs, s.Firestore.Close())
	}
	if s.google != nil {
		errs = append(errs, s.google.Close())
	}
	return errors.Join(errs...)
}
