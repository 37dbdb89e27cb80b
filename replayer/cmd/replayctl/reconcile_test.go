package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// graph is the fake Graph API the replayer under test reconciles against.
var graph *fakecrm.Server

// reconcileEnv starts the fake Graph API and writes a sources file with a Meta source: the
// replayer configuration that enables reconcile, 2 leads a page.
func reconcileEnv() (map[string]string, func(), error) {
	var err error
	if graph, err = fakecrm.Start(fakecrm.Options{}); err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "replayctl-")
	if err != nil {
		graph.Close()
		return nil, nil, err
	}
	sources := filepath.Join(dir, "sources.yaml")
	yaml := "sources:\n  meta:\n    kind: facebook_leads\n    secrets: [env:META_APP_SECRET]\n    verify_token: env:META_VERIFY_TOKEN\n    routing: {crm: salesforce, object: Lead, upsert_key: External_Lead_Id__c}\n"
	if err := os.WriteFile(sources, []byte(yaml), 0o600); err != nil {
		graph.Close()
		return nil, nil, err
	}
	return map[string]string{"SOURCES_FILE": sources, "META_GRAPH_URL": graph.URL(), "META_ACCESS_TOKEN": "graph-token",
			"RECONCILE_PAGE_SIZE": "2"},
		func() { graph.Close(); os.RemoveAll(dir) }, nil
}

func TestCLIReconcile(t *testing.T) {
	created := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Second)
	var eventIDs []string
	for i := range 5 {
		id := fmt.Sprintf("90080000000000%d", i)
		graph.SetMetaLead(id, fmt.Appendf(nil, `{"id":%q,"created_time":%q,"form_id":"555800","field_data":[]}`, id, created.Format("2006-01-02T15:04:05-0700")))
		eventIDs = append(eventIDs, mappingEventID(id))
	}
	out, err := ctl(t, "reconcile", "--source", "meta", "--form", "555800", "--since", "1h", "--dry-run", "--reason", "missed webhooks")
	if err != nil || !strings.Contains(out, "found 5, existing 0, missing 5, would add 5") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = ctl(t, "reconcile", "--source", "meta", "--form", "555800", "--since", "1h", "--reason", "missed webhooks")
	if err != nil || !strings.Contains(out, "found 5, existing 0, missing 5, added 5") {
		t.Fatalf("reconcile: %v\n%s", err, out)
	}
	for _, id := range eventIDs {
		if !strings.Contains(out, id) {
			t.Errorf("event id %s not listed:\n%s", id, out)
		}
	}
	out, err = ctl(t, "reconcile", "--source", "meta", "--form", "555800", "--since", created.Add(-time.Minute).Format(time.RFC3339), "--reason", "again")
	if err != nil || !strings.Contains(out, "found 5, existing 5, missing 0, added 0") {
		t.Errorf("second reconcile: %v\n%s", err, out)
	}
	if _, err := ctl(t, "reconcile", "--source", "meta", "--form", "555800", "--since", "yesterday", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("bad --since: %v", err)
	}
	if _, err := ctl(t, "reconcile", "--source", "meta", "--form", "555800", "--since", "1h"); err == nil {
		t.Error("reconcile without --reason succeeded")
	}
	if _, err := ctl(t, "reconcile", "--source", "nope", "--form", "555800", "--since", "1h", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "422") {
		t.Errorf("unknown source: %v, want 422", err)
	}
}

// mappingEventID is the event id the Meta webhook of leadgen id gives (what reconcile reports).
func mappingEventID(leadgenID string) string {
	return mapping.EventID(event.IdempotencyKey("meta", event.TypeLeadCreated, leadgenID))
}
