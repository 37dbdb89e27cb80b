package dlq

import (
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

// TestReasonCodeCarried: the typed reason (no_match) travels from the processor's DLQ
// attributes, or from the event document, into the DLQ record, and is replaced with the rest
// of the reason.
func TestReasonCodeCarried(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	proc := ReasonFrom(map[string]string{pushmsg.AttrFailureClass: "permanent", pushmsg.AttrErrorMessage: "salesforce 404",
		pushmsg.AttrReason: string(store.ReasonNoMatch)}, nil, t0)
	if proc.Code != store.ReasonNoMatch {
		t.Fatalf("from attributes: code %q", proc.Code)
	}
	doc := &store.EventDoc{FailureClass: failure.Permanent, ErrorMessage: "x", Reason: store.ReasonNoMatch}
	if r := ReasonFrom(map[string]string{pushmsg.AttrDLSourceDeliveryCount: "10"}, doc, t0); r.Code != store.ReasonNoMatch {
		t.Errorf("pubsub dead-letter with the event's reason: code %q", r.Code)
	}
	if r := ReasonFrom(nil, doc, t0); r.Code != store.ReasonNoMatch {
		t.Errorf("reason from the event: code %q", r.Code)
	}
	rec := Merge(nil, store.DLQRecord{}, proc, t0, false)
	if rec.Reason != store.ReasonNoMatch {
		t.Fatalf("record reason %q", rec.Reason)
	}
	// After a replay, a failure with another cause reopens the record with that cause only.
	rec.Status = store.DLQReplayed
	other := ReasonFrom(map[string]string{pushmsg.AttrFailureClass: "auth", pushmsg.AttrErrorMessage: "401"}, nil, t0)
	if rec = Merge(rec, store.DLQRecord{}, other, t0.Add(time.Hour), true); rec.Reason != "" || rec.FailureClass != failure.Auth {
		t.Errorf("reopened record: class %s reason %q, want auth and none", rec.FailureClass, rec.Reason)
	}
}
