package pubsubemu

import (
	"context"
	"fmt"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Pub/Sub's documented publish limits (https://cloud.google.com/pubsub/quotas#resource_limits).
const (
	MaxOrderingKeyBytes    = 1024
	MaxMessageBytes        = 10_000_000 // data, attributes and ordering key of one message
	MaxAttributes          = 100
	MaxAttributeKeyBytes   = 256
	MaxAttributeValueBytes = 1024
	MaxRequestBytes        = 10_000_000
	MaxRequestMessages     = 1000
)

// publisher is pstest's Publisher with Pub/Sub's publish limits enforced first: a request
// over any of them fails INVALID_ARGUMENT as a whole, as Pub/Sub answers, and publishes
// nothing.
type publisher struct {
	*pstest.GServer
}

func (p publisher) Publish(ctx context.Context, req *pb.PublishRequest) (*pb.PublishResponse, error) {
	if err := checkPublish(req); err != nil {
		return nil, err
	}
	return p.GServer.Publish(ctx, req)
}

func checkPublish(req *pb.PublishRequest) error {
	invalid := func(format string, args ...any) error {
		return status.Errorf(codes.InvalidArgument, format, args...)
	}
	if n := len(req.GetMessages()); n > MaxRequestMessages {
		return invalid("The value for message_count is too large. You passed %d in the request, but the maximum value is %d.", n, MaxRequestMessages)
	}
	if n := proto.Size(req); n > MaxRequestBytes {
		return invalid("Request payload size exceeds the limit: %d bytes.", MaxRequestBytes)
	}
	for i, m := range req.GetMessages() {
		if n := len(m.GetOrderingKey()); n > MaxOrderingKeyBytes {
			return invalid("An ordering key in the request is too long: message %d has an ordering key of %d bytes, but the maximum is %d bytes.", i, n, MaxOrderingKeyBytes)
		}
		if n := len(m.GetAttributes()); n > MaxAttributes {
			return invalid("Too many attributes: message %d has %d attributes, but the maximum is %d.", i, n, MaxAttributes)
		}
		size := len(m.GetData()) + len(m.GetOrderingKey())
		for k, v := range m.GetAttributes() {
			if len(k) > MaxAttributeKeyBytes {
				return invalid("An attribute key in the request is too long: message %d has an attribute key of %d bytes, but the maximum is %d bytes.", i, len(k), MaxAttributeKeyBytes)
			}
			if len(v) > MaxAttributeValueBytes {
				return invalid("An attribute value in the request is too long: message %d has a value of %d bytes for attribute %q, but the maximum is %d bytes.", i, len(v), truncate(k, 64), MaxAttributeValueBytes)
			}
			size += len(k) + len(v)
		}
		if size > MaxMessageBytes {
			return invalid("Message %d is too large: %d bytes, but the maximum is %d bytes.", i, size, MaxMessageBytes)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s...", s[:n])
}
