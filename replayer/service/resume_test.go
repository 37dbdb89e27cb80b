package service_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
)

// A bulk job cut off by a shutdown resumes on the next instance: every matched record is
// replayed exactly once, none twice, none skipped.
func TestBulkJobResumesAfterRestart(t *testing.T) {
	reset(t)
	const n = 15
	run := nonce()
	var evs []event.Event
	var ids []string
	for i := range n {
		ev := newEvent(fmt.Sprintf("resume-%s-%02d", run, i))
		ids = append(ids, seed(t, ev, store.StateQuarantined, 1))
		evs = append(evs, ev)
		if code := pushDLQ(t, ev, processorAttrs(ev, "auth", "crm 401", 1), fmt.Sprintf("m-rs%s%02d", run, i)); code != http.StatusNoContent {
			t.Fatalf("push = %d", code)
		}
	}
	published := func() (total int, twice []string) {
		for i, ev := range evs {
			switch c := len(leadsMessages(ev.IdempotencyKey)); {
			case c > 1:
				twice = append(twice, ids[i])
				total += c
			default:
				total += c
			}
		}
		return total, twice
	}

	// 5 replays a second: the 15 records take about 3 s, so the stop lands mid-run.
	first := startReplayer(t, map[string]string{"REPLAY_RATE_PER_SEC": "5"})
	var job store.ReplayJob
	if code, msg := callAt(t, first.URL, "POST", "/v1/dlq:replay", aliceToken, map[string]any{
		"filter": map[string]any{"failure_class": "auth"}, "reason": "token rotated, INC-77",
	}, &job); code != http.StatusAccepted {
		t.Fatalf("bulk replay = %d %s", code, msg)
	}
	eventually(t, "a few records replayed", func() bool { c, _ := published(); return c >= 3 })
	first.Stop(t)

	before, twice := published()
	if before >= n || len(twice) > 0 {
		t.Fatalf("after the stop %d of %d published (twice: %v); the stop must land mid-run", before, n, twice)
	}
	paused, err := st.GetReplayJob(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if paused.Final() || paused.Replayed != before || paused.Matched != before || paused.Owner != "" {
		t.Errorf("paused job: status %s matched %d replayed %d owner %q; want running, %d, %d, no owner",
			paused.Status, paused.Matched, paused.Replayed, paused.Owner, before, before)
	}

	second := startReplayer(t, nil)
	if code := call(t, "POST", "/internal/replay-jobs/resume", bobToken, nil, nil); code != http.StatusOK {
		t.Errorf("resume on the idle instance = %d", code) // it may find the job leased: a no-op
	}
	if code, msg := callAt(t, second.URL, "POST", "/internal/replay-jobs/resume", aliceToken, nil, nil); code != http.StatusOK {
		t.Fatalf("resume = %d %s", code, msg)
	}
	j := waitJob(t, job.ID)
	if j.Status != store.JobDone || j.Matched != n || j.Replayed != n || j.Skipped != 0 || j.Failed != 0 {
		t.Errorf("resumed job: status %s matched %d replayed %d skipped %d failed %d; want done %d/%d/0/0",
			j.Status, j.Matched, j.Replayed, j.Skipped, j.Failed, n, n)
	}
	for i, id := range ids {
		if c := len(leadsMessages(evs[i].IdempotencyKey)); c != 1 {
			t.Errorf("%s: %d messages on leads, want exactly 1", id, c)
		}
		doc := getEvent(t, id)
		if doc.State != store.StateReceived || doc.ReplayCount != 1 {
			t.Errorf("%s: state %s replay_count %d, want received 1", id, doc.State, doc.ReplayCount)
		}
		if r, _ := st.GetDLQ(context.Background(), id); r.Status != store.DLQReplayed {
			t.Errorf("%s: record %s, want replayed", id, r.Status)
		}
	}
	var audit struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	call(t, "GET", "/v1/audit?action=bulk_replay", aliceToken, nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].JobID != job.ID || audit.Entries[0].Reason != "token rotated, INC-77" {
		t.Errorf("bulk audit = %+v, want one entry for the job", audit.Entries)
	}
}
