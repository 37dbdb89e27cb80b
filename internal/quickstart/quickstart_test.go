// Package quickstart tests the README's quick start as a new user runs it: the shell block of
// "In a second terminal", command by command in one bash session, against a stack started as
// `make dev` starts it (the devstack command's "up", on free ports so it cannot collide with a
// stack already running), in a workspace that looks like a fresh clone.
package quickstart

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository, two levels up from this package.
const repoRoot = "../.."

// quickStartBlock returns the commands of the README's second-terminal shell block: one per
// line, blank lines and whole-line comments left out (trailing comments stay: bash reads them).
func quickStartBlock(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "In a second terminal")
	if i < 0 {
		t.Fatal(`README.md has no "In a second terminal" step`)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatal("no sh block after the second-terminal step")
	}
	s = s[start+len("```sh\n"):]
	s = s[:strings.Index(s, "```")]
	var cmds []string
	for _, line := range strings.Split(s, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// workspace is a directory that looks like a clone: every top-level entry of the repository
// linked in, but its own .devstack (the stack's env file goes there).
func workspace(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case ".devstack", ".git", "bin":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(ws, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

// cleanEnv is the test's environment without anything a previous stack exported.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasSuffix(k, "_URL"), strings.HasSuffix(k, "_EMULATOR_HOST"), k == "REPLAYER_TOKEN",
			k == "DEMO_SOURCE", k == "DEMO_WEBHOOK_SECRET", k == "GOOGLE_CLOUD_PROJECT", k == "LOG_FORMAT":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// startStack runs `devstack up` (what `make dev` runs) in ws on free ports and waits for
// "devstack: ready"; the stack stops (SIGTERM) when the test ends.
func startStack(t *testing.T, ws string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "devstack")
	build := exec.Command("go", "build", "-o", bin, "./devstack/cmd/devstack")
	build.Dir = ws
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build devstack: %v\n%s", err, out)
	}
	args := []string{"up"}
	for _, p := range []string{"firestore", "pubsub", "gcs", "ingest", "processor", "replayer", "crm"} {
		args = append(args, "--"+p+"-port", "0")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = ws
	cmd.Env = cleanEnv()
	logs, err := os.Create(filepath.Join(t.TempDir(), "devstack.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("devstack log (last 4 KiB):\n%s", tail(b, 4096))
		}
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "devstack: ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("devstack exited before ready: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			b, _ := os.ReadFile(logs.Name())
			t.Fatalf("%v\n%s", err, tail(b, 4096))
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("devstack not ready after 2 minutes")
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// shell is one bash session: the second terminal.
type shell struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Reader
}

func newShell(t *testing.T, ws string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = ws
	cmd.Env = cleanEnv()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
		pw.Close()
	})
	return &shell{t: t, in: in, out: bufio.NewReader(pr)}
}

var rcLine = regexp.MustCompile(`^__rc=(\d+)__$`)

// run types line into the session and returns its output and exit status.
func (s *shell) run(line string) (string, int) {
	s.t.Helper()
	if _, err := fmt.Fprintf(s.in, "{ %s\n} 2>&1 </dev/null; echo \"__rc=$?__\"\n", line); err != nil {
		s.t.Fatal(err)
	}
	type res struct {
		out string
		rc  int
	}
	done := make(chan res, 1)
	go func() {
		var b strings.Builder
		for {
			l, err := s.out.ReadString('\n')
			if m := rcLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				var rc int
				fmt.Sscan(m[1], &rc)
				done <- res{b.String(), rc}
				return
			}
			b.WriteString(l)
			if err != nil {
				done <- res{b.String(), -1}
				return
			}
		}
	}()
	select {
	case r := <-done:
		s.t.Logf("$ %s\n%s(exit %d)", line, r.out, r.rc)
		return r.out, r.rc
	case <-time.After(3 * time.Minute):
		s.t.Fatalf("%q did not finish", line)
	}
	return "", -1
}

// until runs line again (as a person would) until ok accepts its output, for steps that wait on
// the pipeline; it fails the test after 60 s.
func (s *shell) until(line, what string, ok func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, rc := s.run(line)
		if rc == 0 && ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%q never showed %s; last output:\n%s", line, what, out)
		}
		time.Sleep(time.Second)
	}
}

type crmRecord struct {
	Key string `json:"key"`
	ID  string `json:"id"`
}

func records(t *testing.T, out string) []crmRecord {
	var rs []crmRecord
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rs); err != nil {
		return nil
	}
	return rs
}

var idColumn = regexp.MustCompile(`(?m)^([0-9a-f]{12})\s+demo\s+auth\s+open\b`)

// The README's quick start, as written: two leads reach the CRM once each, the broken CRM
// sends the next lead to the dead-letter queue, replayctl lists it, and its replay after the
// fix makes exactly one CRM record.
func TestQuickStartAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole stack and runs go run a few times")
	}
	for _, tool := range []string{"bash", "make", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	cmds := quickStartBlock(t)
	ws := workspace(t)
	startStack(t, ws)
	sh := newShell(t, ws)

	// delivered: leads the CRM must have (once each); pending: leads sent while it is broken,
	// which only a replay delivers.
	var failedID string
	delivered, pending, broken := 0, 0, false
	for _, line := range cmds {
		switch {
		case strings.HasPrefix(line, ". ./.devstack/env"):
			if out, rc := sh.run(line); rc != 0 {
				t.Fatalf("%s: exit %d\n%s", line, rc, out)
			}
		case strings.HasPrefix(line, "make send-lead"):
			out, rc := sh.run(line)
			n := 1
			if strings.Contains(line, "-n 3") {
				n = 3
			}
			if rc != 0 || strings.Count(out, `"status":"accepted"`) != 1 || strings.Count(out, `"status":"duplicate"`) != n-1 {
				t.Fatalf("%s: want 1 accepted and %d duplicates (exit %d):\n%s", line, n-1, rc, out)
			}
			if broken {
				pending++
			} else {
				delivered++
			}
		case strings.HasPrefix(line, "curl -s $CRM_URL/_control/records"):
			want := delivered
			out := sh.until(line, fmt.Sprintf("%d records", want), func(out string) bool { return len(records(t, out)) == want })
			seen := map[string]bool{}
			for _, r := range records(t, out) {
				if seen[r.Key] {
					t.Errorf("the CRM has lead %s twice", r.Key)
				}
				seen[r.Key] = true
			}
		case strings.HasPrefix(line, "curl -X PUT $CRM_URL/_control/faults"):
			out, rc := sh.run(line)
			if rc != 0 || !strings.Contains(out, `"reject_credentials"`) {
				// The fault API answers with the standing faults.
				t.Fatalf("%s: exit %d\n%s", line, rc, out)
			}
			broken = strings.Contains(line, `"reject_credentials":true`)
		case strings.Contains(line, "replayctl list"):
			out := sh.until(line, "the failed lead (class auth, open)", func(out string) bool { return idColumn.MatchString(out) })
			if n := len(idColumn.FindAllString(out, -1)); n != 1 {
				t.Errorf("replayctl list shows %d auth records, want the one failed lead:\n%s", n, out)
			}
			failedID = idColumn.FindStringSubmatch(out)[1]
		case strings.Contains(line, "replayctl replay <id>"):
			if failedID == "" {
				t.Fatal("the README replays before anything was listed")
			}
			out, rc := sh.run(strings.Replace(line, "<id>", failedID, 1))
			if rc != 0 || !strings.Contains(out, failedID+": replayed") {
				t.Fatalf("replay: exit %d\n%s", rc, out)
			}
			delivered, pending = delivered+pending, 0
		default:
			t.Fatalf("the test does not know what %q should do; teach it", line)
		}
	}
	if failedID == "" {
		t.Error("the quick start never showed a failed lead")
	}
	// The replayed lead is resolved in the DLQ once it is in the CRM.
	sh.until("go run ./replayer/cmd/replayctl list --status resolved", "the replayed lead resolved", func(out string) bool {
		return strings.Contains(out, failedID)
	})
}
