package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
)

// quarantinedRecord claims an event, quarantines it and records its dead letter: an open DLQ
// record to act on.
func quarantinedRecord(t *testing.T, st *store.Store, id string) *store.Lease {
	t.Helper()
	ctx := t.Context()
	l, err := st.Claim(ctx, leadEvent(id), policy("p", time.Minute, 5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Quarantine(ctx, l, store.Reason{Class: failure.Permanent, Message: "400"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordDeadLetter(ctx, l.DocID, deadLetter(errCRM, true)); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestOperationsDatabaseHoldsDLQAndAudit: DLQ records and audit entries live in the operations
// database only; the events database holds the event alone (so a principal granted the events
// database, as ingest is, can neither read nor write them).
func TestOperationsDatabaseHoldsDLQAndAudit(t *testing.T) {
	st, _ := lifecycleStore(t)
	ctx := t.Context()
	l := quarantinedRecord(t, st, "opsdb")
	if _, err := st.Discard(ctx, store.Action{ID: l.DocID, Actor: "op", Reason: "spam", Outcome: "discarded"}, always); err != nil {
		t.Fatal(err)
	}
	for _, coll := range []string{"dlq", "audit"} {
		evDocs, err := client.Collection(coll).Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		opsDocs, err := opsClient.Collection(coll).Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(evDocs) != 0 || len(opsDocs) == 0 {
			t.Errorf("%s: %d documents in the events database, %d in the operations database; want 0 and some", coll, len(evDocs), len(opsDocs))
		}
	}
	if snap, err := client.Collection("events").Doc(l.DocID).Get(ctx); err != nil || snap.Data()["state"] != string(store.StateDiscarded) {
		t.Errorf("event in the events database: %v %v", snap.Data()["state"], err)
	}
}

// TestInterruptedActionIsWithdrawn: an action that stopped after its intent (before the event
// changed) is withdrawn by the next action once the intent is stale, audited as interrupted
// with its own actor and reason; the next action then applies.
func TestInterruptedActionIsWithdrawn(t *testing.T) {
	st, clk := lifecycleStore(t)
	ctx := t.Context()
	l := quarantinedRecord(t, st, "int-withdraw")
	if err := st.Intend(ctx, store.Action{ID: l.DocID, Actor: "alice", Reason: "first try", ReplayID: "rp-a"}, "replay", always); err != nil {
		t.Fatal(err)
	}
	if rec, _ := st.GetDLQ(ctx, l.DocID); rec.Pending == nil || rec.Pending.Actor != "alice" {
		t.Fatalf("intent not recorded: %+v", rec.Pending)
	}
	if d, _ := st.GetEvent(ctx, l.DocID); d.State != store.StateQuarantined || d.Fence != l.Fence {
		t.Fatalf("the intent changed the event: %s fence %d", d.State, d.Fence)
	}
	clk.advance(time.Minute)
	tr, err := st.Discard(ctx, store.Action{ID: l.DocID, Actor: "bob", Reason: "spam", Outcome: "discarded"}, always)
	if err != nil {
		t.Fatal(err)
	}
	if tr.EventState != store.StateDiscarded || tr.RecordStatus != store.DLQDiscarded {
		t.Errorf("discard after the withdrawal: %+v", tr)
	}
	page, err := st.ListAudit(ctx, store.AuditFilter{Target: l.DocID}, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	var interrupted, discarded bool
	for _, e := range page.Entries {
		interrupted = interrupted || e.Actor == "alice" && e.Outcome == "interrupted" && e.Reason == "first try"
		discarded = discarded || e.Actor == "bob" && e.Action == "discard"
	}
	if !interrupted || !discarded {
		t.Errorf("audit %+v: want alice's interrupted replay and bob's discard", page.Entries)
	}
}

// TestInterruptedActionIsCompleted: an action that changed the event but stopped before its
// record and audit entry is completed by the next touch of the record (here Resolve, once the
// replayed event succeeded), with the intent's actor and reason.
func TestInterruptedActionIsCompleted(t *testing.T) {
	st, clk := lifecycleStore(t)
	ctx := t.Context()
	l := quarantinedRecord(t, st, "int-complete")
	if err := st.IntendAndApplyReplay(ctx, store.Action{ID: l.DocID, Actor: "alice", Reason: "crm fixed", ReplayID: "rp-c", Outcome: "replayed"}); err != nil {
		t.Fatal(err)
	}
	l2, err := st.Claim(ctx, leadEvent("int-complete"), policy("p", time.Minute, 5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Complete(ctx, l2, store.Result{RecordID: "r"}, nil); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	if ok, err := st.Resolve(ctx, l.DocID); !ok || err != nil {
		t.Fatalf("resolve: (%v, %v), want the interrupted replay completed and the record resolved", ok, err)
	}
	rec, _ := st.GetDLQ(ctx, l.DocID)
	if rec.Status != store.DLQResolved || rec.Pending != nil {
		t.Errorf("record: %s pending %+v", rec.Status, rec.Pending)
	}
	page, _ := st.ListAudit(ctx, store.AuditFilter{Target: l.DocID}, 10, "")
	found := false
	for _, e := range page.Entries {
		found = found || e.Actor == "alice" && e.Action == "replay" && e.ReplayID == "rp-c" && e.Detail == "completed after an interruption"
	}
	if !found {
		t.Errorf("audit %+v: want alice's replay, completed after the interruption", page.Entries)
	}
}

// TestActionWaitsForAnActionInProgress: a second action on a record whose first is between its
// steps (a fresh intent) does not act over it: it gives up retryable (ErrContended).
func TestActionWaitsForAnActionInProgress(t *testing.T) {
	st, _ := lifecycleStore(t)
	ctx := t.Context()
	l := quarantinedRecord(t, st, "int-busy")
	if err := st.Intend(ctx, store.Action{ID: l.DocID, Actor: "alice", Reason: "r"}, "discard", always); err != nil {
		t.Fatal(err)
	}
	_, err := st.Replay(ctx, store.Action{ID: l.DocID, Actor: "bob", Reason: "r", ReplayID: "rp-b", OutboxDueAt: t0}, always)
	if !errors.Is(err, store.ErrContended) {
		t.Fatalf("replay over a fresh intent: %v, want ErrContended", err)
	}
	if fe, ok := failure.ClassOf(store.Classify(err)); !ok || fe != failure.Retryable {
		t.Errorf("class %v, want retryable", fe)
	}
	if d, _ := st.GetEvent(ctx, l.DocID); d.State != store.StateQuarantined || d.Fence != l.Fence {
		t.Errorf("event changed under another action's intent: %s fence %d", d.State, d.Fence)
	}
}
