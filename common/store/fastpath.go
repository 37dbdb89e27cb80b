package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/contact"
	"github.com/leadpipe/leadpipe/common/event"
)

// This file holds the single-commit paths: the writes whose preconditions say all they need to
// know, so they cost one Commit RPC and no reads (issue 12). A transaction is BeginTransaction,
// a read and a Commit: three sequential round trips.
//
//   - CreateEvent: the event document and its lookup-index entries in one commit (ingest's only
//     Firestore round trip before it answers).
//   - ClaimFirst: the first claim of a document whose creator's version the message carries
//     (pushmsg.AttrDocVersion): an update with that update time as precondition, plus, for a
//     new contact, the identity index entries and the held record document, all in one commit.
//     When the precondition fails (anything wrote the document since: a duplicate's outbox
//     claim, the deferred publish mark, a replay) or a contact document exists, it falls back
//     to the transactional Claim.
//   - The verdicts after ClaimFirst (Complete, Fail, Park, Quarantine through fenced): one
//     update with the claim's own update time as precondition, the attempt entry and, for a
//     success, the record document's stamps. A failed precondition falls back to the
//     transaction, which reports ErrFenceSuperseded exactly as before.
//
// Update times are exact in Firestore (microseconds, one per commit of a document), so the
// precondition is a compare-and-set on the whole document. Google's emulator cuts them to
// milliseconds: a second write in the same millisecond as the one a precondition names would
// pass it. Every path here runs after a network hop that the other writers of the document wait
// out (a publish and a push; a CRM call), and the fallback transactions re-check state and fence.

// errFastPathLost: a single-commit path's precondition failed; take the transactional path.
var errFastPathLost = errors.New("fast path precondition failed")

// batch is one atomic commit of writes without reads: a single Commit RPC. (The client marks
// WriteBatch deprecated in favour of transactions and BulkWriter; neither is one atomic RPC.)
func (s *Store) batch() *firestore.WriteBatch {
	return s.fs.Batch() //nolint:staticcheck // see above
}

// lostPrecondition reports whether a commit failed on one of its preconditions: an update-time
// or exists precondition (FailedPrecondition, NotFound) or a create of an existing document.
func lostPrecondition(err error) bool {
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.NotFound, codes.AlreadyExists:
		return true
	}
	return false
}

// CreateEvent creates the event document if no document has its idempotency key, with the
// given "find a lead" index entries (LookupTokens; EventDocID is filled in), in one commit. It
// returns ErrDuplicate when the document exists (and then writes nothing: the first delivery's
// commit wrote the entries). doc.DocID is derived from the key when empty; doc.UpdateTime is
// set to the created document's update time, which the publisher carries to ClaimFirst.
func (s *Store) CreateEvent(ctx context.Context, doc *EventDoc, index ...LookupEntry) error {
	if doc.DocID == "" {
		doc.DocID = event.DocID(doc.IdempotencyKey)
	}
	now := s.Now()
	if doc.CreatedAt.IsZero() {
		doc.CreatedAt = now
	}
	doc.UpdatedAt = now
	if doc.State == "" {
		doc.State = StateReceived
	}
	b := s.batch().Create(s.eventRef(doc.DocID), doc)
	for _, e := range index {
		e.EventDocID = doc.DocID
		b.Set(s.fs.Collection(collLookup).Doc(e.Token+"_"+doc.DocID), e)
	}
	wrs, err := b.Commit(ctx)
	if status.Code(err) == codes.AlreadyExists {
		return fmt.Errorf("create event %s: %w", doc.DocID, ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("create event %s: %w", doc.DocID, classify(err))
	}
	doc.UpdateTime = wrs[0].UpdateTime
	return nil
}

// FirstDelivery is what a delivery knows about the document its event was published from.
type FirstDelivery struct {
	// Version is the document's update time as its creator wrote it (pushmsg.AttrDocVersion);
	// zero makes ClaimFirst the transactional Claim.
	Version time.Time
	// MessageID is the delivery's Pub/Sub message id, recorded as the publish.
	MessageID string
	// Contact, when set, is resolved in the claim's commit if none of its identifiers is in
	// the index yet (a new contact); otherwise the contact step resolves it as usual.
	Contact *ContactRequest
}

// ClaimFirst claims a first delivery in one commit (see the file comment) and falls back to
// Claim when the document is not as its creator left it. Its outcomes are Claim's.
func (s *Store) ClaimFirst(ctx context.Context, ev *event.Event, p LeasePolicy, fd FirstDelivery) (*Lease, error) {
	if fd.Version.IsZero() || p.MaxAttempts < 1 {
		return s.Claim(ctx, ev, p)
	}
	l, err := s.claimFirst(ctx, ev, p, fd)
	if errors.Is(err, errFastPathLost) && fd.Contact != nil {
		// A contact document exists (a known contact): claim alone, the contact step resolves.
		fd.Contact = nil
		l, err = s.claimFirst(ctx, ev, p, fd)
	}
	if errors.Is(err, errFastPathLost) {
		return s.Claim(ctx, ev, p)
	}
	return l, err
}

func (s *Store) claimFirst(ctx context.Context, ev *event.Event, p LeasePolicy, fd FirstDelivery) (*Lease, error) {
	docID := event.DocID(ev.IdempotencyKey)
	now := s.Now()
	// The document as its creator wrote it (the precondition guarantees it), claimed.
	doc := newEventDoc(ev, ev.Audit.ReceivedAt.UTC())
	l := &Lease{DocID: docID, Fence: 1, Attempt: 1, Relative: 1, Owner: p.Owner, ExpiresAt: now.Add(p.TTL),
		StartedAt: now, retention: p.Retention}
	doc.State, doc.Fence, doc.Attempts = StateProcessing, 1, 1
	doc.LeaseOwner, doc.LeaseExpiresAt, doc.FirstAttemptAt, doc.LastAttemptAt, doc.UpdatedAt = p.Owner, l.ExpiresAt, now, now, now
	doc.PublishedAt, doc.PublishMessageID = now, fd.MessageID
	updates := append(claimUpdates(&doc, now),
		firestore.Update{Path: "published_at", Value: now}, firestore.Update{Path: "publish_message_id", Value: fd.MessageID})
	b := s.batch()
	var plan *ContactPlan
	if req := fd.Contact; req != nil && req.Create && len(req.Identifiers) > 0 {
		res := contact.Resolve(req.Identifiers, req.Proposed)
		recID := req.CRM + ":" + req.KeyToken(res.Key)
		plan = newPlan(l, *req, res, recID, &RecordDoc{})
		for _, h := range res.Index {
			b.Create(s.identityRef(req.CRM, h), identityDoc{CRM: req.CRM, Kind: h.Kind, ContactKey: h.Key, Event: docID, CreatedAt: now})
		}
		b.Create(s.recordRef(recID), RecordDoc{CRM: req.CRM, ContactKey: res.Key, CreatedAt: now, UpdatedAt: now,
			Hold: &RecordHold{Event: docID, Fence: l.Fence, ExpiresAt: l.ExpiresAt}})
		doc.Contact = &plan.ContactResult
		updates = append(updates, firestore.Update{Path: "contact", Value: plan.ContactResult})
	}
	// The event's update goes last so that wrs[0] is the record's when there is one.
	b.Update(s.eventRef(docID), updates, firestore.LastUpdateTime(fd.Version))
	wrs, err := b.Commit(ctx)
	if lostPrecondition(err) {
		return nil, fmt.Errorf("claim %s: %w", docID, errFastPathLost)
	}
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", docID, classify(err))
	}
	l.version = wrs[len(wrs)-1].UpdateTime
	if plan != nil {
		plan.version = wrs[len(wrs)-2].UpdateTime
		l.plan = plan
	}
	l.Doc = doc
	return l, nil
}

// fencedCommit is fenced's single commit after ClaimFirst: update applied to the document as
// the claim wrote it, with that update time as precondition, att, and for a success the
// record document's stamps that CommitContact left to it. errFastPathLost when the document
// (or the record) changed since.
func (s *Store) fencedCommit(ctx context.Context, l *Lease, att *Attempt, outcome AttemptOutcome, update func(doc *EventDoc, now time.Time) []firestore.Update) error {
	now := s.Now()
	doc := l.Doc
	b := s.batch().Update(s.eventRef(l.DocID), append(update(&doc, now), firestore.Update{Path: fUpdatedAt, Value: now}),
		firestore.LastUpdateTime(l.version))
	if att != nil {
		b.Set(s.attemptRef(l.DocID, att.Number), l.finished(att, outcome, now))
	}
	p := l.plan
	settle := outcome == AttemptSucceeded && p != nil && p.withVerdict
	if settle {
		_, _, fields := contact.Merge(nil, p.values)
		b.Update(s.recordRef(p.recID), []firestore.Update{
			{Path: "fields", Value: fields}, {Path: "hold", Value: firestore.Delete}, {Path: "updated_at", Value: now},
		}, firestore.LastUpdateTime(p.version))
	}
	_, err := b.Commit(ctx)
	if lostPrecondition(err) {
		return errFastPathLost
	}
	if err != nil {
		return err
	}
	l.version = time.Time{} // the verdict is written; the lease is spent
	if settle {
		p.withVerdict = false
	}
	return nil
}
