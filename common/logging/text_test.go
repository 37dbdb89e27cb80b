package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

func TestTextFormat(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{Service: "processor", Format: FormatText, Level: slog.LevelInfo})
	l = l.With("doc_id", "9d157b095f26")
	l.InfoContext(context.Background(), "lead written to CRM", "crm", "salesforce", "record_id", "00Q000001", "attempt", 2)
	l.WithGroup("http").WarnContext(context.Background(), "slow", "path", "/v1/x y")
	l.DebugContext(context.Background(), "hidden")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (debug filtered):\n%s", len(lines), buf.String())
	}
	want := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} INFO  processor  lead written to CRM doc_id=9d157b095f26 crm=salesforce record_id=00Q000001 attempt=2$`)
	if !want.MatchString(lines[0]) {
		t.Errorf("line = %q, want %s", lines[0], want)
	}
	if !strings.Contains(lines[1], "WARN  processor  slow doc_id=9d157b095f26 http.path=\"/v1/x y\"") {
		t.Errorf("grouped line = %q", lines[1])
	}
}

// JSON stays the default (and the answer to anything but "text"): Cloud Run needs it.
func TestFormatDefaultsToJSON(t *testing.T) {
	for _, v := range []string{"", "json", "JSON", "pretty"} {
		if got := ParseFormat(v); got != FormatJSON {
			t.Errorf("ParseFormat(%q) = %q, want json", v, got)
		}
	}
	if ParseFormat(" Text ") != FormatText {
		t.Error(`ParseFormat(" Text ") is not text`)
	}
	var buf bytes.Buffer
	New(&buf, Options{Service: "ingest", Format: ParseFormat("")}).Info("lead accepted", "doc_id", "d1")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["severity"] != "INFO" || m["message"] != "lead accepted" || m["service"] != "ingest" {
		t.Errorf("default line %q (%v), want Cloud Logging JSON", buf.String(), err)
	}
}
