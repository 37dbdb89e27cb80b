package enrich

import (
	"context"
	"os"
	"testing"

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
