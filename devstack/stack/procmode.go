package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/devstack/procs"
)

// Process mode (`devstack up --processes`): the emulators and the fake CRM stay in this
// process; ingest, the processor(s) and the replayer run as the cmd binaries Cloud Run runs,
// built once into Options.BinDir, each with the environment the in-process stack would give it
// plus its PORT, logging to LogDir/<name>.log. The push subscription targets a round-robin
// proxy served on the processor port, which spreads pushes over the processor processes
// (Cloud Run's load balancer in the cloud). Close stops them with SIGTERM.

// reservePort returns the URL of port on o.Host, a free one when port is 0.
func (o *Options) reservePort(port int) (string, error) {
	if port == 0 {
		p, err := procs.FreePort(o.Host)
		if err != nil {
			return "", err
		}
		port = p
	}
	return "http://" + net.JoinHostPort(o.Host, strconv.Itoa(port)), nil
}

func urlPort(u string) int {
	_, p, _ := net.SplitHostPort(u[len("http://"):])
	n, _ := strconv.Atoi(p)
	return n
}

func (o *Options) procDefaults() error {
	if o.Processors <= 0 {
		o.Processors = 1
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(".devstack", "logs")
	}
	if o.BinDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		o.BinDir = filepath.Join(dir, "leadpipe-devstack", "bin")
	}
	return nil
}

func (s *Stack) startProcesses(ctx context.Context, o Options, env map[string]string, procSrv *server.Server) error {
	if err := o.procDefaults(); err != nil {
		return err
	}
	mod, err := procs.ModuleDir(ctx)
	if err != nil {
		return err
	}
	bins, err := procs.Build(ctx, mod, o.BinDir)
	if err != nil {
		return err
	}
	// The processes inherit nothing from this one but what a binary needs to run here.
	penv := map[string]string{"LOG_FORMAT": "json"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "OTEL_EXPORTER"} {
		if v, ok := os.LookupEnv(k); ok {
			penv[k] = v
		}
	}
	for k, v := range env {
		penv[k] = v
	}
	spec := func(name, bin string, port int) procs.Spec {
		return procs.Spec{Name: name, Bin: bin, Host: o.Host, Port: port, Env: penv, LogPath: filepath.Join(o.LogDir, name+".log")}
	}
	// The processors first: the replayer and ingest's sweep publish as soon as they run.
	var backends []string
	for i := range o.Processors {
		name := "processor"
		if o.Processors > 1 {
			name = fmt.Sprintf("processor-%d", i+1)
		}
		p, err := procs.Start(ctx, spec(name, bins["processor"], 0))
		if err != nil {
			return err
		}
		s.Processors = append(s.Processors, p)
		backends = append(backends, p.URL())
	}
	rr, err := procs.NewRoundRobin(backends)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := procSrv.ServeHTTP(runCtx, rr); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("processor proxy: %w", err))
			s.mu.Unlock()
		}
	}()
	if s.Ingest, err = procs.Start(ctx, spec("ingest", bins["ingest"], urlPort(s.IngestURL))); err != nil {
		return err
	}
	if s.Replayer, err = procs.Start(ctx, spec("replayer", bins["replayer"], urlPort(s.ReplayerURL))); err != nil {
		return err
	}
	return s.waitReady(ctx)
}

// Services are the service processes in process mode: ingest, the processors, the replayer.
func (s *Stack) Services() []*procs.Service {
	var out []*procs.Service
	if s.Ingest != nil {
		out = append(out, s.Ingest)
	}
	out = append(out, s.Processors...)
	if s.Replayer != nil {
		out = append(out, s.Replayer)
	}
	return out
}

// stopProcesses sends SIGTERM to every service process at once and waits for them, SIGKILLing
// those still running after 10 s (Cloud Run's grace).
func (s *Stack) stopProcesses() {
	svcs := s.Services()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, p := range svcs {
		wg.Go(func() {
			if err := p.Stop(10 * time.Second); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
	}
}
