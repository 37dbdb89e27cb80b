package store_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/devstack/emulators"
)

var (
	env    *devstacktest.Env
	client *firestore.Client
	// opsClient is on the operations database: the store tests run on two databases, as
	// the deployment does (the two-step operator actions are what they prove).
	opsClient *firestore.Client
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
	opsClient, err = firestore.NewClientWithDatabase(ctx, env.ProjectID, emulators.OpsDatabase)
	if err != nil {
		fmt.Fprintln(os.Stderr, "firestore ops client:", err)
		return 1
	}
	defer opsClient.Close()
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
	return store.NewSplit(client, opsClient)
}
