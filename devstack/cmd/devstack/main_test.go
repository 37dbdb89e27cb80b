package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/devstack/googleemu"
)

// TestEmulatorsCommand runs `devstack emulators` on free ports, with the embedded emulators and
// with Google's, and checks the stdout contract: one export line per endpoint, then
// `devstack: ready`, and a clean stop on cancel (for Google's, with no process left behind).
func TestEmulatorsCommand(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testEmulatorsCommand(t, "embedded") })
	t.Run("google", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts two Java emulators")
		}
		if err := googleemu.Check(""); err != nil {
			t.Skipf("Google's emulators are not installed here: %v", err)
		}
		testEmulatorsCommand(t, "google")
	})
}

func testEmulatorsCommand(t *testing.T, mode string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	envFile := filepath.Join(t.TempDir(), "env")
	done := make(chan error, 1)
	go func() {
		done <- realMain(ctx, []string{"emulators", "--emulators=" + mode, "--firestore-port=0", "--pubsub-port=0", "--gcs-port=0",
			"--project=cmd-test", "--env-file=" + envFile}, pw, io.Discard)
		pw.Close()
	}()
	exports := map[string]string{}
	sc := bufio.NewScanner(pr)
	ready := false
	for sc.Scan() {
		line := sc.Text()
		if line == "devstack: ready" {
			ready = true
			break
		}
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			t.Fatalf("stdout line %q is neither an export nor the ready line", line)
		}
		k, v, _ := strings.Cut(kv, "=")
		exports[k] = v
	}
	if !ready {
		t.Fatalf("no ready line; exports so far: %v", exports)
	}
	for _, k := range []string{"GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"} {
		if exports[k] == "" {
			t.Errorf("missing export %s", k)
		}
	}
	if exports["GOOGLE_CLOUD_PROJECT"] != "cmd-test" {
		t.Errorf("project = %q, want cmd-test", exports["GOOGLE_CLOUD_PROJECT"])
	}
	if _, ok := exports["INGEST_URL"]; ok {
		t.Error("emulators exported INGEST_URL; only `up` runs the services")
	}
	resp, err := http.Get("http://" + exports["FIRESTORE_EMULATOR_HOST"] + "/")
	if err != nil {
		t.Fatalf("firestore emulator not serving: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "Ok" {
		t.Errorf("GET / = %q, want Ok", body)
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devstack returned %v after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devstack did not stop within 30s of cancel")
	}
	for _, k := range []string{"FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"} {
		if c, err := net.DialTimeout("tcp", exports[k], time.Second); err == nil {
			c.Close()
			t.Errorf("%s %s still accepts connections after devstack stopped", k, exports[k])
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := realMain(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command: want an error")
	}
}

// TestProcessorsFlag: --processors needs --processes and a sane count, refused before anything
// starts.
func TestProcessorsFlag(t *testing.T) {
	for _, args := range [][]string{
		{"up", "--processors=2"},
		{"up", "--processes", "--processors=0"},
		{"up", "--processes", "--processors=17"},
	} {
		err := realMain(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--processors") {
			t.Errorf("%v: error %v, want one naming --processors", args, err)
		}
	}
}
