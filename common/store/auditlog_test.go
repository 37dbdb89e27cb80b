package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
)

// TestAuditEntriesAreAlsoLogged: every appended audit entry is one structured "audit" log line
// (for Cloud Logging) with actor, action and targets, and without the free-text reason.
func TestAuditEntriesAreAlsoLogged(t *testing.T) {
	s := newStore(t)
	var buf bytes.Buffer
	ctx := logging.WithLogger(context.Background(), logging.New(&buf, logging.Options{Service: "replayer"}))
	id, err := s.AppendAudit(ctx, store.AuditEntry{Actor: "ops@example.com", Action: "read_raw",
		Reason: "customer ada@example.com called", Targets: []string{"doc-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["message"] == "audit" || m["msg"] == "audit" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d audit log lines, want 1: %s", len(lines), buf.String())
	}
	l := lines[0]
	if l["audit_id"] != id || l["actor"] != "ops@example.com" || l["action"] != "read_raw" || l["audit"] != true {
		t.Errorf("audit line %v", l)
	}
	if strings.Contains(buf.String(), "ada@example.com") || strings.Contains(buf.String(), "customer") {
		t.Error("the audit line carries the free-text reason")
	}
}
