package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/common/telemetry/telemetrytest"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/devstack/pubsubemu"
	"github.com/leadpipe/leadpipe/ingest/internal/signature"
)

var env *devstacktest.Env

func TestMain(m *testing.M) {
	ctx := context.Background()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	e, err := devstacktest.Start(ctx)
	if err != nil {
		log.Fatalf("devstacktest: %v", err)
	}
	env = e
	// Recording providers for the telemetry tests; the services' own telemetry.Setup leaves
	// them in place.
	rec = telemetrytest.Install()
	if err := env.Provision(ctx, devstacktest.Topology{}); err != nil {
		env.Close()
		log.Fatalf("provision: %v", err)
	}
	code := m.Run()
	rec.Close()
	env.Close()
	os.Exit(code)
}

const (
	demoSecret    = "whsec_c2VjcmV0LWtleS1mb3ItaW5nZXN0LXRlc3Rz"
	metaSecret    = "meta-app-secret"
	metaToken     = "meta-verify-token"
	typeformKey   = "typeform-secret"
	partnerSecret = "partner-secret"
)

const testSources = `
sources:
  demo:
    kind: canonical
    secrets: [env:OLD_DEMO_SECRET, env:DEMO_WEBHOOK_SECRET]
    routing: {crm: salesforce, object: Lead, upsert_key: External_Lead_Id__c}
  meta:
    kind: facebook_leads
    secrets: [env:META_APP_SECRET]
    verify_token: env:META_VERIFY_TOKEN
    routing: {crm: salesforce, object: Lead, upsert_key: External_Lead_Id__c}
  forms:
    kind: typeform
    secrets: [env:TYPEFORM_SECRET]
    routing: {crm: hubspot, object: contacts, upsert_key: email}
    fields: {work_email: identity.email}
  partner:
    kind: json_map
    signature: {scheme: hmac_sha256_hex, header: X-Partner-Signature, prefix: "sha256="}
    secrets: [env:PARTNER_SECRET]
    routing: {crm: webhook}
    fields: {source_event_id: id, identity.email: email}
  broken:
    kind: canonical
    secrets: [env:NOT_SET_ANYWHERE]
    routing: {crm: salesforce}
`

// calls counts RPCs and HTTP requests of the service's Google clients, and injects faults.
type calls struct {
	mu         sync.Mutex
	firestore  map[string]int
	pubsub     map[string]int
	gcs        int
	failGCS    atomic.Bool
	failPubSub atomic.Bool
}

func newCalls() *calls { return &calls{firestore: map[string]int{}, pubsub: map[string]int{}} }

func (c *calls) counter(m map[string]int) (grpc.UnaryClientInterceptor, grpc.StreamClientInterceptor) {
	add := func(method string) {
		c.mu.Lock()
		m[method[strings.LastIndex(method, "/")+1:]]++
		c.mu.Unlock()
	}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			add(method)
			if c.failPubSub.Load() && strings.HasSuffix(method, "/Publish") {
				return status.Error(codes.PermissionDenied, "injected publish fault")
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}, func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			add(method)
			return streamer(ctx, desc, cc, method, opts...)
		}
}

func (c *calls) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.gcs++
	c.mu.Unlock()
	if c.failGCS.Load() {
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Body: io.NopCloser(strings.NewReader("injected")), Header: http.Header{}, Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

// snapshot returns total Firestore, GCS and Pub/Sub calls so far.
func (c *calls) snapshot() (fs, gcs, ps int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.firestore {
		fs += n
	}
	for _, n := range c.pubsub {
		ps += n
	}
	return fs, c.gcs, ps
}

// ownerCreds is what the Firestore client sends to an emulator.
type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (ownerCreds) RequireTransportSecurity() bool { return false }

// deps builds the service's clients on the emulators, instrumented to count and fail calls.
func (c *calls) deps(t testing.TB, cfg *Config, lookup config.Lookuper) app.Deps {
	fu, fst := c.counter(c.firestore)
	pu, pst := c.counter(c.pubsub)
	// With FIRESTORE_EMULATOR_HOST the Firestore client dials its own connection and ignores
	// dial options, so the instrumented connection is handed over whole.
	conn, err := grpc.NewClient(env.FirestoreAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ownerCreds{}), grpc.WithChainUnaryInterceptor(fu), grpc.WithChainStreamInterceptor(fst))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	deps, closeDeps, err := app.Dial(context.Background(), cfg.GCP, lookup, app.ClientOptions{
		Firestore: []option.ClientOption{option.WithGRPCConn(conn)},
		PubSub:    []option.ClientOption{option.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(pu)), option.WithGRPCDialOption(grpc.WithChainStreamInterceptor(pst))},
		Storage:   []option.ClientOption{option.WithHTTPClient(&http.Client{Transport: c})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeDeps() })
	return deps
}

// fixture is an ingest service built from its real wiring on the emulators, served over HTTP.
type fixture struct {
	t     testing.TB
	url   string
	svc   *Service
	calls *calls
	store *store.Store
	arch  *archive.Archive
}

func newFixture(t testing.TB, overrides map[string]string) *fixture {
	t.Helper()
	ctx := context.Background()
	path := t.TempDir() + "/sources.yaml"
	if err := os.WriteFile(path, []byte(testSources), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"SOURCES_FILE": path, "DEMO_WEBHOOK_SECRET": demoSecret, "OLD_DEMO_SECRET": "whsec_b2xkLXNlY3JldA==",
		"META_APP_SECRET": metaSecret, "META_VERIFY_TOKEN": metaToken, "TYPEFORM_SECRET": typeformKey,
		"PARTNER_SECRET": partnerSecret, "PERSIST_TIMEOUT": "2s", "PUBLISH_TIMEOUT": "2s",
		"SWEEP_AUTH": "none", "PUBLISH_MARK_DELAY": "20ms",
	}
	for k, v := range overrides {
		vars[k] = v
	}
	lookup := env.Lookuper(vars)
	var cfg Config
	if err := config.Load(ctx, &cfg, lookup); err != nil {
		t.Fatal(err)
	}
	c := newCalls()
	svc, err := New(ctx, &cfg, c.deps(t, &cfg, lookup))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ingestSpec.Handler(t, svc.Handler()))
	fsc, err := env.FirestoreClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gcs, err := env.StorageClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
		fsc.Close()
		gcs.Close()
		env.ClearFaults()
	})
	return &fixture{t: t, url: srv.URL, svc: svc, calls: c, store: store.New(fsc), arch: archive.New(gcs, env.Bucket)}
}

// lead is a canonical delivery.
type lead struct {
	msgID string
	body  []byte
	ts    time.Time
}

var leadSeq atomic.Int64

func newLead(t testing.TB) lead {
	n := leadSeq.Add(1)
	id := fmt.Sprintf("%s-%d-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano(), n)
	body, _ := json.Marshal(map[string]any{
		"event_type": "lead.created", "occurred_at": "2026-03-22T12:34:56Z",
		"identity":   map[string]string{"contact_external_id": "c-" + id, "email": "lead" + strconv.FormatInt(n, 10) + "@example.com"},
		"attributes": map[string]string{"first_name": "Sam"},
	})
	return lead{msgID: "msg_" + id, body: body, ts: time.Now()}
}

func (l lead) key() string { return "demo|lead.created|" + l.msgID }

// signedRequest builds a Standard Webhooks request for the demo source.
func (f *fixture) request(l lead, mutate ...func(*http.Request)) *http.Request {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/v1/webhooks/demo", bytes.NewReader(l.body))
	if err != nil {
		f.t.Fatal(err)
	}
	sig, err := signature.SignStandard(demoSecret, l.msgID, l.ts, l.body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", l.msgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(l.ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	for _, m := range mutate {
		m(req)
	}
	return req
}

type answer struct {
	code       int
	retryAfter string
	body       map[string]any
}

func (f *fixture) do(req *http.Request) answer {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.Unmarshal(b, &a.body)
	return a
}

// messages returns what was published to topic for an idempotency key.
func messages(topic, key string) []pubsubemu.Message {
	var out []pubsubemu.Message
	for _, m := range env.Messages(topic) {
		if m.Attributes[pushmsg.AttrIdempotencyKey] == key {
			out = append(out, m)
		}
	}
	return out
}

// eventDoc reads the event document of a key; nil when absent.
func (f *fixture) eventDoc(key string) *store.EventDoc {
	f.t.Helper()
	d, err := f.store.GetEvent(context.Background(), event.DocID(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		f.t.Fatalf("get event: %v", err)
	}
	return d
}

// publishedDoc is the event document of key once its deferred publish mark is written (no
// processor claims it in these tests); it fails the test after 5 s.
func (f *fixture) publishedDoc(key string) *store.EventDoc {
	f.t.Helper()
	var d *store.EventDoc
	deadline := time.Now().Add(5 * time.Second)
	for {
		d = f.eventDoc(key)
		if d != nil && d.OutboxDueAt == nil || time.Now().After(deadline) {
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawExists reports whether the raw object of a body exists.
func (f *fixture) rawExists(source string, body []byte) bool {
	f.t.Helper()
	_, err := f.arch.Get(context.Background(), f.arch.Ref(archive.ObjectName(source, body)))
	if err == nil {
		return true
	}
	if !errors.Is(err, storage.ErrObjectNotExist) {
		f.t.Fatalf("read raw: %v", err)
	}
	return false
}

// eventually polls cond with a generous deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func configLoad(vars map[string]string, cfg *Config) error {
	return config.Load(context.Background(), cfg, env.Lookuper(vars))
}

func sha(b []byte) string { return archive.ObjectName("x", b)[len("raw/x/") : len("raw/x/")+64] }
