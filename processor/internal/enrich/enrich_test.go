package enrich

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

func TestMetaEnrichment(t *testing.T) {
	fake, err := fakecrm.Start(fakecrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	fixture, err := os.ReadFile("testdata/meta_graph_lead.json")
	if err != nil {
		t.Skipf("fixture: %v", err)
	}
	fake.SetMetaLead("900100000000001", fixture)
	var got *event.Event
	up := Middleware(&Meta{BaseURL: fake.URL(), Version: "v19.0", AccessToken: "t"})(crm.Func(func(_ context.Context, ev *event.Event) (crm.Result, error) {
		got = ev
		return crm.Result{}, nil
	}))
	ev := &event.Event{Enrich: &event.Enrichment{Provider: "meta_graph", Refs: map[string]string{"leadgen_id": "900100000000001"}}}
	if _, err := up.Upsert(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if got.Identity.Email != "alex.rivera@example.com" || got.Identity.PhoneE164 != "+14155550123" ||
		got.Attributes["first_name"] != "Alex" || got.Attributes["last_name"] != "Rivera" || got.Attributes["company"] != "Rivera Labs" {
		t.Errorf("enriched: got identity %+v attributes %v", got.Identity, got.Attributes)
	}
	bad := &event.Event{Enrich: &event.Enrichment{Provider: "meta_graph", Refs: map[string]string{"leadgen_id": "not-a-lead"}}}
	if _, err := up.Upsert(context.Background(), bad); !failure.Is(err, failure.Permanent) {
		t.Errorf("unknown lead: got %v, want permanent", err)
	}
}

// memArchive is an in-memory Fetched with the archive's write-once and not-found behaviour.
type memArchive struct {
	mu   sync.Mutex
	objs map[string]*archive.Fetched
	puts int
}

func (a *memArchive) GetFetched(_ context.Context, source, provider, id string) (*archive.Fetched, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.objs[archive.FetchedName(source, provider, id)]
	if !ok {
		return nil, fmt.Errorf("read: %w", storage.ErrObjectNotExist)
	}
	return f, nil
}

func (a *memArchive) PutFetched(_ context.Context, f *archive.Fetched) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := archive.FetchedName(f.Source, f.Provider, f.ID)
	if _, ok := a.objs[name]; !ok {
		a.objs[name] = f
		a.puts++
	}
	return "gs://b/" + name, nil
}

// TestEnrichReadsTheArchiveFirst: the first enrichment reads the Graph API and archives the
// lead; with the Graph API down, a second enrichment (a replay) still gets the fields.
func TestEnrichReadsTheArchiveFirst(t *testing.T) {
	fake, err := fakecrm.Start(fakecrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	fixture, err := os.ReadFile("testdata/meta_graph_lead.json")
	if err != nil {
		t.Fatal(err)
	}
	fake.SetMetaLead("900100000000001", fixture)
	ar := &memArchive{objs: map[string]*archive.Fetched{}}
	var got []*event.Event
	up := Middleware(&Meta{BaseURL: fake.URL(), Version: "v19.0", AccessToken: "t", Archive: ar})(crm.Func(func(_ context.Context, ev *event.Event) (crm.Result, error) {
		got = append(got, ev)
		return crm.Result{}, nil
	}))
	ev := &event.Event{Source: "meta", Enrich: &event.Enrichment{Provider: "meta_graph", Refs: map[string]string{"leadgen_id": "900100000000001"}}}
	if _, err := up.Upsert(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if ar.puts != 1 {
		t.Fatalf("archived %d times, want 1", ar.puts)
	}
	fake.SetMetaFaults(fakecrm.MetaFaults{Outage: true})
	calls := len(fake.Calls())
	if _, err := up.Upsert(context.Background(), ev); err != nil {
		t.Fatalf("with the Graph API down: %v", err)
	}
	if n := len(fake.Calls()) - calls; n != 0 {
		t.Errorf("second enrichment called the Graph API %d times, want 0", n)
	}
	if len(got) != 2 || got[1].Identity.Email != "alex.rivera@example.com" || got[1].Attributes["company"] != "Rivera Labs" {
		t.Errorf("replayed enrichment: got %+v", got[len(got)-1])
	}
	// Without an archived copy the outage is the Graph API's retryable failure.
	other := &event.Event{Source: "meta", Enrich: &event.Enrichment{Provider: "meta_graph", Refs: map[string]string{"leadgen_id": "900100000000002"}}}
	if _, err := up.Upsert(context.Background(), other); !failure.Is(err, failure.Retryable) {
		t.Errorf("not archived, Graph down: got %v, want retryable", err)
	}
}

// TestGraphTokenTravelsInAHeader: the Graph API request carries the access token in its
// Authorization header and nothing of it in the URL.
func TestGraphTokenTravelsInAHeader(t *testing.T) {
	fake, err := fakecrm.Start(fakecrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	const token = "EAAGgraphtoken123"
	var seen []*http.Request
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = append(seen, r)
		return http.DefaultTransport.RoundTrip(r)
	})}
	m := &Meta{BaseURL: fake.URL(), Version: "v19.0", AccessToken: token, HTTPClient: hc}
	if _, err := m.Lead(context.Background(), "meta", "900100000000009"); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 {
		t.Fatalf("%d requests, want 1", len(seen))
	}
	if u := seen[0].URL.String(); strings.Contains(u, token) || strings.Contains(u, "access_token") {
		t.Errorf("URL %s carries the token", u)
	}
	if got := seen[0].Header.Get("Authorization"); got != "Bearer "+token {
		t.Errorf("Authorization %q, want the bearer token", got)
	}
}

// TestThinLeadWithoutGraphTokenIsQuarantined: with no Graph token configured a thin Meta lead
// is a permanent failure naming the cause, and nothing reaches the CRM.
func TestThinLeadWithoutGraphTokenIsQuarantined(t *testing.T) {
	called := false
	up := Middleware(nil)(crm.Func(func(context.Context, *event.Event) (crm.Result, error) {
		called = true
		return crm.Result{}, nil
	}))
	ev := &event.Event{Enrich: &event.Enrichment{Provider: "meta_graph", Refs: map[string]string{"leadgen_id": "900100000000001"}}}
	_, err := up.Upsert(context.Background(), ev)
	if !failure.Is(err, failure.Permanent) || !errors.Is(err, ErrNotConfigured) {
		t.Errorf("got %v, want permanent ErrNotConfigured", err)
	}
	if called {
		t.Error("a thin lead was written to the CRM without enrichment")
	}
	complete := &event.Event{Identity: event.Identity{Email: "a@example.com"}, Enrich: ev.Enrich}
	if _, err := up.Upsert(context.Background(), complete); err != nil || !called {
		t.Errorf("an event with an identity: err %v, written %v; want written", err, called)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
