// Package gcsemu runs fake-gcs-server in-process so that the unmodified
// cloud.google.com/go/storage client, pointed at it through
// STORAGE_EMULATOR_HOST, reads and writes objects as it would against Cloud
// Storage.
//
// The server answers both the JSON API (uploads, metadata, listing) and the
// XML API the client uses for reads by default. fake-gcs-server routes XML
// requests by comparing the request's Host header with its "public host", so
// the emulator sets that to its own listening address: clients must use
// exactly Addr() (not a different spelling such as localhost for 127.0.0.1).
package gcsemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// Addr is the TCP address to listen on. Optional; default "127.0.0.1:0"
	// (a free port, chosen when listening).
	Addr string
	// Logger receives serving errors. Optional; default slog.Default().
	Logger *slog.Logger
	// Buckets are created before Start returns. Optional.
	Buckets []string
}

// Server is a running in-process GCS emulator. Its methods are safe for
// concurrent use.
type Server struct {
	fake *fakestorage.Server
	http *http.Server
	addr string
	done chan struct{}
}

// Start listens on opts.Addr at once and serves the GCS JSON and XML APIs
// until Close. The listener is opened before fake-gcs-server is built, so the
// public host it routes XML reads by is the real host:port even when port 0
// was requested.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	l, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("gcsemu: listen %s: %w", opts.Addr, err)
	}
	addr := l.Addr().String()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("gcsemu: parse address %s: %w", addr, err)
	}
	var portNum uint16
	fmt.Sscan(port, &portNum)
	fake, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme:      "http",
		Host:        host,
		Port:        portNum,
		PublicHost:  addr,
		ExternalURL: "http://" + addr,
		NoListener:  true, // we serve its handler on our own listener
		Writer:      io.Discard,
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("gcsemu: start fake-gcs-server: %w", err)
	}
	s := &Server{
		fake: fake,
		addr: addr,
		done: make(chan struct{}),
		http: &http.Server{
			Handler:           fake.HTTPHandler(),
			ReadHeaderTimeout: 10 * time.Second,
		},
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("gcsemu: serve", "error", err)
		}
	}()
	for _, b := range opts.Buckets {
		s.CreateBucket(b)
	}
	return s, nil
}

// Addr returns the host:port to put in STORAGE_EMULATOR_HOST.
func (s *Server) Addr() string { return s.addr }

// URL returns "http://" + Addr(), the base URL of both APIs.
func (s *Server) URL() string { return "http://" + s.addr }

// CreateBucket creates the bucket if it does not exist yet.
func (s *Server) CreateBucket(name string) {
	s.fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
}

// Close stops serving, waiting up to five seconds for requests in flight.
// The stored objects are discarded.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	<-s.done
	s.fake.Stop()
	return err
}
