package secrets

import (
	"context"
	"errors"
	"testing"

	"github.com/leadpipe/leadpipe/common/config"
)

func TestResolveEnv(t *testing.T) {
	r := NewResolver(config.MapLookuper(map[string]string{"DEMO_SECRET": "whsec_abc", "EMPTY": ""}))
	tests := []struct {
		ref     string
		want    string
		wantErr error
	}{
		{"env:DEMO_SECRET", "whsec_abc", nil},
		{"env:MISSING", "", ErrNotSet},
		{"env:EMPTY", "", ErrNotSet},
		{"env:", "", ErrBadReference},
		{"DEMO_SECRET", "", ErrBadReference},
		{"projects/p/secrets/s", "", ErrBadReference},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), tt.ref)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Resolve(%q) error = %v, want %v", tt.ref, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q) = %q, want %q", tt.ref, got, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{"env:X", true},
		{"projects/p/secrets/s/versions/latest", true},
		{"projects/p/secrets/s/versions/", false},
		{"projects//secrets/s/versions/1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Check(tt.ref) == nil; got != tt.want {
			t.Errorf("Check(%q) ok = %v, want %v", tt.ref, got, tt.want)
		}
	}
}
