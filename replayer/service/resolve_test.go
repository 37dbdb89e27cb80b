package service_test

import (
	"context"
	"testing"

	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/autoreplay"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

// TestReplayedRecordResolvesOnceTheEventSucceeds: after a replay the record is `replayed`; once
// the processor records success, the next auto-replay run marks it `resolved`, and a record
// whose event has not succeeded stays `replayed`.
func TestReplayedRecordResolvesOnceTheEventSucceeds(t *testing.T) {
	reset(t)
	done, pending := newEvent("resolve-done"), newEvent("resolve-pending")
	idDone, idPending := seed(t, done, store.StateQuarantined, 1), seed(t, pending, store.StateQuarantined, 1)
	pushDLQ(t, done, processorAttrs(done, "auth", "token rejected", 1), "m-resolve-1")
	pushDLQ(t, pending, processorAttrs(pending, "auth", "token rejected", 1), "m-resolve-2")
	for _, id := range []string{idDone, idPending} {
		call(t, "POST", "/v1/dlq/"+id+":replay", aliceToken, replayReq("credentials fixed"), nil)
	}
	setState(t, idDone, store.StateSucceeded) // the processor finished this one

	var sum autoreplay.Summary
	call(t, "POST", "/internal/auto-replay", aliceToken, nil, &sum)
	if sum.Resolved != 1 {
		t.Errorf("resolved = %d, want 1 (%+v)", sum.Resolved, sum)
	}
	for id, want := range map[string]store.DLQStatus{idDone: store.DLQResolved, idPending: store.DLQReplayed} {
		var got views.Detail
		call(t, "GET", "/v1/dlq/"+id, aliceToken, nil, &got)
		if got.Record == nil || got.Record.Status != want {
			t.Errorf("record %s status = %+v, want %s", id[:8], got.Record, want)
		}
	}
	rec, err := st.GetDLQ(context.Background(), idDone)
	if err != nil {
		t.Fatal(err)
	}
	if rec.StatusChangedBy != store.ResolvedBy {
		t.Errorf("status_changed_by = %q, want %q", rec.StatusChangedBy, store.ResolvedBy)
	}
}
