// Package procs runs leadpipe's services as separate OS processes for `devstack up
// --processes`: the same cmd binaries Cloud Run runs, built once into a cache directory,
// each with its own environment, port and log file. A Service handle can SIGKILL and restart
// its process (the crash scenario) and read its CPU time and peak RSS from /proc (the
// benchmarks). Linux only for the /proc readings; starting and stopping work anywhere Go runs.
package procs

import (
	"context"
	"errors"
	"fmt"
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

// Binaries are the service commands devstack builds, by service name.
var Binaries = map[string]string{
	"ingest":    "./ingest/cmd/ingest",
	"processor": "./processor/cmd/processor",
	"replayer":  "./replayer/cmd/replayer",
}

// ModuleDir is the root of the leadpipe module that contains the working directory
// (`go env GOMOD`'s directory).
func ModuleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the leadpipe module (go env GOMOD is empty): run devstack from the repository")
	}
	return filepath.Dir(gomod), nil
}

// Build compiles the three service binaries of the module at moduleDir into outDir with one
// `go build` (Go's build cache makes a rebuild of unchanged code quick) and returns their
// paths by service name.
func Build(ctx context.Context, moduleDir, outDir string) (map[string]string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("build dir: %w", err)
	}
	args := []string{"build", "-o", outDir + string(filepath.Separator)}
	paths := map[string]string{}
	for name, pkg := range Binaries {
		args = append(args, pkg)
		paths[name] = filepath.Join(outDir, name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build services: %w\n%s", err, out)
	}
	return paths, nil
}

// FreePort returns a TCP port on host that was free a moment ago.
func FreePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Spec describes one service process.
type Spec struct {
	Name string // "ingest", "processor-2", ...; names the log file
	Bin  string
	Args []string
	Host string // default 127.0.0.1; the URL's host (services listen on :PORT)
	Port int    // 0: a free port, kept across restarts
	// Env is the process's whole environment besides PORT (nothing is inherited).
	Env map[string]string
	// LogPath receives the process's stdout and stderr, appended across restarts.
	LogPath string
	// ReadyPath is polled after a start until it answers 200. Default /readyz.
	ReadyPath string
	// ReadyTimeout bounds that wait. Default 30s.
	ReadyTimeout time.Duration
}

// Service is one running service process.
type Service struct {
	spec Spec

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	// prior is the usage of earlier incarnations (read just before each was stopped).
	prior Usage
	// starts counts incarnations.
	starts int
}

// Start starts the process and waits until it is ready.
func Start(ctx context.Context, spec Spec) (*Service, error) {
	if spec.Host == "" {
		spec.Host = "127.0.0.1"
	}
	if spec.ReadyPath == "" {
		spec.ReadyPath = "/readyz"
	}
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = 30 * time.Second
	}
	if spec.Port == 0 {
		p, err := FreePort(spec.Host)
		if err != nil {
			return nil, fmt.Errorf("%s: port: %w", spec.Name, err)
		}
		spec.Port = p
	}
	s := &Service{spec: spec}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Name is the service's name.
func (s *Service) Name() string { return s.spec.Name }

// URL is "http://host:port".
func (s *Service) URL() string {
	return "http://" + net.JoinHostPort(s.spec.Host, strconv.Itoa(s.spec.Port))
}

// LogPath is the file the process logs to.
func (s *Service) LogPath() string { return s.spec.LogPath }

// PID is the current process's id; 0 when it is not running.
func (s *Service) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.exited() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Starts is how many times the process was started (1 + restarts).
func (s *Service) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

func (s *Service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Service) start(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(s.spec.LogPath), 0o755); err != nil {
		return fmt.Errorf("%s: log dir: %w", s.spec.Name, err)
	}
	logf, err := os.OpenFile(s.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", s.spec.Name, err)
	}
	env := make([]string, 0, len(s.spec.Env)+1)
	for k, v := range s.spec.Env {
		if k != "PORT" {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "PORT="+strconv.Itoa(s.spec.Port))
	cmd := exec.Command(s.spec.Bin, s.spec.Args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start %s: %w", s.spec.Name, s.spec.Bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.starts++
	s.mu.Unlock()
	return s.waitReady(ctx, done)
}

func (s *Service) waitReady(ctx context.Context, done <-chan struct{}) error {
	deadline := time.Now().Add(s.spec.ReadyTimeout)
	u := s.URL() + s.spec.ReadyPath
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (see %s)", s.spec.Name, s.spec.LogPath)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (last: %v; see %s)", s.spec.Name, s.spec.ReadyTimeout, last, s.spec.LogPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits for the process to be gone. Killing a stopped service is a
// no-op.
func (s *Service) Kill() error {
	return s.signal(syscall.SIGKILL, 5*time.Second)
}

// Stop sends SIGTERM (a graceful shutdown) and waits up to timeout, then SIGKILLs.
func (s *Service) Stop(timeout time.Duration) error {
	err := s.signal(syscall.SIGTERM, timeout)
	if err != nil {
		return errors.Join(err, s.Kill())
	}
	return nil
}

func (s *Service) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if u, err := readUsage(cmd.Process.Pid); err == nil {
		s.mu.Lock()
		s.prior.CPU += u.CPU
		s.prior.PeakRSS = max(s.prior.PeakRSS, u.PeakRSS)
		s.mu.Unlock()
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: signal %v: %w", s.spec.Name, sig, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("%s: still running %v after %v", s.spec.Name, wait, sig)
	}
}

// Restart kills the process if it runs (SIGKILL: a crash, not a shutdown), starts it again on
// the same port and waits until it is ready.
func (s *Service) Restart(ctx context.Context) error {
	if err := s.Kill(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Usage is a process's resource use.
type Usage struct {
	// CPU is user plus system time (utime+stime of /proc/PID/stat).
	CPU time.Duration
	// PeakRSS is the peak resident set size in bytes (VmHWM of /proc/PID/status).
	PeakRSS int64
}

// Usage reads the current process's CPU time and peak RSS. Total adds the usage of the
// incarnations before the last restart (CPU summed, peak RSS the maximum).
func (s *Service) Usage() (cur, total Usage, err error) {
	pid := s.PID()
	s.mu.Lock()
	prior := s.prior
	s.mu.Unlock()
	if pid == 0 {
		return Usage{}, prior, fmt.Errorf("%s is not running", s.spec.Name)
	}
	cur, err = readUsage(pid)
	if err != nil {
		return Usage{}, prior, err
	}
	return cur, Usage{CPU: prior.CPU + cur.CPU, PeakRSS: max(prior.PeakRSS, cur.PeakRSS)}, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux platform Go
// supports (sysconf(_SC_CLK_TCK) without cgo).
const clockTicks = 100

func readUsage(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	cpu, err := ParseStatCPU(string(stat))
	if err != nil {
		return Usage{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("read status of %d: %w", pid, err)
	}
	rss, err := ParseStatusHWM(string(status))
	if err != nil {
		return Usage{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return Usage{CPU: cpu, PeakRSS: rss}, nil
}

// ParseStatCPU returns utime+stime from the text of /proc/PID/stat. The command name (field 2)
// is in parentheses and may hold spaces, so fields are counted from the last ')'.
func ParseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command field")
	}
	f := strings.Fields(stat[i+1:])
	// After the command: state(3) ppid(4) ... utime(14) stime(15); f[0] is field 3.
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// ParseStatusHWM returns VmHWM in bytes from the text of /proc/PID/status.
func ParseStatusHWM(status string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmHWM %q", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("status: no VmHWM")
}
