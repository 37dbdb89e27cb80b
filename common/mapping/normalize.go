package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
)

// Reasons a payload with a valid signature cannot be used. They are permanent: the same body
// always fails the same way, so ingest quarantines it instead of asking for a retry.
var (
	// ErrUnparseable: the body is not valid JSON.
	ErrUnparseable = errors.New("unparseable payload")
	// ErrNoIdentity: the payload names no contact (no external id, valid email or phone).
	ErrNoIdentity = errors.New("payload has no identity")
	// ErrSchemaMismatch: the body is JSON but not in the source's format.
	ErrSchemaMismatch = errors.New("payload does not match the source schema")
	// ErrNoHasher: the sources have no keyed hasher (Sources.UseHasher): a configuration
	// error, not a property of the payload.
	ErrNoHasher = errors.New("no PII hash key configured")
)

// UnusableError is returned by Normalize for a payload that cannot be used. Reason is one of
// ErrUnparseable, ErrNoIdentity or ErrSchemaMismatch (errors.Is works on the UnusableError);
// the error also reads as failure.Permanent.
type UnusableError struct {
	Reason error
	// Detail says what is wrong, without personal data (field names, never values).
	Detail string
	// Partial is what could be normalized, so the event can be stored and quarantined: it
	// always has schema_version, event_id, source, event_type, idempotency_key,
	// mapping_version, routing and audit.received_at. Its key is the normal one when the
	// payload gave an event type and a source event id, else source|unknown|sha256(body).
	Partial *event.Event
}

func (e *UnusableError) Error() string {
	if e.Detail == "" {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Detail
}

// Unwrap exposes the reason and the permanent failure class.
func (e *UnusableError) Unwrap() []error {
	return []error{e.Reason, &failure.Error{Class: failure.Permanent, Message: e.Code()}}
}

// Code is the short machine-readable reason: unparseable, no_identity or schema_mismatch.
func (e *UnusableError) Code() string {
	switch {
	case errors.Is(e.Reason, ErrUnparseable):
		return "unparseable"
	case errors.Is(e.Reason, ErrNoIdentity):
		return "no_identity"
	default:
		return "schema_mismatch"
	}
}

// normalizer turns one body into draft events: EventType, SourceEventID, OccurredAt, Identity,
// Attributes and Enrich set; everything else is filled in by finish. It returns a *draftError
// for unusable payloads.
type normalizer func(s *Source, body []byte, h http.Header, receivedAt time.Time) ([]event.Event, error)

// draftError is a normalizer's unusable-payload error, completed into an UnusableError by
// Normalize.
type draftError struct {
	reason  error
	detail  string
	partial *event.Event // may be nil
}

func (e *draftError) Error() string { return e.reason.Error() + ": " + e.detail }

func unusable(reason error, partial *event.Event, format string, args ...any) error {
	return &draftError{reason: reason, detail: fmt.Sprintf(format, args...), partial: partial}
}

// Normalize maps one delivery's body to its normalized events (several for a Meta POST with
// several leads). Every returned event passes event.Validate and has everything but
// correlation_id, audit.raw_event_ref and audit.normalized_event_ref, which belong to the
// caller. The event id is derived from the idempotency key, so re-normalizing gives the same
// id. A payload with any unusable item returns that item's *UnusableError and no events; ingest
// uses NormalizeItems, which keeps the usable items of such a payload.
func (s *Source) Normalize(body []byte, headers http.Header, receivedAt time.Time) ([]event.Event, error) {
	items, err := s.NormalizeItems(body, headers, receivedAt)
	if err != nil {
		return nil, err
	}
	out := make([]event.Event, 0, len(items))
	for _, it := range items {
		if it.Unusable != nil {
			return nil, it.Unusable
		}
		out = append(out, *it.Event)
	}
	return out, nil
}

// Item is one item of a delivery: a usable Event, or an Unusable one (its Partial is the
// event to store and quarantine).
type Item struct {
	Event    *event.Event
	Unusable *UnusableError
}

// NormalizeItems maps one delivery's body to its items. A payload that cannot be used as a
// whole (not JSON, not the source's format, no usable item at all) returns a *UnusableError
// and no items. A payload of several items (a Meta POST with several changes) where only some
// are unusable returns every item: the usable ones as events, each unusable one as an
// UnusableError whose Partial is keyed by its own source event id when it has one, else by the
// delivery and the item's index (ItemKey), so a retried delivery finds the same keys.
func (s *Source) NormalizeItems(body []byte, headers http.Header, receivedAt time.Time) ([]Item, error) {
	if s.hasher == nil {
		return nil, fmt.Errorf("source %s: %w", s.Name, ErrNoHasher)
	}
	receivedAt = receivedAt.UTC()
	drafts, err := s.normalize(s, body, headers, receivedAt)
	var bad itemErrors
	if errors.As(err, &bad) {
		err = nil
	}
	if err != nil {
		var de *draftError
		if !errors.As(err, &de) {
			de = &draftError{reason: ErrSchemaMismatch, detail: err.Error()}
		}
		return nil, s.unusableError(de, body, receivedAt)
	}
	if len(drafts) == 0 {
		return nil, s.unusableError(&draftError{reason: ErrSchemaMismatch, detail: "no events in payload"}, body, receivedAt)
	}
	items := make([]Item, len(drafts))
	usable := 0
	var firstBad *draftError
	for i := range drafts {
		de := bad[i]
		if de == nil {
			ev, e := s.check(drafts[i], receivedAt)
			if e == nil {
				items[i].Event = ev
				usable++
				continue
			}
			de = e
		}
		if firstBad == nil {
			firstBad = de
		}
		ue := s.unusableError(de, body, receivedAt)
		if de.partial == nil || de.partial.SourceEventID == "" || de.partial.EventType == "" {
			ue.Partial.IdempotencyKey = ItemKey(s.Name, body, i)
			ue.Partial.EventID = EventID(ue.Partial.IdempotencyKey)
		}
		items[i].Unusable = ue
	}
	if usable == 0 {
		// Nothing to keep: the delivery is quarantined whole, as one unusable payload.
		return nil, s.unusableError(firstBad, body, receivedAt)
	}
	return items, nil
}

// check completes and validates one draft.
func (s *Source) check(ev event.Event, receivedAt time.Time) (*event.Event, *draftError) {
	if ev.OccurredAt.IsZero() {
		if ev.SourceEventID == "" {
			// The fallback key hashes occurred_at: a receive time would change on every retry.
			return nil, &draftError{reason: ErrSchemaMismatch, detail: "no occurred_at and no source event id", partial: &ev}
		}
		ev.OccurredAt = receivedAt
	}
	s.complete(&ev, receivedAt)
	if ev.Identity.Empty() && ev.Enrich == nil {
		return nil, &draftError{reason: ErrNoIdentity, detail: "no contact_external_id, email or phone", partial: &ev}
	}
	if err := ev.Validate(); err != nil {
		return nil, &draftError{reason: ErrSchemaMismatch, detail: err.Error(), partial: &ev}
	}
	return &ev, nil
}

// maxSourceEventID bounds source event ids (they are parts of keys and ordering keys).
const maxSourceEventID = 256

// itemErrors is what a normalizer returns, next to its drafts, when some items of a payload
// of several are unusable: drafts[i] is a placeholder for each index i it holds.
type itemErrors map[int]*draftError

func (e itemErrors) Error() string { return fmt.Sprintf("%d unusable items", len(e)) }

// ItemKey is the idempotency key of item index of a delivery that gave it no usable id:
// source|unknown| hex SHA-256 of the body, "." and the index.
func ItemKey(source string, body []byte, index int) string {
	return UnknownKey(source, body) + "." + strconv.Itoa(index)
}

// complete fills the fields every event of the source gets.
func (s *Source) complete(ev *event.Event, receivedAt time.Time) {
	ev.SchemaVersion = event.SchemaVersion
	ev.Source = s.Name
	if ev.EventType == "" {
		ev.EventType = s.EventType
	}
	ev.OccurredAt = ev.OccurredAt.UTC()
	if ev.SourceEventID != "" {
		ev.IdempotencyKey = event.IdempotencyKey(s.Name, ev.EventType, ev.SourceEventID)
	} else {
		ev.IdempotencyKey = event.FallbackIdempotencyKey(s.hasher, s.Name, ev.EventType, ev.Identity, ev.OccurredAt)
	}
	ev.EventID = EventID(ev.IdempotencyKey)
	ev.Routing = s.Routing.For(ev.EventType)
	ev.MappingVersion = s.MappingVersion
	ev.Audit.ReceivedAt = receivedAt
}

func (s *Source) unusableError(de *draftError, body []byte, receivedAt time.Time) *UnusableError {
	var p event.Event
	if de.partial != nil {
		p = *de.partial
	}
	keyed := p.SourceEventID != "" && p.EventType != ""
	s.complete(&p, receivedAt)
	if !keyed {
		p.EventType = "unknown"
		p.IdempotencyKey = UnknownKey(s.Name, body)
		p.EventID = EventID(p.IdempotencyKey)
	}
	return &UnusableError{Reason: de.reason, Detail: de.detail, Partial: &p}
}

// UnknownKey is the idempotency key of a payload that gave no usable id: source|unknown|
// hex SHA-256 of the body, so a retried unusable delivery is recognised.
func UnknownKey(source string, body []byte) string {
	sum := sha256.Sum256(body)
	return source + "|unknown|" + hex.EncodeToString(sum[:])
}

// eventIDSpace namespaces event ids (UUID v5 of the idempotency key).
var eventIDSpace = uuid.MustParse("5f1d7c52-3a8e-4d0b-9a61-6c2e0f4b8d17")

// EventID is the event id for an idempotency key: a name-based UUID, stable across retries and
// re-normalization, holding no personal data.
func EventID(idempotencyKey string) string {
	return uuid.NewSHA1(eventIDSpace, []byte(idempotencyKey)).String()
}

// normalizeEmail lowercases and trims; ok is false when it is not an address.
func normalizeEmail(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", true
	}
	local, domain, found := strings.Cut(s, "@")
	if !found || local == "" || domain == "" || strings.ContainsAny(s, " \t\r\n,;<>") || strings.Contains(domain, "@") {
		return "", false
	}
	return s, true
}

// normalizePhone reduces a phone number with a country code (+ or 00) to E.164; ok is false
// when it has none or is not 8..15 digits.
func normalizePhone(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", true
	}
	var b strings.Builder
	b.WriteByte('+')
	switch {
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	case strings.HasPrefix(s, "00"):
		s = s[2:]
	default:
		return "", false
	}
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
			digits++
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", false
		}
	}
	if digits < 8 || digits > 15 || s[0] == '0' {
		return "", false
	}
	return b.String(), true
}

// setTarget writes a mapped value into the draft. Targets are checked when the sources file
// is loaded.
func setTarget(ev *event.Event, target, value string) error {
	switch target {
	case "event_type":
		ev.EventType = value
	case "source_event_id":
		ev.SourceEventID = value
	case "occurred_at":
		t, err := parseTime(value)
		if err != nil {
			return unusable(ErrSchemaMismatch, nil, "occurred_at is not a time")
		}
		ev.OccurredAt = t
	case "identity.contact_external_id":
		ev.Identity.ContactExternalID = strings.TrimSpace(value)
	case "identity.email":
		v, ok := normalizeEmail(value)
		if !ok {
			return unusable(ErrSchemaMismatch, nil, "email is not an address")
		}
		ev.Identity.Email = v
	case "identity.phone_e164":
		v, ok := normalizePhone(value)
		if !ok {
			return unusable(ErrSchemaMismatch, nil, "phone is not in international format")
		}
		ev.Identity.PhoneE164 = v
	default:
		name, ok := strings.CutPrefix(target, "attributes.")
		if !ok {
			return unusable(ErrSchemaMismatch, nil, "unknown target")
		}
		if ev.Attributes == nil {
			ev.Attributes = map[string]string{}
		}
		ev.Attributes[name] = value
	}
	return nil
}

// parseTime accepts RFC 3339 and Unix seconds.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	var secs int64
	if _, err := fmt.Sscanf(s, "%d", &secs); err == nil && fmt.Sprint(secs) == s && secs > 0 {
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Time{}, errors.New("not RFC 3339 or Unix seconds")
}
