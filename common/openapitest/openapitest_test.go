package openapitest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The services' documents, relative to this package.
var specFiles = map[string]string{
	"ingest":   "../../ingest/openapi.yaml",
	"replayer": "../../replayer/openapi.yaml",
}

// TestSpecsValid loads both documents with kin-openapi (which validates them fully) and checks
// what clients and generators need: an operationId on every operation (unique), servers, and
// security schemes that every operation's requirements name.
func TestSpecsValid(t *testing.T) {
	for name, path := range specFiles {
		t.Run(name, func(t *testing.T) {
			s, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			doc := s.Doc
			if !strings.HasPrefix(doc.OpenAPI, "3.") {
				t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
			}
			if len(doc.Servers) == 0 {
				t.Error("no servers")
			}
			if doc.Components == nil || len(doc.Components.SecuritySchemes) == 0 {
				t.Fatal("no security schemes")
			}
			ids := map[string]string{}
			for p, item := range doc.Paths.Map() {
				for method, op := range item.Operations() {
					where := method + " " + p
					if op.OperationID == "" {
						t.Errorf("%s: no operationId", where)
					} else if other, dup := ids[op.OperationID]; dup {
						t.Errorf("%s: operationId %q also on %s", where, op.OperationID, other)
					}
					ids[op.OperationID] = where
					sec := doc.Security
					if op.Security != nil {
						sec = *op.Security
					}
					for _, req := range sec {
						for scheme := range req {
							if doc.Components.SecuritySchemes[scheme] == nil {
								t.Errorf("%s: security scheme %q not declared", where, scheme)
							}
						}
					}
					if op.Responses.Len() == 0 {
						t.Errorf("%s: no responses", where)
					}
				}
			}
		})
	}
}

// stub is a handler answering a fixed status, content type and body.
func stub(status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

type exchange struct {
	method, path, contentType, auth, body string
}

func (e exchange) request(t *testing.T, base string) *http.Request {
	t.Helper()
	var rd io.Reader
	if e.body != "" {
		rd = strings.NewReader(e.body)
	}
	req, err := http.NewRequest(e.method, base+e.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if e.contentType != "" {
		req.Header.Set("Content-Type", e.contentType)
	}
	if e.auth != "" {
		req.Header.Set("Authorization", e.auth)
	}
	return req
}

// TestCheck runs handlers that answer what the document lacks (and what it has) through
// Handler against the real documents: only the conforming ones pass.
func TestCheck(t *testing.T) {
	ingest := MustLoad(specFiles["ingest"])
	replayer := MustLoad(specFiles["replayer"], Outside("/", "/ui/*"))
	webhook := exchange{method: "POST", path: "/v1/webhooks/demo", contentType: "application/json", body: `{"a":1}`}
	accepted := `{"status":"accepted","event_id":"e1","idempotency_key":"demo|lead.created|m1"}`
	tests := []struct {
		name    string
		spec    *Spec
		ex      exchange
		handler http.Handler
		want    error // nil: conforms; otherwise errors.Is target, or errAny
	}{
		{"webhook accepted", ingest, webhook, stub(202, accepted), nil},
		{"webhook undocumented status", ingest, webhook, stub(418, accepted), errAny},
		{"webhook 201 instead of 202", ingest, webhook, stub(201, accepted), errAny},
		{"webhook answer status outside its enum", ingest, webhook, stub(202, `{"status":"bogus"}`), errAny},
		{"webhook answer without required status", ingest, webhook, stub(202, `{"event_id":"e1"}`), errAny},
		{"webhook answer wrong type", ingest, webhook, stub(202, `{"status":"accepted","event_id":7}`), errAny},
		{"webhook answer not JSON", ingest, webhook, stub(202, `accepted`), errAny},
		{"webhook text/plain refused 415", ingest, exchange{method: "POST", path: "/v1/webhooks/demo", contentType: "text/plain", body: "x"}, stub(415, `{"status":"error","error":"unsupported content type"}`), nil},
		{"webhook text/plain accepted", ingest, exchange{method: "POST", path: "/v1/webhooks/demo", contentType: "text/plain", body: "x"}, stub(202, accepted), ErrAcceptedInvalid},
		{"webhook bad source name accepted", ingest, exchange{method: "POST", path: "/v1/webhooks/Not_Valid!", contentType: "application/json", body: "{}"}, stub(202, accepted), ErrAcceptedInvalid},
		{"undocumented route answered", ingest, exchange{method: "GET", path: "/v1/secret"}, stub(200, `{}`), ErrUndocumentedRoute},
		{"undocumented method answered", ingest, exchange{method: "DELETE", path: "/v1/webhooks/demo"}, stub(200, `{}`), ErrUndocumentedRoute},
		{"unknown route refused", ingest, exchange{method: "GET", path: "/v1/secret"}, stub(404, `{}`), nil},
		{"healthz", ingest, exchange{method: "GET", path: "/healthz"}, stub(200, `{"status":"ok"}`), nil},
		{"readyz undocumented 500", ingest, exchange{method: "GET", path: "/readyz"}, stub(500, `{"status":"not ready"}`), errAny},

		{"replay one", replayer, exchange{method: "POST", path: "/v1/dlq/abc:replay", contentType: "application/json", auth: "Bearer t", body: `{"reason":"fixed"}`}, stub(200, `{"id":"abc","outcome":"replayed"}`), nil},
		{"replay outcome outside its enum", replayer, exchange{method: "POST", path: "/v1/dlq/abc:replay", contentType: "application/json", auth: "Bearer t", body: `{"reason":"fixed"}`}, stub(200, `{"id":"abc","outcome":"done"}`), errAny},
		{"replay without reason accepted", replayer, exchange{method: "POST", path: "/v1/dlq/abc:replay", contentType: "application/json", auth: "Bearer t", body: `{}`}, stub(200, `{"id":"abc","outcome":"replayed"}`), ErrAcceptedInvalid},
		{"replay without reason refused", replayer, exchange{method: "POST", path: "/v1/dlq/abc:replay", contentType: "application/json", auth: "Bearer t", body: `{}`}, stub(400, `{"error":{"code":400,"message":"reason required"}}`), nil},
		{"discard conflict", replayer, exchange{method: "POST", path: "/v1/dlq/abc:discard", contentType: "application/json", auth: "Bearer t", body: `{"reason":"spam"}`}, stub(409, `{"error":{"code":409,"message":"already succeeded"}}`), nil},
		{"discard undocumented 422", replayer, exchange{method: "POST", path: "/v1/dlq/abc:discard", contentType: "application/json", auth: "Bearer t", body: `{"reason":"spam"}`}, stub(422, `{"error":{"code":422,"message":"x"}}`), errAny},
		{"list without token answered", replayer, exchange{method: "GET", path: "/v1/dlq"}, stub(200, `{"records":[]}`), ErrAcceptedInvalid},
		{"list without token refused", replayer, exchange{method: "GET", path: "/v1/dlq"}, stub(401, `{"error":{"code":401,"message":"missing or invalid bearer token"}}`), nil},
		{"list bad status filter answered", replayer, exchange{method: "GET", path: "/v1/dlq?status=lost", auth: "Bearer t"}, stub(200, `{"records":[]}`), ErrAcceptedInvalid},
		{"list records not an array", replayer, exchange{method: "GET", path: "/v1/dlq", auth: "Bearer t"}, stub(200, `{"records":{}}`), errAny},
		{"error body of the wrong shape", replayer, exchange{method: "GET", path: "/v1/dlq/x", auth: "Bearer t"}, stub(404, `{"error":"not found"}`), errAny},
		{"triage page outside the document", replayer, exchange{method: "GET", path: "/ui/dlq/x"}, stub(200, ""), nil},
		{"push envelope", replayer, exchange{method: "POST", path: "/pubsub/dlq", contentType: "application/json", body: `{"message":{"data":"e30=","messageId":"1"}}`}, stub(204, ""), nil},
		{"bulk replay without reason accepted", replayer, exchange{method: "POST", path: "/v1/dlq:replay", contentType: "application/json", auth: "Bearer t", body: `{"dry_run":true}`}, stub(202, `{"id":"j1","status":"queued"}`), ErrAcceptedInvalid},
		{"bulk replay job", replayer, exchange{method: "POST", path: "/v1/dlq:replay", contentType: "application/json", auth: "Bearer t", body: `{"reason":"outage over"}`}, stub(202, `{"id":"j1","status":"queued"}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			srv := httptest.NewServer(tt.spec.Handler(rec, tt.handler))
			defer srv.Close()
			resp, err := http.DefaultClient.Do(tt.ex.request(t, srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			errs := rec.errors()
			switch {
			case tt.want == nil && len(errs) > 0:
				t.Errorf("conforming exchange reported: %v", errs)
			case tt.want != nil && len(errs) == 0:
				t.Errorf("violation not reported")
			case tt.want != nil && tt.want != errAny && !slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, tt.want) }):
				t.Errorf("reported %v, want %v", errs, tt.want)
			}
		})
	}
}

var errAny = errors.New("any violation")

// recordingTB records Errorf calls as errors instead of failing the test.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []error
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v *Violation
	for _, a := range args {
		if e, ok := a.(error); ok && errors.As(e, &v) {
			r.errs = append(r.errs, e)
			return
		}
	}
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

func (r *recordingTB) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// TestProxyVerdict: the proxy passes answers through unchanged and fails the run once an
// exchange did not match.
func TestProxyVerdict(t *testing.T) {
	spec := MustLoad(specFiles["ingest"])
	status := 200
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	defer upstream.Close()
	p := spec.Proxy(upstream.URL)
	p.Log = io.Discard
	defer p.Close()
	get := func() (int, string) {
		resp, err := http.Get(p.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != `{"status":"ok"}` {
		t.Fatalf("through the proxy: %d %q", code, body)
	}
	if v := p.Verdict(0); v != 0 {
		t.Fatalf("Verdict after a conforming exchange = %d, violations %v", v, p.Violations())
	}
	status = http.StatusTeapot
	if code, _ := get(); code != http.StatusTeapot {
		t.Fatalf("proxy changed the status to %d", code)
	}
	if v := p.Verdict(0); v != 1 || len(p.Violations()) != 1 {
		t.Fatalf("Verdict after an undocumented status = %d, violations %v", v, p.Violations())
	}
}
