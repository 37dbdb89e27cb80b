package renormalize

import (
	"github.com/leadpipe/leadpipe/common/pii"

	"os"
	"path/filepath"
	"testing"
)

func sourcesYAML(version string) string {
	return `sources:
  webform:
    kind: json_map
    mapping_version: ` + version + `
    secrets: ["env:WEBFORM_SECRET"]
    routing: {crm: salesforce}
    fields: {source_event_id: id, identity.email: email}
`
}

func TestFileReloadsWhenChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sources.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	version := func(f *File) string {
		t.Helper()
		s, err := f.Current()
		if err != nil {
			t.Fatalf("Current: %v", err)
		}
		src, ok := s.Get("webform")
		if !ok {
			t.Fatal("source webform missing")
		}
		return src.MappingVersion
	}
	write(sourcesYAML("v1"))
	f, err := LoadFile(path, testHasher)
	if err != nil {
		t.Fatal(err)
	}
	if got := version(f); got != "v1" {
		t.Errorf("first read: %s, want v1", got)
	}
	write(sourcesYAML("v22"))
	if got := version(f); got != "v22" {
		t.Errorf("after the edit: %s, want v22", got)
	}

	// A broken edit is an error, not a silent fall-back to the replaced mapping; fixing the
	// file recovers.
	write("sources: [")
	if _, err := f.Current(); err == nil {
		t.Error("Current accepted an invalid sources file")
	}
	write(sourcesYAML("v333"))
	if got := version(f); got != "v333" {
		t.Errorf("after the repair: %s, want v333", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Current(); err == nil {
		t.Error("Current accepted a missing sources file")
	}

	if _, err := LoadFile(filepath.Join(t.TempDir(), "absent.yaml"), testHasher); err == nil {
		t.Error("LoadFile accepted a missing file")
	}
}

var testHasher, _ = pii.NewHasher([]byte("renormalize-test-pii-key-0123"))
