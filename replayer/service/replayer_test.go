package service_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/api"
	"github.com/leadpipe/leadpipe/replayer/internal/autoreplay"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

func listDLQ(t *testing.T, query string) []*store.DLQRecord {
	t.Helper()
	var got api.ListResponse
	if code := call(t, "GET", "/v1/dlq?"+query, aliceToken, nil, &got); code != http.StatusOK {
		t.Fatalf("GET /v1/dlq?%s = %d, want 200", query, code)
	}
	return got.Records
}

// A message dead-lettered several times, by Pub/Sub and by the processor, through the real
// push subscription, is one record with a count and the processor's reason.
func TestDeadLetteredManyTimesIsOneRecord(t *testing.T) {
	reset(t)
	ev := newEvent("many-1")
	id := seed(t, ev, store.StateFailed, 4)
	publishDLQ(t, ev, pubsubAttrs(ev, 10))
	publishDLQ(t, ev, processorAttrs(ev, "permanent", "crm 400: INVALID_FIELD Phone", 4))
	publishDLQ(t, ev, pubsubAttrs(ev, 11))
	eventually(t, "three dead-letters recorded", func() bool {
		r, err := st.GetDLQ(context.Background(), id)
		return err == nil && r.DeadLetterCount == 3
	})
	recs := listDLQ(t, "")
	if len(recs) != 1 {
		t.Fatalf("GET /v1/dlq: %d records, want 1", len(recs))
	}
	r := recs[0]
	if r.ID != id || r.IdempotencyKey != ev.IdempotencyKey || r.Source != "demo" || r.EventType != event.TypeLeadCreated {
		t.Errorf("record identity = %+v", r)
	}
	if r.FailureClass != "permanent" || r.ReasonSource != "processor" || !contains(r.ErrorMessage, "INVALID_FIELD") {
		t.Errorf("reason = %s/%s %q, want the processor's permanent reason", r.FailureClass, r.ReasonSource, r.ErrorMessage)
	}
	if r.Status != store.DLQOpen || r.AttemptCount != 4 || r.NormalizedEventRef != store.DocPath(id) {
		t.Errorf("status %s attempts %d ref %s", r.Status, r.AttemptCount, r.NormalizedEventRef)
	}
	if got := getEvent(t, id).State; got != store.StateQuarantined {
		t.Errorf("event state = %s, want quarantined (Pub/Sub dead-lettered a failed event)", got)
	}
}

func TestReasonPrecedence(t *testing.T) {
	reset(t)
	tests := []struct {
		name       string
		state      store.State
		attrs      func(event.Event) map[string]string
		wantClass  string
		wantSource string
		wantMsg    string
	}{
		{"pubsub only", store.StateFailed, func(e event.Event) map[string]string { return pubsubAttrs(e, 10) },
			"retryable", "pubsub", "dead-lettered by Pub/Sub after 10 delivery attempts"},
		{"processor", store.StateQuarantined, func(e event.Event) map[string]string { return processorAttrs(e, "auth", "crm 401", 1) },
			"auth", "processor", "crm 401"},
		{"event doc only", store.StateQuarantined, baseAttrs, "permanent", "event", "crm said 400: INVALID_FIELD"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := newEvent("prec-" + string(rune('a'+i)))
			id := seed(t, ev, tc.state, 2)
			if code := pushDLQ(t, ev, tc.attrs(ev), "m-"+id[:8]); code != http.StatusNoContent {
				t.Fatalf("push = %d, want 204", code)
			}
			r, err := st.GetDLQ(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.FailureClass) != tc.wantClass || string(r.ReasonSource) != tc.wantSource || !contains(r.ErrorMessage, tc.wantMsg) {
				t.Errorf("got %s/%s %q, want %s/%s %q", r.FailureClass, r.ReasonSource, r.ErrorMessage, tc.wantClass, tc.wantSource, tc.wantMsg)
			}
		})
	}
}

func TestMalformedPushIsAcked(t *testing.T) {
	for _, body := range []string{`{`, `{"message":{"messageId":"x","attributes":{}}}`} {
		resp, err := http.Post(baseURL+"/pubsub/dlq", "application/json", stringsReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("push %q = %d, want 200 (acked)", body, resp.StatusCode)
		}
	}
}

func replayReq(reason string) map[string]any { return map[string]any{"reason": reason} }

// Replay republishes exactly one message with the same key and a replay id, moves the event
// quarantined -> received and the record to replayed; replaying again, or once the event
// succeeded, publishes nothing.
func TestReplay(t *testing.T) {
	reset(t)
	ev := newEvent("replay-1")
	id := seed(t, ev, store.StateQuarantined, 3)
	if code := pushDLQ(t, ev, processorAttrs(ev, "permanent", "crm 400: bad picklist", 3), "m-r1"); code != http.StatusNoContent {
		t.Fatalf("push = %d", code)
	}
	if n := len(leadsMessages(ev.IdempotencyKey)); n != 0 {
		t.Fatalf("%d messages on leads before the replay", n)
	}

	var res replay.Result
	if code := call(t, "POST", "/v1/dlq/"+id+":replay", aliceToken, replayReq("picklist fixed, INC-42"), &res); code != http.StatusOK {
		t.Fatalf("replay = %d, want 200", code)
	}
	if res.Outcome != replay.OutcomeReplayed || res.ReplayID == "" || res.MessageID == "" {
		t.Fatalf("replay result = %+v", res)
	}
	msgs := leadsMessages(ev.IdempotencyKey)
	if len(msgs) != 1 {
		t.Fatalf("%d messages on leads after one replay, want 1", len(msgs))
	}
	if msgs[0][pushmsg.AttrReplayID] != res.ReplayID || msgs[0][pushmsg.AttrEventID] != ev.EventID {
		t.Errorf("replayed attributes = %v", msgs[0])
	}
	doc := getEvent(t, id)
	if doc.State != store.StateReceived || doc.ReplayCount != 1 || doc.LastReplayID != res.ReplayID || doc.AttemptsBase != 3 {
		t.Errorf("event after replay: state %s replays %d last %s base %d", doc.State, doc.ReplayCount, doc.LastReplayID, doc.AttemptsBase)
	}
	if doc.OutboxDueAt != nil || doc.PublishMessageID != res.MessageID {
		t.Errorf("outbox not cleared after publish: due %v msg %s", doc.OutboxDueAt, doc.PublishMessageID)
	}
	r, _ := st.GetDLQ(context.Background(), id)
	if r.Status != store.DLQReplayed || r.StatusChangedBy != "alice" {
		t.Errorf("record status %s by %s, want replayed by alice", r.Status, r.StatusChangedBy)
	}

	// Second replay while the first is in flight: nothing new.
	var again replay.Result
	if code := call(t, "POST", "/v1/dlq/"+id+":replay", aliceToken, replayReq("again"), &again); code != http.StatusOK {
		t.Fatalf("second replay = %d", code)
	}
	if again.Outcome != replay.OutcomeInFlight {
		t.Errorf("second replay outcome = %s, want in_flight", again.Outcome)
	}
	if n := len(leadsMessages(ev.IdempotencyKey)); n != 1 {
		t.Errorf("%d messages after a second replay, want 1", n)
	}

	// The processor succeeds: replaying says so and does nothing.
	setState(t, id, store.StateSucceeded)
	var done replay.Result
	if code := call(t, "POST", "/v1/dlq/"+id+":replay", bobToken, replayReq("just in case"), &done); code != http.StatusOK {
		t.Fatalf("replay of succeeded = %d", code)
	}
	if done.Outcome != replay.OutcomeAlreadySucceeded {
		t.Errorf("outcome = %s, want already_succeeded", done.Outcome)
	}
	if n := len(leadsMessages(ev.IdempotencyKey)); n != 1 {
		t.Errorf("%d messages after replaying a succeeded event, want 1", n)
	}
	if got := getEvent(t, id); got.State != store.StateSucceeded || got.ReplayCount != 1 {
		t.Errorf("succeeded event changed: state %s replays %d", got.State, got.ReplayCount)
	}

	// A stale Pub/Sub dead-letter of the pre-replay message must not reopen the record.
	if code := pushDLQ(t, ev, pubsubAttrs(ev, 10), "m-r1-stale"); code != http.StatusNoContent {
		t.Fatalf("push = %d", code)
	}
	r, _ = st.GetDLQ(context.Background(), id)
	if r.Status != store.DLQReplayed || r.DeadLetterCount != 2 {
		t.Errorf("after stale dead-letter: status %s count %d, want replayed 2", r.Status, r.DeadLetterCount)
	}
}

// A failure of the replayed delivery (carrying its replay_id) reopens the record.
func TestFailedReplayReopens(t *testing.T) {
	reset(t)
	ev := newEvent("reopen-1")
	id := seed(t, ev, store.StateQuarantined, 1)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "first", 1), "m-o1")
	var res replay.Result
	call(t, "POST", "/v1/dlq/"+id+":replay", aliceToken, replayReq("retry"), &res)
	setState(t, id, store.StateQuarantined)
	a := processorAttrs(ev, "conflict", "second failure", 2)
	a[pushmsg.AttrReplayID] = res.ReplayID
	pushDLQ(t, ev, a, "m-o2")
	r, _ := st.GetDLQ(context.Background(), id)
	if r.Status != store.DLQOpen || r.FailureClass != "conflict" || r.DeadLetterCount != 2 {
		t.Errorf("after failed replay: %s %s count %d, want open conflict 2", r.Status, r.FailureClass, r.DeadLetterCount)
	}
}

func TestDiscard(t *testing.T) {
	reset(t)
	ev := newEvent("discard-1")
	id := seed(t, ev, store.StateQuarantined, 1)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "spam", 1), "m-d1")
	if code := call(t, "POST", "/v1/dlq/"+id+":discard", bobToken, map[string]any{}, nil); code != http.StatusBadRequest {
		t.Errorf("discard without reason = %d, want 400", code)
	}
	var res replay.Result
	if code := call(t, "POST", "/v1/dlq/"+id+":discard", bobToken, replayReq("test lead from QA"), &res); code != http.StatusOK {
		t.Fatalf("discard = %d", code)
	}
	if res.Outcome != replay.OutcomeDiscarded || getEvent(t, id).State != store.StateDiscarded {
		t.Errorf("discard: outcome %s state %s", res.Outcome, getEvent(t, id).State)
	}
	if code := call(t, "POST", "/v1/dlq/"+id+":replay", aliceToken, replayReq("oops"), nil); code != http.StatusConflict {
		t.Errorf("replay of discarded = %d, want 409", code)
	}
	if n := len(leadsMessages(ev.IdempotencyKey)); n != 0 {
		t.Errorf("%d messages for a discarded event", n)
	}
}

func TestUnauthenticated(t *testing.T) {
	routes := []struct{ method, path string }{
		{"GET", "/v1/dlq"}, {"GET", "/v1/dlq/abc"}, {"POST", "/v1/dlq/abc:replay"}, {"POST", "/v1/dlq/abc:discard"},
		{"POST", "/v1/dlq:replay"}, {"GET", "/v1/replays/x"}, {"GET", "/v1/events/k"}, {"GET", "/v1/audit"},
		{"POST", "/internal/auto-replay"}, {"POST", "/internal/replay-jobs/resume"},
	}
	for _, r := range routes {
		for _, tok := range []string{"", "wrong-token"} {
			if code := call(t, r.method, r.path, tok, replayReq("x"), nil); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q = %d, want 401", r.method, r.path, tok, code)
			}
		}
	}
}

func TestMissingReason(t *testing.T) {
	reset(t)
	ev := newEvent("noreason-1")
	id := seed(t, ev, store.StateQuarantined, 1)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "x", 1), "m-n1")
	for _, body := range []map[string]any{{}, {"reason": "   "}} {
		if code := call(t, "POST", "/v1/dlq/"+id+":replay", aliceToken, body, nil); code != http.StatusBadRequest {
			t.Errorf("replay with %v = %d, want 400", body, code)
		}
	}
	if code := call(t, "POST", "/v1/dlq:replay", aliceToken, map[string]any{"dry_run": true}, nil); code != http.StatusBadRequest {
		t.Errorf("bulk without reason = %d, want 400", code)
	}
	if getEvent(t, id).State != store.StateQuarantined {
		t.Error("a rejected replay changed the event")
	}
}

func TestRawNeedsPermission(t *testing.T) {
	reset(t)
	ev := newEvent("raw-1")
	id := seed(t, ev, store.StateQuarantined, 1)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "x", 1), "m-w1")
	var d views.Detail
	if code := call(t, "GET", "/v1/dlq/"+id, bobToken, nil, &d); code != http.StatusOK {
		t.Fatalf("detail = %d", code)
	}
	if d.Normalized != nil || d.Raw != nil || d.Event == nil || d.Event.State != "quarantined" || len(d.Attempts) != 1 {
		t.Errorf("detail without include: normalized %v event %+v attempts %d", d.Normalized != nil, d.Event, len(d.Attempts))
	}
	if code := call(t, "GET", "/v1/dlq/"+id+"?include=raw", bobToken, nil, nil); code != http.StatusForbidden {
		t.Errorf("bob include=raw = %d, want 403", code)
	}
	var full views.Detail
	if code := call(t, "GET", "/v1/dlq/"+id+"?include=raw", aliceToken, nil, &full); code != http.StatusOK {
		t.Fatalf("alice include=raw = %d", code)
	}
	if full.Normalized == nil || full.Normalized.Identity.ContactExternalID != "c-raw-1" {
		t.Errorf("alice got no normalized event")
	}
}

func TestWhereIsThisLead(t *testing.T) {
	reset(t)
	ev := newEvent("where-1")
	id := seed(t, ev, store.StateQuarantined, 2)
	pushDLQ(t, ev, processorAttrs(ev, "permanent", "x", 2), "m-e1")
	for _, key := range []string{ev.IdempotencyKey, id, ev.EventID} {
		var w views.Where
		if code := call(t, "GET", "/v1/events/"+url.PathEscape(key), bobToken, nil, &w); code != http.StatusOK {
			t.Fatalf("GET /v1/events/%s = %d", key, code)
		}
		if w.Event.ID != id || w.Event.State != "quarantined" || len(w.Attempts) != 2 || w.DLQ == nil || w.DLQ.ID != id {
			t.Errorf("where %s = %+v", key, w)
		}
	}
	if code := call(t, "GET", "/v1/events/nope", bobToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown key = %d, want 404", code)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	reset(t)
	for i := range 5 {
		ev := newEvent("list-" + string(rune('a'+i)))
		seed(t, ev, store.StateQuarantined, 1)
		class := "permanent"
		if i%2 == 1 {
			class = "auth"
		}
		pushDLQ(t, ev, processorAttrs(ev, class, "x", 1), "m-l"+string(rune('a'+i)))
	}
	if got := listDLQ(t, "failure_class=auth"); len(got) != 2 {
		t.Errorf("failure_class=auth: %d, want 2", len(got))
	}
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		var page api.ListResponse
		q := "page_size=2&source=demo&status=open"
		if token != "" {
			q += "&page_token=" + url.QueryEscape(token)
		}
		if code := call(t, "GET", "/v1/dlq?"+q, aliceToken, nil, &page); code != http.StatusOK {
			t.Fatalf("page %d = %d", pages, code)
		}
		for _, r := range page.Records {
			if seen[r.ID] {
				t.Errorf("record %s on two pages", r.ID)
			}
			seen[r.ID] = true
		}
		if token = page.NextPageToken; token == "" || pages > 5 {
			break
		}
	}
	if len(seen) != 5 {
		t.Errorf("paged through %d records, want 5", len(seen))
	}
	if code := call(t, "GET", "/v1/dlq?page_token=garbage", aliceToken, nil, nil); code != http.StatusBadRequest {
		t.Errorf("bad page token = %d, want 400", code)
	}
	if code := call(t, "GET", "/v1/dlq?since=yesterday", aliceToken, nil, nil); code != http.StatusBadRequest {
		t.Errorf("bad since = %d, want 400", code)
	}
}

func waitJob(t *testing.T, id string) *store.ReplayJob {
	t.Helper()
	var j store.ReplayJob
	eventually(t, "job "+id+" done", func() bool {
		call(t, "GET", "/v1/replays/"+id, aliceToken, nil, &j)
		return j.Final()
	})
	return &j
}

func TestBulkReplay(t *testing.T) {
	reset(t)
	var ids []string
	var evs []event.Event
	for i := range 3 {
		ev := newEvent("bulk-" + string(rune('a'+i)))
		ids = append(ids, seed(t, ev, store.StateQuarantined, 1))
		evs = append(evs, ev)
		pushDLQ(t, ev, processorAttrs(ev, "auth", "crm 401", 1), "m-b"+string(rune('a'+i)))
	}
	// Another class the filter leaves out.
	other := newEvent("bulk-other")
	seed(t, other, store.StateQuarantined, 1)
	pushDLQ(t, other, processorAttrs(other, "permanent", "x", 1), "m-bo")

	var dry store.ReplayJob
	if code := call(t, "POST", "/v1/dlq:replay", aliceToken, map[string]any{
		"filter": map[string]any{"failure_class": "auth"}, "reason": "token rotated", "dry_run": true,
	}, &dry); code != http.StatusAccepted {
		t.Fatalf("bulk dry run = %d, want 202", code)
	}
	j := waitJob(t, dry.ID)
	if j.Status != store.JobDone || j.Matched != 3 || len(j.WouldReplay) != 3 || j.Replayed != 0 {
		t.Errorf("dry run job = %+v", j)
	}
	for i, id := range ids {
		if s := getEvent(t, id).State; s != store.StateQuarantined {
			t.Errorf("dry run moved %s to %s", id, s)
		}
		if r, _ := st.GetDLQ(context.Background(), id); r.Status != store.DLQOpen {
			t.Errorf("dry run changed record status to %s", r.Status)
		}
		if n := len(leadsMessages(evs[i].IdempotencyKey)); n != 0 {
			t.Errorf("dry run published %d messages", n)
		}
	}

	var real store.ReplayJob
	call(t, "POST", "/v1/dlq:replay", aliceToken, map[string]any{
		"filter": map[string]any{"failure_class": "auth"}, "reason": "token rotated", "max": 10,
	}, &real)
	j = waitJob(t, real.ID)
	if j.Matched != 3 || j.Replayed != 3 || j.Failed != 0 {
		t.Errorf("bulk job = matched %d replayed %d skipped %d failed %d", j.Matched, j.Replayed, j.Skipped, j.Failed)
	}
	for i, id := range ids {
		if n := len(leadsMessages(evs[i].IdempotencyKey)); n != 1 {
			t.Errorf("%s: %d messages, want 1", id, n)
		}
	}
	if s := getEvent(t, event.DocID(other.IdempotencyKey)).State; s != store.StateQuarantined {
		t.Errorf("filtered-out event moved to %s", s)
	}
	// Running the same bulk replay again finds nothing open.
	var again store.ReplayJob
	call(t, "POST", "/v1/dlq:replay", aliceToken, map[string]any{"filter": map[string]any{"failure_class": "auth"}, "reason": "again"}, &again)
	if j := waitJob(t, again.ID); j.Matched != 0 {
		t.Errorf("second bulk matched %d, want 0", j.Matched)
	}
}

func TestAutoReplay(t *testing.T) {
	reset(t)
	ev := newEvent("auto-1")
	id := seed(t, ev, store.StateFailed, 5)
	publishDLQ(t, ev, pubsubAttrs(ev, 10)) // class retryable
	eventually(t, "record", func() bool { _, err := st.GetDLQ(context.Background(), id); return err == nil })
	ctx := context.Background()
	if err := st.SetCRMHealth(ctx, store.CRMHealth{CRM: "salesforce", State: store.CRMOpen, ChangedAt: st.Now()}); err != nil {
		t.Fatal(err)
	}
	var sum autoreplay.Summary
	call(t, "POST", "/internal/auto-replay", aliceToken, nil, &sum)
	if sum.Waiting != 1 || sum.Replayed != 0 || getEvent(t, id).State != store.StateQuarantined {
		t.Fatalf("breaker open: %+v, state %s", sum, getEvent(t, id).State)
	}
	if err := st.SetCRMHealth(ctx, store.CRMHealth{CRM: "salesforce", State: store.CRMClosed, ChangedAt: st.Now()}); err != nil {
		t.Fatal(err)
	}
	call(t, "POST", "/internal/auto-replay", aliceToken, nil, &sum)
	if sum.Replayed != 1 || getEvent(t, id).State != store.StateReceived || len(leadsMessages(ev.IdempotencyKey)) != 1 {
		t.Errorf("breaker closed: %+v, state %s", sum, getEvent(t, id).State)
	}
	var audit api.AuditResponse
	call(t, "GET", "/v1/audit?actor=auto-replay", aliceToken, nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Targets[0] != id || audit.Entries[0].Reason == "" {
		t.Errorf("auto-replay audit = %+v", audit.Entries)
	}
}

// Every replay and discard is audited with actor, reason and target.
func TestAudit(t *testing.T) {
	reset(t)
	a, b := newEvent("audit-a"), newEvent("audit-b")
	ida, idb := seed(t, a, store.StateQuarantined, 1), seed(t, b, store.StateQuarantined, 1)
	pushDLQ(t, a, processorAttrs(a, "permanent", "x", 1), "m-aa")
	pushDLQ(t, b, processorAttrs(b, "permanent", "x", 1), "m-ab")
	call(t, "POST", "/v1/dlq/"+ida+":replay", aliceToken, replayReq("fixed mapping"), nil)
	call(t, "POST", "/v1/dlq/"+idb+":discard", bobToken, replayReq("duplicate test lead"), nil)
	var got api.AuditResponse
	if code := call(t, "GET", "/v1/audit", aliceToken, nil, &got); code != http.StatusOK {
		t.Fatalf("audit = %d", code)
	}
	want := map[string][3]string{ida: {"alice", "replay", "fixed mapping"}, idb: {"bob", "discard", "duplicate test lead"}}
	for _, e := range got.Entries {
		w, ok := want[e.Targets[0]]
		if !ok {
			continue
		}
		if e.Actor != w[0] || e.Action != w[1] || e.Reason != w[2] || e.At.IsZero() {
			t.Errorf("audit entry %+v, want %v", e, w)
		}
		delete(want, e.Targets[0])
	}
	if len(want) != 0 {
		t.Errorf("no audit entry for %v", want)
	}
	var byTarget api.AuditResponse
	call(t, "GET", "/v1/audit?target="+ida, aliceToken, nil, &byTarget)
	if len(byTarget.Entries) != 1 {
		t.Errorf("audit?target: %d entries, want 1", len(byTarget.Entries))
	}
}
