package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
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
	// Tables fit a 100-column terminal in these tests.
	os.Setenv("COLUMNS", "100")
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
		var closeOps func() error
		if st, closeOps, err = env.SplitStore(ctx, fs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer closeOps()
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
	if err != nil || !strings.Contains(out, a[:12]+" ") || !strings.Contains(out, b[:12]) || !strings.Contains(out, "crm 401") || strings.Contains(out, a) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("list line of %d columns with COLUMNS=100: %q", n, line)
		}
	}
	if out, err = ctl(t, "list", "--class", "auth", "--wide"); err != nil || !strings.Contains(out, a) {
		t.Errorf("list --wide: %v\n%s", err, out)
	}
	// Short ids work everywhere.
	if out, err = ctl(t, "show", a[:12]); err != nil || !strings.Contains(out, "Event state:     quarantined") || !strings.Contains(out, "Reason:          crm 401") {
		t.Errorf("show: %v\n%s", err, out)
	}
	if out, err = ctl(t, "show", a, "--json"); err != nil || !strings.Contains(out, `"state": "quarantined"`) {
		t.Errorf("show --json: %v\n%s", err, out)
	}
	if _, err = ctl(t, "replay", a); err == nil {
		t.Error("replay without --reason succeeded")
	}
	if out, err = ctl(t, "replay", a[:12], "--reason", "token rotated"); err != nil || !strings.Contains(out, "replayed (replay_id") {
		t.Errorf("replay: %v\n%s", err, out)
	}
	if out, err = ctl(t, "discard", "--reason", "spam", c[:12]); err != nil || !strings.Contains(out, "discarded") {
		t.Errorf("discard: %v\n%s", err, out)
	}
	if out, err = ctl(t, "find", "e-cli-b"); err != nil || !strings.Contains(out, b[:12]) || !strings.Contains(out, "quarantined") {
		t.Errorf("find: %v\n%s", err, out)
	}
	if out, err = ctl(t, "find", "nobody@example.com"); err != nil || !strings.Contains(out, "no lead matches") {
		t.Errorf("find nothing: %v\n%s", err, out)
	}
	if out, err = ctl(t, "audit", "--target", a[:12]); err != nil || !strings.Contains(out, "token rotated") || !strings.Contains(out, "ops") {
		t.Errorf("audit: %v\n%s", err, out)
	}
	// A dry run needs no reason.
	if out, err = ctl(t, "bulk-replay", "--class", "auth", "--dry-run", "--poll", "50ms"); err != nil ||
		!strings.Contains(out, "would replay 1 record(s)") || !strings.Contains(out, b) {
		t.Errorf("bulk dry run: %v\n%s", err, out)
	}
	if got, _ := st.GetEvent(context.Background(), b); got.State != store.StateQuarantined {
		t.Errorf("dry run moved the event to %s", got.State)
	}
	if _, err = ctl(t, "bulk-replay", "--class", "auth"); err == nil || !strings.Contains(err.Error(), "--reason is required") {
		t.Errorf("bulk replay without a reason: %v", err)
	}
	if out, err = ctl(t, "bulk-replay", "--reason", "after fix", "--class", "auth", "--poll", "50ms"); err != nil ||
		!strings.Contains(out, "replayed 1 ") || !strings.Contains(out, "(done)") || !strings.Contains(out, "[####") {
		t.Errorf("bulk: %v\n%s", err, out)
	}
	// Not a terminal: no carriage returns.
	if strings.Contains(out, "\r") {
		t.Errorf("bulk progress wrote carriage returns to a non-terminal:\n%q", out)
	}
	if got, _ := st.GetEvent(context.Background(), b); got.State != store.StateReceived {
		t.Errorf("bulk left the event in %s", got.State)
	}
	if out, err = ctl(t, "list", "--class", "conflict"); err != nil || strings.TrimSpace(out) != "no records" {
		t.Errorf("empty list: %v\n%q", err, out)
	}
	if _, err = ctl(t, "list", "--class", "auht"); err == nil || !strings.Contains(err.Error(), `unknown --class "auht"`) {
		t.Errorf("unknown class: %v", err)
	}
	var bad bytes.Buffer
	if err := run(context.Background(), []string{"--url", baseURL, "--token", "nope", "list"}, &bad, &bad); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "REPLAYER_TOKEN") {
		t.Errorf("wrong token: %v", err)
	}
}

// An unset token and a stack that is not running each get a message that says what to do.
func TestCLIHelpfulErrors(t *testing.T) {
	t.Setenv("REPLAYER_TOKEN", "")
	var out bytes.Buffer
	err := run(context.Background(), []string{"--url", baseURL, "list"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "set REPLAYER_TOKEN") || !strings.Contains(err.Error(), ".devstack/env") {
		t.Errorf("no token: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	err = run(context.Background(), []string{"--url", closed, "--token", token, "list"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "is the stack running") || !strings.Contains(err.Error(), "make dev") {
		t.Errorf("stack down: %v", err)
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"list", "find", "show", "replay", "bulk-replay", "discard", "audit", "reconcile"} {
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
