package pubsubemu

import (
	"context"
	"slices"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// subscriber serves google.pubsub.v1.Subscriber: pstest's implementation,
// with the subscription admin calls and the pull calls wrapped.
type subscriber struct {
	*pstest.GServer
	srv *Server
}

var _ pb.SubscriberServer = (*subscriber)(nil)

const (
	defaultMaxDeliveryAttempts = 5
	minMaxDeliveryAttempts     = 5
	maxMaxDeliveryAttempts     = 100
	maxBackoff                 = 600 * time.Second
)

// CreateSubscription validates what pstest does not, hands pstest the
// subscription without its dead-letter policy and starts its push worker.
func (s *subscriber) CreateSubscription(ctx context.Context, req *pb.Subscription) (*pb.Subscription, error) {
	if err := s.validate(ctx, req, nil); err != nil {
		return nil, err
	}
	dlp := normalizeDeadLetter(req.GetDeadLetterPolicy())
	in := clone(req)
	in.DeadLetterPolicy = nil
	out, err := s.GServer.CreateSubscription(ctx, in)
	if err != nil {
		return nil, err
	}
	cfg := clone(out)
	cfg.DeadLetterPolicy = dlp
	w := newPushWorker(s.srv, cfg.Name)
	s.srv.mu.Lock()
	s.srv.subs[cfg.Name] = &subState{cfg: cfg, pulled: map[string]int{}, worker: w}
	s.srv.mu.Unlock()
	w.start()
	return clone(cfg), nil
}

// GetSubscription returns pstest's view with our dead-letter policy.
func (s *subscriber) GetSubscription(ctx context.Context, req *pb.GetSubscriptionRequest) (*pb.Subscription, error) {
	out, err := s.GServer.GetSubscription(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.merge(out), nil
}

// ListSubscriptions returns pstest's view with our dead-letter policies.
func (s *subscriber) ListSubscriptions(ctx context.Context, req *pb.ListSubscriptionsRequest) (*pb.ListSubscriptionsResponse, error) {
	out, err := s.GServer.ListSubscriptions(ctx, req)
	if err != nil {
		return nil, err
	}
	res := &pb.ListSubscriptionsResponse{NextPageToken: out.NextPageToken}
	for _, sub := range out.Subscriptions {
		res.Subscriptions = append(res.Subscriptions, s.merge(sub))
	}
	return res, nil
}

// UpdateSubscription applies dead_letter_policy itself and forwards the
// other paths to pstest. The push worker reads the new configuration before
// its next push.
func (s *subscriber) UpdateSubscription(ctx context.Context, req *pb.UpdateSubscriptionRequest) (*pb.Subscription, error) {
	if req.GetSubscription() == nil || len(req.GetUpdateMask().GetPaths()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "update_mask and subscription are required")
	}
	paths := req.GetUpdateMask().GetPaths()
	if err := s.validate(ctx, req.GetSubscription(), paths); err != nil {
		return nil, err
	}
	name := req.GetSubscription().GetName()
	if s.srv.config(name) == nil {
		return nil, status.Errorf(codes.NotFound, "subscription %s", name)
	}
	rest := slices.DeleteFunc(slices.Clone(paths), func(p string) bool { return p == "dead_letter_policy" })
	var out *pb.Subscription
	var err error
	if len(rest) > 0 {
		in := clone(req.GetSubscription())
		in.DeadLetterPolicy = nil
		out, err = s.GServer.UpdateSubscription(ctx, &pb.UpdateSubscriptionRequest{
			Subscription: in, UpdateMask: &fieldmaskpb.FieldMask{Paths: rest},
		})
	} else {
		out, err = s.GServer.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: name})
	}
	if err != nil {
		return nil, err
	}
	cfg := clone(out)
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	st := s.srv.subs[name]
	if st == nil {
		return nil, status.Errorf(codes.NotFound, "subscription %s", name)
	}
	cfg.DeadLetterPolicy = st.cfg.GetDeadLetterPolicy()
	if slices.Contains(paths, "dead_letter_policy") {
		cfg.DeadLetterPolicy = normalizeDeadLetter(req.GetSubscription().GetDeadLetterPolicy())
	}
	st.cfg = cfg
	return clone(cfg), nil
}

// ModifyPushConfig, which pstest lacks, is an update of push_config.
func (s *subscriber) ModifyPushConfig(ctx context.Context, req *pb.ModifyPushConfigRequest) (*emptypb.Empty, error) {
	_, err := s.UpdateSubscription(ctx, &pb.UpdateSubscriptionRequest{
		Subscription: &pb.Subscription{Name: req.GetSubscription(), PushConfig: req.GetPushConfig()},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"push_config"}},
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteSubscription deletes in pstest and stops the push worker; pushes in
// flight are cancelled.
func (s *subscriber) DeleteSubscription(ctx context.Context, req *pb.DeleteSubscriptionRequest) (*emptypb.Empty, error) {
	out, err := s.GServer.DeleteSubscription(ctx, req)
	if err != nil {
		return nil, err
	}
	s.srv.mu.Lock()
	st := s.srv.subs[req.GetSubscription()]
	delete(s.srv.subs, req.GetSubscription())
	s.srv.mu.Unlock()
	if st != nil && st.worker != nil {
		st.worker.stop()
	}
	return out, nil
}

// merge copies pstest's subscription and puts our dead-letter policy in.
func (s *subscriber) merge(sub *pb.Subscription) *pb.Subscription {
	out := clone(sub)
	if cfg := s.srv.config(sub.GetName()); cfg != nil {
		out.DeadLetterPolicy = cfg.GetDeadLetterPolicy()
	}
	return out
}

// validate checks the fields Pub/Sub validates and pstest does not. paths
// limits the check to an update's mask; nil means a create.
func (s *subscriber) validate(ctx context.Context, sub *pb.Subscription, paths []string) error {
	has := func(p string) bool { return paths == nil || slices.Contains(paths, p) }
	if has("ack_deadline_seconds") {
		if ad := sub.GetAckDeadlineSeconds(); ad != 0 && (ad < 10 || ad > 600) {
			return status.Errorf(codes.InvalidArgument, "ack_deadline_seconds must be between 10 and 600, got %d", ad)
		}
	}
	if has("retry_policy") && sub.GetRetryPolicy() != nil {
		rp := sub.GetRetryPolicy()
		for _, d := range []interface{ AsDuration() time.Duration }{rp.GetMinimumBackoff(), rp.GetMaximumBackoff()} {
			if v := d.AsDuration(); v < 0 || v > maxBackoff {
				return status.Errorf(codes.InvalidArgument, "retry_policy backoffs must be between 0 and 600s, got %v", v)
			}
		}
	}
	if has("dead_letter_policy") && sub.GetDeadLetterPolicy() != nil {
		dlp := sub.GetDeadLetterPolicy()
		if n := dlp.GetMaxDeliveryAttempts(); n != 0 && (n < minMaxDeliveryAttempts || n > maxMaxDeliveryAttempts) {
			return status.Errorf(codes.InvalidArgument, "max_delivery_attempts must be between %d and %d, got %d",
				minMaxDeliveryAttempts, maxMaxDeliveryAttempts, n)
		}
		if dlp.GetDeadLetterTopic() == "" {
			return status.Error(codes.InvalidArgument, "dead_letter_policy.dead_letter_topic is required")
		}
		if _, err := s.GServer.GetTopic(ctx, &pb.GetTopicRequest{Topic: dlp.GetDeadLetterTopic()}); err != nil {
			return err
		}
	}
	return nil
}

// normalizeDeadLetter copies the policy, turning max_delivery_attempts 0
// into Pub/Sub's default of 5.
func normalizeDeadLetter(dlp *pb.DeadLetterPolicy) *pb.DeadLetterPolicy {
	if dlp == nil {
		return nil
	}
	out := &pb.DeadLetterPolicy{DeadLetterTopic: dlp.GetDeadLetterTopic(), MaxDeliveryAttempts: dlp.GetMaxDeliveryAttempts()}
	if out.MaxDeliveryAttempts == 0 {
		out.MaxDeliveryAttempts = defaultMaxDeliveryAttempts
	}
	return out
}
