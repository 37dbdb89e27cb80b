package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
)

// EnrichMetaGraph is the enrichment provider of Meta Lead Ads events: the processor reads the
// lead's fields from the Graph API by leadgen_id.
const EnrichMetaGraph = "meta_graph"

// metaWebhook is a Meta Lead Ads webhook (page object, leadgen changes).
type metaWebhook struct {
	Object string `json:"object"`
	Entry  []struct {
		ID   flexString `json:"id"`
		Time int64      `json:"time"`
		// Changes are decoded one by one, so that one malformed change spoils only itself.
		Changes []json.RawMessage `json:"changes"`
	} `json:"entry"`
}

// metaChange is one change of a Meta webhook entry.
type metaChange struct {
	Field string `json:"field"`
	Value struct {
		LeadgenID   flexString `json:"leadgen_id"`
		PageID      flexString `json:"page_id"`
		FormID      flexString `json:"form_id"`
		AdID        flexString `json:"ad_id"`
		AdgroupID   flexString `json:"adgroup_id"`
		CreatedTime int64      `json:"created_time"`
	} `json:"value"`
}

// flexString accepts a JSON string or number (Meta ids are strings, but numbers occur).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// normalizeFacebook makes one thin lead.created event per leadgen change, keyed by leadgen_id
// and marked for enrichment; changes of other fields are ignored. A malformed change (not an
// object, or a leadgen change without a usable leadgen_id) is one unusable item (itemErrors):
// the other leads of the POST are kept.
func normalizeFacebook(_ *Source, body []byte, _ http.Header, _ time.Time) ([]event.Event, error) {
	var w metaWebhook
	if err := decodeObject(body, &w); err != nil {
		return nil, err
	}
	if w.Object != "page" {
		return nil, unusable(ErrSchemaMismatch, nil, "object is not page")
	}
	var out []event.Event
	bad := itemErrors{}
	n := 0 // index of the change in the body, across entries
	for _, e := range w.Entry {
		for _, raw := range e.Changes {
			n++
			var c metaChange
			if err := json.Unmarshal(raw, &c); err != nil {
				bad[len(out)] = &draftError{reason: ErrSchemaMismatch, detail: fmt.Sprintf("change %d is not a change object", n)}
				out = append(out, event.Event{})
				continue
			}
			if c.Field != "leadgen" {
				continue
			}
			v := c.Value
			id := strings.TrimSpace(string(v.LeadgenID))
			if id == "" || strings.Contains(id, "|") || len(id) > maxSourceEventID {
				bad[len(out)] = &draftError{reason: ErrSchemaMismatch, detail: fmt.Sprintf("change %d: leadgen change without a usable leadgen_id", n)}
				out = append(out, event.Event{})
				continue
			}
			refs := map[string]string{"leadgen_id": id}
			for k, val := range map[string]flexString{"form_id": v.FormID, "page_id": v.PageID, "ad_id": v.AdID} {
				if val != "" {
					refs[k] = string(val)
				}
			}
			if refs["page_id"] == "" && e.ID != "" {
				refs["page_id"] = string(e.ID)
			}
			ev := event.Event{
				EventType:     event.TypeLeadCreated,
				SourceEventID: id,
				Enrich:        &event.Enrichment{Provider: EnrichMetaGraph, Refs: refs},
			}
			switch {
			case v.CreatedTime > 0:
				ev.OccurredAt = time.Unix(v.CreatedTime, 0)
			case e.Time > 0:
				ev.OccurredAt = time.Unix(e.Time, 0)
			}
			out = append(out, ev)
		}
	}
	if len(out) == 0 {
		return nil, unusable(ErrSchemaMismatch, nil, "no leadgen changes")
	}
	if len(bad) > 0 {
		if len(bad) == len(out) {
			return nil, bad[0]
		}
		return out, bad
	}
	return out, nil
}
