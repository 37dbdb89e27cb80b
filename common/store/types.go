package store

import (
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
)

// EventDoc is the Firestore event document: the normalized event plus its idempotency record,
// outbox state, processing lease and result.
type EventDoc struct {
	DocID string `firestore:"-"`
	// UpdateTime is the document's update time as read; informational only (Google's emulator cuts
	// it to milliseconds, so nothing in the store relies on it for ordering or preconditions).
	UpdateTime time.Time `firestore:"-"`

	IdempotencyKey string      `firestore:"idempotency_key"`
	EventID        string      `firestore:"event_id"`
	Source         string      `firestore:"source"`
	EventType      string      `firestore:"event_type"`
	CorrelationID  string      `firestore:"correlation_id,omitempty"`
	MappingVersion string      `firestore:"mapping_version,omitempty"`
	Event          event.Event `firestore:"event"`
	RawRef         string      `firestore:"raw_ref,omitempty"`
	State          State       `firestore:"state"`
	CreatedAt      time.Time   `firestore:"created_at"`
	UpdatedAt      time.Time   `firestore:"updated_at"`

	// Outbox: OutboxDueAt is set while the event is not yet published and removed when it is.
	OutboxDueAt      *time.Time `firestore:"outbox_due_at,omitempty"`
	PublishedAt      time.Time  `firestore:"published_at,omitempty"`
	PublishMessageID string     `firestore:"publish_message_id,omitempty"`

	// Processing: the lease guards "processing"; Fence increases with every claim; Attempts is
	// the processor's own, authoritative attempt counter.
	LeaseOwner     string    `firestore:"lease_owner,omitempty"`
	LeaseExpiresAt time.Time `firestore:"lease_expires_at,omitempty"`
	Fence          int64     `firestore:"fence"`
	Attempts       int       `firestore:"attempts"`
	// AttemptsBase is Attempts at the last replay: the processor's quarantine threshold applies
	// to Attempts-AttemptsBase, while attempt numbers (and history) keep growing.
	AttemptsBase   int       `firestore:"attempts_base,omitempty"`
	FirstAttemptAt time.Time `firestore:"first_attempt_at,omitempty"`
	LastAttemptAt  time.Time `firestore:"last_attempt_at,omitempty"`

	// Result of the successful CRM write.
	CRMRecordID   string    `firestore:"crm_record_id,omitempty"`
	CRMRequestID  string    `firestore:"crm_request_id,omitempty"`
	CRMStatusCode int       `firestore:"crm_status_code,omitempty"`
	CompletedAt   time.Time `firestore:"completed_at,omitempty"`
	DurationMS    int64     `firestore:"duration_ms,omitempty"`
	ResultFence   int64     `firestore:"result_fence,omitempty"`

	// Failure: the last classified failure; set with state failed or quarantined.
	FailureClass failure.Class `firestore:"failure_class,omitempty"`
	ErrorMessage string        `firestore:"error_message,omitempty"`
	// Reason is the typed cause of the quarantine, when there is one (e.g. no_match).
	Reason        ReasonCode `firestore:"reason,omitempty"`
	QuarantinedAt time.Time  `firestore:"quarantined_at,omitempty"`
	QuarantinedBy Origin     `firestore:"quarantined_by,omitempty"`
	// DLQPublishedAt is when the processor's quarantine message reached leads-dlq; zero on a
	// quarantined event means the publish is still owed (the next delivery re-publishes).
	DLQPublishedAt time.Time `firestore:"dlq_published_at,omitempty"`

	// Contact is the contact resolution of the event's latest attempt: canonical key, record
	// document, fields sent and withheld, identity conflicts (see contact.go).
	Contact *ContactResult `firestore:"contact,omitempty"`

	// ParkedAt is when the event was parked (state parked) because its CRM's circuit was open.
	ParkedAt time.Time `firestore:"parked_at,omitempty"`

	// ExpireAt is when Firestore's TTL policy may delete the document (set once it succeeded).
	ExpireAt time.Time `firestore:"expire_at,omitempty"`

	// Replays.
	ReplayCount  int    `firestore:"replay_count,omitempty"`
	LastReplayID string `firestore:"last_replay_id,omitempty"`
}

// Attempt is one processing attempt, kept as an audit entry under the event.
type Attempt struct {
	Number     int            `firestore:"number" json:"number"`
	Fence      int64          `firestore:"fence" json:"fence"`
	Owner      string         `firestore:"owner" json:"owner"`
	MessageID  string         `firestore:"message_id,omitempty" json:"message_id,omitempty"`
	Delivery   int            `firestore:"delivery_attempt,omitempty" json:"delivery_attempt,omitempty"`
	ReplayID   string         `firestore:"replay_id,omitempty" json:"replay_id,omitempty"`
	Outcome    AttemptOutcome `firestore:"outcome" json:"outcome"`
	Class      failure.Class  `firestore:"class,omitempty" json:"class,omitempty"`
	Code       int            `firestore:"code,omitempty" json:"code,omitempty"`
	Message    string         `firestore:"message,omitempty" json:"message,omitempty"`
	Tries      int            `firestore:"tries,omitempty" json:"tries,omitempty"` // CRM calls made within the attempt
	StartedAt  time.Time      `firestore:"started_at" json:"started_at"`
	FinishedAt time.Time      `firestore:"finished_at" json:"finished_at"`
	// ExpireAt is when Firestore's TTL policy may delete the entry; zero keeps it.
	ExpireAt time.Time `firestore:"expire_at,omitempty" json:"-"`
}

// DLQRecord is one dead-lettered event, however many times it was dead-lettered.
type DLQRecord struct {
	ID              string        `firestore:"-" json:"id"` // = event doc id
	IdempotencyKey  string        `firestore:"idempotency_key" json:"idempotency_key"`
	EventID         string        `firestore:"event_id" json:"event_id"`
	Source          string        `firestore:"source" json:"source"`
	EventType       string        `firestore:"event_type" json:"event_type"`
	FirstReceivedAt time.Time     `firestore:"first_received_at" json:"first_received_at"`
	LastAttemptAt   time.Time     `firestore:"last_attempt_at,omitempty" json:"last_attempt_at,omitzero"`
	AttemptCount    int           `firestore:"attempt_count" json:"attempt_count"`
	FailureClass    failure.Class `firestore:"failure_class" json:"failure_class"`
	ErrorMessage    string        `firestore:"error_message" json:"error_message"`
	// Reason is the typed cause, when there is one (e.g. no_match).
	Reason ReasonCode `firestore:"reason,omitempty" json:"reason,omitempty"`
	// ReasonSource says where the reason came from.
	ReasonSource Origin `firestore:"reason_source" json:"reason_source"`
	// DeadLetterCount counts how many dead-letter messages arrived for this event.
	DeadLetterCount    int       `firestore:"dead_letter_count" json:"dead_letter_count"`
	LastDeadLetteredAt time.Time `firestore:"last_dead_lettered_at" json:"last_dead_lettered_at"`
	NormalizedEventRef string    `firestore:"normalized_event_ref" json:"normalized_event_ref"`
	RawEventRef        string    `firestore:"raw_event_ref,omitempty" json:"raw_event_ref,omitempty"`
	Status             DLQStatus `firestore:"status" json:"status"`
	StatusChangedAt    time.Time `firestore:"status_changed_at,omitempty" json:"status_changed_at,omitzero"`
	StatusChangedBy    string    `firestore:"status_changed_by,omitempty" json:"status_changed_by,omitempty"`
	CreatedAt          time.Time `firestore:"created_at" json:"created_at"`
	UpdatedAt          time.Time `firestore:"updated_at" json:"updated_at"`
	// Pending is an operator action between its two steps (the event's change in the events
	// database, then the record's and the audit entry in the operations database); see
	// operator.go. Nil otherwise.
	Pending *PendingAction `firestore:"pending,omitempty" json:"pending,omitempty"`
}

// PendingAction is the intent of an operator action, written on its DLQ record before the
// event changes, so that an action interrupted between the two databases is completed (or
// rolled back) with its actor and reason by the next one to touch the record.
type PendingAction struct {
	// ID names this intent (random): step 3 and the recovery act only on the intent they read.
	// (Not the time: Google's emulator stores timestamps coarser than the clock.)
	ID       string `firestore:"id" json:"id"`
	Verb     string `firestore:"verb" json:"verb"` // replay, discard
	Actor    string `firestore:"actor" json:"actor"`
	Reason   string `firestore:"reason" json:"reason"`
	JobID    string `firestore:"job_id,omitempty" json:"job_id,omitempty"`
	Outcome  string `firestore:"outcome,omitempty" json:"outcome,omitempty"`
	ReplayID string `firestore:"replay_id,omitempty" json:"replay_id,omitempty"`
	// Fence is the event's fence when the action was decided (-1: no event document); the
	// event step applies only at that fence and leaves it at Fence+1.
	Fence int64     `firestore:"fence" json:"fence"`
	At    time.Time `firestore:"at" json:"at"`
}

// AuditEntry records one operator (or auto-replay) action.
type AuditEntry struct {
	ID       string    `firestore:"-" json:"id"`
	At       time.Time `firestore:"at" json:"at"`
	Actor    string    `firestore:"actor" json:"actor"`
	Action   string    `firestore:"action" json:"action"` // replay, discard, bulk_replay, ...
	Reason   string    `firestore:"reason" json:"reason"`
	Targets  []string  `firestore:"targets" json:"targets"` // DLQ record / event doc ids touched
	ReplayID string    `firestore:"replay_id,omitempty" json:"replay_id,omitempty"`
	JobID    string    `firestore:"job_id,omitempty" json:"job_id,omitempty"`
	Detail   string    `firestore:"detail,omitempty" json:"detail,omitempty"`
	Outcome  string    `firestore:"outcome,omitempty" json:"outcome,omitempty"`
}

// CRMHealth is the last known state of one CRM's circuit breaker.
type CRMHealth struct {
	CRM           string    `firestore:"crm" json:"crm"`
	State         CRMState  `firestore:"state" json:"state"`
	ChangedAt     time.Time `firestore:"changed_at" json:"changed_at"`
	LastSuccessAt time.Time `firestore:"last_success_at,omitempty" json:"last_success_at,omitzero"`
	LastFailureAt time.Time `firestore:"last_failure_at,omitempty" json:"last_failure_at,omitzero"`
}
