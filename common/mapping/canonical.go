package mapping

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
)

// canonicalBody is the body of a canonical source: the normalized event's own fields.
type canonicalBody struct {
	SchemaVersion string `json:"schema_version"`
	EventType     string `json:"event_type"`
	OccurredAt    string `json:"occurred_at"`
	SourceEventID string `json:"source_event_id"`
	Identity      struct {
		ContactExternalID string `json:"contact_external_id"`
		Email             string `json:"email"`
		PhoneE164         string `json:"phone_e164"`
	} `json:"identity"`
	Attributes map[string]any `json:"attributes"`
}

// normalizeCanonical reads one event. The source event id defaults to the Standard Webhooks
// message id (webhook-id header), which is stable across the sender's retries.
func normalizeCanonical(s *Source, body []byte, h http.Header, _ time.Time) ([]event.Event, error) {
	var b canonicalBody
	if err := decodeObject(body, &b); err != nil {
		return nil, err
	}
	ev := event.Event{EventType: strings.TrimSpace(b.EventType), SourceEventID: strings.TrimSpace(b.SourceEventID)}
	if ev.SourceEventID == "" {
		ev.SourceEventID = strings.TrimSpace(h.Get("webhook-id"))
	}
	if b.SchemaVersion != "" && b.SchemaVersion != event.SchemaVersion {
		return nil, unusable(ErrSchemaMismatch, &ev, "schema_version is not %s", event.SchemaVersion)
	}
	if ev.EventType == "" {
		return nil, unusable(ErrSchemaMismatch, &ev, "event_type is missing")
	}
	if len(ev.EventType) > 64 || strings.ContainsAny(ev.EventType, "|/ ") {
		return nil, unusable(ErrSchemaMismatch, &ev, "event_type is not a type name")
	}
	if strings.Contains(ev.SourceEventID, "|") || len(ev.SourceEventID) > 256 {
		return nil, unusable(ErrSchemaMismatch, &ev, "source_event_id is not an id")
	}
	if b.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, b.OccurredAt)
		if err != nil {
			return nil, unusable(ErrSchemaMismatch, &ev, "occurred_at is not RFC 3339")
		}
		ev.OccurredAt = t
	}
	for target, v := range map[string]string{
		"identity.contact_external_id": b.Identity.ContactExternalID,
		"identity.email":               b.Identity.Email,
		"identity.phone_e164":          b.Identity.PhoneE164,
	} {
		if err := setTarget(&ev, target, v); err != nil {
			err.(*draftError).partial = &ev
			return nil, err
		}
	}
	attrs, err := scalarMap(b.Attributes)
	if err != nil {
		return nil, unusable(ErrSchemaMismatch, &ev, "attributes: %v", err)
	}
	ev.Attributes = attrs
	return []event.Event{ev}, nil
}

// decodeObject decodes a JSON object body into v: ErrUnparseable for invalid JSON,
// ErrSchemaMismatch for JSON of the wrong shape.
func decodeObject(body []byte, v any) error {
	if !json.Valid(body) {
		return unusable(ErrUnparseable, nil, "body is not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return unusable(ErrSchemaMismatch, nil, "%s", typeErrorDetail(err))
	}
	return nil
}

// typeErrorDetail describes a decode error by field, never by value.
func typeErrorDetail(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		if te.Field != "" {
			return "field " + te.Field + " has the wrong type (" + te.Value + ")"
		}
		return "body is a JSON " + te.Value + ", want an object"
	}
	return "body does not decode"
}

// scalarMap turns a JSON object of scalars into strings; nested values are errors.
func scalarMap(m map[string]any) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := scalarString(v)
		if !ok {
			return nil, &fieldError{field: k}
		}
		if v != nil {
			out[k] = s
		}
	}
	return out, nil
}

type fieldError struct{ field string }

func (e *fieldError) Error() string { return "field " + e.field + " is not a scalar" }

// scalarString renders a decoded JSON scalar (UseNumber) as a string.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	}
	return "", false
}
