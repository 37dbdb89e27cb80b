// Package dlq keeps one DLQ record per dead-lettered event: it turns each message of the
// leads-dlq subscription (quarantined by the processor or ingest, or dead-lettered by Pub/Sub)
// into an idempotent upsert of the event's record, with the best reason available.
package dlq

import (
	"fmt"
	"strconv"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
)

// ClassUnknown is the class of a record nobody gave a reason for.
const ClassUnknown = failure.Unknown

// rank orders reason sources: a later message replaces a record's reason only with one at
// least as strong (a Pub/Sub dead-letter arriving after the processor's quarantine must not
// hide the processor's precise reason).
func rank(source store.Origin) int {
	switch source {
	case store.ByProcessor, store.ByIngest:
		return 3
	case store.ByPubSub:
		return 2
	case store.ByEvent:
		return 1
	}
	return 0
}

// Reason is what one dead-letter message says about why the event failed.
type Reason struct {
	Source          store.Origin
	Class           failure.Class
	Message         string
	Code            store.ReasonCode
	AttemptCount    int
	FirstReceivedAt time.Time
	LastAttemptAt   time.Time
}

// ReasonFrom decides a message's reason. Precedence: the processor's (or ingest's) failure
// attributes, then Pub/Sub's CloudPubSubDeadLetter* attributes (class retryable unless the
// event document recorded a better one), then the event document's failure fields. doc may be
// nil; publishTime is the fallback for times nobody gave.
func ReasonFrom(attrs map[string]string, doc *store.EventDoc, publishTime time.Time) Reason {
	var r Reason
	switch {
	case attrs[pushmsg.AttrFailureClass] != "":
		r.Source = store.ByProcessor
		if store.Origin(attrs[pushmsg.AttrQuarantinedBy]) == store.ByIngest {
			r.Source = store.ByIngest
		}
		r.Class = failure.Class(attrs[pushmsg.AttrFailureClass])
		r.Message = attrs[pushmsg.AttrErrorMessage]
		r.Code = store.ReasonCode(attrs[pushmsg.AttrReason])
		r.AttemptCount, _ = strconv.Atoi(attrs[pushmsg.AttrAttemptCount])
		r.FirstReceivedAt = parseTime(attrs[pushmsg.AttrFirstReceivedAt])
		r.LastAttemptAt = parseTime(attrs[pushmsg.AttrLastAttemptAt])
	case attrs[pushmsg.AttrDLSourceDeliveryCount] != "":
		r.Source = store.ByPubSub
		n, _ := strconv.Atoi(attrs[pushmsg.AttrDLSourceDeliveryCount])
		r.Class = failure.Retryable
		r.Message = fmt.Sprintf("dead-lettered by Pub/Sub after %d delivery attempts", n)
		if doc != nil && doc.FailureClass.Valid() {
			r.Class, r.Code = doc.FailureClass, doc.Reason
			if doc.ErrorMessage != "" {
				r.Message = doc.ErrorMessage + " (" + r.Message + ")"
			}
		}
		r.AttemptCount = n
	default:
		r.Source = store.ByEvent
		r.Class = ClassUnknown
		r.Message = "no reason given"
		if doc != nil && doc.FailureClass != "" {
			r.Class, r.Code = doc.FailureClass, doc.Reason
			r.Message = doc.ErrorMessage
		}
	}
	if doc != nil {
		// The processor's own counter is authoritative; Pub/Sub's is a hint.
		if doc.Attempts > 0 && (r.Source != store.ByProcessor || r.AttemptCount == 0) {
			r.AttemptCount = doc.Attempts
		}
		if r.FirstReceivedAt.IsZero() {
			r.FirstReceivedAt = firstNonZero(doc.Event.Audit.ReceivedAt, doc.CreatedAt)
		}
		if r.LastAttemptAt.IsZero() {
			r.LastAttemptAt = doc.LastAttemptAt
		}
	}
	if r.FirstReceivedAt.IsZero() {
		r.FirstReceivedAt = publishTime
	}
	if r.LastAttemptAt.IsZero() {
		r.LastAttemptAt = publishTime
	}
	return r
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// Merge folds one dead-letter message into the event's record (cur is nil for the first
// message) and returns the record to store. now is the arrival time. reopen says the message
// reports a failure of the event's latest replay, which reopens a replayed record.
func Merge(cur *store.DLQRecord, base store.DLQRecord, r Reason, now time.Time, reopen bool) *store.DLQRecord {
	if cur == nil {
		rec := base
		rec.FirstReceivedAt = r.FirstReceivedAt
		rec.LastAttemptAt = r.LastAttemptAt
		rec.AttemptCount = r.AttemptCount
		rec.FailureClass, rec.ErrorMessage, rec.ReasonSource, rec.Reason = r.Class, r.Message, r.Source, r.Code
		rec.DeadLetterCount = 1
		rec.LastDeadLetteredAt = now
		rec.Status = store.DLQOpen
		rec.StatusChangedAt = now
		rec.CreatedAt = now
		return &rec
	}
	rec := *cur
	rec.DeadLetterCount++
	rec.LastDeadLetteredAt = now
	if r.LastAttemptAt.After(rec.LastAttemptAt) {
		rec.LastAttemptAt = r.LastAttemptAt
	}
	if r.AttemptCount > rec.AttemptCount {
		rec.AttemptCount = r.AttemptCount
	}
	if !r.FirstReceivedAt.IsZero() && (rec.FirstReceivedAt.IsZero() || r.FirstReceivedAt.Before(rec.FirstReceivedAt)) {
		rec.FirstReceivedAt = r.FirstReceivedAt
	}
	if rec.RawEventRef == "" {
		rec.RawEventRef = base.RawEventRef
	}
	if reopen && rec.Status == store.DLQReplayed {
		rec.Status = store.DLQOpen
		rec.StatusChangedAt = now
		rec.StatusChangedBy = ""
		rec.FailureClass, rec.ErrorMessage, rec.ReasonSource, rec.Reason = r.Class, r.Message, r.Source, r.Code
		return &rec
	}
	if rank(r.Source) >= rank(rec.ReasonSource) {
		rec.FailureClass, rec.ErrorMessage, rec.ReasonSource, rec.Reason = r.Class, r.Message, r.Source, r.Code
	}
	return &rec
}
