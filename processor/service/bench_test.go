package service_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/service"
)

// BenchmarkThroughputUnderCRMRateLimit pushes events through Pub/Sub to the processor against
// the fake CRM limited to limit requests/s (the processor's CRM_RATE_PER_SEC set to the same
// figure) and reports events/s, that rate as a fraction of the limit, the 429s the CRM sent
// and the Firestore RPCs per event (counted by a gRPC interceptor on the processor's client).
func BenchmarkThroughputUnderCRMRateLimit(b *testing.B) {
	const limit = 40.0
	ctx := context.Background()
	fake.Reset()
	if err := env.Reset(ctx); err != nil {
		b.Fatal(err)
	}
	var rpcs atomic.Int64
	conn, err := grpc.NewClient("passthrough:///"+env.FirestoreAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ownerCreds{}),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, m string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, o ...grpc.CallOption) error {
			rpcs.Add(1)
			return inv(ctx, m, req, reply, cc, o...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, d *grpc.StreamDesc, cc *grpc.ClientConn, m string, s grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
			rpcs.Add(1)
			return s(ctx, d, cc, m, o...)
		}))
	if err != nil {
		b.Fatal(err)
	}
	lookup := env.Lookuper(map[string]string{
		"PUSH_AUTH": "none", "SALESFORCE_INSTANCE_URL": fake.URL(), "SALESFORCE_TOKEN_URL": fake.URL() + "/services/oauth2/token",
		"SALESFORCE_CLIENT_ID": "id", "SALESFORCE_CLIENT_SECRET": "s", "CRM_RATE_PER_SEC": fmt.Sprint(limit), "RETRY_SPACING": "200ms",
		"INSTANCE_ID": "bench",
	})
	cfg, err := service.LoadConfig(ctx, lookup)
	if err != nil {
		b.Fatal(err)
	}
	// The service as the command builds it, on a Firestore client whose RPCs are counted.
	deps, closeDeps, err := app.Dial(ctx, cfg.GCP, lookup, app.ClientOptions{Firestore: []option.ClientOption{option.WithGRPCConn(conn)}})
	if err != nil {
		b.Fatal(err)
	}
	defer closeDeps()
	svc, err := service.New(ctx, cfg, deps)
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	pushTo(b, srv.URL)
	fake.SetFaults(fakecrm.Faults{RateLimitPerSec: limit})

	n := max(b.N, 200)
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = newEvent(fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i))
	}
	b.ResetTimer()
	start := time.Now()
	rpcs.Store(0)
	publish(b, evs...)
	waitState(b, 5*time.Minute, evs, store.StateSucceeded)
	elapsed := time.Since(start)
	b.StopTimer()
	eps := float64(n) / elapsed.Seconds()
	b.ReportMetric(eps, "events/s")
	b.ReportMetric(eps/limit, "fraction_of_limit")
	b.ReportMetric(float64(fake.StatusCount(http.StatusTooManyRequests)), "crm_429s")
	b.ReportMetric(float64(rpcs.Load())/float64(n), "firestore_rpcs/event")
	for _, ev := range evs[:10] {
		if c := fake.CreateCount(ev.Identity.ContactExternalID); c != 1 {
			b.Errorf("CreateCount(%s): got %d, want 1", ev.Identity.ContactExternalID, c)
		}
	}
}

// ownerCreds is the emulator's "Bearer owner" credential, as the Firestore client sends it.
type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (ownerCreds) RequireTransportSecurity() bool { return false }
