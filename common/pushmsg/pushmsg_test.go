package pushmsg_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/leadpipe/leadpipe/common/pushmsg"
)

const limit = 1 << 20

var (
	data    = []byte(`{"schema_version":"1.0","event_id":"e1"}`)
	data64  = base64.StdEncoding.EncodeToString(data)
	pubTime = time.Date(2026, 5, 6, 7, 8, 9, 123000000, time.UTC)
)

// realBody is shaped like what Pub/Sub POSTs: both id spellings, both publish time spellings.
func realBody(deliveryAttempt string) string {
	s := `{
  "message": {
    "attributes": {"idempotency_key": "typeform|lead.created|r1", "source": "typeform"},
    "data": "` + data64 + `",
    "messageId": "2070443601311540",
    "message_id": "2070443601311540",
    "orderingKey": "typeform:c-1",
    "publishTime": "2026-05-06T07:08:09.123Z",
    "publish_time": "2026-05-06T07:08:09.123Z"
  },
  "subscription": "projects/leadpipe-test/subscriptions/leads-processor"`
	if deliveryAttempt != "" {
		s += `,
  "deliveryAttempt": ` + deliveryAttempt
	}
	return s + "\n}"
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		wantID       string
		wantTime     time.Time
		wantAttempt  int
		wantData     []byte
		wantOrdering string
		wantSub      string
	}{
		{"real body with deliveryAttempt", realBody("3"), "2070443601311540", pubTime, 3, data, "typeform:c-1", "projects/leadpipe-test/subscriptions/leads-processor"},
		{"real body without deliveryAttempt", realBody(""), "2070443601311540", pubTime, 0, data, "typeform:c-1", "projects/leadpipe-test/subscriptions/leads-processor"},
		{"only messageId", `{"message":{"messageId":"m1","publishTime":"2026-05-06T07:08:09.123Z","data":"` + data64 + `"},"subscription":"s"}`,
			"m1", pubTime, 0, data, "", "s"},
		{"only message_id", `{"message":{"message_id":"m2","publish_time":"2026-05-06T07:08:09.123Z","data":"` + data64 + `"},"subscription":"s"}`,
			"m2", pubTime, 0, data, "", "s"},
		{"messageId wins over message_id", `{"message":{"messageId":"a","message_id":"b"}}`, "a", time.Time{}, 0, nil, "", ""},
		{"publish_time only", `{"message":{"messageId":"m3","publish_time":"2026-05-06T07:08:09.123Z"}}`, "m3", pubTime, 0, nil, "", ""},
		{"no publish time", `{"message":{"messageId":"m4"}}`, "m4", time.Time{}, 0, nil, "", ""},
		{"offset publish time", `{"message":{"messageId":"m5","publishTime":"2026-05-06T09:08:09.123+02:00"}}`, "m5", pubTime, 0, nil, "", ""},
		{"deliveryAttempt 1", `{"message":{"messageId":"m6"},"deliveryAttempt":1}`, "m6", time.Time{}, 1, nil, "", ""},
		{"unknown fields ignored", `{"message":{"messageId":"m7","extra":1},"other":true}`, "m7", time.Time{}, 0, nil, "", ""},
		{"empty data", `{"message":{"messageId":"m8","data":""}}`, "m8", time.Time{}, 0, []byte{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := pushmsg.Decode(strings.NewReader(tt.body), limit)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			m := env.Message
			if m.MessageID != tt.wantID {
				t.Errorf("MessageID: got %q, want %q", m.MessageID, tt.wantID)
			}
			if !m.PublishTime.Equal(tt.wantTime) {
				t.Errorf("PublishTime: got %v, want %v", m.PublishTime, tt.wantTime)
			}
			if got := env.Attempt(); got != tt.wantAttempt {
				t.Errorf("Attempt(): got %d, want %d", got, tt.wantAttempt)
			}
			if (env.DeliveryAttempt == nil) != (tt.wantAttempt == 0) {
				t.Errorf("DeliveryAttempt presence: got %v, want present=%v", env.DeliveryAttempt, tt.wantAttempt != 0)
			}
			if !bytes.Equal(m.Data, tt.wantData) {
				t.Errorf("Data: got %q, want %q", m.Data, tt.wantData)
			}
			if m.OrderingKey != tt.wantOrdering {
				t.Errorf("OrderingKey: got %q, want %q", m.OrderingKey, tt.wantOrdering)
			}
			if env.Subscription != tt.wantSub {
				t.Errorf("Subscription: got %q, want %q", env.Subscription, tt.wantSub)
			}
		})
	}
}

func TestDecodeAttributes(t *testing.T) {
	env, err := pushmsg.Decode(strings.NewReader(realBody("2")), limit)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Message.Attributes[pushmsg.AttrIdempotencyKey]; got != "typeform|lead.created|r1" {
		t.Errorf("attribute %s: got %q, want %q", pushmsg.AttrIdempotencyKey, got, "typeform|lead.created|r1")
	}
	if got := env.Message.Attributes[pushmsg.AttrSource]; got != "typeform" {
		t.Errorf("attribute %s: got %q, want %q", pushmsg.AttrSource, got, "typeform")
	}
}

func TestDecodeMalformed(t *testing.T) {
	big := `{"message":{"messageId":"m","data":"` + strings.Repeat("A", 2000) + `"}}`
	tests := []struct {
		name  string
		r     io.Reader
		limit int64
	}{
		{"not json", strings.NewReader("hello"), limit},
		{"empty body", strings.NewReader(""), limit},
		{"truncated", strings.NewReader(realBody("1")[:40]), limit},
		{"json array", strings.NewReader(`[1,2]`), limit},
		{"message not object", strings.NewReader(`{"message":"x"}`), limit},
		{"missing id", strings.NewReader(`{"message":{"data":"` + data64 + `"},"subscription":"s"}`), limit},
		{"empty ids", strings.NewReader(`{"message":{"messageId":"","message_id":""}}`), limit},
		{"null message", strings.NewReader(`{"message":null}`), limit},
		{"no message", strings.NewReader(`{"subscription":"s"}`), limit},
		{"bad base64", strings.NewReader(`{"message":{"messageId":"m","data":"!!not base64!!"}}`), limit},
		{"bad publishTime", strings.NewReader(`{"message":{"messageId":"m","publishTime":"yesterday"}}`), limit},
		{"bad publish_time", strings.NewReader(`{"message":{"messageId":"m","publish_time":"2026-13-01T00:00:00Z"}}`), limit},
		{"deliveryAttempt not a number", strings.NewReader(`{"message":{"messageId":"m"},"deliveryAttempt":"3"}`), limit},
		{"oversize", strings.NewReader(big), int64(len(big) - 1)},
		{"reader error", iotest.ErrReader(errors.New("connection reset")), limit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := pushmsg.Decode(tt.r, tt.limit)
			if !errors.Is(err, pushmsg.ErrMalformed) {
				t.Errorf("Decode: got (%+v, %v), want ErrMalformed", env, err)
			}
			if env != nil {
				t.Errorf("Decode: got envelope %+v with error, want nil", env)
			}
		})
	}
}

func TestDecodeLimitBoundary(t *testing.T) {
	body := `{"message":{"messageId":"m"}}`
	n := int64(len(body))
	if _, err := pushmsg.Decode(strings.NewReader(body), n); err != nil {
		t.Errorf("body of exactly limit bytes: got %v, want nil", err)
	}
	if _, err := pushmsg.Decode(strings.NewReader(body), n-1); !errors.Is(err, pushmsg.ErrMalformed) {
		t.Errorf("body one byte over limit: got %v, want ErrMalformed", err)
	}
}

// TestMessageMarshalRoundTrip: what a push emulator writes with Envelope decodes back.
func TestMessageMarshalRoundTrip(t *testing.T) {
	n := 4
	in := pushmsg.Envelope{
		Message: pushmsg.Message{
			Data: data, Attributes: map[string]string{"a": "b"}, MessageID: "42",
			PublishTime: pubTime, OrderingKey: "k",
		},
		Subscription:    "projects/p/subscriptions/s",
		DeliveryAttempt: &n,
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pushmsg.Decode(bytes.NewReader(b), limit)
	if err != nil {
		t.Fatalf("Decode(%s): %v", b, err)
	}
	if out.Message.MessageID != "42" || !out.Message.PublishTime.Equal(pubTime) || out.Message.OrderingKey != "k" ||
		!bytes.Equal(out.Message.Data, data) || out.Message.Attributes["a"] != "b" || out.Attempt() != 4 ||
		out.Subscription != in.Subscription {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(realBody("3")))
	f.Add([]byte(realBody("")))
	f.Add([]byte(`{"message":{"message_id":"m2","publish_time":"2026-05-06T07:08:09.123Z"}}`))
	f.Add([]byte(`{"message":null}`))
	f.Add([]byte(`{"message":{"messageId":"m","data":"!!"}}`))
	f.Add([]byte(`{"message":{"messageId":"m"},"deliveryAttempt":-1}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := pushmsg.Decode(bytes.NewReader(b), 4096)
		if err != nil {
			if !errors.Is(err, pushmsg.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if env != nil {
				t.Fatalf("envelope %+v returned with error", env)
			}
			return
		}
		if env.Message.MessageID == "" {
			t.Fatalf("accepted an envelope without a message id: %q", b)
		}
		if len(b) > 4096 {
			t.Fatalf("accepted %d bytes over the 4096 limit", len(b))
		}
		_ = env.Attempt()
	})
}
