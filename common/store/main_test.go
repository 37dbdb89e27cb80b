package store_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
)

var (
	env    *devstacktest.Env
	client *firestore.Client
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	env, err = devstacktest.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start emulators:", err)
		return 1
	}
	defer env.Close()
	client, err = env.FirestoreClient(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "firestore client:", err)
		return 1
	}
	defer client.Close()
	return m.Run()
}

// newStore clears the emulator and returns a Store on the shared client. Tests using it must
// not run in parallel: they share one emulator.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	if err := env.Reset(context.Background()); err != nil {
		t.Fatalf("reset: %v", err)
	}
	t.Cleanup(env.ClearFaults)
	return store.New(client)
}
