package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
)

// TestParkedEventsOldestFirst: ParkedEvents lists one CRM's parked events by parked_at (then
// doc id), leaves out other CRMs and other states, and an unparked event drops out.
func TestParkedEventsOldestFirst(t *testing.T) {
	st, clk := lifecycleStore(t)
	ctx := t.Context()
	outage := store.Reason{Class: failure.Outage, Message: "salesforce circuit open"}
	park := func(id, crm string) string {
		t.Helper()
		ev := leadEvent(id)
		ev.Routing.CRM = crm
		l, err := st.Claim(ctx, ev, policy("a", time.Minute, 5))
		if err != nil {
			t.Fatalf("claim %s: %v", id, err)
		}
		if _, err := st.Park(ctx, l, outage, nil); err != nil {
			t.Fatalf("park %s: %v", id, err)
		}
		clk.advance(time.Second)
		return l.DocID
	}
	// Parked in this order, one second apart; "p-late" after the others.
	var want []string
	for i := range 4 {
		want = append(want, park(fmt.Sprintf("p-%d", i), "salesforce"))
	}
	other := park("p-hubspot", "hubspot")
	// Not parked: a processing event of the same CRM.
	if _, err := st.Claim(ctx, leadEvent("p-processing"), policy("a", time.Minute, 5)); err != nil {
		t.Fatal(err)
	}

	got, err := st.ParkedEvents(ctx, "salesforce", 10)
	if err != nil {
		t.Fatal(err)
	}
	if ids := docIDs(got); !slices.Equal(ids, want) {
		t.Fatalf("parked salesforce events: got %v, want %v (oldest first)", ids, want)
	}
	if page, _ := st.ParkedEvents(ctx, "salesforce", 2); !slices.Equal(docIDs(page), want[:2]) {
		t.Errorf("limit 2: got %v, want %v", docIDs(page), want[:2])
	}
	if hs, _ := st.ParkedEvents(ctx, "hubspot", 10); !slices.Equal(docIDs(hs), []string{other}) {
		t.Errorf("hubspot: got %v, want [%s]", docIDs(hs), other)
	}
	for _, d := range got {
		if d.ParkedAt.IsZero() || d.State != store.StateParked || d.Attempts-d.AttemptsBase != 0 {
			t.Errorf("%s: parked_at %v state %s attempts %d base %d, want parked and nothing charged",
				d.DocID, d.ParkedAt, d.State, d.Attempts, d.AttemptsBase)
		}
	}

	// Two drainers read the same batch and unpark the oldest: one moves it, in one commit,
	// and it leaves the list.
	again, err := st.ParkedEvents(ctx, "salesforce", 1)
	if err != nil {
		t.Fatal(err)
	}
	first, second := got[0], again[0]
	fence := first.Fence
	due := clk.now().Add(30 * time.Second)
	moved1, err1 := st.UnparkDoc(ctx, first, due)
	moved2, err2 := st.UnparkDoc(ctx, second, due)
	if err1 != nil || err2 != nil || !moved1 || moved2 {
		t.Fatalf("unpark twice: got (%v, %v) (%v, %v), want exactly the first to move it", moved1, err1, moved2, err2)
	}
	if moved, err := st.Unpark(ctx, want[0], due); err != nil || moved {
		t.Errorf("transactional unpark after it: got %v, %v, want not moved", moved, err)
	}
	stored, err := st.GetEvent(ctx, want[0])
	if err != nil {
		t.Fatal(err)
	}
	if stored.State != store.StateReceived || stored.Fence != fence+1 || !stored.ParkedAt.IsZero() || stored.OutboxDueAt == nil || !stored.OutboxDueAt.Equal(due) {
		t.Errorf("unparked event: state %s fence %d parked_at %v due %v, want received, fence %d, in the outbox due %v",
			stored.State, stored.Fence, stored.ParkedAt, stored.OutboxDueAt, fence+1, due)
	}
	if first.State != stored.State || first.Fence != stored.Fence || !first.UpdateTime.IsZero() || first.OutboxDueAt == nil {
		t.Errorf("doc after UnparkDoc: state %s fence %d version %v, want it as written (%s, %d) without a version for ClaimFirst",
			first.State, first.Fence, first.UpdateTime, stored.State, stored.Fence)
	}
	got, err = st.ParkedEvents(ctx, "salesforce", 10)
	if err != nil {
		t.Fatal(err)
	}
	if ids := docIDs(got); !slices.Equal(ids, want[1:]) {
		t.Errorf("after unpark: got %v, want %v", ids, want[1:])
	}
}

func docIDs(docs []*store.EventDoc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.DocID
	}
	return out
}
