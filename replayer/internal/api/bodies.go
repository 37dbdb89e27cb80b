package api

import (
	"github.com/leadpipe/leadpipe/common/store"
)

// ListResponse is GET /v1/dlq.
type ListResponse struct {
	Records       []*store.DLQRecord `json:"records"`
	NextPageToken string             `json:"next_page_token,omitempty"`
}

// AuditResponse is GET /v1/audit.
type AuditResponse struct {
	Entries       []*store.AuditEntry `json:"entries"`
	NextPageToken string              `json:"next_page_token,omitempty"`
}

// ActionRequest is the body of :replay and :discard.
type ActionRequest struct {
	Reason      string `json:"reason"`
	Renormalize bool   `json:"renormalize,omitempty"`
	// Force replays an event that is not quarantined but in flight, or discards one.
	Force bool `json:"force,omitempty"`
}

// BulkRequest is the body of POST /v1/dlq:replay.
type BulkRequest struct {
	Filter      store.DLQFilter `json:"filter"`
	Reason      string          `json:"reason"`
	DryRun      bool            `json:"dry_run"`
	Max         int             `json:"max"`
	Renormalize bool            `json:"renormalize,omitempty"`
}
