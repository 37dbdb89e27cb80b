package views

import (
	"time"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/store"
)

// EventView is an event document without personal data: where the lead is and what happened
// to it. The normalized event itself (identity, attributes) is only shown with the raw
// permission.
type EventView struct {
	ID             string        `json:"id"`
	IdempotencyKey string        `json:"idempotency_key"`
	EventID        string        `json:"event_id"`
	Source         string        `json:"source"`
	EventType      string        `json:"event_type"`
	State          string        `json:"state"`
	MappingVersion string        `json:"mapping_version,omitempty"`
	Routing        event.Routing `json:"routing"`
	RawEventRef    string        `json:"raw_event_ref,omitempty"`
	Attempts       int           `json:"attempts"`
	AttemptsBase   int           `json:"attempts_base,omitempty"`
	ReplayCount    int           `json:"replay_count,omitempty"`
	LastReplayID   string        `json:"last_replay_id,omitempty"`
	CRMRecordID    string        `json:"crm_record_id,omitempty"`
	CRMStatusCode  int           `json:"crm_status_code,omitempty"`
	FailureClass   string        `json:"failure_class,omitempty"`
	ErrorMessage   string        `json:"error_message,omitempty"`
	QuarantinedBy  string        `json:"quarantined_by,omitempty"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	PublishedAt    time.Time     `json:"published_at,omitzero"`
	CompletedAt    time.Time     `json:"completed_at,omitzero"`
	QuarantinedAt  time.Time     `json:"quarantined_at,omitzero"`
}

// NewEventView summarizes an event document.
func NewEventView(d *store.EventDoc) *EventView {
	return &EventView{
		ID: d.DocID, IdempotencyKey: d.IdempotencyKey, EventID: d.EventID, Source: d.Source,
		EventType: d.EventType, State: string(d.State), MappingVersion: d.MappingVersion,
		Routing: d.Event.Routing, RawEventRef: first(d.RawRef, d.Event.Audit.RawEventRef),
		Attempts: d.Attempts, AttemptsBase: d.AttemptsBase, ReplayCount: d.ReplayCount,
		LastReplayID: d.LastReplayID, CRMRecordID: d.CRMRecordID, CRMStatusCode: d.CRMStatusCode,
		FailureClass: string(d.FailureClass), ErrorMessage: d.ErrorMessage, QuarantinedBy: string(d.QuarantinedBy),
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, PublishedAt: d.PublishedAt,
		CompletedAt: d.CompletedAt, QuarantinedAt: d.QuarantinedAt,
	}
}

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Detail is GET /v1/dlq/{id}: the record, the event's state and attempt history, and with the
// raw permission and ?include=raw the normalized event and the raw payload.
type Detail struct {
	Record   *store.DLQRecord `json:"record"`
	Event    *EventView       `json:"event,omitempty"`
	Attempts []store.Attempt  `json:"attempts"`
	// Normalized and Raw are present only with ?include=raw (and the permission).
	Normalized *event.Event `json:"normalized,omitempty"`
	Raw        *archive.Raw `json:"raw,omitempty"`
	RawError   string       `json:"raw_error,omitempty"`
}

// Where is GET /v1/events/{key}: where a lead is.
type Where struct {
	Event    *EventView       `json:"event"`
	Attempts []store.Attempt  `json:"attempts"`
	DLQ      *store.DLQRecord `json:"dlq,omitempty"`
}
