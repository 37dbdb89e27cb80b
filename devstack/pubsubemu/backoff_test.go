package pubsubemu

import (
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestRetryBackoff(t *testing.T) {
	s := time.Second
	policy := func(lo, hi time.Duration) *pb.RetryPolicy {
		return &pb.RetryPolicy{MinimumBackoff: durationpb.New(lo), MaximumBackoff: durationpb.New(hi)}
	}
	tests := []struct {
		name    string
		rp      *pb.RetryPolicy
		attempt int32
		want    time.Duration
	}{
		{"no policy", nil, 3, 0},
		{"defaults", &pb.RetryPolicy{}, 1, 10 * s},
		{"defaults grow", &pb.RetryPolicy{}, 3, 40 * s},
		{"defaults cap", &pb.RetryPolicy{}, 20, 600 * s},
		{"first", policy(2*s, 60*s), 1, 2 * s},
		{"doubles", policy(2*s, 60*s), 4, 16 * s},
		{"capped", policy(2*s, 60*s), 10, 60 * s},
		{"max below min", policy(5*s, 2*s), 3, 5 * s},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryBackoff(tc.rp, tc.attempt); got != tc.want {
				t.Errorf("retryBackoff(attempt %d) = %v, want %v", tc.attempt, got, tc.want)
			}
		})
	}
}

func TestPushBackoff(t *testing.T) {
	ms := time.Millisecond
	for n, want := range map[int]time.Duration{1: 100 * ms, 2: 200 * ms, 3: 400 * ms, 10: 51200 * ms, 11: 60 * time.Second, 1000: 60 * time.Second} {
		if got := pushBackoff(n, 60*time.Second); got != want {
			t.Errorf("pushBackoff(%d) = %v, want %v", n, got, want)
		}
	}
}
