package pubsubemu

import (
	"context"
	"strings"
	"sync"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Pull clients get per-subscription delivery counting too: the emulator
// counts each message it hands out, sets delivery_attempt when the
// subscription has a dead-letter policy, and forwards the message to the
// dead-letter topic instead of delivering it beyond max_delivery_attempts.

// Pull wraps pstest's Pull with per-subscription dead-lettering.
func (s *subscriber) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	res, err := s.GServer.Pull(ctx, req)
	if err != nil {
		return nil, err
	}
	out := &pb.PullResponse{}
	for _, rm := range res.GetReceivedMessages() {
		if m := s.srv.pulled(ctx, req.GetSubscription(), rm, false); m != nil {
			out.ReceivedMessages = append(out.ReceivedMessages, m)
		}
	}
	return out, nil
}

// Acknowledge wraps pstest's Acknowledge to forget delivery counts.
func (s *subscriber) Acknowledge(ctx context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	res, err := s.GServer.Acknowledge(ctx, req)
	if err == nil {
		s.srv.forget(req.GetSubscription(), req.GetAckIds())
	}
	return res, err
}

// StreamingPull wraps pstest's StreamingPull with per-subscription
// dead-lettering.
func (s *subscriber) StreamingPull(stream pb.Subscriber_StreamingPullServer) error {
	return s.GServer.StreamingPull(&pullStream{Subscriber_StreamingPullServer: stream, srv: s.srv})
}

// pullStream intercepts one StreamingPull: acks on the way in, messages on
// the way out.
type pullStream struct {
	pb.Subscriber_StreamingPullServer
	srv *Server

	mu  sync.Mutex
	sub string // from the first request
}

func (p *pullStream) Recv() (*pb.StreamingPullRequest, error) {
	req, err := p.Subscriber_StreamingPullServer.Recv()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if req.GetSubscription() != "" {
		p.sub = req.GetSubscription()
	}
	sub := p.sub
	p.mu.Unlock()
	p.srv.forget(sub, req.GetAckIds())
	return req, nil
}

func (p *pullStream) Send(res *pb.StreamingPullResponse) error {
	if len(res.GetReceivedMessages()) == 0 {
		return p.Subscriber_StreamingPullServer.Send(res)
	}
	p.mu.Lock()
	sub := p.sub
	p.mu.Unlock()
	out := &pb.StreamingPullResponse{SubscriptionProperties: res.GetSubscriptionProperties()}
	for _, rm := range res.GetReceivedMessages() {
		// pstest may hold its lock while this runs: dead-letter
		// asynchronously, since that goes back into pstest.
		if m := p.srv.pulled(p.Context(), sub, rm, true); m != nil {
			out.ReceivedMessages = append(out.ReceivedMessages, m)
		}
	}
	if len(out.ReceivedMessages) == 0 {
		return nil
	}
	return p.Subscriber_StreamingPullServer.Send(out)
}

// pulled counts a delivery of rm through sub and returns the message to
// hand out, or nil when it was dead-lettered instead.
func (s *Server) pulled(ctx context.Context, sub string, rm *pb.ReceivedMessage, async bool) *pb.ReceivedMessage {
	m := proto.Clone(rm).(*pb.ReceivedMessage)
	m.DeliveryAttempt = 0
	s.mu.Lock()
	st := s.subs[sub]
	if st == nil || st.cfg.GetDeadLetterPolicy() == nil {
		s.mu.Unlock()
		return m
	}
	cfg := st.cfg
	id := m.GetMessage().GetMessageId()
	st.pulled[id]++
	n := int32(st.pulled[id])
	s.mu.Unlock()
	if n <= cfg.GetDeadLetterPolicy().GetMaxDeliveryAttempts() {
		m.DeliveryAttempt = n
		return m
	}
	forward := func(ctx context.Context) {
		if err := s.deadLetter(ctx, cfg, m.GetMessage(), n-1); err != nil {
			s.log.Warn("pubsubemu: dead-letter", "subscription", sub, "message_id", id, "error", err)
			return // left outstanding: redelivered when the lease ends
		}
		s.ps.GServer.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: []string{m.GetAckId()}})
		s.forget(sub, []string{m.GetAckId()})
	}
	if async {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			forward(context.WithoutCancel(ctx))
		}()
	} else {
		forward(ctx)
	}
	return nil
}

// forget drops the delivery counts of acked messages.
func (s *Server) forget(sub string, ackIDs []string) {
	if len(ackIDs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.subs[sub]
	if st == nil {
		return
	}
	for _, a := range ackIDs {
		if i := strings.LastIndex(a, ":"); i >= 0 {
			a = a[:i]
		}
		delete(st.pulled, a)
	}
}
