package devstacktest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/server"
)

// RunFunc is a service's service.Run.
type RunFunc func(ctx context.Context, env config.Lookuper, srv *server.Server) error

// Service is a service running in the test process on a free port.
type Service struct {
	URL    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Serve runs run on a free port with the emulators' configuration plus vars (Lookuper) and
// returns once its /readyz answers 200, or with an error if it exits or is not ready in 30 s.
// The caller stops it with Stop.
func (e *Env) Serve(run RunFunc, vars map[string]string) (*Service, error) {
	srv, err := server.New("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{URL: srv.URL(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, e.Lookuper(vars), srv) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-s.done:
			cancel()
			return nil, fmt.Errorf("service exited before it was ready: %v", err)
		default:
		}
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("service at %s not ready after 30s (last error: %v)", s.URL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop cancels the service's context and returns what its Run returned. Safe to call twice.
func (s *Service) Stop() error {
	s.once.Do(func() {
		s.cancel()
		s.err = <-s.done
	})
	return s.err
}

// Eventually polls cond every 100 ms until it holds, or fails t after d with cond's last
// message: the e2e suites' one way to wait on the pipeline.
func Eventually(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %v; last: %s", what, d, last)
}
