package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
)

// clock is a controllable clock for the store: lease expiry is decided on it, so no test
// sleeps.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.at }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.at = c.at.Add(d)
	c.mu.Unlock()
}

// lifecycleStore is a fresh store on a controllable clock starting at t0.
func lifecycleStore(t *testing.T) (*store.Store, *clock) {
	t.Helper()
	s := newStore(t)
	c := &clock{at: t0}
	s.SetClock(c.now)
	return s, c
}

func policy(owner string, ttl time.Duration, maxAttempts int) store.LeasePolicy {
	return store.LeasePolicy{Owner: owner, TTL: ttl, MaxAttempts: maxAttempts}
}

func leadEvent(id string) *event.Event {
	ev := newDoc(id).Event
	return &ev
}

var errCRM = store.Reason{Class: failure.Retryable, Message: "crm 503"}

func TestClaimLifecycle(t *testing.T) {
	st, _ := lifecycleStore(t)
	ctx := t.Context()
	ev := leadEvent("life")
	l, err := st.Claim(ctx, ev, policy("a", time.Minute, 5))
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if l.Fence != 1 || l.Attempt != 1 || l.Owner != "a" {
		t.Errorf("lease: got fence %d attempt %d owner %q, want 1, 1, a", l.Fence, l.Attempt, l.Owner)
	}
	if _, err := st.Claim(ctx, ev, policy("b", time.Minute, 5)); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("claim under a live lease: got %v, want ErrLeaseHeld", err)
	}
	if _, err := st.Complete(ctx, l, store.Result{RecordID: "r1", StatusCode: 201}, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if _, err := st.Claim(ctx, ev, policy("b", time.Minute, 5)); !errors.Is(err, store.ErrSucceeded) {
		t.Fatalf("claim after success: got %v, want ErrSucceeded", err)
	}
	d, err := st.GetEvent(ctx, l.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.StateSucceeded || d.CRMRecordID != "r1" || d.ResultFence != 1 || d.LeaseOwner != "" {
		t.Errorf("doc: got state %s record %q fence %d owner %q", d.State, d.CRMRecordID, d.ResultFence, d.LeaseOwner)
	}
}

func TestExpiredLeaseIsTakenOverAndOldHolderCannotWrite(t *testing.T) {
	st, clk := lifecycleStore(t)
	ctx := t.Context()
	ev := leadEvent("takeover")
	l1, err := st.Claim(ctx, ev, policy("slow", time.Second, 5))
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Second)
	l2, err := st.Claim(ctx, ev, policy("fast", time.Minute, 5))
	if err != nil {
		t.Fatalf("claim after expiry: %v", err)
	}
	if l2.Fence != l1.Fence+1 {
		t.Errorf("fence after takeover: got %d, want %d", l2.Fence, l1.Fence+1)
	}
	if _, err := st.Complete(ctx, l1, store.Result{RecordID: "stale"}, nil); !errors.Is(err, store.ErrFenceSuperseded) {
		t.Fatalf("stale complete: got %v, want ErrFenceSuperseded", err)
	}
	if _, err := st.Complete(ctx, l2, store.Result{RecordID: "fresh"}, nil); err != nil {
		t.Fatal(err)
	}
	d, _ := st.GetEvent(ctx, l2.DocID)
	if d.CRMRecordID != "fresh" || d.ResultFence != l2.Fence {
		t.Errorf("got record %q fence %d, want fresh %d", d.CRMRecordID, d.ResultFence, l2.Fence)
	}
}

// TestAttemptsExhaustedQuarantinesDurably: attempts spent without a verdict (crashes) end in a
// quarantine that is committed, so the next delivery sees a terminal event.
func TestAttemptsExhaustedQuarantinesDurably(t *testing.T) {
	st, clk := lifecycleStore(t)
	ctx := t.Context()
	ev := leadEvent("exhausted")
	p := policy("crashy", time.Second, 2)
	for i := 0; i < 2; i++ {
		if _, err := st.Claim(ctx, ev, p); err != nil {
			t.Fatalf("claim %d: %v", i+1, err)
		}
		clk.advance(2 * time.Second) // the holder "crashes": its lease runs out
	}
	l, err := st.Claim(ctx, ev, p)
	if !errors.Is(err, store.ErrPendingDLQ) {
		t.Fatalf("third claim: got %v, want ErrPendingDLQ", err)
	}
	d, err := st.GetEvent(ctx, l.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.StateQuarantined || d.QuarantinedBy != store.ByProcessor || d.ErrorMessage == "" || d.FailureClass != failure.Retryable {
		t.Fatalf("stored doc: got state %s by %q class %q msg %q; want quarantined by processor, retryable, with a reason", d.State, d.QuarantinedBy, d.FailureClass, d.ErrorMessage)
	}
	// Until the DLQ publish is recorded, every delivery is told to publish it.
	if _, err := st.Claim(ctx, ev, p); !errors.Is(err, store.ErrPendingDLQ) {
		t.Fatalf("claim with DLQ publish owed: got %v, want ErrPendingDLQ", err)
	}
	if err := st.MarkDLQPublished(ctx, l.DocID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(ctx, ev, p); !errors.Is(err, store.ErrTerminal) {
		t.Fatalf("claim after DLQ publish: got %v, want ErrTerminal", err)
	}
}

func TestOutageFailuresAreNotCharged(t *testing.T) {
	st, _ := lifecycleStore(t)
	ctx := t.Context()
	ev := leadEvent("outage")
	for i := 0; i < 5; i++ {
		l, err := st.Claim(ctx, ev, policy("p", time.Minute, 2))
		if err != nil {
			t.Fatalf("claim %d: %v (outage attempts must not count)", i+1, err)
		}
		if _, err := st.Fail(ctx, l, store.Reason{Class: failure.Outage, Message: "circuit open"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := st.GetEvent(ctx, event.DocID(ev.IdempotencyKey))
	if d.Attempts != 5 || d.Attempts-d.AttemptsBase != 0 || d.State != store.StateFailed {
		t.Errorf("got attempts %d base %d state %s; want 5, 5, failed", d.Attempts, d.AttemptsBase, d.State)
	}
	// A charged failure counts.
	l, err := st.Claim(ctx, ev, policy("p", time.Minute, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Fail(ctx, l, errCRM, nil); err != nil {
		t.Fatal(err)
	}
	d, _ = st.GetEvent(ctx, l.DocID)
	if d.Attempts-d.AttemptsBase != 1 || d.FailureClass != failure.Retryable || d.ErrorMessage != "crm 503" {
		t.Errorf("after a retryable failure: got relative %d class %q msg %q, want 1, retryable, crm 503", d.Attempts-d.AttemptsBase, d.FailureClass, d.ErrorMessage)
	}
}

func TestParkAndUnpark(t *testing.T) {
	st, clk := lifecycleStore(t)
	ctx := t.Context()
	ev := leadEvent("park")
	l, err := st.Claim(ctx, ev, policy("p", time.Minute, 1))
	if err != nil {
		t.Fatal(err)
	}
	att := &store.Attempt{Number: l.Attempt, Fence: l.Fence, Owner: "p", StartedAt: l.StartedAt}
	if _, err := st.Park(ctx, l, store.Reason{Class: failure.Outage, Message: "salesforce circuit open"}, att); err != nil {
		t.Fatalf("park: %v", err)
	}
	d, _ := st.GetEvent(ctx, l.DocID)
	if d.State != store.StateParked || d.Attempts-d.AttemptsBase != 0 || d.LeaseOwner != "" || !d.ParkedAt.Equal(t0) {
		t.Fatalf("parked doc: got state %s relative %d owner %q parked_at %v; want parked, 0, none, %v", d.State, d.Attempts-d.AttemptsBase, d.LeaseOwner, d.ParkedAt, t0)
	}
	if atts, _ := st.Attempts(ctx, l.DocID); len(atts) != 1 || atts[0].Outcome != store.AttemptParked {
		t.Errorf("attempts: got %+v, want one parked", atts)
	}
	// A redelivery of a parked event is acked; the drain brings it back.
	if _, err := st.Claim(ctx, ev, policy("q", time.Minute, 1)); !errors.Is(err, store.ErrParked) {
		t.Fatalf("claim of a parked event: got %v, want ErrParked", err)
	}
	if _, err := st.Park(ctx, l, store.Reason{Class: failure.Outage}, nil); !errors.Is(err, store.ErrFenceSuperseded) {
		t.Errorf("second park with the same lease: got %v, want ErrFenceSuperseded", err)
	}
	due := t0.Add(time.Second)
	if moved, err := st.Unpark(ctx, l.DocID, due); err != nil || !moved {
		t.Fatalf("unpark: got (%v, %v), want (true, nil)", moved, err)
	}
	d, _ = st.GetEvent(ctx, l.DocID)
	if d.State != store.StateReceived || d.Fence != l.Fence+1 || d.OutboxDueAt == nil || !d.OutboxDueAt.Equal(due) || !d.ParkedAt.IsZero() {
		t.Fatalf("unparked doc: got state %s fence %d due %v parked_at %v", d.State, d.Fence, d.OutboxDueAt, d.ParkedAt)
	}
	if moved, err := st.Unpark(ctx, l.DocID, due); err != nil || moved {
		t.Errorf("unpark of a received event: got (%v, %v), want (false, nil)", moved, err)
	}
	clk.advance(time.Minute)
	// MaxAttempts 1 and the parked attempt was not charged: the next claim is attempt 1 again.
	l2, err := st.Claim(ctx, ev, policy("q", time.Minute, 1))
	if err != nil || l2.Relative != 1 {
		t.Fatalf("claim after unpark: got (%+v, %v), want relative attempt 1", l2, err)
	}
	if _, err := st.Complete(ctx, l, store.Result{}, nil); !errors.Is(err, store.ErrFenceSuperseded) {
		t.Errorf("old lease complete after unpark: got %v, want ErrFenceSuperseded", err)
	}
}

// TestConcurrentClaimsOneWinner: ten instances receive the same event at once; exactly one
// holds the lease, the others are told it is held (not an error), and the fence moved once.
func TestConcurrentClaimsOneWinner(t *testing.T) {
	st := newStore(t)
	ev := leadEvent("race")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []int64
		held    int
	)
	for i := 0; i < 10; i++ {
		wg.Go(func() {
			l, err := st.Claim(context.Background(), ev, policy(fmt.Sprintf("p%d", i), time.Minute, 5))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, l.Fence)
			case errors.Is(err, store.ErrLeaseHeld):
				held++
			default:
				t.Errorf("claim: %v", err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 || held != 9 {
		t.Fatalf("got winners %v and %d lease-held; want exactly 1 winner and 9 held", winners, held)
	}
	d, err := st.GetEvent(t.Context(), event.DocID(ev.IdempotencyKey))
	if err != nil {
		t.Fatal(err)
	}
	if d.Fence != 1 || d.Attempts != 1 {
		t.Errorf("got fence %d attempts %d, want 1 and 1", d.Fence, d.Attempts)
	}
}

func TestCompleteSetsExpiryForTTL(t *testing.T) {
	st, _ := lifecycleStore(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name      string
		retention time.Duration
	}{{"retention", 90 * 24 * time.Hour}, {"forever", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy("p", time.Minute, 5)
			p.Retention = tc.retention
			l, err := st.Claim(ctx, leadEvent("ttl-"+tc.name), p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Complete(ctx, l, store.Result{RecordID: "r"}, nil); err != nil {
				t.Fatal(err)
			}
			d, _ := st.GetEvent(ctx, l.DocID)
			switch {
			case tc.retention == 0 && !d.ExpireAt.IsZero():
				t.Errorf("expire_at: got %v, want none", d.ExpireAt)
			case tc.retention > 0 && d.ExpireAt.Sub(d.CompletedAt) != tc.retention:
				t.Errorf("expire_at - completed_at: got %v, want %v", d.ExpireAt.Sub(d.CompletedAt), tc.retention)
			}
		})
	}
}

// TestVerdictAndAttemptCommitTogether: the attempt entry is written in the verdict's own
// commit, and a superseded holder writes neither.
func TestVerdictAndAttemptCommitTogether(t *testing.T) {
	st, clk := lifecycleStore(t)
	ctx := t.Context()
	ev := leadEvent("att-commit")
	p := policy("slow", time.Second, 5)
	p.Retention = time.Hour
	l1, err := st.Claim(ctx, ev, p)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Second)
	p.Owner, p.TTL = "fast", time.Minute
	l2, err := st.Claim(ctx, ev, p)
	if err != nil {
		t.Fatal(err)
	}
	stale := &store.Attempt{Number: l1.Attempt, Fence: l1.Fence, Owner: "slow", StartedAt: l1.StartedAt}
	if _, err := st.Complete(ctx, l1, store.Result{RecordID: "stale"}, stale); !errors.Is(err, store.ErrFenceSuperseded) {
		t.Fatalf("stale complete: got %v, want ErrFenceSuperseded", err)
	}
	fresh := &store.Attempt{Number: l2.Attempt, Fence: l2.Fence, Owner: "fast", StartedAt: l2.StartedAt, Code: 201}
	if _, err := st.Complete(ctx, l2, store.Result{RecordID: "fresh"}, fresh); err != nil {
		t.Fatal(err)
	}
	atts, err := st.Attempts(ctx, l2.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 {
		t.Fatalf("attempt entries: got %+v, want only the winner's", atts)
	}
	a := atts[0]
	if a.Number != l2.Attempt || a.Outcome != store.AttemptSucceeded || a.Owner != "fast" || a.FinishedAt.IsZero() || a.ExpireAt.Sub(a.FinishedAt) != time.Hour {
		t.Errorf("attempt: got %+v", a)
	}
}

// deadLetter is a minimal intake policy: a record with the reason, and a quarantine by
// Pub/Sub when quarantine is set.
func deadLetter(r store.Reason, quarantine bool) store.DeadLetter {
	return func(cur *store.DLQRecord, doc *store.EventDoc) (*store.DLQRecord, *store.Quarantine) {
		rec := &store.DLQRecord{Status: store.DLQOpen, FailureClass: r.Class, ErrorMessage: r.Message, ReasonSource: store.ByPubSub, DeadLetterCount: 1}
		if cur != nil {
			rec = cur
			rec.DeadLetterCount++
		}
		if !quarantine {
			return rec, nil
		}
		return rec, &store.Quarantine{Reason: r, By: store.ByPubSub}
	}
}

// always is a Decision that applies the action.
func always(*store.DLQRecord, *store.EventDoc) (string, error) { return "", nil }

// verdicts are the four ways a lease holder ends its attempt.
var verdicts = []struct {
	name string
	do   func(ctx context.Context, st *store.Store, l *store.Lease) error
}{
	{"complete", func(ctx context.Context, st *store.Store, l *store.Lease) error {
		_, err := st.Complete(ctx, l, store.Result{RecordID: "late"}, &store.Attempt{Number: l.Attempt})
		return err
	}},
	{"fail", func(ctx context.Context, st *store.Store, l *store.Lease) error {
		_, err := st.Fail(ctx, l, errCRM, nil)
		return err
	}},
	{"park", func(ctx context.Context, st *store.Store, l *store.Lease) error {
		_, err := st.Park(ctx, l, store.Reason{Class: failure.Outage}, nil)
		return err
	}},
	{"quarantine", func(ctx context.Context, st *store.Store, l *store.Lease) error {
		_, err := st.Quarantine(ctx, l, store.Reason{Class: failure.Permanent, Message: "400"}, nil)
		return err
	}},
}

// TestLateVerdictAfterOperatorAction: an operator discards (or force-replays) an event while a
// processor holds its lease, and Pub/Sub dead-letters one; the holder's late verdict is refused
// and the event keeps the operator's (or intake's) state.
func TestLateVerdictAfterOperatorAction(t *testing.T) {
	actions := []struct {
		name      string
		act       func(ctx context.Context, st *store.Store, id string) error
		wantState store.State
	}{
		{"discard", func(ctx context.Context, st *store.Store, id string) error {
			_, err := st.Discard(ctx, store.Action{ID: id, Actor: "op", Reason: "spam", Outcome: "discarded"}, always)
			return err
		}, store.StateDiscarded},
		{"forced replay", func(ctx context.Context, st *store.Store, id string) error {
			_, err := st.Replay(ctx, store.Action{ID: id, Actor: "op", Reason: "fixed", Outcome: "replayed", ReplayID: "r1", OutboxDueAt: t0.Add(time.Hour)}, always)
			return err
		}, store.StateReceived},
		{"dead-letter", func(ctx context.Context, st *store.Store, id string) error {
			_, err := st.RecordDeadLetter(ctx, id, deadLetter(errCRM, true))
			return err
		}, store.StateQuarantined},
	}
	for _, a := range actions {
		for _, v := range verdicts {
			t.Run(a.name+"/"+v.name, func(t *testing.T) {
				st, _ := lifecycleStore(t)
				ctx := t.Context()
				ev := leadEvent("late")
				l, err := st.Claim(ctx, ev, policy("holder", time.Minute, 5))
				if err != nil {
					t.Fatal(err)
				}
				if a.name != "dead-letter" {
					if _, err := st.RecordDeadLetter(ctx, l.DocID, deadLetter(errCRM, false)); err != nil {
						t.Fatal(err)
					}
				}
				if err := a.act(ctx, st, l.DocID); err != nil {
					t.Fatalf("%s: %v", a.name, err)
				}
				if err := v.do(ctx, st, l); !errors.Is(err, store.ErrFenceSuperseded) {
					t.Fatalf("late %s: got %v, want ErrFenceSuperseded", v.name, err)
				}
				d, err := st.GetEvent(ctx, l.DocID)
				if err != nil {
					t.Fatal(err)
				}
				if d.State != a.wantState || d.CRMRecordID != "" || d.Fence != l.Fence+1 {
					t.Errorf("event: got state %s record %q fence %d, want %s, none, %d", d.State, d.CRMRecordID, d.Fence, a.wantState, l.Fence+1)
				}
				if atts, _ := st.Attempts(ctx, l.DocID); len(atts) != 0 {
					t.Errorf("attempts: got %+v, want none written by the refused verdict", atts)
				}
			})
		}
	}
}

// TestReplayAndDiscardTransitions: what each operator action writes, and that a Decision's
// no-op or error writes nothing but its audit.
func TestReplayAndDiscardTransitions(t *testing.T) {
	st, _ := lifecycleStore(t)
	ctx := t.Context()
	ev := leadEvent("ops")
	l, err := st.Claim(ctx, ev, policy("p", time.Minute, 5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Quarantine(ctx, l, store.Reason{Class: failure.Permanent, Message: "400"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordDeadLetter(ctx, l.DocID, deadLetter(errCRM, true)); err != nil {
		t.Fatal(err)
	}
	if d, _ := st.GetEvent(ctx, l.DocID); d.QuarantinedBy != store.ByProcessor || d.Fence != l.Fence {
		t.Errorf("dead-letter of a quarantined event changed it: by %q fence %d", d.QuarantinedBy, d.Fence)
	}
	errNo := errors.New("policy says no")
	if _, err := st.Replay(ctx, store.Action{ID: l.DocID, Reason: "x"}, func(*store.DLQRecord, *store.EventDoc) (string, error) { return "", errNo }); !errors.Is(err, errNo) {
		t.Fatalf("refused replay: got %v, want the decision's error", err)
	}
	tr, err := st.Replay(ctx, store.Action{ID: l.DocID, Actor: "op", Reason: "noop", Outcome: "replayed"}, func(*store.DLQRecord, *store.EventDoc) (string, error) { return "in_flight", nil })
	if err != nil || tr.Noop != "in_flight" || tr.AuditID == "" || tr.EventState != store.StateQuarantined {
		t.Fatalf("no-op replay: got (%+v, %v)", tr, err)
	}
	renorm := *ev
	renorm.MappingVersion = "typeform-v2"
	tr, err = st.Replay(ctx, store.Action{ID: l.DocID, Actor: "op", Reason: "fixed", Outcome: "replayed", ReplayID: "rp-1",
		OutboxDueAt: t0.Add(time.Minute), Renormalized: &renorm}, always)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Noop != "" || tr.EventState != store.StateReceived || tr.RecordStatus != store.DLQReplayed || tr.PrevMappingVersion != "typeform-v1" || tr.Event.MappingVersion != "typeform-v2" {
		t.Errorf("replay transition: got %+v", tr)
	}
	d, _ := st.GetEvent(ctx, l.DocID)
	if d.State != store.StateReceived || d.ReplayCount != 1 || d.LastReplayID != "rp-1" || d.AttemptsBase != d.Attempts ||
		d.MappingVersion != "typeform-v2" || d.OutboxDueAt == nil || d.Fence != l.Fence+1 {
		t.Errorf("replayed doc: got %+v", d)
	}
	page, err := st.ListAudit(ctx, store.AuditFilter{Target: l.DocID}, 10, "")
	if err != nil || len(page.Entries) != 2 || page.Entries[0].Outcome != "replayed" && page.Entries[1].Outcome != "replayed" {
		t.Errorf("audit: got %+v, %v; want the no-op and the replay", page, err)
	}
	// The replayed event succeeds; Resolve closes its record.
	l2, err := st.Claim(ctx, ev, policy("p", time.Minute, 5))
	if err != nil || l2.Relative != 1 {
		t.Fatalf("claim after replay: got (%+v, %v), want relative attempt 1", l2, err)
	}
	if ok, err := st.Resolve(ctx, l.DocID); ok || err != nil {
		t.Errorf("resolve before success: got (%v, %v), want (false, nil)", ok, err)
	}
	if _, err := st.Complete(ctx, l2, store.Result{RecordID: "r"}, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Resolve(ctx, l.DocID); !ok || err != nil {
		t.Errorf("resolve after success: got (%v, %v), want (true, nil)", ok, err)
	}
	if rec, _ := st.GetDLQ(ctx, l.DocID); rec.Status != store.DLQResolved || rec.StatusChangedBy != store.ResolvedBy {
		t.Errorf("record: got status %s by %q, want resolved by pipeline", rec.Status, rec.StatusChangedBy)
	}
	if _, err := st.Discard(ctx, store.Action{ID: "missing"}, always); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("discard of a missing record: got %v, want ErrNotFound", err)
	}
}

// TestTransactionsRetryContention: a transactional read that fails ABORTED (Google's emulator:
// "Transaction lock timeout") or DEADLINE_EXCEEDED under contention is retried by the store's
// own bounded policy, quickly; past the bound the error is ErrContended, classified retryable.
func TestTransactionsRetryContention(t *testing.T) {
	env.NeedEmbedded(t, "Firestore fault injection (lock-timeout ABORTED and DEADLINE_EXCEEDED reads); Google's emulator produces real contention in TestConcurrentClaimsOneWinner")
	faults := env.Firestore.Faults()
	t.Run("aborted reads", func(t *testing.T) {
		st, _ := lifecycleStore(t)
		faults.FailNext("BatchGetDocuments", 6, codes.Aborted)
		start := time.Now()
		l, err := st.Claim(t.Context(), leadEvent("contended"), policy("p", time.Minute, 5))
		if err != nil || l.Fence != 1 {
			t.Fatalf("claim after 6 lock timeouts: got (%+v, %v), want the lease", l, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("claim took %v; the retry pauses are milliseconds", d)
		}
	})
	t.Run("deadline exceeded reads", func(t *testing.T) {
		st, _ := lifecycleStore(t)
		faults.FailNext("BatchGetDocuments", 3, codes.DeadlineExceeded)
		if _, err := st.Claim(t.Context(), leadEvent("deadline"), policy("p", time.Minute, 5)); err != nil {
			t.Fatalf("claim after 3 transaction deadlines: %v", err)
		}
	})
	t.Run("bound reached", func(t *testing.T) {
		st, _ := lifecycleStore(t)
		faults.FailNext("BatchGetDocuments", 1000, codes.Aborted)
		_, err := st.Claim(t.Context(), leadEvent("hopeless"), policy("p", time.Minute, 5))
		faults.Clear()
		if !errors.Is(err, store.ErrContended) || !failure.Is(err, failure.Retryable) {
			t.Fatalf("claim under endless contention: got %v, want ErrContended, retryable", err)
		}
	})
}

// Replays and discards write their audit entry in their own transaction; each committed entry
// is also one "audit" log line, whoever acted (API, page, bulk job, auto-replay).
func TestOperatorActionsAreAlsoLogged(t *testing.T) {
	st, _ := lifecycleStore(t)
	var buf bytes.Buffer
	ctx := logging.WithLogger(t.Context(), logging.New(&buf, logging.Options{Service: "replayer"}))
	ev := leadEvent("logged")
	l, err := st.Claim(ctx, ev, policy("p", time.Minute, 5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Quarantine(ctx, l, store.Reason{Class: failure.Permanent, Message: "400"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordDeadLetter(ctx, l.DocID, deadLetter(errCRM, true)); err != nil {
		t.Fatal(err)
	}
	tr, err := st.Discard(ctx, store.Action{ID: l.DocID, Actor: "bulk:job-1", Reason: "spam from ada@example.com", Outcome: "discarded"}, always)
	if err != nil {
		t.Fatal(err)
	}
	var audits []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "audit" {
			audits = append(audits, m)
		}
	}
	if len(audits) != 1 || audits[0]["audit_id"] != tr.AuditID || audits[0]["action"] != "discard" || audits[0]["actor"] != "bulk:job-1" {
		t.Fatalf("audit log lines = %v, want one for entry %s", audits, tr.AuditID)
	}
	if strings.Contains(buf.String(), "ada@example.com") {
		t.Error("the audit line carries the free-text reason")
	}
}
