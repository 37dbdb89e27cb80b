package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/server"
)

func TestNewAddrForms(t *testing.T) {
	tests := []struct {
		name     string
		addr     string
		wantHost string
	}{
		{"loopback port 0", "127.0.0.1:0", "127.0.0.1"},
		{"bare port 0", "0", "127.0.0.1"},
		{"colon port 0", ":0", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := server.New(tt.addr)
			if err != nil {
				t.Fatalf("New(%q): %v", tt.addr, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := serve(t, ctx, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			defer func() { cancel(); <-done }()

			_, port, err := net.SplitHostPort(s.Addr())
			if err != nil || port == "0" || port == "" {
				t.Fatalf("Addr() = %q: want a real port (err %v)", s.Addr(), err)
			}
			wantURL := "http://" + net.JoinHostPort(tt.wantHost, port)
			if got := s.URL(); got != wantURL {
				t.Errorf("URL(): got %q, want %q", got, wantURL)
			}
		})
	}
}

func TestNewPortInUse(t *testing.T) {
	s, err := server.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := serve(t, ctx, s, http.NotFoundHandler())
	defer func() { cancel(); <-done }()
	if _, err := server.New(s.Addr()); err == nil {
		t.Errorf("New(%q) on a taken port: got nil error, want one", s.Addr())
	}
}

// serve runs s.ServeHTTP in the background and returns its result channel.
func serve(t *testing.T, ctx context.Context, s *server.Server, h http.Handler) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.ServeHTTP(ctx, h) }()
	return done
}

func TestServesHandler(t *testing.T) {
	s, err := server.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "hi "+r.PathValue("name"))
	})
	done := serve(t, ctx, s, mux)

	resp, err := http.Get(s.URL() + "/hello/bob")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(body) != "hi bob" {
		t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, http.StatusTeapot, "hi bob")
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeHTTP after cancel: got %v, want nil", err)
	}
}

// TestGracefulShutdown: a request in flight when the context ends completes with its full
// response, ServeHTTP returns nil, and the port refuses new connections afterwards.
func TestGracefulShutdown(t *testing.T) {
	s, err := server.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.WithShutdownTimeout(10 * time.Second)
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := serve(t, ctx, s, h)

	type result struct {
		status int
		body   string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := http.Get(s.URL() + "/slow")
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		resc <- result{resp.StatusCode, string(b), err}
	}()

	<-started
	cancel()

	// Shutdown closes the listener first: wait (generously) until a new connection is refused,
	// while the slow request is still held.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted 5s after the context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("ServeHTTP returned %v while a request was in flight", err)
	default:
	}

	close(release)
	r := <-resc
	if r.err != nil || r.status != http.StatusOK || r.body != "finished" {
		t.Errorf("in-flight request: got (%d, %q, %v), want (200, %q, nil)", r.status, r.body, r.err, "finished")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeHTTP: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP did not return after the in-flight request completed")
	}
	if _, err := http.Get(s.URL() + "/after"); err == nil {
		t.Error("GET after shutdown: got a response, want a connection error")
	}
}

// TestShutdownTimeout: a request that outlives the shutdown timeout makes ServeHTTP return a
// shutdown error (deadline exceeded) instead of hanging.
func TestShutdownTimeout(t *testing.T) {
	s, err := server.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.WithShutdownTimeout(100 * time.Millisecond)
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := serve(t, ctx, s, h)
	go func() {
		resp, err := http.Get(s.URL())
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "shutdown:") {
			t.Errorf("ServeHTTP: got %v, want a %q error wrapping context.DeadlineExceeded", err, "shutdown:")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP did not return after the shutdown timeout")
	}
}

func TestWithShutdownTimeoutIgnoresNonPositive(t *testing.T) {
	s, err := server.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.WithShutdownTimeout(0); got != s {
		t.Errorf("WithShutdownTimeout: got %p, want the receiver %p", got, s)
	}
	// A zero timeout would make Shutdown give up at once; prove the default still applies by
	// shutting down with a request that needs a moment.
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := serve(t, ctx, s, h)
	go func() {
		if resp, err := http.Get(s.URL()); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeHTTP: got %v, want nil (default timeout kept)", err)
	}
}

type ctxKey struct{}

// TestRequestsInheritServeContextValues: handlers see the values of the context ServeHTTP was
// given (the service's logger), and cancelling it does not cancel a request in flight.
func TestRequestsInheritServeContextValues(t *testing.T) {
	s, err := server.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "svc-logger"))
	started := make(chan struct{})
	got := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(100 * time.Millisecond)
		v, _ := r.Context().Value(ctxKey{}).(string)
		if r.Context().Err() != nil {
			v += " (cancelled)"
		}
		got <- v
	})
	done := make(chan error, 1)
	go func() { done <- s.ServeHTTP(ctx, h) }()
	go func() {
		resp, err := http.Get(s.URL())
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	if v := <-got; v != "svc-logger" {
		t.Errorf("request context value = %q, want %q", v, "svc-logger")
	}
	if err := <-done; err != nil {
		t.Errorf("ServeHTTP = %v", err)
	}
}
