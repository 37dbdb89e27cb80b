package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/leadpipe/leadpipe/common/telemetry"
)

// TestClientTransportRecordsNoPathOrQuery sends requests whose paths and queries carry an
// email and a token through ClientTransport and reads every span attribute and name: the
// server gets the real URL, the spans only scheme, host and the route template.
func TestClientTransportRecordsNoPathOrQuery(t *testing.T) {
	const email, token = "ada.lovelace@example.com", "EAAGsecretgraphtoken"
	var gotPath, gotQuery, gotTraceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotQuery, gotTraceparent = r.URL.Path, r.URL.RawQuery, r.Header.Get("traceparent")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	tp, exp := recordingProvider(t)
	hc := &http.Client{Transport: telemetry.ClientTransport(nil, telemetry.Client{
		Name:       "crm test",
		Routes:     []string{"PATCH /crm/v3/objects/{object}/{id}"},
		Attributes: []attribute.KeyValue{attribute.String("leadpipe.crm", "test")},
	})}

	tests := []struct {
		name, method, path, wantName, wantTemplate string
	}{
		{"matched route", http.MethodPatch, "/crm/v3/objects/contacts/" + email + "?idProperty=email&access_token=" + token,
			"crm test PATCH /crm/v3/objects/{object}/{id}", "/crm/v3/objects/{object}/{id}"},
		{"unmatched route", http.MethodGet, "/v19.0/" + email + "?access_token=" + token, "crm test GET", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp.Reset()
			ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
			req, _ := http.NewRequestWithContext(ctx, tt.method, srv.URL+tt.path, nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			parent.End()
			if want, _, _ := strings.Cut(tt.path, "?"); gotPath != want || !strings.Contains(gotQuery, token) {
				t.Errorf("server got %q?%q, want the real URL", gotPath, gotQuery)
			}
			if gotTraceparent == "" {
				t.Error("no traceparent header sent")
			}
			spans := exp.GetSpans()
			if len(spans) != 2 {
				t.Fatalf("spans: %d, want client + parent", len(spans))
			}
			client := spans[0]
			if client.Name != tt.wantName {
				t.Errorf("span name %q, want %q", client.Name, tt.wantName)
			}
			if client.Parent.SpanID() != parent.SpanContext().SpanID() {
				t.Error("client span is not a child of the request's span")
			}
			attrs := map[string]string{}
			for _, kv := range client.Attributes {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
			for k, v := range attrs {
				if strings.Contains(v, email) || strings.Contains(v, token) || strings.Contains(v, "idProperty") {
					t.Errorf("attribute %s = %q leaks the path or query", k, v)
				}
			}
			if attrs["url.template"] != tt.wantTemplate {
				t.Errorf("url.template %q, want %q", attrs["url.template"], tt.wantTemplate)
			}
			if !strings.HasPrefix(attrs["url.full"], srv.URL) || attrs["server.address"] == "" || attrs["leadpipe.crm"] != "test" {
				t.Errorf("attributes %v: want url.full on the server's scheme and host, server.address, leadpipe.crm", attrs)
			}
		})
	}
}

// TestStripURLError: a failed request's error names scheme and host, not the path or query.
func TestStripURLError(t *testing.T) {
	hc := &http.Client{Transport: telemetry.ClientTransport(nil, telemetry.Client{Name: "x"})}
	_, err := hc.Get("http://127.0.0.1:1/contacts/ada@example.com?access_token=secret")
	if err == nil {
		t.Fatal("want a connection error")
	}
	got := telemetry.StripURLError(err)
	if s := got.Error(); strings.Contains(s, "ada@example.com") || strings.Contains(s, "secret") || !strings.Contains(s, "127.0.0.1:1") {
		t.Errorf("stripped error %q", s)
	}
	var ne interface{ Timeout() bool }
	if !errors.As(got, &ne) {
		t.Error("stripped error lost its net.Error")
	}
}
