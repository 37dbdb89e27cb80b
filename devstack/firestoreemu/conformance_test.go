package firestoreemu_test

// The conformance suite runs only against the official Go client, so the same
// tests check Google's emulator: set FIRESTORE_CONFORMANCE_TARGET=external and
// FIRESTORE_EMULATOR_HOST. Cases that need this package's hooks (fault
// injection, a short idle timeout) skip in that mode.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	apiv1 "cloud.google.com/go/firestore/apiv1"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
)

const projectID = "conformance-test"

var (
	emu      *firestoreemu.Server // nil when the target is external
	emuAddr  string
	external bool
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("FIRESTORE_CONFORMANCE_TARGET") == "external" {
		external = true
		emuAddr = os.Getenv("FIRESTORE_EMULATOR_HOST")
		if emuAddr == "" {
			fmt.Fprintln(os.Stderr, "FIRESTORE_CONFORMANCE_TARGET=external needs FIRESTORE_EMULATOR_HOST")
			return 2
		}
		return m.Run()
	}
	s, err := firestoreemu.Start(firestoreemu.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	emu, emuAddr = s, s.Addr()
	os.Setenv("FIRESTORE_EMULATOR_HOST", emuAddr)
	return m.Run()
}

// needEmu skips cases that need this package's own hooks.
func needEmu(t *testing.T, why string) {
	t.Helper()
	if emu == nil {
		t.Skipf("skipped against an external emulator: %s", why)
	}
}

func newClient(t testing.TB) *firestore.Client {
	t.Helper()
	c, err := firestore.NewClient(context.Background(), projectID)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newClientFor dials a specific emulator address.
func newClientFor(t testing.TB, addr string) *firestore.Client {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(ownerCreds{}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := firestore.NewClient(context.Background(), projectID, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// newRawClient is the generated apiv1 client, for RPCs the high-level client
// does not expose.
func newRawClient(t testing.TB) *apiv1.Client {
	t.Helper()
	conn, err := grpc.NewClient(emuAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(ownerCreds{}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := apiv1.NewClient(context.Background(), option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (ownerCreds) RequireTransportSecurity() bool { return false }

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_]`)

// coll returns a collection unique to this test run, so tests never see
// each other's data even on a shared external emulator.
func coll(t testing.TB, c *firestore.Client) *firestore.CollectionRef {
	t.Helper()
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return c.Collection(fmt.Sprintf("%s_%d", name, time.Now().UnixNano()))
}

func dbPath() string { return "projects/" + projectID + "/databases/(default)" }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: got code %v (err %v), want %v", what, got, err, want)
	}
}

func mustSet(t testing.TB, ctx context.Context, d *firestore.DocumentRef, data any) *firestore.WriteResult {
	t.Helper()
	wr, err := d.Set(ctx, data)
	if err != nil {
		t.Fatalf("Set %s: %v", d.ID, err)
	}
	return wr
}

func mustGet(t testing.TB, ctx context.Context, d *firestore.DocumentRef) *firestore.DocumentSnapshot {
	t.Helper()
	s, err := d.Get(ctx)
	if err != nil {
		t.Fatalf("Get %s: %v", d.ID, err)
	}
	return s
}

// ids runs q and returns the document ids in order.
func ids(t *testing.T, ctx context.Context, q firestore.Query) []string {
	t.Helper()
	docs, err := q.Documents(ctx).GetAll()
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	out := []string{}
	for _, d := range docs {
		out = append(out, d.Ref.ID)
	}
	return out
}

func join(s []string) string { return strings.Join(s, ",") }

type getReq = firestorepb.GetDocumentRequest
