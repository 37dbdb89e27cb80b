package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
)

// TestMetaPostWithOneMalformedChange: the valid leads of a Meta POST are kept, and each bad
// change is its own unusable item keyed by the delivery and its index.
func TestMetaPostWithOneMalformedChange(t *testing.T) {
	src := testSource(t, "meta")
	body := []byte(`{"object":"page","entry":[{"id":"1","time":1764496800,"changes":[
	 {"field":"leadgen","value":{"leadgen_id":"900100000000001","created_time":1764496800}},
	 {"field":"leadgen","value":{"leadgen_id":{"nested":"object"}}},
	 {"field":"leadgen","value":{"form_id":"555"}},
	 {"field":"leadgen","value":{"leadgen_id":"900100000000004","created_time":1764496800}}]}]}`)
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	items, err := src.NormalizeItems(body, nil, now)
	if err != nil {
		t.Fatalf("NormalizeItems: %v", err)
	}
	if len(items) != 4 {
		t.Fatalf("%d items, want 4", len(items))
	}
	for _, i := range []int{0, 3} {
		if items[i].Event == nil || items[i].Unusable != nil {
			t.Fatalf("item %d: %+v, want a usable event", i, items[i])
		}
	}
	if got := items[3].Event.IdempotencyKey; got != "meta|lead.created|900100000000004" {
		t.Errorf("item 3 key %q", got)
	}
	keys := map[string]bool{}
	for _, i := range []int{1, 2} {
		ue := items[i].Unusable
		if ue == nil || items[i].Event != nil {
			t.Fatalf("item %d: %+v, want unusable", i, items[i])
		}
		if !errors.Is(ue, ErrSchemaMismatch) || ue.Code() != "schema_mismatch" {
			t.Errorf("item %d: %v, want schema_mismatch", i, ue)
		}
		if want := ItemKey("meta", body, i); ue.Partial.IdempotencyKey != want || ue.Partial.EventID != EventID(want) {
			t.Errorf("item %d key %q, want %q", i, ue.Partial.IdempotencyKey, want)
		}
		keys[ue.Partial.IdempotencyKey] = true
	}
	if len(keys) != 2 {
		t.Error("the two bad changes share a key")
	}
	// The same body gives the same keys (a retried delivery is a duplicate).
	again, _ := src.NormalizeItems(body, nil, now.Add(time.Minute))
	if again[1].Unusable.Partial.IdempotencyKey != items[1].Unusable.Partial.IdempotencyKey {
		t.Error("bad change keys are not stable across retries")
	}
	// Normalize, all or nothing, reports the first bad item.
	if _, err := src.Normalize(body, nil, now); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("Normalize: %v, want the unusable error", err)
	}
	// A POST whose every change is bad is one unusable payload, as before.
	allBad := []byte(`{"object":"page","entry":[{"changes":[{"field":"leadgen","value":{}}]}]}`)
	var ue *UnusableError
	if _, err := src.NormalizeItems(allBad, nil, now); !errors.As(err, &ue) || ue.Partial.IdempotencyKey != UnknownKey("meta", allBad) {
		t.Errorf("all bad: %v, want one unusable payload keyed by the body", err)
	}
}

// TestOverlongIdentifiersAreUnusable: ids that Pub/Sub or a CRM cannot take are refused at
// intake with a schema reason.
func TestOverlongIdentifiersAreUnusable(t *testing.T) {
	src := testSource(t, "demo")
	long := strings.Repeat("x", event.MaxExternalID+1)
	for name, identity := range map[string]string{
		"external id": `{"contact_external_id":"` + long + `"}`,
		"email":       `{"email":"` + strings.Repeat("a", 250) + `@example.com"}`,
	} {
		t.Run(name, func(t *testing.T) {
			body := []byte(`{"event_type":"lead.created","occurred_at":"2026-11-30T10:00:00Z","source_event_id":"e1","identity":` + identity + `}`)
			_, err := src.Normalize(body, nil, time.Now())
			var ue *UnusableError
			if !errors.As(err, &ue) || ue.Code() != "schema_mismatch" || !strings.Contains(ue.Detail, "too long") {
				t.Fatalf("got %v, want unusable schema_mismatch (too long)", err)
			}
			if strings.Contains(ue.Error(), long) {
				t.Error("the error quotes the value")
			}
		})
	}
}

// TestNormalizeNeedsTheHashKey: without a keyed hasher nothing is normalized (no fallback key
// could be made), and the error is a configuration error, not an unusable payload.
func TestNormalizeNeedsTheHashKey(t *testing.T) {
	s, err := ParseSources([]byte(testSources))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := s.Get("demo")
	_, err = src.Normalize([]byte(`{"event_type":"lead.created","occurred_at":"2026-11-30T10:00:00Z","identity":{"email":"a@b.example"}}`), nil, time.Now())
	var ue *UnusableError
	if !errors.Is(err, ErrNoHasher) || errors.As(err, &ue) {
		t.Errorf("got %v, want ErrNoHasher", err)
	}
}
