package mapping

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
)

// typeformWebhook is a Typeform form_response webhook.
type typeformWebhook struct {
	EventID      string `json:"event_id"`
	EventType    string `json:"event_type"`
	FormResponse struct {
		FormID      string         `json:"form_id"`
		Token       string         `json:"token"`
		SubmittedAt string         `json:"submitted_at"`
		Hidden      map[string]any `json:"hidden"`
		Answers     []struct {
			Type        string      `json:"type"`
			Text        *string     `json:"text"`
			Email       *string     `json:"email"`
			PhoneNumber *string     `json:"phone_number"`
			Number      json.Number `json:"number"`
			Boolean     *bool       `json:"boolean"`
			Date        *string     `json:"date"`
			URL         *string     `json:"url"`
			Choice      *struct {
				Label string `json:"label"`
			} `json:"choice"`
			Choices *struct {
				Labels []string `json:"labels"`
			} `json:"choices"`
			Field struct {
				Ref string `json:"ref"`
			} `json:"field"`
		} `json:"answers"`
	} `json:"form_response"`
}

// normalizeTypeform maps answers to event fields by field ref (the source's fields), and hidden
// fields (UTM parameters and the like) to attributes of the same name. The response token is
// the source event id: Typeform resends the same token on retries.
func normalizeTypeform(s *Source, body []byte, _ http.Header, _ time.Time) ([]event.Event, error) {
	var w typeformWebhook
	if err := decodeObject(body, &w); err != nil {
		return nil, err
	}
	if w.EventType != "form_response" {
		return nil, unusable(ErrSchemaMismatch, nil, "event_type is not form_response")
	}
	r := w.FormResponse
	ev := event.Event{SourceEventID: strings.TrimSpace(r.Token)}
	if ev.SourceEventID == "" {
		ev.SourceEventID = strings.TrimSpace(w.EventID)
	}
	if strings.Contains(ev.SourceEventID, "|") || len(ev.SourceEventID) > 256 {
		return nil, unusable(ErrSchemaMismatch, nil, "token is not an id")
	}
	if r.SubmittedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, r.SubmittedAt)
		if err != nil {
			return nil, unusable(ErrSchemaMismatch, &ev, "submitted_at is not RFC 3339")
		}
		ev.OccurredAt = t
	}
	hidden, err := scalarMap(r.Hidden)
	if err != nil {
		return nil, unusable(ErrSchemaMismatch, &ev, "hidden: %v", err)
	}
	ev.Attributes = hidden
	for _, a := range r.Answers {
		target, ok := s.Fields[a.Field.Ref]
		if !ok {
			continue
		}
		var v string
		switch {
		case a.Text != nil:
			v = *a.Text
		case a.Email != nil:
			v = *a.Email
		case a.PhoneNumber != nil:
			v = *a.PhoneNumber
		case a.Number != "":
			v = a.Number.String()
		case a.Boolean != nil:
			v = "false"
			if *a.Boolean {
				v = "true"
			}
		case a.Date != nil:
			v = *a.Date
		case a.URL != nil:
			v = *a.URL
		case a.Choice != nil:
			v = a.Choice.Label
		case a.Choices != nil:
			v = strings.Join(a.Choices.Labels, ", ")
		}
		if err := setTarget(&ev, target, v); err != nil {
			err.(*draftError).partial = &ev
			return nil, err
		}
	}
	return []event.Event{ev}, nil
}
