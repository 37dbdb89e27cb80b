// Package googleemu runs Google's own Firestore and Pub/Sub emulators (the Google Cloud CLI's
// `cloud-firestore-emulator` and `pubsub-emulator` components, which need Java) as child
// processes. `devstack --emulators=google` uses it; `make test-google` runs the e2e suites on
// them.
//
// Each emulator runs in its own process group, so Close stops the gcloud wrapper and the Java
// process it starts together; nothing is left running after Close.
package googleemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure Start.
type Options struct {
	// Host to listen on. Default 127.0.0.1.
	Host string
	// FirestorePort and PubSubPort; 0 picks a free port.
	FirestorePort, PubSubPort int
	// ProjectID the Pub/Sub emulator is started for (it answers for any project). Default
	// "leadpipe-local".
	ProjectID string
	// Logger receives the emulators' output lines (field "emulator"). Default discards.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for each emulator's `Ok`. Default 90 s.
	ReadyTimeout time.Duration
	// Gcloud is the gcloud binary. Default: `gcloud` on PATH.
	Gcloud string
}

// Emulators are Google's running Firestore and Pub/Sub emulators.
type Emulators struct {
	firestore, pubsub *proc
}

// MissingError says which part of the Google Cloud CLI install is missing.
type MissingError struct {
	Component string // "gcloud", "java", "cloud-firestore-emulator" or "pubsub-emulator"
	Hint      string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("google emulators: %s is missing: %s", e.Component, e.Hint)
}

// Check reports a *MissingError when gcloud, Java or one of the two emulator components is
// absent.
func Check(gcloud string) error {
	if gcloud == "" {
		gcloud = "gcloud"
	}
	bin, err := exec.LookPath(gcloud)
	if err != nil {
		return &MissingError{Component: "gcloud", Hint: "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) and put gcloud on PATH"}
	}
	if _, err := exec.LookPath("java"); err != nil {
		return &MissingError{Component: "java", Hint: "Google's emulators need a Java runtime (11 or later) on PATH, e.g. apt-get install openjdk-17-jre-headless"}
	}
	root, err := sdkRoot(bin)
	if err != nil {
		return err
	}
	for _, c := range []string{"cloud-firestore-emulator", "pubsub-emulator"} {
		if _, err := os.Stat(filepath.Join(root, "platform", c)); err != nil {
			return &MissingError{Component: c, Hint: fmt.Sprintf("not found under %s/platform; run `gcloud components install %s` (or apt-get install google-cloud-cli-%s)",
				root, c, strings.TrimPrefix(c, "cloud-"))}
		}
	}
	return nil
}

// sdkRoot is the CLI's install directory, as `gcloud info` names it.
func sdkRoot(gcloud string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, gcloud, "info", "--format=value(installation.sdk_root)").Output()
	if err != nil {
		return "", fmt.Errorf("google emulators: gcloud info: %w", err)
	}
	root := strings.TrimSpace(string(out))
	if root == "" {
		return "", fmt.Errorf("google emulators: gcloud info named no install directory")
	}
	return root, nil
}

// Start checks the install, starts both emulators at once and returns when both answer `Ok`.
func Start(ctx context.Context, o Options) (*Emulators, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.ProjectID == "" {
		o.ProjectID = "leadpipe-local"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 90 * time.Second
	}
	if o.Gcloud == "" {
		o.Gcloud = "gcloud"
	}
	if err := Check(o.Gcloud); err != nil {
		return nil, err
	}
	fsAddr, err := hostPort(o.Host, o.FirestorePort)
	if err != nil {
		return nil, err
	}
	psAddr, err := hostPort(o.Host, o.PubSubPort)
	if err != nil {
		return nil, err
	}
	e := &Emulators{}
	if e.firestore, err = start(o, "firestore", fsAddr, "emulators", "firestore", "start", "--host-port="+fsAddr); err != nil {
		return nil, err
	}
	if e.pubsub, err = start(o, "pubsub", psAddr, "beta", "emulators", "pubsub", "start", "--host-port="+psAddr, "--project="+o.ProjectID); err != nil {
		e.Close()
		return nil, err
	}
	errc := make(chan error, 2)
	for _, p := range []*proc{e.firestore, e.pubsub} {
		go func() { errc <- p.waitOk(ctx, o.ReadyTimeout) }()
	}
	err = errors.Join(<-errc, <-errc)
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// FirestoreAddr is the Firestore emulator's host:port (FIRESTORE_EMULATOR_HOST).
func (e *Emulators) FirestoreAddr() string { return e.firestore.addr }

// PubSubAddr is the Pub/Sub emulator's host:port (PUBSUB_EMULATOR_HOST).
func (e *Emulators) PubSubAddr() string { return e.pubsub.addr }

// PIDs are the process group ids of the two emulators (for tests checking that Close leaves
// nothing behind).
func (e *Emulators) PIDs() []int {
	var out []int
	for _, p := range []*proc{e.firestore, e.pubsub} {
		if p != nil {
			out = append(out, p.cmd.Process.Pid)
		}
	}
	return out
}

// Close stops both emulators and every process they started. Safe to call twice.
func (e *Emulators) Close() error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*proc{e.firestore, e.pubsub} {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.stop() }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

type proc struct {
	name, addr string
	cmd        *exec.Cmd
	exited     chan struct{}
	waitErr    error
	once       sync.Once
	stopErr    error
	tail       *tail
}

func start(o Options, name, addr string, args ...string) (*proc, error) {
	cmd := exec.Command(o.Gcloud, args...)
	// Own process group: Ctrl-C on a terminal does not reach the emulators directly, and stop
	// signals the gcloud wrapper and its Java child together. Pdeathsig stops the wrapper if
	// this process dies without closing.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdin = nil
	p := &proc{name: name, addr: addr, cmd: cmd, exited: make(chan struct{}), tail: &tail{}}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s emulator: %w", name, err)
	}
	log := o.Logger.With("emulator", name)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.tail.add(line)
			log.Debug(line)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.waitErr = cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	return p, nil
}

// waitOk polls GET / until it answers Ok, the process exits, or the timeout passes.
func (p *proc) waitOk(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get("http://" + p.addr + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "Ok" {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s emulator exited before it answered Ok (%v); last output:\n%s", p.name, p.waitErr, p.tail.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s emulator on %s did not answer Ok within %s; last output:\n%s", p.name, p.addr, timeout, p.tail.String())
		}
	}
}

// stop stops the emulator and waits until no process of its group is left: first SIGTERM to
// the group's members other than the gcloud wrapper (the Java emulator, and for Firestore its
// shell script), so each parent reaps its child and no zombie is left for init; then SIGTERM
// to the whole group after 10 s, and SIGKILL 10 s later.
func (p *proc) stop() error {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		for _, pid := range groupMembers(pgid) {
			if pid != pgid {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		step, deadline := 0, time.Now().Add(10*time.Second)
		for len(groupMembers(pgid)) > 0 {
			if time.Now().After(deadline) {
				switch step {
				case 0:
					_ = syscall.Kill(-pgid, syscall.SIGTERM)
				case 1:
					_ = syscall.Kill(-pgid, syscall.SIGKILL)
				default:
					p.stopErr = fmt.Errorf("%s emulator: process group %d still alive after SIGKILL", p.name, pgid)
					return
				}
				step, deadline = step+1, time.Now().Add(10*time.Second)
			}
			time.Sleep(50 * time.Millisecond)
		}
		<-p.exited
	})
	return p.stopErr
}

// groupAlive reports whether a live (non-zombie) process is left in the process group.
func groupAlive(pgid int) bool { return len(groupMembers(pgid)) > 0 }

// groupMembers lists the live (non-zombie) processes of a process group, from /proc.
func groupMembers(pgid int) []int {
	if err := syscall.Kill(-pgid, 0); err != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pgid}
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

func hostPort(host string, port int) (string, error) {
	if port != 0 {
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tail keeps the last lines of an emulator's output for error messages.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 20 {
		t.lines = t.lines[len(t.lines)-20:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
