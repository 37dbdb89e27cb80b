// Package crmtest is the conformance suite every CRM adapter runs against the fake CRM
// (devstack/fakecrm): create, update, update-only miss, every failure class, token refresh and
// rate-limit headers. Adapters call Run from their own tests.
package crmtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Adapter describes the implementation under test.
type Adapter struct {
	// CRM is the routing.crm value (salesforce, hubspot, webhook).
	CRM string
	// Object and UpsertKey go into routing (empty: the adapter's defaults).
	Object, UpsertKey string
	// New builds the adapter on the fake at baseURL with hc.
	New func(baseURL string, hc *http.Client) crm.Upserter
	// RefreshesToken: the adapter cures one 401 by fetching a new token (Salesforce).
	RefreshesToken bool
	// MultipleMatches: the seeded duplicate key (fakecrm.Seed) of System answers 300.
	MultipleMatches bool
	// System and Field locate seeded records for MultipleMatches.
	System, Field string
	// NamesFields: a validation error (400) names the field at fault in the failure message
	// (Salesforce's fields, HubSpot's propertyName), so an operator sees what to fix.
	NamesFields bool
	// Routes are the adapter's request patterns (its package's Routes), given to crm.Transport.
	Routes []string
}

var seq atomic.Int64

// Hasher is the keyed hasher adapters under test are given (crm.ExternalID of leads without
// an external id).
var Hasher, _ = pii.NewHasher([]byte("crmtest-pii-hash-key-0123456789"))

// Event returns a valid event for contact externalID (email derived from it).
func Event(a Adapter, externalID, mode string) *event.Event {
	n := seq.Add(1)
	return &event.Event{
		SchemaVersion: event.SchemaVersion, EventID: fmt.Sprintf("ev-%d", n), EventType: event.TypeLeadCreated,
		Source: "test", OccurredAt: time.Now().UTC(), IdempotencyKey: fmt.Sprintf("test|lead.created|%d", n),
		Identity:   event.Identity{ContactExternalID: externalID, Email: externalID + "@example.com"},
		Attributes: map[string]string{"first_name": "Ada", "last_name": "Lovelace", "company": "Engines"},
		Routing:    event.Routing{CRM: a.CRM, Object: a.Object, UpsertKey: a.UpsertKey, Mode: mode},
	}
}

// Run runs the suite against a fresh fake CRM per case.
func Run(t *testing.T, a Adapter) {
	fake, err := fakecrm.Start(fakecrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	hc := &http.Client{Timeout: 2 * time.Second}
	up := a.New(fake.URL(), hc)
	ctx := context.Background()
	key := func(id string) string {
		if a.UpsertKey == "email" {
			return id + "@example.com"
		}
		return id
	}
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			fake.Reset()
			f(t)
		})
	}

	run("create then update", func(t *testing.T) {
		res, err := up.Upsert(ctx, Event(a, "c-1", event.ModeUpsert))
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if !res.Created || res.RecordID == "" || res.StatusCode/100 != 2 {
			t.Errorf("create: got %+v, want created with a record id", res)
		}
		again, err := up.Upsert(ctx, Event(a, "c-1", event.ModeUpsert))
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if again.Created || again.RecordID != res.RecordID {
			t.Errorf("update: got %+v, want not created, record %s", again, res.RecordID)
		}
		if got := fake.CreateCount(key("c-1")); got != 1 {
			t.Errorf("CreateCount: got %d, want 1", got)
		}
	})
	run("update only existing", func(t *testing.T) {
		if _, err := up.Upsert(ctx, Event(a, "c-2", event.ModeUpsert)); err != nil {
			t.Fatal(err)
		}
		if _, err := up.Upsert(ctx, Event(a, "c-2", event.ModeUpdateOnly)); err != nil {
			t.Errorf("update-only on existing record: %v", err)
		}
	})
	run("update only miss is permanent", func(t *testing.T) {
		_, err := up.Upsert(ctx, Event(a, "c-3", event.ModeUpdateOnly))
		wantClass(t, err, failure.Permanent, 404)
		if got := fake.CreateCount(key("c-3")); got != 0 {
			t.Errorf("CreateCount after update-only miss: got %d, want 0", got)
		}
	})
	run("invalid field is permanent", func(t *testing.T) {
		ev := Event(a, "c-4", event.ModeUpsert)
		ev.Identity.Email = "not-an-email"
		if a.UpsertKey == "email" {
			ev.Identity.Email = "not-an-email"
		}
		_, err := up.Upsert(ctx, ev)
		wantClass(t, err, failure.Permanent, 0)
	})

	if a.NamesFields {
		run("validation error names the field", func(t *testing.T) {
			fake.FailNext(fakecrm.Failure{System: a.System, Status: 400, ErrorCode: "INVALID_FIELD", Field: "Phone"})
			_, err := up.Upsert(ctx, Event(a, "c-9", event.ModeUpsert))
			wantClass(t, err, failure.Permanent, 400)
			var fe *failure.Error
			if errors.As(err, &fe) && !strings.Contains(fe.Message, "field Phone") {
				t.Errorf("message %q does not name the field Phone", fe.Message)
			}
		})
	}

	failures := []struct {
		name   string
		inject func()
		class  failure.Class
		code   int
		after  time.Duration
	}{
		{"409 is conflict", func() { fake.FailNext(fakecrm.Failure{Status: 409}) }, failure.Conflict, 409, 0},
		{"500 is retryable", func() { fake.FailNext(fakecrm.Failure{Status: 500}) }, failure.Retryable, 500, 0},
		{"outage is retryable", func() { fake.SetFaults(fakecrm.Faults{Outage: true}) }, failure.Retryable, 503, 0},
		{"429 carries Retry-After", func() { fake.SetFaults(fakecrm.Faults{Throttle: 1, RetryAfterSec: 7}) }, failure.Retryable, 429, 7 * time.Second},
		{"rate limit carries Retry-After", func() {
			fake.SetFaults(fakecrm.Faults{RateLimitPerSec: 1, RetryAfterSec: 2})
			fake.FailNext(fakecrm.Failure{Status: 429})
		}, failure.Retryable, 429, 2 * time.Second},
		{"timeout is retryable", func() { fake.SetFaults(fakecrm.Faults{LatencyMS: 3000}) }, failure.Retryable, 0, 0},
		{"401 after refresh is auth", func() { fake.SetFaults(fakecrm.Faults{AuthFailures: 2}) }, failure.Auth, 401, 0},
		{"rejected credentials are auth", func() { fake.SetFaults(fakecrm.Faults{RejectCredentials: true}); fake.ExpireTokens() }, failure.Auth, 0, 0},
	}
	for _, f := range failures {
		run(f.name, func(t *testing.T) {
			f.inject()
			_, err := up.Upsert(ctx, Event(a, "c-5", event.ModeUpsert))
			wantClass(t, err, f.class, f.code)
			if f.after > 0 {
				if got := failure.RetryAfter(err); got != f.after {
					t.Errorf("RetryAfter: got %v, want %v", got, f.after)
				}
			}
		})
	}

	run("account rate limit is throttling", func(t *testing.T) {
		fake.AccountLimit(1)
		if _, err := up.Upsert(ctx, Event(a, "c-8", event.ModeUpsert)); err != nil {
			t.Fatalf("first call within the limit: %v", err)
		}
		_, err := up.Upsert(ctx, Event(a, "c-8", event.ModeUpsert))
		wantCode := http.StatusTooManyRequests
		if a.CRM == "salesforce" {
			wantCode = http.StatusForbidden // REQUEST_LIMIT_EXCEEDED, with daily budget left
		}
		wantClass(t, err, failure.Retryable, wantCode)
		if !crm.Throttled(err) {
			t.Errorf("over the account limit: crm.Throttled(%v) = false", err)
		}
		if got := failure.RetryAfter(err); got != time.Second {
			t.Errorf("RetryAfter: got %v, want 1s", got)
		}
		fake.AccountLimit(0)
		fake.FailNext(fakecrm.Failure{Status: 500})
		if _, err := up.Upsert(ctx, Event(a, "c-8", event.ModeUpsert)); crm.Throttled(err) {
			t.Errorf("a 500 is not throttling: %v", err)
		}
	})

	if a.RefreshesToken {
		run("expired token is refreshed once", func(t *testing.T) {
			if _, err := up.Upsert(ctx, Event(a, "c-6", event.ModeUpsert)); err != nil {
				t.Fatal(err)
			}
			before := fake.TokenRequests()
			fake.ExpireTokens()
			if _, err := up.Upsert(ctx, Event(a, "c-6", event.ModeUpsert)); err != nil {
				t.Fatalf("after expiry: %v", err)
			}
			if got := fake.TokenRequests() - before; got != 1 {
				t.Errorf("token requests after expiry: got %d, want 1", got)
			}
			fake.SetFaults(fakecrm.Faults{AuthFailures: 1})
			if _, err := up.Upsert(ctx, Event(a, "c-6", event.ModeUpsert)); err != nil {
				t.Errorf("one INVALID_SESSION_ID must be cured by a refresh: %v", err)
			}
		})
	}
	if a.MultipleMatches {
		run("multiple matches is conflict", func(t *testing.T) {
			for range 2 {
				fake.Seed(fakecrm.Record{System: a.System, Object: a.Object, Field: a.Field, Key: key("c-7")})
			}
			_, err := up.Upsert(ctx, Event(a, "c-7", event.ModeUpsert))
			wantClass(t, err, failure.Conflict, 300)
		})
	}
	run("no personal data in URLs, no ids in spans", func(t *testing.T) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		defer func() { _ = tp.Shutdown(ctx) }()
		var urls []string
		var mu sync.Mutex
		sent := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			urls = append(urls, r.URL.String())
			mu.Unlock()
			return http.DefaultTransport.RoundTrip(r)
		})
		traced := a.New(fake.URL(), &http.Client{Timeout: 2 * time.Second, Transport: crm.Transport(a.CRM, sent, a.Routes...)})
		sctx, parent := tp.Tracer("crmtest").Start(ctx, "test")
		for _, mode := range []string{event.ModeUpsert, event.ModeUpdateOnly} {
			ev := Event(a, "c-9", mode)
			ev.Identity.PhoneE164 = "+14155550199"
			if _, err := traced.Upsert(sctx, ev); err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
		}
		parent.End()
		secrets := []string{"c-9@example.com", "c-9%40example.com", "14155550199"}
		for _, u := range urls {
			for _, s := range secrets {
				if strings.Contains(u, s) {
					t.Errorf("request URL %s carries personal data %q", u, s)
				}
			}
		}
		spans := exp.GetSpans()
		if len(spans) < 3 {
			t.Fatalf("%d spans, want a client span per request", len(spans))
		}
		for _, sp := range spans {
			for _, s := range append(secrets, "c-9") {
				if strings.Contains(sp.Name, s) {
					t.Errorf("span name %q carries %q", sp.Name, s)
				}
				for _, kv := range sp.Attributes {
					if strings.Contains(kv.Value.Emit(), s) {
						t.Errorf("span %q attribute %s = %q carries %q", sp.Name, kv.Key, kv.Value.Emit(), s)
					}
				}
			}
		}
	})
	run("context cancellation is not classified", func(t *testing.T) {
		fake.SetFaults(fakecrm.Faults{LatencyMS: 1000})
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := up.Upsert(cctx, Event(a, "c-8", event.ModeUpsert))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want context.DeadlineExceeded in the chain", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func wantClass(t *testing.T, err error, class failure.Class, code int) {
	t.Helper()
	var fe *failure.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *failure.Error of class %s", err, class)
	}
	if fe.Class != class {
		t.Errorf("class: got %s, want %s (%v)", fe.Class, class, err)
	}
	if code != 0 && fe.Code != code {
		t.Errorf("code: got %d, want %d (%v)", fe.Code, code, err)
	}
}
