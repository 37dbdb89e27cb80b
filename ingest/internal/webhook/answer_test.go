package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/store"
)

func doc(n string) *store.EventDoc {
	return &store.EventDoc{EventID: "ev-" + n, IdempotencyKey: "demo|lead.created|" + n, CorrelationID: "corr-" + n}
}

// TestAnswerFor: the status and body of every answer to a persisted delivery.
func TestAnswerFor(t *testing.T) {
	unusable := &mapping.UnusableError{Reason: mapping.ErrNoIdentity, Detail: "no email or phone"}
	tests := []struct {
		name       string
		docs       []*store.EventDoc
		created    []bool
		ue         *mapping.UnusableError
		wantCode   int
		wantStatus string
		wantReason string
		wantEvents []string // per-event statuses; nil for a single event
	}{
		{"new event", []*store.EventDoc{doc("1")}, []bool{true}, nil, 202, StatusAccepted, "", nil},
		{"known event", []*store.EventDoc{doc("1")}, []bool{false}, nil, 200, StatusDuplicate, "", nil},
		{"unusable payload", []*store.EventDoc{doc("1")}, []bool{true}, unusable, 202, StatusQuarantined, "no_identity", nil},
		{"unusable payload again", []*store.EventDoc{doc("1")}, []bool{false}, unusable, 200, StatusDuplicate, "", nil},
		{"batch, some new", []*store.EventDoc{doc("1"), doc("2")}, []bool{false, true}, nil, 202, StatusAccepted, "",
			[]string{StatusDuplicate, StatusAccepted}},
		{"batch, all known", []*store.EventDoc{doc("1"), doc("2")}, []bool{false, false}, nil, 200, StatusDuplicate, "",
			[]string{StatusDuplicate, StatusDuplicate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, a := answerFor(tt.docs, tt.created, tt.ue)
			if code != tt.wantCode || a.Status != tt.wantStatus || a.Reason != tt.wantReason {
				t.Errorf("got %d %s %q, want %d %s %q", code, a.Status, a.Reason, tt.wantCode, tt.wantStatus, tt.wantReason)
			}
			if a.EventID != "ev-1" || a.IdempotencyKey != "demo|lead.created|1" || a.CorrelationID != "corr-1" {
				t.Errorf("ids: got %q %q %q, want the first event's", a.EventID, a.IdempotencyKey, a.CorrelationID)
			}
			var got []string
			for _, e := range a.Events {
				got = append(got, e.Status)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantEvents, ",") {
				t.Errorf("events: got %v, want %v", got, tt.wantEvents)
			}
		})
	}
}

// rejecting is a verifier that refuses every signature.
type rejecting struct{}

func (rejecting) Verify(http.Header, []byte, time.Time) (int, error) { return 0, errors.New("bad mac") }
func (rejecting) Scheme() string                                     { return "test" }

// TestRejections: the answers given before anything is stored. They need no store, archive or
// publisher, so the handler has none.
func TestRejections(t *testing.T) {
	srcs, err := mapping.ParseSources([]byte(`
sources:
  demo:
    kind: canonical
    secrets: [env:X]
    routing: {crm: salesforce, object: Lead, upsert_key: Ext__c}
  broken:
    kind: canonical
    secrets: [env:Y]
    routing: {crm: salesforce, object: Lead, upsert_key: Ext__c}
`))
	if err != nil {
		t.Fatal(err)
	}
	demo, _ := srcs.Get("demo")
	broken, _ := srcs.Get("broken")
	h := New(map[string]*Source{
		"demo":   {Source: demo, Verifier: rejecting{}},
		"broken": {Source: broken, Err: errors.New("secret env:Y not set")},
	}, nil, nil, nil, Options{MaxBodyBytes: 64, RetryAfter: 7 * time.Second})
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	h.Register(e)
	tests := []struct {
		name, source, contentType, body string
		wantCode                        int
		wantError                       string
		wantRetryAfter                  string
	}{
		{"unknown source", "nope", "application/json", `{}`, 404, "unknown source", ""},
		{"source without its secrets", "broken", "application/json", `{}`, 503, "storage unavailable, retry later", "7"},
		{"content type", "demo", "text/plain", `{}`, 415, "content type not accepted by this source", ""},
		{"body too large", "demo", "application/json", `{"pad":"` + strings.Repeat("x", 100) + `"}`, 413, "body too large", ""},
		{"bad signature", "demo", "application/json", `{}`, 401, "bad or missing signature", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/"+tt.source, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			var a Answer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if rec.Code != tt.wantCode || a.Status != StatusError || a.Error != tt.wantError {
				t.Errorf("got %d %s %q, want %d error %q", rec.Code, a.Status, a.Error, tt.wantCode, tt.wantError)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tt.wantRetryAfter)
			}
		})
	}
}
