// Package event defines the normalized lead event (schema v1), its idempotency key and the
// Firestore document id derived from it. It is the contract between ingest, processor and
// replayer: field names here are fixed by the design brief.
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/pii"
)

// SchemaVersion is the version of the normalized event this package writes.
const SchemaVersion = "1.0"

// Event types known to the pipeline. Sources may send others; they route by their defaults.
const (
	TypeLeadCreated  = "lead.created"
	TypeLeadUpdated  = "lead.updated"
	TypeLeadEnriched = "lead.enriched"
)

// Routing modes.
const (
	ModeUpsert     = "upsert"
	ModeUpdateOnly = "update_only"
)

// Event is the normalized event v1: the Pub/Sub message data and the "event" field of the
// Firestore event document.
type Event struct {
	SchemaVersion  string            `json:"schema_version" firestore:"schema_version"`
	EventID        string            `json:"event_id" firestore:"event_id"`
	EventType      string            `json:"event_type" firestore:"event_type"`
	Source         string            `json:"source" firestore:"source"`
	SourceEventID  string            `json:"source_event_id,omitempty" firestore:"source_event_id,omitempty"`
	OccurredAt     time.Time         `json:"occurred_at" firestore:"occurred_at"`
	IdempotencyKey string            `json:"idempotency_key" firestore:"idempotency_key"`
	Identity       Identity          `json:"identity" firestore:"identity"`
	Attributes     map[string]string `json:"attributes,omitempty" firestore:"attributes,omitempty"`
	Routing        Routing           `json:"routing" firestore:"routing"`
	Audit          Audit             `json:"audit" firestore:"audit"`
	MappingVersion string            `json:"mapping_version" firestore:"mapping_version"`
	CorrelationID  string            `json:"correlation_id" firestore:"correlation_id"`
	// Enrich marks a thin event (ids only, e.g. Meta Lead Ads) whose fields the processor
	// fetches from the source before the CRM write.
	Enrich *Enrichment `json:"enrich,omitempty" firestore:"enrich,omitempty"`
}

// Identity is who the lead is. At least one field must be set.
type Identity struct {
	ContactExternalID string `json:"contact_external_id,omitempty" firestore:"contact_external_id,omitempty"`
	Email             string `json:"email,omitempty" firestore:"email,omitempty"`
	PhoneE164         string `json:"phone_e164,omitempty" firestore:"phone_e164,omitempty"`
}

// Empty reports whether no identity field is set.
func (i Identity) Empty() bool {
	return i.ContactExternalID == "" && i.Email == "" && i.PhoneE164 == ""
}

// Routing says where and how the processor writes the event.
type Routing struct {
	CRM       string `json:"crm" firestore:"crm"`               // salesforce, hubspot, webhook
	Object    string `json:"object" firestore:"object"`         // e.g. Lead, contacts
	UpsertKey string `json:"upsert_key" firestore:"upsert_key"` // external id field / unique property
	Mode      string `json:"mode" firestore:"mode"`             // upsert or update_only
}

// Audit points at the stored copies of the event.
type Audit struct {
	ReceivedAt         time.Time `json:"received_at" firestore:"received_at"`
	RawEventRef        string    `json:"raw_event_ref" firestore:"raw_event_ref"`               // gs://bucket/object
	NormalizedEventRef string    `json:"normalized_event_ref" firestore:"normalized_event_ref"` // Firestore document path
}

// Enrichment describes how the processor completes a thin event.
type Enrichment struct {
	Provider string            `json:"provider" firestore:"provider"` // e.g. "meta_graph"
	Refs     map[string]string `json:"refs" firestore:"refs"`         // e.g. leadgen_id, form_id, page_id
}

// ContactKey is the value used as the Pub/Sub ordering key and as the CRM external id when the
// source gives none: the contact external id, else a keyed token (HMAC under the deployment's
// PII_HASH_KEY, see common/pii) of the email or phone. It never holds personal data in clear,
// and without the key a list of addresses cannot confirm one. Every service of a deployment
// must use the same hasher: ingest orders by this key and the processor upserts by it.
func (e *Event) ContactKey(h *pii.Hasher) string {
	id := e.Identity
	switch {
	case id.ContactExternalID != "":
		return e.Source + ":" + id.ContactExternalID
	case id.Email != "":
		return e.Source + ":email:" + h.Email(id.Email)
	case id.PhoneE164 != "":
		return e.Source + ":phone:" + h.Phone(id.PhoneE164)
	case e.Enrich != nil && e.Enrich.Refs["leadgen_id"] != "":
		return e.Source + ":lead:" + e.Enrich.Refs["leadgen_id"]
	default:
		return e.Source + ":key:" + shortHash(e.IdempotencyKey)
	}
}

// OrderingKey is the Pub/Sub ordering key: ContactKey, unless that is longer than Pub/Sub
// accepts (only an event Validate refuses, stored and dead-lettered as unusable, can have such
// a key); then a hash of the idempotency key, so the event is still published.
func (e *Event) OrderingKey(h *pii.Hasher) string {
	if k := e.ContactKey(h); len(k) <= MaxOrderingKey {
		return k
	}
	return "key:" + shortHash(e.IdempotencyKey)
}

// contactKeyLen is len(ContactKey) without computing a token (tokens are 64 hex digits).
func (e *Event) contactKeyLen() int {
	id := e.Identity
	switch {
	case id.ContactExternalID != "":
		return len(e.Source) + 1 + len(id.ContactExternalID)
	case id.Email != "", id.PhoneE164 != "":
		return len(e.Source) + len(":email:") + 64
	case e.Enrich != nil && e.Enrich.Refs["leadgen_id"] != "":
		return len(e.Source) + len(":lead:") + len(e.Enrich.Refs["leadgen_id"])
	default:
		return len(e.Source) + len(":key:") + 24
	}
}

// Validation errors. Each is permanent: retrying the same event cannot fix it.
var (
	ErrSchemaVersion = errors.New("unsupported schema_version")
	ErrMissingField  = errors.New("missing required field")
	ErrNoIdentity    = errors.New("event has no identity (contact_external_id, email or phone_e164)")
	ErrBadRouting    = errors.New("invalid routing")
	// ErrTooLong: an identifier is longer than Pub/Sub or the CRMs accept (see the Max
	// constants). Refused at intake, so an event can never be accepted and then stuck.
	ErrTooLong = errors.New("identifier too long")
)

// Bounds of identifiers, in bytes.
const (
	// MaxExternalID: CRM external id fields hold 255 characters (Salesforce External ID text
	// fields, HubSpot unique properties in practice).
	MaxExternalID = 255
	// MaxEmail: the longest valid address (RFC 5321 path limit).
	MaxEmail = 254
	// MaxPhone: E.164 is at most 15 digits and the +.
	MaxPhone = 16
	// MaxOrderingKey: Pub/Sub refuses ordering keys over 1 KB.
	MaxOrderingKey = 1024
)

// Validate checks the event against schema v1. A thin event marked for enrichment may lack
// an identity.
func (e *Event) Validate() error {
	if e.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%w %q (want %q)", ErrSchemaVersion, e.SchemaVersion, SchemaVersion)
	}
	for name, v := range map[string]string{
		"event_id": e.EventID, "event_type": e.EventType, "source": e.Source,
		"idempotency_key": e.IdempotencyKey,
	} {
		if v == "" {
			return fmt.Errorf("%w: %s", ErrMissingField, name)
		}
	}
	if e.OccurredAt.IsZero() {
		return fmt.Errorf("%w: occurred_at", ErrMissingField)
	}
	if e.Identity.Empty() && e.Enrich == nil {
		return ErrNoIdentity
	}
	for _, f := range []struct {
		name string
		v    string
		max  int
	}{
		{"identity.contact_external_id", e.Identity.ContactExternalID, MaxExternalID},
		{"identity.email", e.Identity.Email, MaxEmail},
		{"identity.phone_e164", e.Identity.PhoneE164, MaxPhone},
	} {
		if len(f.v) > f.max {
			return fmt.Errorf("%w: %s is %d bytes (max %d)", ErrTooLong, f.name, len(f.v), f.max)
		}
	}
	if n := e.contactKeyLen(); n > MaxOrderingKey {
		return fmt.Errorf("%w: contact key (ordering key) is %d bytes (max %d)", ErrTooLong, n, MaxOrderingKey)
	}
	switch e.Routing.Mode {
	case ModeUpsert, ModeUpdateOnly:
	default:
		return fmt.Errorf("%w: mode %q", ErrBadRouting, e.Routing.Mode)
	}
	if e.Routing.CRM == "" {
		return fmt.Errorf("%w: crm is empty", ErrBadRouting)
	}
	return nil
}

// IdempotencyKey is source|event_type|source_event_id.
func IdempotencyKey(source, eventType, sourceEventID string) string {
	return source + "|" + eventType + "|" + sourceEventID
}

// FallbackIdempotencyKey is used when the source gives no stable id:
// source|event_type| + hex HMAC-SHA256, under the deployment's PII_HASH_KEY (h), of the
// normalized identity fields and occurred_at (pii.KindIdentity). The key never contains
// personal data in clear, and a dictionary of emails or phones cannot confirm it.
func FallbackIdempotencyKey(h *pii.Hasher, source, eventType string, id Identity, occurredAt time.Time) string {
	var b strings.Builder
	for _, s := range []string{
		strings.TrimSpace(id.ContactExternalID),
		strings.ToLower(strings.TrimSpace(id.Email)),
		strings.TrimSpace(id.PhoneE164),
		occurredAt.UTC().Format(time.RFC3339Nano),
	} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return source + "|" + eventType + "|" + h.Token(pii.KindIdentity, b.String())
}

// DocID is the Firestore document id for an idempotency key: hex SHA-256 of the key, so ids
// are uniformly spread (no hot-spotting) and hold no personal data. It needs no key: an
// idempotency key is a source's own event id or a keyed token already, never personal data
// in clear, and tools (replayctl, the triage page) derive a document id from a key without
// holding the deployment's secret.
func DocID(idempotencyKey string) string {
	sum := sha256.Sum256([]byte(idempotencyKey))
	return hex.EncodeToString(sum[:])
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}
