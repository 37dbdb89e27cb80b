package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
)

// t0 is the tests' clock origin, at Firestore's microsecond precision.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newDoc(sourceEventID string) *store.EventDoc {
	key := event.IdempotencyKey("typeform", event.TypeLeadCreated, sourceEventID)
	ev := event.Event{
		SchemaVersion:  event.SchemaVersion,
		EventID:        "evt-" + sourceEventID,
		EventType:      event.TypeLeadCreated,
		Source:         "typeform",
		SourceEventID:  sourceEventID,
		OccurredAt:     t0.Add(-time.Minute),
		IdempotencyKey: key,
		Identity:       event.Identity{Email: "jane@example.com", PhoneE164: "+15551234567"},
		Attributes:     map[string]string{"first_name": "Jane", "utm_source": "ads"},
		Routing:        event.Routing{CRM: "salesforce", Object: "Lead", UpsertKey: "Ext__c", Mode: event.ModeUpsert},
		Audit:          event.Audit{ReceivedAt: t0, RawEventRef: "gs://b/raw/typeform/x.json", NormalizedEventRef: store.DocPath(event.DocID(key))},
		MappingVersion: "typeform-v1",
		CorrelationID:  "corr-" + sourceEventID,
	}
	return &store.EventDoc{
		IdempotencyKey: key,
		EventID:        ev.EventID,
		Source:         ev.Source,
		EventType:      ev.EventType,
		CorrelationID:  ev.CorrelationID,
		MappingVersion: ev.MappingVersion,
		Event:          ev,
		RawRef:         ev.Audit.RawEventRef,
	}
}

func fixedClock(s *store.Store, at time.Time) { s.SetClock(func() time.Time { return at }) }

func TestCreateEventAndDuplicate(t *testing.T) {
	s := newStore(t)
	fixedClock(s, t0)
	ctx := context.Background()

	doc := newDoc("r1")
	if err := s.CreateEvent(ctx, doc); err != nil {
		t.Fatalf("CreateEvent: %v", err)
	}
	if want := event.DocID(doc.IdempotencyKey); doc.DocID != want {
		t.Errorf("DocID: got %q, want %q", doc.DocID, want)
	}
	if doc.State != store.StateReceived {
		t.Errorf("State: got %q, want %q", doc.State, store.StateReceived)
	}
	if !doc.CreatedAt.Equal(t0) || !doc.UpdatedAt.Equal(t0) {
		t.Errorf("CreatedAt/UpdatedAt: got %v/%v, want %v", doc.CreatedAt, doc.UpdatedAt, t0)
	}

	// A retried delivery: same key, later clock, different content.
	fixedClock(s, t0.Add(time.Hour))
	dup := newDoc("r1")
	dup.CorrelationID = "second-delivery"
	err := s.CreateEvent(ctx, dup)
	if !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("second CreateEvent: got %v, want ErrDuplicate", err)
	}
	if _, ok := failure.ClassOf(err); ok {
		t.Errorf("ErrDuplicate is an expected outcome; got it classified: %v", err)
	}
	got, err := s.GetEvent(ctx, doc.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CorrelationID != doc.CorrelationID || !got.CreatedAt.Equal(t0) {
		t.Errorf("after duplicate: got correlation %q created %v, want the first write (%q, %v)",
			got.CorrelationID, got.CreatedAt, doc.CorrelationID, t0)
	}
}

func TestCreateEventKeepsGivenFields(t *testing.T) {
	s := newStore(t)
	fixedClock(s, t0)
	doc := newDoc("r2")
	doc.DocID = "custom-doc-id"
	doc.State = store.StateQuarantined
	doc.CreatedAt = t0.Add(-time.Hour)
	if err := s.CreateEvent(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEvent(context.Background(), "custom-doc-id")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateQuarantined || !got.CreatedAt.Equal(t0.Add(-time.Hour)) || !got.UpdatedAt.Equal(t0) {
		t.Errorf("got state %q created %v updated %v, want %q %v %v",
			got.State, got.CreatedAt, got.UpdatedAt, store.StateQuarantined, t0.Add(-time.Hour), t0)
	}
}

// TestCreateEventConcurrent: 30 deliveries of one lead racing: exactly one wins.
func TestCreateEventConcurrent(t *testing.T) {
	s := newStore(t)
	const n = 30
	var (
		wg   sync.WaitGroup
		errs = make([]error, n)
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d := newDoc("race")
			d.CorrelationID = fmt.Sprintf("delivery-%d", i)
			errs[i] = s.CreateEvent(context.Background(), d)
		}()
	}
	close(start)
	wg.Wait()

	winners, dups := 0, 0
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winner = fmt.Sprintf("delivery-%d", i)
		case errors.Is(err, store.ErrDuplicate):
			dups++
		default:
			t.Errorf("delivery %d: got %v, want nil or ErrDuplicate", i, err)
		}
	}
	if winners != 1 || dups != n-1 {
		t.Fatalf("got %d winners and %d duplicates, want 1 and %d", winners, dups, n-1)
	}
	got, err := s.FindEvent(context.Background(), newDoc("race").IdempotencyKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.CorrelationID != winner {
		t.Errorf("stored document: got correlation %q, want the winner's %q", got.CorrelationID, winner)
	}
}

func TestGetEventRoundTrip(t *testing.T) {
	s := newStore(t)
	fixedClock(s, t0)
	ctx := context.Background()
	doc := newDoc("r3")
	due := t0.Add(30 * time.Second)
	doc.OutboxDueAt = &due
	doc.Fence = 7
	doc.Attempts = 2
	doc.AttemptsBase = 1
	doc.LeaseOwner = "proc-1"
	doc.LeaseExpiresAt = t0.Add(time.Minute)
	doc.FailureClass = failure.Retryable
	if err := s.CreateEvent(ctx, doc); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEvent(ctx, doc.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DocID != doc.DocID {
		t.Errorf("DocID: got %q, want %q", got.DocID, doc.DocID)
	}
	if got.UpdateTime.IsZero() {
		t.Error("UpdateTime: got zero, want the document's update time")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"idempotency_key", got.IdempotencyKey, doc.IdempotencyKey},
		{"event_id", got.EventID, doc.EventID},
		{"source", got.Source, doc.Source},
		{"event_type", got.EventType, doc.EventType},
		{"correlation_id", got.CorrelationID, doc.CorrelationID},
		{"mapping_version", got.MappingVersion, doc.MappingVersion},
		{"raw_ref", got.RawRef, doc.RawRef},
		{"state", got.State, store.StateReceived},
		{"fence", got.Fence, int64(7)},
		{"attempts", got.Attempts, 2},
		{"attempts_base", got.AttemptsBase, 1},
		{"lease_owner", got.LeaseOwner, "proc-1"},
		{"failure_class", got.FailureClass, failure.Retryable},
		{"event.identity", got.Event.Identity, doc.Event.Identity},
		{"event.routing", got.Event.Routing, doc.Event.Routing},
		{"event.attributes.first_name", got.Event.Attributes["first_name"], "Jane"},
		{"event.idempotency_key", got.Event.IdempotencyKey, doc.IdempotencyKey},
		{"event.audit.raw_event_ref", got.Event.Audit.RawEventRef, doc.Event.Audit.RawEventRef},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	for name, pair := range map[string][2]time.Time{
		"lease_expires_at":  {got.LeaseExpiresAt, doc.LeaseExpiresAt},
		"created_at":        {got.CreatedAt, t0},
		"event.occurred_at": {got.Event.OccurredAt, doc.Event.OccurredAt},
	} {
		if !pair[0].Equal(pair[1]) {
			t.Errorf("%s: got %v, want %v", name, pair[0], pair[1])
		}
	}
	if got.OutboxDueAt == nil || !got.OutboxDueAt.Equal(due) {
		t.Errorf("outbox_due_at: got %v, want %v", got.OutboxDueAt, due)
	}
}

func TestFindEvent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	doc := newDoc("r4")
	other := newDoc("r5")
	for _, d := range []*store.EventDoc{doc, other} {
		if err := s.CreateEvent(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		key     string
		wantID  string
		wantErr error
	}{
		{"by idempotency key", doc.IdempotencyKey, doc.DocID, nil},
		{"by doc id", doc.DocID, doc.DocID, nil},
		{"by event id", doc.EventID, doc.DocID, nil},
		{"other by event id", other.EventID, other.DocID, nil},
		{"unknown key", "typeform|lead.created|nope", "", store.ErrNotFound},
		{"unknown 64-char id", strings.Repeat("ab", 32), "", store.ErrNotFound},
		{"64 chars with a slash", strings.Repeat("a/", 32), "", store.ErrNotFound},
		{"64 chars, reserved id form", "__" + strings.Repeat("x", 60) + "__", "", store.ErrNotFound},
		{"empty", "", "", store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindEvent(ctx, tt.key)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FindEvent(%q): got (%v, %v), want %v", tt.key, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindEvent(%q): %v", tt.key, err)
			}
			if got.DocID != tt.wantID {
				t.Errorf("FindEvent(%q): got doc %q, want %q", tt.key, got.DocID, tt.wantID)
			}
		})
	}
}

func TestGetEventNotFound(t *testing.T) {
	s := newStore(t)
	_, err := s.GetEvent(context.Background(), event.DocID("missing"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetEvent(missing): got %v, want ErrNotFound", err)
	}
	if _, ok := failure.ClassOf(err); ok {
		t.Errorf("ErrNotFound is an expected outcome; got it classified: %v", err)
	}
}

func TestOutbox(t *testing.T) {
	s := newStore(t)
	fixedClock(s, t0)
	ctx := context.Background()

	// Created in an order unrelated to due times, to prove the query orders by due time.
	dues := []struct {
		id  string
		due *time.Time
	}{
		{"due-2m", ptr(t0.Add(-2 * time.Minute))},
		{"future", ptr(t0.Add(time.Minute))},
		{"due-now", ptr(t0)},
		{"no-outbox", nil},
		{"due-5m", ptr(t0.Add(-5 * time.Minute))},
		{"due-1m", ptr(t0.Add(-time.Minute))},
	}
	ids := map[string]string{}
	for _, d := range dues {
		doc := newDoc(d.id)
		doc.OutboxDueAt = d.due
		if err := s.CreateEvent(ctx, doc); err != nil {
			t.Fatal(err)
		}
		ids[doc.DocID] = d.id
	}
	names := func(docs []*store.EventDoc) string {
		var out []string
		for _, d := range docs {
			out = append(out, ids[d.DocID])
		}
		return strings.Join(out, ",")
	}
	due := func(limit int) string {
		t.Helper()
		docs, err := s.DueForPublish(ctx, limit)
		if err != nil {
			t.Fatalf("DueForPublish(%d): %v", limit, err)
		}
		return names(docs)
	}

	if got, want := due(10), "due-5m,due-2m,due-1m,due-now"; got != want {
		t.Errorf("DueForPublish(10): got %s, want %s", got, want)
	}
	if got, want := due(2), "due-5m,due-2m"; got != want {
		t.Errorf("DueForPublish(2): got %s, want %s", got, want)
	}

	// Publishing takes an event out of the outbox.
	fixedClock(s, t0.Add(time.Second))
	pub := newDoc("due-2m")
	pub.DocID = event.DocID(pub.IdempotencyKey)
	if err := s.MarkPublished(ctx, pub.DocID, "msg-77"); err != nil {
		t.Fatalf("MarkPublished: %v", err)
	}
	got, err := s.GetEvent(ctx, pub.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if got.OutboxDueAt != nil {
		t.Errorf("outbox_due_at after MarkPublished: got %v, want removed", got.OutboxDueAt)
	}
	if got.PublishMessageID != "msg-77" || !got.PublishedAt.Equal(t0.Add(time.Second)) || !got.UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("after MarkPublished: got message %q published %v updated %v, want %q %v %v",
			got.PublishMessageID, got.PublishedAt, got.UpdatedAt, "msg-77", t0.Add(time.Second), t0.Add(time.Second))
	}
	if got.State != store.StateReceived || got.CorrelationID != pub.CorrelationID {
		t.Errorf("MarkPublished changed other fields: state %q correlation %q", got.State, got.CorrelationID)
	}
	if got, want := due(10), "due-5m,due-1m,due-now"; got != want {
		t.Errorf("DueForPublish after publish: got %s, want %s", got, want)
	}

	// Time passes: the future event becomes due.
	fixedClock(s, t0.Add(2*time.Minute))
	if got, want := due(10), "due-5m,due-1m,due-now,future"; got != want {
		t.Errorf("DueForPublish later: got %s, want %s", got, want)
	}
}

func TestMarkPublishedMissing(t *testing.T) {
	s := newStore(t)
	err := s.MarkPublished(context.Background(), event.DocID("never-created"), "m")
	if err == nil {
		t.Fatal("MarkPublished of a missing event: got nil, want an error")
	}
	if got := status.Code(err); got != codes.NotFound {
		t.Errorf("status code in chain: got %v, want NotFound", got)
	}
	// Update must not have created the document.
	if _, err := s.GetEvent(context.Background(), event.DocID("never-created")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEvent after failed MarkPublished: got %v, want ErrNotFound", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestAttempts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	doc := newDoc("r6")
	if err := s.CreateEvent(ctx, doc); err != nil {
		t.Fatal(err)
	}
	none, err := s.Attempts(ctx, doc.DocID)
	if err != nil || len(none) != 0 {
		t.Fatalf("Attempts before any: got (%v, %v), want (empty, nil)", none, err)
	}

	mk := func(n int, outcome store.AttemptOutcome) store.Attempt {
		return store.Attempt{
			Number: n, Fence: int64(n), Owner: "proc-a", MessageID: fmt.Sprintf("m%d", n), Delivery: n,
			Outcome: outcome, Class: "retryable", Code: 503, Message: "crm 503", Tries: 3,
			StartedAt: t0.Add(time.Duration(n) * time.Second), FinishedAt: t0.Add(time.Duration(n)*time.Second + 500*time.Millisecond),
		}
	}
	// Written out of order; 10 sorts after 9 numerically (and the ids are zero-padded).
	for _, n := range []int{3, 1, 10, 2, 9} {
		if err := s.AddAttempt(ctx, doc.DocID, mk(n, "failed")); err != nil {
			t.Fatalf("AddAttempt(%d): %v", n, err)
		}
	}
	// A retried write of attempt 2 with its final outcome overwrites, not duplicates.
	final := mk(2, "succeeded")
	final.Class, final.Code = "", 200
	if err := s.AddAttempt(ctx, doc.DocID, final); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAttempt(ctx, doc.DocID, final); err != nil {
		t.Fatal(err)
	}

	got, err := s.Attempts(ctx, doc.DocID)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, a := range got {
		nums = append(nums, a.Number)
	}
	if fmt.Sprint(nums) != "[1 2 3 9 10]" {
		t.Fatalf("attempt numbers: got %v, want [1 2 3 9 10]", nums)
	}
	a2 := got[1]
	if a2.Outcome != "succeeded" || a2.Class != "" || a2.Code != 200 {
		t.Errorf("attempt 2: got outcome %q class %q code %d, want the rewrite (succeeded, \"\", 200)", a2.Outcome, a2.Class, a2.Code)
	}
	a3, w3 := got[2], mk(3, "failed")
	if a3.Fence != w3.Fence || a3.Owner != w3.Owner || a3.MessageID != w3.MessageID || a3.Delivery != w3.Delivery ||
		a3.Message != w3.Message || a3.Tries != w3.Tries || !a3.StartedAt.Equal(w3.StartedAt) || !a3.FinishedAt.Equal(w3.FinishedAt) {
		t.Errorf("attempt 3 round trip: got %+v, want %+v", a3, w3)
	}

	// Another event's history is separate.
	if other, err := s.Attempts(ctx, event.DocID("other")); err != nil || len(other) != 0 {
		t.Errorf("Attempts(other): got (%v, %v), want (empty, nil)", other, err)
	}
}

func TestCRMHealth(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.CRMHealth(ctx, "salesforce"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CRMHealth before any write: got %v, want ErrNotFound", err)
	}
	open := store.CRMHealth{CRM: "salesforce", State: store.CRMOpen, ChangedAt: t0, LastFailureAt: t0.Add(-time.Second)}
	if err := s.SetCRMHealth(ctx, open); err != nil {
		t.Fatal(err)
	}
	closed := store.CRMHealth{CRM: "hubspot", State: store.CRMClosed, ChangedAt: t0, LastSuccessAt: t0}
	if err := s.SetCRMHealth(ctx, closed); err != nil {
		t.Fatal(err)
	}
	for _, want := range []store.CRMHealth{open, closed} {
		got, err := s.CRMHealth(ctx, want.CRM)
		if err != nil {
			t.Fatalf("CRMHealth(%s): %v", want.CRM, err)
		}
		if !sameHealth(*got, want) {
			t.Errorf("CRMHealth(%s): got %+v, want %+v", want.CRM, *got, want)
		}
	}
	// Overwrite: half-open replaces open entirely (no stale last_failure_at).
	half := store.CRMHealth{CRM: "salesforce", State: store.CRMHalfOpen, ChangedAt: t0.Add(time.Minute)}
	if err := s.SetCRMHealth(ctx, half); err != nil {
		t.Fatal(err)
	}
	got, err := s.CRMHealth(ctx, "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	if !sameHealth(*got, half) {
		t.Errorf("after overwrite: got %+v, want %+v", *got, half)
	}
}

func sameHealth(a, b store.CRMHealth) bool {
	return a.CRM == b.CRM && a.State == b.State && a.ChangedAt.Equal(b.ChangedAt) &&
		a.LastSuccessAt.Equal(b.LastSuccessAt) && a.LastFailureAt.Equal(b.LastFailureAt)
}

func TestClassify(t *testing.T) {
	pre := &failure.Error{Class: failure.Conflict, Message: "already decided"}
	tests := []struct {
		name      string
		err       error
		wantClass failure.Class
		wantOK    bool
		wantSame  bool // returned unchanged
	}{
		{"unavailable", status.Error(codes.Unavailable, "x"), failure.Retryable, true, false},
		{"deadline", status.Error(codes.DeadlineExceeded, "x"), failure.Retryable, true, false},
		{"exhausted", status.Error(codes.ResourceExhausted, "x"), failure.Retryable, true, false},
		{"aborted", status.Error(codes.Aborted, "x"), failure.Retryable, true, false},
		{"internal", status.Error(codes.Internal, "x"), failure.Retryable, true, false},
		{"unknown code", status.Error(codes.Unknown, "x"), failure.Retryable, true, false},
		{"grpc canceled without ctx", status.Error(codes.Canceled, "x"), failure.Retryable, true, false},
		{"permission", status.Error(codes.PermissionDenied, "x"), failure.Auth, true, false},
		{"unauthenticated", status.Error(codes.Unauthenticated, "x"), failure.Auth, true, false},
		{"invalid argument", status.Error(codes.InvalidArgument, "x"), failure.Permanent, true, false},
		{"failed precondition", status.Error(codes.FailedPrecondition, "x"), failure.Permanent, true, false},
		{"out of range", status.Error(codes.OutOfRange, "x"), failure.Permanent, true, false},
		{"already exists", status.Error(codes.AlreadyExists, "x"), failure.Conflict, true, false},
		{"wrapped status", fmt.Errorf("op: %w", status.Error(codes.PermissionDenied, "x")), failure.Auth, true, false},
		{"plain error", errors.New("eof"), failure.Retryable, true, false},
		{"context canceled", context.Canceled, "", false, true},
		{"wrapped context canceled", fmt.Errorf("get: %w", context.Canceled), "", false, true},
		{"already classified", pre, failure.Conflict, true, true},
		{"nil", nil, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := store.Classify(tt.err)
			c, ok := failure.ClassOf(got)
			if c != tt.wantClass || ok != tt.wantOK {
				t.Errorf("class: got (%q, %v), want (%q, %v)", c, ok, tt.wantClass, tt.wantOK)
			}
			if tt.wantSame && got != tt.err {
				t.Errorf("got %v, want the error unchanged", got)
			}
			if tt.err != nil && !errors.Is(got, tt.err) {
				t.Errorf("original error not in the chain of %v", got)
			}
			var fe *failure.Error
			if ok && !tt.wantSame && errors.As(got, &fe) && fe.Code != int(status.Code(tt.err)) {
				t.Errorf("Code: got %d, want %d", fe.Code, status.Code(tt.err))
			}
		})
	}
}

// TestClassifyThroughClient drives real errors out of the Firestore client with the
// emulator's fault injection and checks what the store hands back.
func TestClassifyThroughClient(t *testing.T) {
	env.NeedEmbedded(t, "Firestore fault injection")
	ctx := context.Background()
	faults := env.Firestore.Faults()

	t.Run("query unavailable is retryable", func(t *testing.T) {
		s := newStore(t)
		faults.FailNext("RunQuery", 1, codes.Unavailable)
		_, err := s.DueForPublish(ctx, 10)
		if !failure.Is(err, failure.Retryable) {
			t.Fatalf("DueForPublish: got %v, want failure.Retryable", err)
		}
		if got := status.Code(err); got != codes.Unavailable {
			t.Errorf("status code: got %v, want Unavailable", got)
		}
		var fe *failure.Error
		if errors.As(err, &fe); fe.Code != int(codes.Unavailable) {
			t.Errorf("failure code: got %d, want %d", fe.Code, codes.Unavailable)
		}
		if _, err := s.DueForPublish(ctx, 10); err != nil {
			t.Errorf("DueForPublish after the fault: got %v, want nil", err)
		}
	})

	t.Run("one commit unavailable is absorbed by the client retry", func(t *testing.T) {
		s := newStore(t)
		faults.FailNext("Commit", 1, codes.Unavailable)
		doc := newDoc("transient")
		if err := s.CreateEvent(ctx, doc); err != nil {
			t.Fatalf("CreateEvent with one Unavailable commit: got %v, want nil (client retries)", err)
		}
		if _, err := s.GetEvent(ctx, doc.DocID); err != nil {
			t.Errorf("GetEvent: %v", err)
		}
	})

	t.Run("persistent commit unavailable is retryable and writes nothing", func(t *testing.T) {
		s := newStore(t)
		faults.FailNext("Commit", 1000, codes.Unavailable)
		cctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
		defer cancel()
		doc := newDoc("outage")
		err := s.CreateEvent(cctx, doc)
		if err == nil || errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("CreateEvent: got %v, want a failure", err)
		}
		if !failure.Is(err, failure.Retryable) {
			t.Errorf("CreateEvent: got %v, want failure.Retryable", err)
		}
		faults.Clear()
		if _, err := s.GetEvent(ctx, doc.DocID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetEvent after failed create: got %v, want ErrNotFound", err)
		}
	})

	faultCases := []struct {
		code codes.Code
		want failure.Class
	}{
		{codes.PermissionDenied, failure.Auth},
		{codes.Unauthenticated, failure.Auth},
		{codes.InvalidArgument, failure.Permanent},
		{codes.FailedPrecondition, failure.Permanent},
		{codes.Aborted, failure.Retryable},
		{codes.Internal, failure.Retryable},
	}
	for _, fc := range faultCases {
		t.Run("commit "+fc.code.String(), func(t *testing.T) {
			s := newStore(t)
			faults.FailNext("Commit", 1, fc.code)
			err := s.CreateEvent(ctx, newDoc("f-"+fc.code.String()))
			if !failure.Is(err, fc.want) {
				t.Fatalf("CreateEvent: got %v, want failure.%s", err, fc.want)
			}
			if got := status.Code(err); got != fc.code {
				t.Errorf("status code: got %v, want %v", got, fc.code)
			}
			if !strings.HasPrefix(err.Error(), "create event ") {
				t.Errorf("error %q: want the operation prefix %q", err, "create event ")
			}
		})
	}

	t.Run("attempt write permission denied is auth", func(t *testing.T) {
		s := newStore(t)
		faults.FailNext("Commit", 1, codes.PermissionDenied)
		if err := s.AddAttempt(ctx, event.DocID("x"), store.Attempt{Number: 1}); !failure.Is(err, failure.Auth) {
			t.Errorf("AddAttempt: got %v, want failure.Auth", err)
		}
	})

	// The client reports the caller's cancellation as gRPC Canceled; the code stays visible in
	// the chain so callers can tell it from a store failure.
	t.Run("canceled context keeps its code", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.GetEvent(cctx, event.DocID("x"))
		if err == nil {
			t.Fatal("GetEvent with a canceled context: got nil, want an error")
		}
		if !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
			t.Errorf("got %v, want context.Canceled in the chain", err)
		}
	})
}
