// Package server is the one HTTP server helper every service uses: it opens its listener in
// the constructor (port 0 works in tests), sets ReadHeaderTimeout, and shuts down gracefully
// when the context ends, inside Cloud Run's 10 s SIGTERM grace.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server serves one http.Handler on a listener it owns.
type Server struct {
	ln              net.Listener
	shutdownTimeout time.Duration
}

// New listens on addr ("host:port", ":8080", "127.0.0.1:0"). A bare port such as "8080" is
// taken as ":8080".
func New(addr string) (*Server, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = ":" + addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return &Server{ln: ln, shutdownTimeout: 8 * time.Second}, nil
}

// WithShutdownTimeout sets how long in-flight requests get after the context ends.
func (s *Server) WithShutdownTimeout(d time.Duration) *Server {
	if d > 0 {
		s.shutdownTimeout = d
	}
	return s
}

// Addr is the listener's address, e.g. "127.0.0.1:43127".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is "http://" + the listener's address, with an unspecified host replaced by 127.0.0.1.
func (s *Server) URL() string {
	host, port, _ := net.SplitHostPort(s.Addr())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// ServeHTTP serves h until ctx ends, then stops accepting, waits for in-flight requests up to
// the shutdown timeout, and returns. It returns nil on a clean shutdown. Request contexts carry
// ctx's values (such as the logger from common/logging), not its cancellation.
func (s *Server) ServeHTTP(ctx context.Context, h http.Handler) error {
	// Requests inherit the values of ctx (the logger above all) but not its cancellation:
	// in-flight requests finish during the graceful shutdown.
	base := context.WithoutCancel(ctx)
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return base },
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
		defer cancel()
		errc <- srv.Shutdown(sctx)
	}()
	if err := srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
