package claim_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/processor/internal/claim"
)

var env *devstacktest.Env

func TestMain(m *testing.M) {
	var err error
	env, err = devstacktest.Start(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	os.Exit(code)
}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	c, err := env.FirestoreClient(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return store.New(c)
}

func testEvent(id string) *event.Event {
	return &event.Event{
		SchemaVersion: event.SchemaVersion, EventID: "ev-" + id, EventType: event.TypeLeadCreated,
		Source: "test", OccurredAt: time.Now().UTC(), IdempotencyKey: "test|lead.created|" + id,
		Identity: event.Identity{ContactExternalID: id},
		Routing:  event.Routing{CRM: "salesforce", Object: "Lead", UpsertKey: "Ext__c", Mode: event.ModeUpsert},
	}
}

func TestClaimLifecycle(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	ev := testEvent("life-" + t.Name())
	a := claim.New(st, "a", time.Minute, 5)
	b := claim.New(st, "b", time.Minute, 5)

	l, err := a.Claim(ctx, ev, claim.Delivery{MessageID: "m1"})
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if l.Fence != 1 || l.Attempt != 1 || l.Owner != "a" {
		t.Errorf("lease = fence %d attempt %d owner %q, want 1, 1, a", l.Fence, l.Attempt, l.Owner)
	}
	if _, err := b.Claim(ctx, ev, claim.Delivery{MessageID: "m1"}); !errors.Is(err, claim.ErrLeaseHeld) {
		t.Fatalf("claim under a live lease: err = %v, want ErrLeaseHeld", err)
	}
	if _, err := a.Complete(ctx, l, claim.Result{RecordID: "r1", StatusCode: 201}, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if _, err := b.Claim(ctx, ev, claim.Delivery{MessageID: "m1"}); !errors.Is(err, claim.ErrSucceeded) {
		t.Fatalf("claim after success: err = %v, want ErrSucceeded", err)
	}
	d, err := st.GetEvent(ctx, l.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.StateSucceeded || d.CRMRecordID != "r1" || d.ResultFence != 1 || d.LeaseOwner != "" {
		t.Errorf("doc = state %s record %q fence %d owner %q", d.State, d.CRMRecordID, d.ResultFence, d.LeaseOwner)
	}
}

func TestExpiredLeaseIsTakenOverAndOldHolderCannotWrite(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	ev := testEvent("takeover")
	slow := claim.New(st, "slow", 50*time.Millisecond, 5)
	fast := claim.New(st, "fast", time.Minute, 5)
	l1, err := slow.Claim(ctx, ev, claim.Delivery{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	l2, err := fast.Claim(ctx, ev, claim.Delivery{})
	if err != nil {
		t.Fatalf("claim after expiry: %v", err)
	}
	if l2.Fence != l1.Fence+1 {
		t.Errorf("fence after takeover = %d, want %d", l2.Fence, l1.Fence+1)
	}
	if _, err := slow.Complete(ctx, l1, claim.Result{RecordID: "stale"}, nil); !errors.Is(err, store.ErrFenceSuperseded) {
		t.Fatalf("stale complete: err = %v, want ErrFenceSuperseded", err)
	}
	if _, err := fast.Complete(ctx, l2, claim.Result{RecordID: "fresh"}, nil); err != nil {
		t.Fatal(err)
	}
	d, _ := st.GetEvent(ctx, l2.DocID)
	if d.CRMRecordID != "fresh" || d.ResultFence != l2.Fence {
		t.Errorf("record %q fence %d, want fresh %d", d.CRMRecordID, d.ResultFence, l2.Fence)
	}
}

// TestAttemptsExhaustedQuarantinesDurably: attempts spent without a verdict (crashes) end in a
// quarantine that is committed, so the next delivery sees a terminal event.
func TestAttemptsExhaustedQuarantinesDurably(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	ev := testEvent("exhausted")
	c := claim.New(st, "crashy", time.Millisecond, 2)
	for i := 0; i < 2; i++ {
		if _, err := c.Claim(ctx, ev, claim.Delivery{}); err != nil {
			t.Fatalf("claim %d: %v", i+1, err)
		}
		time.Sleep(5 * time.Millisecond) // the holder "crashes": its lease runs out
	}
	l, err := c.Claim(ctx, ev, claim.Delivery{})
	if !errors.Is(err, claim.ErrPendingDLQ) {
		t.Fatalf("third claim: err = %v, want ErrPendingDLQ", err)
	}
	d, err := st.GetEvent(ctx, l.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.StateQuarantined || d.QuarantinedBy != "processor" || d.ErrorMessage == "" {
		t.Fatalf("stored doc: state %s by %q msg %q; want quarantined by processor with a reason", d.State, d.QuarantinedBy, d.ErrorMessage)
	}
	// Until the DLQ publish is recorded, every delivery is told to publish it.
	if _, err := c.Claim(ctx, ev, claim.Delivery{}); !errors.Is(err, claim.ErrPendingDLQ) {
		t.Fatalf("claim with DLQ publish owed: err = %v, want ErrPendingDLQ", err)
	}
	if err := c.MarkDLQPublished(ctx, l.DocID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Claim(ctx, ev, claim.Delivery{}); !errors.Is(err, claim.ErrTerminal) {
		t.Fatalf("claim after DLQ publish: err = %v, want ErrTerminal", err)
	}
}

func TestOutageAttemptsAreNotCharged(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	ev := testEvent("outage")
	c := claim.New(st, "p", time.Minute, 2)
	for i := 0; i < 5; i++ {
		l, err := c.Claim(ctx, ev, claim.Delivery{})
		if err != nil {
			t.Fatalf("claim %d: %v (outage attempts must not count)", i+1, err)
		}
		if err := c.Fail(ctx, l, "outage", "circuit open", true, nil); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := st.GetEvent(ctx, event.DocID(ev.IdempotencyKey))
	if d.Attempts != 5 || d.Attempts-d.AttemptsBase != 0 || d.State != store.StateFailed {
		t.Errorf("attempts %d base %d state %s; want 5, 5, failed", d.Attempts, d.AttemptsBase, d.State)
	}
}

// TestConcurrentClaimsOneWinner: many instances receive the same event at once; exactly one
// holds the lease.
func TestConcurrentClaimsOneWinner(t *testing.T) {
	st := newStore(t)
	ev := testEvent("race")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []int64
		held    int
	)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := claim.New(st, fmt.Sprintf("p%d", i), time.Minute, 5)
			l, err := c.Claim(context.Background(), ev, claim.Delivery{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, l.Fence)
			case errors.Is(err, claim.ErrLeaseHeld):
				held++
			default:
				t.Errorf("claim: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 || held != 9 {
		t.Fatalf("winners %v, lease-held %d; want exactly 1 winner and 9 held", winners, held)
	}
	snap, err := st.Client().Collection(store.CollEvents).Doc(event.DocID(ev.IdempotencyKey)).Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := snap.DataAt("fence"); f != int64(1) {
		t.Errorf("fence = %v, want 1", f)
	}
}

func TestCompleteSetsExpiryForTTL(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name      string
		retention time.Duration
	}{{"retention", 90 * 24 * time.Hour}, {"forever", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			ev := testEvent("ttl-" + tc.name)
			c := claim.New(st, "p", time.Minute, 5).WithRetention(tc.retention)
			l, err := c.Claim(ctx, ev, claim.Delivery{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Complete(ctx, l, claim.Result{RecordID: "r"}, nil); err != nil {
				t.Fatal(err)
			}
			d, _ := st.GetEvent(ctx, l.DocID)
			switch {
			case tc.retention == 0 && !d.ExpireAt.IsZero():
				t.Errorf("expire_at = %v, want none", d.ExpireAt)
			case tc.retention > 0 && d.ExpireAt.Sub(d.CompletedAt) != tc.retention:
				t.Errorf("expire_at - completed_at = %v, want %v", d.ExpireAt.Sub(d.CompletedAt), tc.retention)
			}
		})
	}
}

// TestVerdictAndAttemptCommitTogether: the attempt entry is written in the verdict's own
// commit, and a superseded holder writes neither.
func TestVerdictAndAttemptCommitTogether(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	ev := testEvent("att-commit")
	slow := claim.New(st, "slow", 20*time.Millisecond, 5).WithRetention(time.Hour)
	fast := claim.New(st, "fast", time.Minute, 5).WithRetention(time.Hour)
	l1, err := slow.Claim(ctx, ev, claim.Delivery{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	l2, err := fast.Claim(ctx, ev, claim.Delivery{})
	if err != nil {
		t.Fatal(err)
	}
	stale := &store.Attempt{Number: l1.Attempt, Fence: l1.Fence, Owner: "slow", StartedAt: l1.StartedAt}
	if _, err := slow.Complete(ctx, l1, claim.Result{RecordID: "stale"}, stale); !errors.Is(err, store.ErrFenceSuperseded) {
		t.Fatalf("stale complete: %v", err)
	}
	fresh := &store.Attempt{Number: l2.Attempt, Fence: l2.Fence, Owner: "fast", StartedAt: l2.StartedAt, Code: 201}
	if _, err := fast.Complete(ctx, l2, claim.Result{RecordID: "fresh"}, fresh); err != nil {
		t.Fatal(err)
	}
	atts, err := st.Attempts(ctx, l2.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 {
		t.Fatalf("attempt entries = %+v, want only the winner's", atts)
	}
	a := atts[0]
	if a.Number != l2.Attempt || a.Outcome != "succeeded" || a.Owner != "fast" || a.FinishedAt.IsZero() || a.ExpireAt.Sub(a.FinishedAt) != time.Hour {
		t.Errorf("attempt = %+v", a)
	}
}
