// Package replay republishes dead-lettered events to the leads topic with their original
// idempotency key and a new replay_id, and discards them, each in one Firestore transaction
// that moves the event's state, the DLQ record's status and appends the audit entry together.
package replay

import (
	"errors"

	"github.com/leadpipe/leadpipe/common/store"
)

// Outcomes of a replay or discard request.
const (
	// OutcomeReplayed: state moved quarantined -> received and the event was published.
	OutcomeReplayed = "replayed"
	// OutcomeQueued: state moved, but the publish failed; the ingest outbox sweep publishes it.
	OutcomeQueued = "queued"
	// OutcomeAlreadySucceeded: the event is already in the CRM; nothing was done.
	OutcomeAlreadySucceeded = "already_succeeded"
	// OutcomeInFlight: the event is being delivered (after an earlier replay, or still in the
	// pipeline); nothing was done unless forced.
	OutcomeInFlight = "in_flight"
	// OutcomeWouldReplay: a dry run found the event replayable; nothing was done.
	OutcomeWouldReplay = "would_replay"
	// OutcomeDiscarded: the event and its record were discarded.
	OutcomeDiscarded = "discarded"
	// OutcomeAlreadyDiscarded: nothing to do.
	OutcomeAlreadyDiscarded = "already_discarded"
)

// Sentinel errors; the API maps them to statuses.
var (
	ErrNotFound       = errors.New("no such dlq record")
	ErrDiscarded      = errors.New("event was discarded")
	ErrNoEvent        = errors.New("no event document to replay (the payload never became an event)")
	ErrReasonRequired = errors.New("a reason is required")
	ErrSucceeded      = errors.New("event already succeeded")
	ErrInFlight       = errors.New("event is being delivered")
	ErrKeyChanged     = errors.New("renormalized event has a different idempotency key")
	ErrRenormalize    = errors.New("cannot renormalize")
	// ErrRawMissing comes wrapped with ErrRenormalize: the raw payload to rebuild from is not
	// in the archive (or the event never had one).
	ErrRawMissing = errors.New("raw payload not found in the archive")
)

// decideReplay is the replay policy over the record and the event document (nil when
// absent). It returns the no-op outcome, or "" when the event is to be replayed.
//
//	quarantined                 -> replay
//	succeeded                   -> already_succeeded
//	discarded (event or record) -> ErrDiscarded
//	received/processing/failed  -> in_flight, or replay when forced
func decideReplay(rec *store.DLQRecord, doc *store.EventDoc, force bool) (string, error) {
	if rec.Status == store.DLQDiscarded || (doc != nil && doc.State == store.StateDiscarded) {
		return "", ErrDiscarded
	}
	if doc == nil {
		return "", ErrNoEvent
	}
	switch doc.State {
	case store.StateSucceeded:
		return OutcomeAlreadySucceeded, nil
	case store.StateQuarantined:
		return "", nil
	default:
		if force {
			return "", nil
		}
		return OutcomeInFlight, nil
	}
}

// decideDiscard is the discard policy. It returns the no-op outcome, or "" to discard.
//
//	record already discarded        -> already_discarded
//	succeeded                       -> ErrSucceeded
//	received/processing (in flight) -> ErrInFlight unless forced
//	quarantined, failed, no event   -> discard
func decideDiscard(rec *store.DLQRecord, doc *store.EventDoc, force bool) (string, error) {
	if rec.Status == store.DLQDiscarded {
		return OutcomeAlreadyDiscarded, nil
	}
	if doc == nil {
		return "", nil
	}
	switch doc.State {
	case store.StateSucceeded:
		return "", ErrSucceeded
	case store.StateReceived, store.StateProcessing:
		if !force {
			return "", ErrInFlight
		}
	}
	return "", nil
}
