package dlq

import (
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

// TestFold: the intake's decision for one dead-letter message: the record it stores and
// whether it asks the store to quarantine the event (the store then does so only from a live
// state).
func TestFold(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	key := "demo|lead.created|1"
	processor := map[string]string{pushmsg.AttrFailureClass: "permanent", pushmsg.AttrErrorMessage: "400", pushmsg.AttrAttemptCount: "2"}
	pubsub := map[string]string{pushmsg.AttrDLSourceDeliveryCount: "10"}
	withReplay := func(a map[string]string, id string) map[string]string {
		out := map[string]string{pushmsg.AttrReplayID: id}
		for k, v := range a {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name      string
		attrs     map[string]string
		doc       *store.EventDoc
		cur       *store.DLQRecord
		wantQ     *store.Quarantine
		wantClass failure.Class
		wantCount int
	}{
		{"first message, no event", processor, nil, nil,
			&store.Quarantine{Reason: store.Reason{Class: failure.Permanent, Message: "400"}, By: store.ByProcessor}, failure.Permanent, 1},
		{"pubsub, event without a replay", pubsub, &store.EventDoc{State: store.StateFailed, FailureClass: failure.Conflict, ErrorMessage: "409"}, nil,
			&store.Quarantine{Reason: store.Reason{Class: failure.Conflict, Message: "409 (dead-lettered by Pub/Sub after 10 delivery attempts)"}, By: store.ByPubSub}, failure.Conflict, 1},
		{"message of the latest replay", withReplay(processor, "r2"), &store.EventDoc{LastReplayID: "r2"}, &store.DLQRecord{Status: store.DLQReplayed, DeadLetterCount: 1},
			&store.Quarantine{Reason: store.Reason{Class: failure.Permanent, Message: "400"}, By: store.ByProcessor}, failure.Permanent, 2},
		{"stale message from before the replay", withReplay(pubsub, "r1"), &store.EventDoc{LastReplayID: "r2"}, &store.DLQRecord{Status: store.DLQReplayed, DeadLetterCount: 1, FailureClass: failure.Auth, ReasonSource: store.ByProcessor},
			nil, failure.Auth, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event.Event{IdempotencyKey: key}
			rec, q := fold(tt.cur, tt.doc, key, tt.attrs, &ev, t0, t0)
			if (q == nil) != (tt.wantQ == nil) || (q != nil && *q != *tt.wantQ) {
				t.Errorf("quarantine: got %+v, want %+v", q, tt.wantQ)
			}
			if rec.FailureClass != tt.wantClass || rec.DeadLetterCount != tt.wantCount || (tt.cur == nil && rec.NormalizedEventRef != store.DocPath(event.DocID(key))) {
				t.Errorf("record: got class %s count %d ref %s, want %s %d", rec.FailureClass, rec.DeadLetterCount, rec.NormalizedEventRef, tt.wantClass, tt.wantCount)
			}
		})
	}
}
