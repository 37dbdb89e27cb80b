package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
	"github.com/leadpipe/leadpipe/processor/internal/dlq"
)

// fakeLifecycle answers the handler's lifecycle calls as the test says and records them.
type fakeLifecycle struct {
	claimErr   error
	verdictErr error       // returned by Complete, Fail and Quarantine
	state      store.State // the current state returned with a verdict
	calls      []string
	reasons    []store.Reason
}

var _ Lifecycle = (*fakeLifecycle)(nil)

func (f *fakeLifecycle) ClaimFirst(_ context.Context, ev *event.Event, p store.LeasePolicy, _ store.FirstDelivery) (*store.Lease, error) {
	f.calls = append(f.calls, "claim")
	l := &store.Lease{DocID: event.DocID(ev.IdempotencyKey), Fence: 3, Attempt: 4, Relative: 2, Owner: p.Owner,
		Doc: store.EventDoc{DocID: event.DocID(ev.IdempotencyKey), FailureClass: failure.Permanent}}
	if f.claimErr != nil {
		return l, fmt.Errorf("claim: %w", f.claimErr)
	}
	return l, nil
}

func (f *fakeLifecycle) Complete(context.Context, *store.Lease, store.Result, *store.Attempt) (store.State, error) {
	f.calls = append(f.calls, "complete")
	return f.state, f.verdictErr
}

func (f *fakeLifecycle) Fail(_ context.Context, _ *store.Lease, r store.Reason, _ *store.Attempt) (store.State, error) {
	f.calls = append(f.calls, "fail")
	f.reasons = append(f.reasons, r)
	return f.state, f.verdictErr
}

func (f *fakeLifecycle) Park(_ context.Context, _ *store.Lease, r store.Reason, _ *store.Attempt) (store.State, error) {
	f.calls = append(f.calls, "park")
	f.reasons = append(f.reasons, r)
	return f.state, f.verdictErr
}

func (f *fakeLifecycle) Quarantine(_ context.Context, l *store.Lease, r store.Reason, _ *store.Attempt) (store.EventDoc, error) {
	f.calls = append(f.calls, "quarantine")
	f.reasons = append(f.reasons, r)
	return store.EventDoc{DocID: l.DocID, FailureClass: r.Class, ErrorMessage: r.Message}, f.verdictErr
}

func (f *fakeLifecycle) MarkDLQPublished(context.Context, string) error {
	f.calls = append(f.calls, "mark_dlq")
	return nil
}

func (f *fakeLifecycle) Resolve(context.Context, string) (bool, error) {
	f.calls = append(f.calls, "resolve")
	return false, nil
}

func (f *fakeLifecycle) AddAttempt(_ context.Context, _ string, a store.Attempt) error {
	f.calls = append(f.calls, "attempt:"+string(a.Outcome))
	return nil
}

func (f *fakeLifecycle) Now() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }

type fakeDLQ struct {
	err  error
	sent []dlq.Message
}

func (p *fakeDLQ) Publish(_ context.Context, m dlq.Message) (string, error) {
	if p.err != nil {
		return "", p.err
	}
	p.sent = append(p.sent, m)
	return "dlq-1", nil
}

type gate bool

func (g gate) Open() bool { return bool(g) }

func validEvent() event.Event {
	return event.Event{
		SchemaVersion: event.SchemaVersion, EventID: "ev-1", EventType: event.TypeLeadCreated,
		Source: "test", OccurredAt: time.Date(2026, 6, 1, 11, 0, 0, 0, time.UTC), IdempotencyKey: "test|lead.created|1",
		Identity: event.Identity{ContactExternalID: "c-1"},
		Routing:  event.Routing{CRM: "salesforce", Object: "Lead", UpsertKey: "Ext__c", Mode: event.ModeUpsert},
	}
}

func envelope(data []byte) string {
	return fmt.Sprintf(`{"message":{"data":%q,"messageId":"m-1","attributes":{"replay_id":"r-1"}},"subscription":"projects/p/subscriptions/leads-processor","deliveryAttempt":2}`,
		base64.StdEncoding.EncodeToString(data))
}

// TestPushOutcomes: the status, body and lifecycle calls of every outcome of a push delivery.
// Any non-2xx makes Pub/Sub redeliver, so each status is part of the contract.
func TestPushOutcomes(t *testing.T) {
	good, _ := json.Marshal(validEvent())
	unknownCRM := validEvent()
	unknownCRM.Routing.CRM = "zoho"
	unknownData, _ := json.Marshal(unknownCRM)
	invalid := validEvent()
	invalid.IdempotencyKey = ""
	invalidData, _ := json.Marshal(invalid)
	ok := func(context.Context, *event.Event) (crm.Result, error) {
		return crm.Result{RecordID: "00Q1", StatusCode: 201}, nil
	}
	failing := func(c failure.Class) crm.Func {
		return func(context.Context, *event.Event) (crm.Result, error) {
			return crm.Result{}, failure.New(c, 0, "crm said no")
		}
	}
	errStore := failure.New(failure.Retryable, 14, "firestore Unavailable")
	tests := []struct {
		name        string
		body        string
		upsert      crm.Func
		open        bool
		park        bool // ParkOnOpen
		claimErr    error
		verdictErr  error
		state       store.State
		dlqErr      error
		wantStatus  int
		wantOutcome string
		wantClass   failure.Class
		wantCalls   string
		wantDLQ     int
	}{
		{name: "malformed envelope", body: `{"message":`, wantStatus: 200, wantOutcome: "malformed"},
		{name: "undecodable event", body: envelope([]byte("not json")), wantStatus: 200, wantOutcome: "unusable", wantClass: failure.Permanent, wantDLQ: 1},
		{name: "invalid event", body: envelope(invalidData), wantStatus: 200, wantOutcome: "unusable", wantClass: failure.Permanent, wantDLQ: 1},
		{name: "unusable, dlq down", body: envelope([]byte("not json")), dlqErr: errors.New("down"), wantStatus: 503, wantOutcome: "dlq_unavailable"},
		{name: "circuit open", body: envelope(good), upsert: ok, open: true, wantStatus: 503, wantOutcome: "crm_circuit_open", wantClass: failure.Outage},
		{name: "circuit open, parked", body: envelope(good), upsert: ok, open: true, park: true, wantStatus: 200, wantOutcome: "parked", wantClass: failure.Outage, wantCalls: "claim park"},
		{name: "circuit open, already succeeded", body: envelope(good), upsert: ok, open: true, park: true, claimErr: store.ErrSucceeded, wantStatus: 200, wantOutcome: "duplicate", wantCalls: "claim"},
		{name: "circuit open, park superseded", body: envelope(good), upsert: ok, open: true, park: true, verdictErr: store.ErrFenceSuperseded, wantStatus: 503, wantOutcome: "superseded", wantCalls: "claim park attempt:superseded"},
		{name: "circuit open, park not written", body: envelope(good), upsert: ok, open: true, park: true, verdictErr: errStore, wantStatus: 503, wantOutcome: "store_unavailable", wantClass: failure.Outage, wantCalls: "claim park attempt:failed"},
		{name: "already succeeded", body: envelope(good), upsert: ok, claimErr: store.ErrSucceeded, wantStatus: 200, wantOutcome: "duplicate", wantCalls: "claim"},
		{name: "terminal", body: envelope(good), upsert: ok, claimErr: store.ErrTerminal, wantStatus: 200, wantOutcome: "terminal", wantCalls: "claim"},
		{name: "parked", body: envelope(good), upsert: ok, claimErr: store.ErrParked, wantStatus: 200, wantOutcome: "parked", wantCalls: "claim"},
		{name: "lease held", body: envelope(good), upsert: ok, claimErr: store.ErrLeaseHeld, wantStatus: 429, wantOutcome: "lease_held", wantCalls: "claim"},
		{name: "dlq publish owed", body: envelope(good), upsert: ok, claimErr: store.ErrPendingDLQ, wantStatus: 200, wantOutcome: "quarantined", wantClass: failure.Permanent, wantCalls: "claim mark_dlq", wantDLQ: 1},
		{name: "dlq publish owed, dlq down", body: envelope(good), upsert: ok, claimErr: store.ErrPendingDLQ, dlqErr: errors.New("down"), wantStatus: 503, wantOutcome: "dlq_unavailable", wantClass: failure.Permanent, wantCalls: "claim"},
		{name: "claim store error", body: envelope(good), upsert: ok, claimErr: errStore, wantStatus: 503, wantOutcome: "store_unavailable", wantCalls: "claim"},
		{name: "no adapter for the crm", body: envelope(unknownData), wantStatus: 200, wantOutcome: "quarantined", wantClass: failure.Permanent, wantCalls: "claim quarantine mark_dlq", wantDLQ: 1},
		{name: "succeeded", body: envelope(good), upsert: ok, wantStatus: 200, wantOutcome: "succeeded", wantCalls: "claim complete"},
		{name: "superseded by a finished holder", body: envelope(good), upsert: ok, verdictErr: store.ErrFenceSuperseded, state: store.StateSucceeded, wantStatus: 200, wantOutcome: "duplicate", wantCalls: "claim complete attempt:superseded"},
		{name: "superseded by a running holder", body: envelope(good), upsert: ok, verdictErr: store.ErrFenceSuperseded, state: store.StateProcessing, wantStatus: 503, wantOutcome: "superseded", wantCalls: "claim complete attempt:superseded"},
		{name: "superseded by a discard", body: envelope(good), upsert: ok, verdictErr: store.ErrFenceSuperseded, state: store.StateDiscarded, wantStatus: 503, wantOutcome: "superseded", wantCalls: "claim complete attempt:superseded"},
		{name: "result not written", body: envelope(good), upsert: ok, verdictErr: errStore, wantStatus: 503, wantOutcome: "store_unavailable", wantCalls: "claim complete"},
		{name: "retryable below the threshold", body: envelope(good), upsert: failing(failure.Retryable), wantStatus: 503, wantOutcome: "failed", wantClass: failure.Retryable, wantCalls: "claim fail"},
		{name: "outage", body: envelope(good), upsert: failing(failure.Outage), wantStatus: 503, wantOutcome: "failed", wantClass: failure.Outage, wantCalls: "claim fail"},
		{name: "outage, parked", body: envelope(good), upsert: failing(failure.Outage), park: true, wantStatus: 200, wantOutcome: "parked", wantClass: failure.Outage, wantCalls: "claim park"},
		{name: "retryable with parking on", body: envelope(good), upsert: failing(failure.Retryable), park: true, wantStatus: 503, wantOutcome: "failed", wantClass: failure.Retryable, wantCalls: "claim fail"},
		{name: "permanent with parking on", body: envelope(good), upsert: failing(failure.Permanent), park: true, wantStatus: 200, wantOutcome: "quarantined", wantClass: failure.Permanent, wantCalls: "claim quarantine mark_dlq", wantDLQ: 1},
		{name: "failure not written", body: envelope(good), upsert: failing(failure.Retryable), verdictErr: errStore, wantStatus: 503, wantOutcome: "failed", wantClass: failure.Retryable, wantCalls: "claim fail attempt:failed"},
		{name: "permanent", body: envelope(good), upsert: failing(failure.Permanent), wantStatus: 200, wantOutcome: "quarantined", wantClass: failure.Permanent, wantCalls: "claim quarantine mark_dlq", wantDLQ: 1},
		{name: "auth", body: envelope(good), upsert: failing(failure.Auth), wantStatus: 200, wantOutcome: "quarantined", wantClass: failure.Auth, wantCalls: "claim quarantine mark_dlq", wantDLQ: 1},
		{name: "conflict", body: envelope(good), upsert: failing(failure.Conflict), wantStatus: 200, wantOutcome: "quarantined", wantClass: failure.Conflict, wantCalls: "claim quarantine mark_dlq", wantDLQ: 1},
		{name: "quarantine superseded", body: envelope(good), upsert: failing(failure.Permanent), verdictErr: store.ErrFenceSuperseded, wantStatus: 503, wantOutcome: "superseded", wantCalls: "claim quarantine attempt:superseded"},
		{name: "quarantine not written", body: envelope(good), upsert: failing(failure.Permanent), verdictErr: errStore, wantStatus: 503, wantOutcome: "store_unavailable", wantCalls: "claim quarantine attempt:failed"},
		{name: "quarantined, dlq down", body: envelope(good), upsert: failing(failure.Permanent), dlqErr: errors.New("down"), wantStatus: 503, wantOutcome: "dlq_unavailable", wantClass: failure.Permanent, wantCalls: "claim quarantine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := &fakeLifecycle{claimErr: tt.claimErr, verdictErr: tt.verdictErr, state: tt.state}
			pub := &fakeDLQ{err: tt.dlqErr}
			h := &Handler{Store: lc, DLQ: pub, Budget: time.Second, ParkOnOpen: tt.park,
				Lease: store.LeasePolicy{Owner: "p-1", TTL: time.Minute, MaxAttempts: 5}}
			if tt.upsert != nil {
				h.Routes = map[string]Route{"salesforce": {Upserter: tt.upsert, Gate: gate(tt.open)}}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/pubsub/push", strings.NewReader(tt.body)))
			var got struct {
				Outcome string        `json:"outcome"`
				Class   failure.Class `json:"failure_class"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if rec.Code != tt.wantStatus || got.Outcome != tt.wantOutcome || got.Class != tt.wantClass {
				t.Errorf("answer: got %d %s %q, want %d %s %q", rec.Code, got.Outcome, got.Class, tt.wantStatus, tt.wantOutcome, tt.wantClass)
			}
			if calls := strings.Join(lc.calls, " "); calls != tt.wantCalls {
				t.Errorf("lifecycle calls: got %q, want %q", calls, tt.wantCalls)
			}
			if len(pub.sent) != tt.wantDLQ {
				t.Errorf("dlq messages: got %d, want %d", len(pub.sent), tt.wantDLQ)
			}
			retry := rec.Code == 429 || rec.Code == 503
			if got := rec.Header().Get("Retry-After"); (got != "") != retry {
				t.Errorf("Retry-After: got %q for status %d", got, rec.Code)
			}
		})
	}
}

// TestDecide is the retry/quarantine policy of a classified CRM failure.
func TestDecide(t *testing.T) {
	tests := []struct {
		class    failure.Class
		relative int
		park     bool
		open     bool // the circuit is open after the call
		want     verdict
		wantMsg  string
	}{
		{failure.Outage, 1, false, true, verdictFail, "crm said no"},
		{failure.Outage, 99, false, true, verdictFail, "crm said no"}, // never charged, never quarantined for it
		{failure.Outage, 1, true, true, verdictPark, "crm said no"},
		{failure.Outage, 99, true, false, verdictPark, "crm said no"},
		{failure.Retryable, 1, false, false, verdictFail, "crm said no"},
		{failure.Retryable, 1, false, true, verdictFail, "crm said no"},
		{failure.Retryable, 4, true, false, verdictFail, "crm said no"}, // a closed circuit: the CRM is up
		{failure.Retryable, 2, true, true, verdictPark, "crm said no"},  // e.g. no send token before the circuit opened
		{failure.Retryable, 5, true, true, verdictPark, "crm said no"},  // not quarantined while the CRM is down
		{failure.Retryable, 5, false, false, verdictQuarantine, "gave up after 5 attempts: crm said no"},
		{failure.Retryable, 5, true, false, verdictQuarantine, "gave up after 5 attempts: crm said no"},
		{failure.Conflict, 1, true, true, verdictQuarantine, "crm said no"},
		{failure.Permanent, 1, false, false, verdictQuarantine, "crm said no"},
		{failure.Permanent, 1, true, true, verdictQuarantine, "crm said no"},
		{failure.Auth, 1, true, true, verdictQuarantine, "crm said no"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/park=%v/open=%v", tt.class, tt.relative, tt.park, tt.open), func(t *testing.T) {
			v, fe := decide(failure.New(tt.class, 503, "crm said no"), tt.relative, 5, tt.park, tt.open)
			if v != tt.want || fe.Message != tt.wantMsg || fe.Class != tt.class || fe.Code != 503 {
				t.Errorf("got %v %+v, want %v with class %s message %q", v, fe, tt.want, tt.class, tt.wantMsg)
			}
		})
	}
}

// flipGate is a circuit that opens during the CRM call.
type flipGate struct{ open bool }

func (g *flipGate) Open() bool { return g.open }

// TestPushParksWhenCircuitOpensDuringCall: a retryable failure (here: no send token in time)
// while the circuit opened meanwhile parks the event, uncharged, instead of nacking it; without
// parking it fails as before.
func TestPushParksWhenCircuitOpensDuringCall(t *testing.T) {
	good, _ := json.Marshal(validEvent())
	for _, park := range []bool{true, false} {
		t.Run(fmt.Sprintf("park=%v", park), func(t *testing.T) {
			g := &flipGate{}
			up := crm.Func(func(context.Context, *event.Event) (crm.Result, error) {
				g.open = true
				return crm.Result{}, failure.New(failure.Retryable, 0, "crm send rate: no token within the wait budget")
			})
			lc := &fakeLifecycle{}
			h := &Handler{Store: lc, DLQ: &fakeDLQ{}, Budget: time.Second, ParkOnOpen: park,
				Lease:  store.LeasePolicy{Owner: "p-1", TTL: time.Minute, MaxAttempts: 5},
				Routes: map[string]Route{"salesforce": {Upserter: up, Gate: g}}}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/pubsub/push", strings.NewReader(envelope(good))))
			wantStatus, wantCalls := 200, "claim park"
			if !park {
				wantStatus, wantCalls = 503, "claim fail"
			}
			if rec.Code != wantStatus || strings.Join(lc.calls, " ") != wantCalls {
				t.Errorf("got %d after %v, want %d after %q", rec.Code, lc.calls, wantStatus, wantCalls)
			}
		})
	}
}
