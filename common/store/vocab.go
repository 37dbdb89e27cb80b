package store

// The pipeline's shared vocabulary: every value of an event's or a DLQ record's state, who
// quarantined an event, a CRM's health, an attempt's outcome. Each is a typed string stored as
// is in Firestore and shown as is by the API; this file is the one place they are defined.
// Failure classes are failure.Class (common/failure), decided where a response is seen; the
// store's failure_class fields carry that type.

// State is an event's processing state. Only the lifecycle operations of this package change
// it (see lifecycle.go):
//
//	received    --Claim-->            processing
//	processing  --Complete-->         succeeded
//	processing  --Fail-->             failed      --Claim--> processing (retry)
//	processing  --Park-->             parked      --Unpark--> received (drain, issue 12)
//	processing  --Quarantine-->       quarantined (by the processor; DLQ publish owed)
//	any live    --RecordDeadLetter--> quarantined (by Pub/Sub dead-lettering)
//	quarantined --Replay-->           received    (forced: also received/processing/failed/parked)
//	quarantined --Discard-->          discarded   (terminal; forced: also in-flight states)
//
// "Live" states are received, processing, failed and parked.
type State string

// Event states.
const (
	StateReceived   State = "received"
	StateProcessing State = "processing"
	StateSucceeded  State = "succeeded"
	StateFailed     State = "failed"
	// StateParked: acked and held while the CRM's circuit is open; nothing is charged to the
	// event's attempts, and Unpark puts it back in the outbox once the circuit closes.
	StateParked      State = "parked"
	StateQuarantined State = "quarantined"
	StateDiscarded   State = "discarded"
)

// States lists every event state, in lifecycle order.
var States = []State{StateReceived, StateProcessing, StateFailed, StateParked, StateSucceeded, StateQuarantined, StateDiscarded}

// Terminal reports whether no delivery can move the event on (only a replay can, from
// quarantined).
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateQuarantined || s == StateDiscarded
}

// ReasonCode names a specific, typed cause within a failure class, when there is one
// (events/{id}.reason, DLQ records' reason, the reason message attribute on leads-dlq).
type ReasonCode string

// Reason codes.
const (
	// ReasonNoMatch: an update-only event (lead.enriched by default) matched no CRM record;
	// update-only events never create, so it is quarantined (class permanent).
	ReasonNoMatch ReasonCode = "no_match"
)

// DLQStatus is a DLQ record's status.
//
//	open     --Replay-->  replayed --Resolve--> resolved (its event has since succeeded)
//	open     --Discard--> discarded
//	replayed --RecordDeadLetter (of the latest replay)--> open
type DLQStatus string

// DLQ record statuses.
const (
	DLQOpen      DLQStatus = "open"
	DLQReplayed  DLQStatus = "replayed"
	DLQDiscarded DLQStatus = "discarded"
	DLQResolved  DLQStatus = "resolved"
)

// Origin says who quarantined an event (its quarantined_by, the quarantined_by message
// attribute) and where a DLQ record's reason came from (its reason_source).
type Origin string

// Origins, strongest reason first.
const (
	// ByProcessor: the processor quarantined the event with a classified failure.
	ByProcessor Origin = "processor"
	// ByIngest: ingest quarantined a payload it could not use (valid signature, bad content).
	ByIngest Origin = "ingest"
	// ByPubSub: Pub/Sub dead-lettered the message after max_delivery_attempts.
	ByPubSub Origin = "pubsub"
	// ByEvent: the dead-letter message said nothing; the reason is the event document's.
	ByEvent Origin = "event"
)

// ResolvedBy is the status_changed_by of records the pipeline resolved on its own.
const ResolvedBy = "pipeline"

// CRMState is a CRM circuit breaker's state, written by the processor to crm_health/{crm} and
// read by the replayer's auto-replay.
type CRMState string

// CRM health states.
const (
	CRMClosed   CRMState = "closed"
	CRMOpen     CRMState = "open"
	CRMHalfOpen CRMState = "half_open"
)

// AttemptOutcome is how one processing attempt ended (events/{id}/attempts/{n}.outcome).
type AttemptOutcome string

// Attempt outcomes.
const (
	AttemptSucceeded   AttemptOutcome = "succeeded"
	AttemptFailed      AttemptOutcome = "failed"
	AttemptParked      AttemptOutcome = "parked"
	AttemptQuarantined AttemptOutcome = "quarantined"
	// AttemptSuperseded: the attempt's verdict was refused because a newer lease, a replay or
	// a discard moved the event on (its fence changed).
	AttemptSuperseded AttemptOutcome = "superseded"
)
