package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/leadpipe/leadpipe/common/app"
)

func TestHealth(t *testing.T) {
	errDown := errors.New(`firestore "unreachable"`)
	tests := []struct {
		name       string
		ready      func(context.Context) error
		method     string
		path       string
		wantStatus int
		wantBody   map[string]string // nil: don't check
	}{
		{"healthz", nil, http.MethodGet, "/healthz", 200, map[string]string{"status": "ok"}},
		{"healthz ignores readiness", func(context.Context) error { return errDown }, http.MethodGet, "/healthz", 200, map[string]string{"status": "ok"}},
		{"readyz nil func", nil, http.MethodGet, "/readyz", 200, map[string]string{"status": "ready"}},
		{"readyz ready", func(context.Context) error { return nil }, http.MethodGet, "/readyz", 200, map[string]string{"status": "ready"}},
		{"readyz not ready", func(context.Context) error { return errDown }, http.MethodGet, "/readyz", 503,
			map[string]string{"status": "unavailable", "error": errDown.Error()}},
		{"healthz POST", nil, http.MethodPost, "/healthz", 405, nil},
		{"readyz POST", nil, http.MethodPost, "/readyz", 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			app.Health(mux, tt.ready)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status: got %d, want %d (body %q)", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantBody == nil {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q is not a JSON object of strings: %v", rec.Body.String(), err)
			}
			if len(got) != len(tt.wantBody) {
				t.Errorf("body: got %v, want %v", got, tt.wantBody)
			}
			for k, v := range tt.wantBody {
				if got[k] != v {
					t.Errorf("body[%q]: got %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestReadyzPassesRequestContext: the readiness check gets the request's context, so a
// client that gives up cancels the dependency probe.
func TestReadyzPassesRequestContext(t *testing.T) {
	type key struct{}
	var got any
	mux := http.NewServeMux()
	app.Health(mux, func(ctx context.Context) error {
		got = ctx.Value(key{})
		return nil
	})
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	req = req.WithContext(context.WithValue(req.Context(), key{}, "marker"))
	mux.ServeHTTP(httptest.NewRecorder(), req)
	if got != "marker" {
		t.Errorf("ready ctx value: got %v, want %q", got, "marker")
	}
}
