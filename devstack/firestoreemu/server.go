// Package firestoreemu is an in-process emulator of the google.firestore.v1
// Firestore gRPC API, good enough for the unmodified
// cloud.google.com/go/firestore client pointed at it through
// FIRESTORE_EMULATOR_HOST.
//
// It keeps every database in memory with a short version history per
// document, runs read-write transactions optimistically (reads are recorded
// and re-validated when the transaction commits; the loser gets ABORTED,
// which the client retries), and serves a small HTTP control surface on the
// same port: data reset, health check and fault injection. Differences from
// the real service are listed in devstack/README.md.
//
// A Server is safe for concurrent use. Data of different projects and
// databases is kept apart; the project id is whatever the client sends.
package firestoreemu

import (
	"bufio"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// Addr is the TCP listen address. Optional; default "127.0.0.1:0",
	// where port 0 picks a free port (read it back with Server.Addr).
	Addr string
	// TxnIdleTimeout releases a transaction that has seen no request for
	// this long; its later use or commit fails with INVALID_ARGUMENT
	// "The referenced transaction has expired or is no longer valid."
	// Optional; default 60s, like Firestore. Transactions also expire 270s
	// after they begin, whatever this is set to.
	TxnIdleTimeout time.Duration
	// Logger receives debug logs of failed RPCs and control requests.
	// Optional; default discards.
	Logger *slog.Logger
}

// Server is a running emulator. Create it with Start and stop it with Close.
type Server struct {
	ln     net.Listener
	grpc   *grpc.Server
	http   *http.Server
	store  *store
	txns   *txnTable
	faults *Faults
	counts *counter
	log    *slog.Logger

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Start listens on opts.Addr at once and serves gRPC and HTTP on that one
// port in the background until Close.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TxnIdleTimeout <= 0 {
		opts.TxnIdleTimeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		ln:     ln,
		store:  newStore(),
		txns:   newTxnTable(opts.TxnIdleTimeout),
		faults: newFaults(),
		counts: newCounter(),
		log:    opts.Logger,
		stop:   make(chan struct{}),
	}
	s.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.counts.unaryInterceptor, s.faults.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.counts.streamInterceptor, s.faults.streamInterceptor),
		grpc.MaxRecvMsgSize(math.MaxInt32),
		grpc.MaxSendMsgSize(math.MaxInt32),
	)
	pb.RegisterFirestoreServer(s.grpc, &rpcServer{s: s})
	s.http = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second}

	grpcLn, httpLn := newChanListener(ln.Addr()), newChanListener(ln.Addr())
	s.wg.Add(4)
	go func() { defer s.wg.Done(); _ = s.grpc.Serve(grpcLn) }()
	go func() { defer s.wg.Done(); _ = s.http.Serve(httpLn) }()
	go func() { defer s.wg.Done(); s.acceptLoop(grpcLn, httpLn) }()
	go func() { defer s.wg.Done(); s.sweepLoop(opts.TxnIdleTimeout) }()
	return s, nil
}

// Addr returns "host:port", suitable for FIRESTORE_EMULATOR_HOST.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving, drops open connections and waits for the background
// goroutines. Data is discarded.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		err = s.ln.Close()
		s.grpc.Stop()
		_ = s.http.Close()
		s.wg.Wait()
	})
	return err
}

// Reset drops every document of every database and every open transaction.
func (s *Server) Reset() {
	s.store.reset()
	s.txns.reset()
}

// Faults returns the fault injector that every RPC passes through.
func (s *Server) Faults() *Faults { return s.faults }

func (s *Server) sweepLoop(idle time.Duration) {
	every := min(max(idle/2, 10*time.Millisecond), time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.txns.sweep()
		}
	}
}

// acceptLoop demultiplexes the one listener: connections that open with the
// HTTP/2 client preface ("PRI * HTTP/2.0...") are gRPC, the rest HTTP/1.1.
// Handing gRPC connections straight to grpc.Server.Serve is much faster
// than grpc.Server.ServeHTTP behind net/http.
func (s *Server) acceptLoop(grpcLn, httpLn *chanListener) {
	defer grpcLn.Close()
	defer httpLn.Close()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go func() {
			br := bufio.NewReader(c)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			head, err := br.Peek(3)
			_ = c.SetReadDeadline(time.Time{})
			if err != nil {
				_ = c.Close()
				return
			}
			pc := &peekedConn{Conn: c, r: br}
			if string(head) == "PRI" {
				grpcLn.deliver(pc)
			} else {
				httpLn.deliver(pc)
			}
		}()
	}
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by acceptLoop.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
