package dlq

import (
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

func TestMergeKeepsOneRecordAndTheStrongestReason(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	base := store.DLQRecord{IdempotencyKey: "k"}
	pubsub := ReasonFrom(map[string]string{pushmsg.AttrDLSourceDeliveryCount: "10"}, nil, t0)
	proc := ReasonFrom(map[string]string{pushmsg.AttrFailureClass: "permanent", pushmsg.AttrErrorMessage: "400", pushmsg.AttrAttemptCount: "3"}, nil, t0)
	tests := []struct {
		name      string
		order     []Reason
		wantClass failure.Class
		wantSrc   store.Origin
	}{
		{"pubsub then processor", []Reason{pubsub, proc}, "permanent", store.ByProcessor},
		{"processor then pubsub", []Reason{proc, pubsub}, "permanent", store.ByProcessor},
		{"pubsub twice", []Reason{pubsub, pubsub}, "retryable", store.ByPubSub},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec *store.DLQRecord
			for i, r := range tc.order {
				rec = Merge(rec, base, r, t0.Add(time.Duration(i)*time.Minute), true)
			}
			if rec.DeadLetterCount != len(tc.order) || rec.FailureClass != tc.wantClass || rec.ReasonSource != tc.wantSrc {
				t.Errorf("got count %d %s/%s, want %d %s/%s", rec.DeadLetterCount, rec.FailureClass, rec.ReasonSource, len(tc.order), tc.wantClass, tc.wantSrc)
			}
			if rec.Status != store.DLQOpen || !rec.LastDeadLetteredAt.Equal(t0.Add(time.Duration(len(tc.order)-1)*time.Minute)) {
				t.Errorf("status %s last %v", rec.Status, rec.LastDeadLetteredAt)
			}
		})
	}
}

func TestMergeReopensOnlyForTheCurrentReplay(t *testing.T) {
	t0 := time.Now()
	cur := &store.DLQRecord{Status: store.DLQReplayed, FailureClass: "permanent", ReasonSource: store.ByProcessor, DeadLetterCount: 1}
	r := Reason{Source: store.ByPubSub, Class: "retryable"}
	if got := Merge(cur, store.DLQRecord{}, r, t0, false); got.Status != store.DLQReplayed || got.FailureClass != "permanent" {
		t.Errorf("stale message: status %s class %s, want replayed permanent", got.Status, got.FailureClass)
	}
	if got := Merge(cur, store.DLQRecord{}, r, t0, true); got.Status != store.DLQOpen || got.FailureClass != "retryable" {
		t.Errorf("current replay failed: status %s class %s, want open retryable", got.Status, got.FailureClass)
	}
	disc := &store.DLQRecord{Status: store.DLQDiscarded}
	if got := Merge(disc, store.DLQRecord{}, r, t0, true); got.Status != store.DLQDiscarded {
		t.Errorf("discarded record reopened")
	}
}

func TestReasonFromEventDoc(t *testing.T) {
	doc := &store.EventDoc{FailureClass: "conflict", ErrorMessage: "409 duplicate", Attempts: 7}
	r := ReasonFrom(map[string]string{pushmsg.AttrDLSourceDeliveryCount: "10"}, doc, time.Now())
	if r.Class != "conflict" || r.AttemptCount != 7 || r.Source != store.ByPubSub {
		t.Errorf("pubsub with doc: %+v", r)
	}
	r = ReasonFrom(map[string]string{}, nil, time.Now())
	if r.Class != ClassUnknown || r.Source != store.ByEvent {
		t.Errorf("nothing known: %+v", r)
	}
}
