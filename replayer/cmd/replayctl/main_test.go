package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/replayer/internal/dlq"
	"github.com/leadpipe/leadpipe/replayer/service"
)

const token = "ctl-token-0123456789"

var (
	baseURL string
	st      *store.Store
)

// TestMain runs the replayer on the emulators; the CLI tests talk to it over HTTP.
func TestMain(m *testing.M) {
	os.Exit(func() int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		env, err := devstacktest.Start(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer env.Close()
		srv, err := server.New("127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		baseURL = srv.URL()
		if err := env.Provision(ctx, devstacktest.Topology{ReplayerURL: baseURL}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fs, err := env.FirestoreClient(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer fs.Close()
		st = store.New(fs)
		vars, stopGraph, err := reconcileEnv()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stopGraph()
		vars["AUTH_MODE"], vars["REPLAYER_TOKENS"], vars["PUSH_AUTH"], vars["REPLAY_RATE_PER_SEC"] = "static", token+"=ops", "none", "100"
		done := make(chan error, 1)
		go func() {
			done <- service.Run(ctx, env.Lookuper(vars), srv)
		}()
		code := m.Run()
		cancel()
		<-done
		return code
	}())
}

// seed stores a quarantined event and its DLQ record through the real intake.
func seed(t *testing.T, n string) string {
	t.Helper()
	ctx := context.Background()
	key := event.IdempotencyKey("demo", event.TypeLeadCreated, n)
	ev := event.Event{SchemaVersion: event.SchemaVersion, EventID: "e-" + n, EventType: event.TypeLeadCreated, Source: "demo",
		OccurredAt: time.Now().UTC(), IdempotencyKey: key, Identity: event.Identity{ContactExternalID: n},
		Routing: event.Routing{CRM: "hubspot", Object: "contacts", UpsertKey: "lead_id", Mode: event.ModeUpsert}}
	doc := &store.EventDoc{IdempotencyKey: key, EventID: ev.EventID, Source: "demo", EventType: ev.EventType, Event: ev, State: store.StateQuarantined}
	if err := st.CreateEvent(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := dlq.NewIntake(st).Record(ctx, pushmsg.Message{MessageID: n, Attributes: map[string]string{
		pushmsg.AttrIdempotencyKey: key, pushmsg.AttrSource: "demo", pushmsg.AttrEventType: ev.EventType,
		pushmsg.AttrFailureClass: "auth", pushmsg.AttrErrorMessage: "crm 401", pushmsg.AttrQuarantinedBy: "processor",
	}}); err != nil {
		t.Fatal(err)
	}
	return doc.DocID
}

func ctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--url", baseURL, "--token", token}, args...), &out, &errb)
	return out.String() + errb.String(), err
}

func TestCLI(t *testing.T) {
	a, b, c := seed(t, "cli-a"), seed(t, "cli-b"), seed(t, "cli-c")

	out, err := ctl(t, "list", "--class", "auth")
	if err != nil || !strings.Contains(out, a) || !strings.Contains(out, b) || !strings.Contains(out, "crm 401") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err = ctl(t, "show", a); err != nil || !strings.Contains(out, `"state": "quarantined"`) {
		t.Errorf("show: %v\n%s", err, out)
	}
	if _, err = ctl(t, "replay", a); err == nil {
		t.Error("replay without --reason succeeded")
	}
	if out, err = ctl(t, "replay", a, "--reason", "token rotated"); err != nil || !strings.Contains(out, "replayed (replay_id") {
		t.Errorf("replay: %v\n%s", err, out)
	}
	if out, err = ctl(t, "discard", "--reason", "spam", c); err != nil || !strings.Contains(out, "discarded") {
		t.Errorf("discard: %v\n%s", err, out)
	}
	if out, err = ctl(t, "bulk-replay", "--reason", "after fix", "--class", "auth", "--dry-run", "--poll", "50ms"); err != nil ||
		!strings.Contains(out, "would replay 1 record(s)") || !strings.Contains(out, b) {
		t.Errorf("bulk dry run: %v\n%s", err, out)
	}
	if got, _ := st.GetEvent(context.Background(), b); got.State != store.StateQuarantined {
		t.Errorf("dry run moved the event to %s", got.State)
	}
	if out, err = ctl(t, "bulk-replay", "--reason", "after fix", "--class", "auth", "--poll", "50ms"); err != nil ||
		!strings.Contains(out, "replayed 1 ") || !strings.Contains(out, "(done)") || !strings.Contains(out, "[####") {
		t.Errorf("bulk: %v\n%s", err, out)
	}
	if got, _ := st.GetEvent(context.Background(), b); got.State != store.StateReceived {
		t.Errorf("bulk left the event in %s", got.State)
	}
	var bad bytes.Buffer
	if err := run(context.Background(), []string{"--url", baseURL, "--token", "nope", "list"}, &bad, &bad); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"list", "show", "replay", "bulk-replay", "discard", "reconcile"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{cmd, "--help"}, &out, &out)
		if err == nil || !strings.Contains(out.String(), "replayctl "+cmd) || !strings.Contains(out.String(), "Flags:") {
			t.Errorf("%s --help: %v\n%s", cmd, err, out.String())
		}
	}
}

func TestProgress(t *testing.T) {
	tests := []struct {
		j    job
		want string
	}{
		{job{Max: 10, Matched: 5, Replayed: 4, Skipped: 1, Status: "running"}, "[#####.....] matched 5 replayed 4 skipped 1 failed 0 (running)"},
		{job{Max: 10000, Matched: 3, Replayed: 3, Status: "done"}, "[##########] matched 3 replayed 3 skipped 0 failed 0 (done)"},
		{job{Max: 10, Status: "queued"}, "[..........] matched 0 replayed 0 skipped 0 failed 0 (queued)"},
	}
	for _, tc := range tests {
		if got := progress(&tc.j, 10); got != tc.want {
			t.Errorf("progress(%+v) = %q, want %q", tc.j, got, tc.want)
		}
	}
}
