package mapping

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
)

// checkNormalize is the property every kind holds for any input: no panic; either valid events
// with keys under the source and ids derived from them, without "|" smuggled into the id part,
// or an UnusableError with a usable partial event.
func checkNormalize(t *testing.T, src *Source, body []byte, h http.Header) {
	evs, err := src.Normalize(body, h, received)
	if err != nil {
		var ue *UnusableError
		if !errors.As(err, &ue) {
			t.Fatalf("error %v is not an UnusableError", err)
		}
		if ue.Partial == nil || ue.Partial.IdempotencyKey == "" || ue.Partial.EventID == "" || ue.Partial.Source != src.Name {
			t.Fatalf("partial = %+v", ue.Partial)
		}
		return
	}
	if len(evs) == 0 {
		t.Fatal("no events and no error")
	}
	for _, ev := range evs {
		if err := ev.Validate(); err != nil {
			t.Fatalf("event does not validate: %v", err)
		}
		if !strings.HasPrefix(ev.IdempotencyKey, src.Name+"|"+ev.EventType+"|") || strings.Count(ev.IdempotencyKey, "|") != 2 {
			t.Fatalf("key %q is not source|type|id", ev.IdempotencyKey)
		}
		if ev.EventID != EventID(ev.IdempotencyKey) {
			t.Fatalf("event id %q not derived from key", ev.EventID)
		}
	}
}

func seedFile(f *testing.F, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

func FuzzNormalizeCanonical(f *testing.F) {
	src := testSource(f, "demo")
	f.Add([]byte(`{"event_type":"lead.created","occurred_at":"2026-03-22T12:34:56Z","identity":{"email":"a@b.example"},"attributes":{"n":1}}`), "msg_1")
	f.Add([]byte(`{"event_type":"lead.created","identity":{"phone_e164":"+14155550123"}}`), "")
	f.Add([]byte(`[]`), "x")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		checkNormalize(t, src, body, header("webhook-id", id))
	})
}

func FuzzNormalizeFacebook(f *testing.F) {
	src := testSource(f, "meta")
	seedFile(f, "testdata/meta_leadgen_webhook.json")
	f.Add([]byte(`{"object":"page","entry":[{"changes":[{"field":"leadgen","value":{"leadgen_id":1}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkNormalize(t, src, body, http.Header{})
	})
}

func FuzzNormalizeTypeform(f *testing.F) {
	src := testSource(f, "forms")
	seedFile(f, "testdata/typeform_form_response.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		checkNormalize(t, src, body, http.Header{})
	})
}

func FuzzNormalizeJSONMap(f *testing.F) {
	src := testSource(f, "partner")
	f.Add([]byte(`{"id":77,"created":"1774182895","contact":{"email":"z@q.example","ids":["c"]}}`))
	f.Add([]byte(`{"id":"a|b","contact":{"ids":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkNormalize(t, src, body, http.Header{})
	})
}
