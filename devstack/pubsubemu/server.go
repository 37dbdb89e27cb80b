// Package pubsubemu is a Pub/Sub emulator for local runs and tests: the
// google.pubsub.v1 gRPC API of pstest (cloud.google.com/go/pubsub/v2/pstest)
// plus what pstest lacks, so the unmodified Go client, pointed at it through
// PUBSUB_EMULATOR_HOST, sees the behaviour the product relies on:
//
//   - push delivery to PushConfig.push_endpoint with the exact Pub/Sub JSON
//     envelope, ack on 102/200/201/202/204, nack on anything else, on a
//     connection error or when the ack deadline passes;
//   - the subscription's retry policy (exponential backoff after a nack),
//     push backoff for the whole subscription after nacks, a delivery window
//     that grows with successes, bounded by Options.MaxConcurrentPushes;
//   - dead-letter policies with max_delivery_attempts validated to 5..100
//     and counted per subscription (pstest shares one counter among all
//     subscriptions of a topic), forwarding with the four
//     CloudPubSubDeadLetterSource* attributes, for push and pull;
//   - one outstanding push per ordering key when message ordering is on.
//
// How: the emulator serves its own gRPC server and forwards every call to an
// in-process pstest.GServer, except the subscription admin calls (to keep
// the dead-letter policy out of pstest, which would otherwise dead-letter
// with its shared counter) and the pull calls (to count deliveries per
// subscription). Each push subscription has a worker that leases messages
// from pstest with Pull, holds the lease while it POSTs and backs off, and
// ends it with Acknowledge. See devstack/README.md for the departures from
// real Pub/Sub.
package pubsubemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// Addr is the TCP address of the gRPC server. Optional; default
	// "127.0.0.1:0" (a free port).
	Addr string
	// Logger receives delivery events (debug) and delivery problems (warn).
	// Optional; default slog.Default().
	Logger *slog.Logger
	// MaxConcurrentPushes bounds the pushes in flight per subscription.
	// Optional; default 64.
	MaxConcurrentPushes int
	// MaxPushBackoff caps the pause of a whole push subscription after
	// consecutive nacks (it starts at 100 ms and doubles). Optional; default
	// 60 s as in Pub/Sub. Tests set it low to stay fast.
	MaxPushBackoff time.Duration
	// PushTimeout, when set, replaces the subscription's ack deadline as the
	// time a push endpoint has to answer. Optional; default 0, meaning the
	// ack deadline (10 s unless the subscription sets 10..600 s). Tests use
	// it because Pub/Sub's shortest ack deadline is 10 s.
	PushTimeout time.Duration
	// HTTPClient sends the pushes. Optional; default a client without a
	// timeout of its own (each push carries the ack deadline in its context)
	// that does not follow redirects.
	HTTPClient *http.Client
}

const (
	defaultMaxConcurrentPushes = 64
	defaultMaxPushBackoff      = 60 * time.Second
	// pollInterval is how often a push worker looks for new messages and
	// for retries that are due. pstest itself delivers every 10 ms.
	pollInterval = 5 * time.Millisecond
)

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	ps     *pstest.Server
	gs     *grpc.Server
	lis    net.Listener
	ctx    context.Context // ends at Close; parent of every push
	cancel context.CancelFunc
	wg     sync.WaitGroup // push workers and the gRPC serve loop

	mu   sync.Mutex
	subs map[string]*subState // by full subscription name
}

// subState is what the emulator keeps per subscription on top of pstest.
type subState struct {
	// cfg is the subscription as clients see it, dead-letter policy
	// included. It is replaced, never modified, so readers may keep it.
	cfg    *pb.Subscription
	stats  PushStats
	pulled map[string]int // message id -> deliveries by Pull/StreamingPull
	worker *pushWorker    // nil once deleted
}

// Start starts pstest, listens on opts.Addr at once and serves until Close.
// ctx bounds nothing after Start returns; pass context.Background() or the
// process context (its cancellation does not stop the server; Close does).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxConcurrentPushes <= 0 {
		opts.MaxConcurrentPushes = defaultMaxConcurrentPushes
	}
	if opts.MaxPushBackoff <= 0 {
		opts.MaxPushBackoff = defaultMaxPushBackoff
	}
	if opts.HTTPClient == nil {
		// Pub/Sub does not follow redirects: a 3xx is a nack.
		opts.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pubsubemu: start: %w", err)
	}
	lis, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("pubsubemu: listen %s: %w", opts.Addr, err)
	}
	// pstest insists on a listener of its own; nothing connects to it.
	ps := pstest.NewServerWithAddress("127.0.0.1:0")
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{
		opts: opts,
		log:  opts.Logger,
		ps:   ps,
		// Well above Pub/Sub's 10 MB request limit, so that checkPublish answers, not gRPC's 4 MB default.
		gs:     grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20)),
		lis:    lis,
		ctx:    runCtx,
		cancel: cancel,
		subs:   map[string]*subState{},
	}
	pb.RegisterPublisherServer(s.gs, publisher{GServer: &ps.GServer})
	pb.RegisterSchemaServiceServer(s.gs, &ps.GServer)
	pb.RegisterSubscriberServer(s.gs, &subscriber{GServer: &ps.GServer, srv: s})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("pubsubemu: serve", "error", err)
		}
	}()
	return s, nil
}

// Addr returns the host:port to put in PUBSUB_EMULATOR_HOST.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops the push workers (cancelling pushes in flight), then the gRPC
// server and pstest. Messages not yet acked are lost.
func (s *Server) Close() error {
	s.cancel()
	s.gs.Stop()
	s.wg.Wait()
	return s.ps.Close()
}

// PushStats counts push deliveries of one subscription since it was
// created. Delivered = Acked + Nacked + pushes still in flight.
type PushStats struct {
	Delivered    int // POSTs sent
	Acked        int // answered with an ack status
	Nacked       int // any other status, connection error or timeout
	DeadLettered int // forwarded to the dead-letter topic (push or pull)
}

// PushStats returns the counters of the subscription (full name
// "projects/P/subscriptions/S"); zero for an unknown one.
func (s *Server) PushStats(subscription string) PushStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.subs[subscription]; st != nil {
		return st.stats
	}
	return PushStats{}
}

// Message is a message as published, for inspection in tests.
type Message struct {
	ID          string
	Topic       string
	Data        []byte
	Attributes  map[string]string
	OrderingKey string
	PublishTime time.Time
}

// Messages returns, oldest first, every message published to topic (full
// name "projects/P/topics/T"), dead-lettered copies included; all topics
// when topic is "".
func (s *Server) Messages(topic string) []Message {
	var out []Message
	for _, m := range s.ps.Messages() {
		if topic != "" && m.Topic != topic {
			continue
		}
		attrs := make(map[string]string, len(m.Attributes))
		for k, v := range m.Attributes {
			attrs[k] = v
		}
		out = append(out, Message{
			ID: m.ID, Topic: m.Topic, Data: append([]byte(nil), m.Data...),
			Attributes: attrs, OrderingKey: m.OrderingKey, PublishTime: m.PublishTime,
		})
	}
	return out
}

// config returns the subscription as clients see it, or nil once deleted.
// The result must not be modified.
func (s *Server) config(name string) *pb.Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.subs[name]; st != nil {
		return st.cfg
	}
	return nil
}

// count applies f to the subscription's counters, if it still exists.
func (s *Server) count(name string, f func(*PushStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.subs[name]; st != nil {
		f(&st.stats)
	}
}

// clone copies a subscription proto so that callers never share pstest's.
func clone(sub *pb.Subscription) *pb.Subscription {
	return proto.Clone(sub).(*pb.Subscription)
}
