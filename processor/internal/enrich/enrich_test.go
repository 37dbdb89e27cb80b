package enrich

import (
	"context"
	"fmt"
	"os"
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
