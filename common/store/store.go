// Package store is the pipeline's Firestore store: event documents (the normalized event, its
// idempotency record, its outbox and processing state), their attempt history, DLQ records,
// the audit log and replay jobs.
//
// It is the one owner of the event lifecycle: every change of an event's state or a DLQ
// record's status is an intent-named method here (Claim, Complete, Fail, Park, Unpark,
// Quarantine in lifecycle.go; Replay, Discard, RecordDeadLetter, Resolve in operator.go), over
// the typed vocabulary of vocab.go. Callers pass their decisions in as pure functions and never
// see Firestore types, field paths or gRPC codes; the client and document references are
// unexported. Every transaction is retried under contention by internal/txretry.
//
// Layout (document ids are event.DocID(idempotency_key): hashes, never personal data):
//
//	events/{doc_id}                    EventDoc
//	events/{doc_id}/attempts/{nnnnnn}  Attempt
//	dlq/{doc_id}                       DLQRecord (one per event)
//	audit/{auto_id}                    AuditEntry
//	replay_jobs/{job_id}               ReplayJob
//	crm_health/{crm}                   CRMHealth
//
// The Store is safe for concurrent use; methods take a context first and do I/O.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
)

// Collection names (see the layout in the package comment).
const (
	collEvents     = "events"
	collAttempts   = "attempts"
	collDLQ        = "dlq"
	collAudit      = "audit"
	collReplayJobs = "replay_jobs"
	collCRMHealth  = "crm_health"
)

// Sentinel outcomes. Callers test them with errors.Is.
var (
	// ErrDuplicate: an event with this idempotency key already exists.
	ErrDuplicate = errors.New("duplicate idempotency key")
	// ErrNotFound: no such document.
	ErrNotFound = errors.New("not found")
)

// Store wraps the Firestore clients: fs on the events database (events and everything the
// processing path writes), ops on the operations database (DLQ records, the audit log and
// replay jobs). They are one database unless the deployment splits them
// (FIRESTORE_OPS_DATABASE), so that ingest, granted the events database alone, cannot write a
// DLQ record, an audit entry or a replay job. Nothing assumes one transaction spans both:
// operator actions and the DLQ intake are two steps with a recorded intent (operator.go).
type Store struct {
	fs  *firestore.Client
	ops *firestore.Client
	now func() time.Time
}

// New returns a Store on client, for both the events and the operations collections.
func New(client *firestore.Client) *Store {
	return &Store{fs: client, ops: client, now: time.Now}
}

// NewSplit returns a Store on two databases: events for the event lifecycle, ops for DLQ
// records, the audit log and replay jobs.
func NewSplit(events, ops *firestore.Client) *Store {
	return &Store{fs: events, ops: ops, now: time.Now}
}

// Now is the store's clock (UTC).
func (s *Store) Now() time.Time { return s.now().UTC() }

// SetClock replaces the clock; for tests.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// eventRef is the event document of a document id.
func (s *Store) eventRef(docID string) *firestore.DocumentRef {
	return s.fs.Collection(collEvents).Doc(docID)
}

// DocPath is the normalized_event_ref written into events: "events/{doc_id}".
func DocPath(docID string) string { return collEvents + "/" + docID }

// GetEvent reads an event document by document id.
func (s *Store) GetEvent(ctx context.Context, docID string) (*EventDoc, error) {
	return get(ctx, s.eventRef(docID), "get event", decodeEvent)
}

// get reads one document and decodes it: ErrNotFound when it does not exist, other errors
// classified, both prefixed with op and the document id.
func get[T any](ctx context.Context, ref *firestore.DocumentRef, op string, decode func(*firestore.DocumentSnapshot) (T, error)) (T, error) {
	var zero T
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return zero, fmt.Errorf("%s %s: %w", op, ref.ID, ErrNotFound)
	}
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", op, ref.ID, classify(err))
	}
	return decode(snap)
}

// FindEvent looks an event up by idempotency key, document id or event id.
func (s *Store) FindEvent(ctx context.Context, key string) (*EventDoc, error) {
	for _, id := range []string{event.DocID(key), key} {
		if !isDocID(id) {
			continue
		}
		d, err := s.GetEvent(ctx, id)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	it := s.fs.Collection(collEvents).Where("event_id", "==", key).Limit(1).Documents(ctx)
	defer it.Stop()
	snaps, err := it.GetAll()
	if err != nil {
		return nil, fmt.Errorf("find event: %w", classify(err))
	}
	if len(snaps) == 0 {
		return nil, fmt.Errorf("find event: %w", ErrNotFound)
	}
	return decodeEvent(snaps[0])
}

// MarkPublished records that the event reached the leads topic and takes it out of the outbox.
func (s *Store) MarkPublished(ctx context.Context, docID, messageID string) error {
	now := s.Now()
	_, err := s.eventRef(docID).Update(ctx, []firestore.Update{
		{Path: "outbox_due_at", Value: firestore.Delete},
		{Path: "published_at", Value: now},
		{Path: "publish_message_id", Value: messageID},
		{Path: "updated_at", Value: now},
	})
	if err != nil {
		return fmt.Errorf("mark published %s: %w", docID, classify(err))
	}
	return nil
}

// MarkPublishedIf is MarkPublished on the condition that the document is still at version (its
// update time as its creator wrote it). A document written since (its claim consumed the outbox
// entry; a duplicate's outbox claim owns it) is left alone, and that is not an error.
func (s *Store) MarkPublishedIf(ctx context.Context, docID, messageID string, version time.Time) error {
	now := s.Now()
	_, err := s.eventRef(docID).Update(ctx, []firestore.Update{
		{Path: fOutboxDueAt, Value: firestore.Delete},
		{Path: "published_at", Value: now},
		{Path: "publish_message_id", Value: messageID},
		{Path: fUpdatedAt, Value: now},
	}, firestore.LastUpdateTime(version))
	if lostPrecondition(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark published %s: %w", docID, classify(err))
	}
	return nil
}

// DueForPublish returns up to limit events still in the outbox whose due time has passed,
// oldest first.
func (s *Store) DueForPublish(ctx context.Context, limit int) ([]*EventDoc, error) {
	it := s.fs.Collection(collEvents).
		Where("outbox_due_at", "<=", s.Now()).
		OrderBy("outbox_due_at", firestore.Asc).
		Limit(limit).Documents(ctx)
	defer it.Stop()
	snaps, err := it.GetAll()
	if err != nil {
		return nil, fmt.Errorf("outbox query: %w", classify(err))
	}
	out := make([]*EventDoc, 0, len(snaps))
	for _, sn := range snaps {
		d, err := decodeEvent(sn)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// AddAttempt appends an attempt entry to the event's history. Attempt numbers are unique per
// event, so a retried write of the same attempt overwrites itself rather than duplicating.
func (s *Store) AddAttempt(ctx context.Context, docID string, a Attempt) error {
	ref := s.attemptRef(docID, a.Number)
	if _, err := ref.Set(ctx, a); err != nil {
		return fmt.Errorf("add attempt %s/%s: %w", docID, ref.ID, classify(err))
	}
	return nil
}

// attemptRef is the document of attempt number n of an event.
func (s *Store) attemptRef(docID string, n int) *firestore.DocumentRef {
	return s.eventRef(docID).Collection(collAttempts).Doc(fmt.Sprintf("%06d", n))
}

// Attempts returns the event's attempt history in order.
func (s *Store) Attempts(ctx context.Context, docID string) ([]Attempt, error) {
	it := s.eventRef(docID).Collection(collAttempts).OrderBy("number", firestore.Asc).Documents(ctx)
	defer it.Stop()
	snaps, err := it.GetAll()
	if err != nil {
		return nil, fmt.Errorf("attempts %s: %w", docID, classify(err))
	}
	out := make([]Attempt, 0, len(snaps))
	for _, sn := range snaps {
		var a Attempt
		if err := sn.DataTo(&a); err != nil {
			return nil, fmt.Errorf("decode attempt %s: %w", sn.Ref.Path, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// isDocID reports whether s has the form of event.DocID: 64 lowercase hex characters. Anything
// else is never an event's document id (and may not even be a valid Firestore id).
func isDocID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func decodeEvent(snap *firestore.DocumentSnapshot) (*EventDoc, error) {
	var d EventDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("decode event %s: %w", snap.Ref.ID, err)
	}
	d.DocID = snap.Ref.ID
	d.UpdateTime = snap.UpdateTime
	return &d, nil
}

// classify maps a Firestore error to a failure class: Unavailable, DeadlineExceeded,
// ResourceExhausted, Aborted and Internal are retryable; PermissionDenied and Unauthenticated
// are auth; InvalidArgument and FailedPrecondition are permanent. Unknown errors are retryable.
// The original error stays in the chain.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := failure.ClassOf(err); ok {
		return err
	}
	// The caller's own cancellation is not a failure of the store. The client returns a bare
	// context.Canceled (status code Unknown) from its retry loops, so test before the switch.
	if errors.Is(err, context.Canceled) {
		return err
	}
	code := status.Code(err)
	var c failure.Class
	switch code {
	case codes.PermissionDenied, codes.Unauthenticated:
		c = failure.Auth
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		c = failure.Permanent
	case codes.AlreadyExists:
		c = failure.Conflict
	default:
		c = failure.Retryable
	}
	return &failure.Error{Class: c, Code: int(code), Message: "firestore " + code.String(), Err: err}
}

// SetCRMHealth records a CRM's breaker state.
func (s *Store) SetCRMHealth(ctx context.Context, h CRMHealth) error {
	if _, err := s.fs.Collection(collCRMHealth).Doc(h.CRM).Set(ctx, h); err != nil {
		return fmt.Errorf("set crm health %s: %w", h.CRM, classify(err))
	}
	return nil
}

// CRMHealth reads a CRM's breaker state; ErrNotFound when the processor never wrote one.
func (s *Store) CRMHealth(ctx context.Context, crm string) (*CRMHealth, error) {
	return get(ctx, s.fs.Collection(collCRMHealth).Doc(crm), "crm health", func(snap *firestore.DocumentSnapshot) (*CRMHealth, error) {
		var h CRMHealth
		if err := snap.DataTo(&h); err != nil {
			return nil, fmt.Errorf("decode crm health %s: %w", crm, err)
		}
		return &h, nil
	})
}
