package signature

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/mapping"
)

func TestStandardWebhooksVector(t *testing.T) {
	b, err := os.ReadFile("testdata/standard_webhooks_vector.json")
	if err != nil {
		t.Fatal(err)
	}
	var vec struct {
		Secret  string            `json:"secret"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	if err := json.Unmarshal(b, &vec); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, v := range vec.Headers {
		h.Set(k, v)
	}
	secs, _ := strconv.ParseInt(vec.Headers["webhook-timestamp"], 10, 64)
	at := time.Unix(secs, 0)
	v, err := New(mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{"whsec_" + "b3RoZXI=", vec.Secret}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if i, err := v.Verify(h, []byte(vec.Body), at.Add(time.Minute)); err != nil || i != 1 {
		t.Fatalf("Verify(vector) = %d, %v; want key 1, nil", i, err)
	}
	got, err := SignStandard(vec.Secret, vec.Headers["webhook-id"], at, []byte(vec.Body))
	if err != nil || got != vec.Headers["webhook-signature"] {
		t.Errorf("SignStandard = %q, %v; want %q", got, err, vec.Headers["webhook-signature"])
	}
	if _, err := v.Verify(h, []byte(vec.Body), at.Add(6*time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Errorf("Verify 6 min late = %v, want ErrTimestamp", err)
	}
	if _, err := v.Verify(h, []byte(vec.Body), at.Add(-6*time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Errorf("Verify 6 min early = %v, want ErrTimestamp", err)
	}
	if _, err := v.Verify(h, []byte(vec.Body+" "), at); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(tampered body) = %v, want ErrMismatch", err)
	}
}

func TestSchemes(t *testing.T) {
	body := []byte(`{"lead":1}`)
	now := time.Unix(1774182895, 0)
	whsec := "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="
	stdSig, _ := SignStandard(whsec, "msg_1", now, body)
	std := func(kv ...string) http.Header {
		h := http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)}, "Webhook-Signature": {"v0,xx " + stdSig}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	tests := []struct {
		name    string
		sig     mapping.Signature
		secrets []string
		h       http.Header
		body    []byte
		wantKey int
		wantErr error
	}{
		{"standard ok", mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{whsec}, std(), body, 0, nil},
		{"standard rotated", mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{"whsec_bmV3", whsec}, std(), body, 1, nil},
		{"standard no id", mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{whsec}, std("webhook-id", ""), body, -1, ErrMissing},
		{"standard other id", mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{whsec}, std("webhook-id", "msg_2"), body, -1, ErrMismatch},
		{"standard bad ts", mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{whsec}, std("webhook-timestamp", "soon"), body, -1, ErrMissing},
		{"standard wrong secret", mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{"whsec_b3RoZXI="}, std(), body, -1, ErrMismatch},
		{"standard no v1", mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{whsec}, std("webhook-signature", "v2,abc"), body, -1, ErrMissing},
		{"meta ok", mapping.Signature{Scheme: mapping.SchemeMeta}, []string{"old", "app"}, http.Header{"X-Hub-Signature-256": {SignMeta("app", body)}}, body, 1, nil},
		{"meta upper hex", mapping.Signature{Scheme: mapping.SchemeMeta}, []string{"app"}, http.Header{"X-Hub-Signature-256": {"sha256=" + upper(SignMeta("app", body)[7:])}}, body, 0, nil},
		{"meta sha1 only", mapping.Signature{Scheme: mapping.SchemeMeta}, []string{"app"}, http.Header{"X-Hub-Signature": {"sha1=00"}}, body, -1, ErrMissing},
		{"meta wrong", mapping.Signature{Scheme: mapping.SchemeMeta}, []string{"app"}, http.Header{"X-Hub-Signature-256": {SignMeta("other", body)}}, body, -1, ErrMismatch},
		{"typeform ok", mapping.Signature{Scheme: mapping.SchemeTypeform}, []string{"tf"}, http.Header{"Typeform-Signature": {SignTypeform("tf", body)}}, body, 0, nil},
		{"typeform hex digest", mapping.Signature{Scheme: mapping.SchemeTypeform}, []string{"tf"}, http.Header{"Typeform-Signature": {SignMeta("tf", body)}}, body, -1, ErrMismatch},
		{"typeform tampered", mapping.Signature{Scheme: mapping.SchemeTypeform}, []string{"tf"}, http.Header{"Typeform-Signature": {SignTypeform("tf", body)}}, []byte(`{"lead":2}`), -1, ErrMismatch},
		{"hmac hex ok", mapping.Signature{Scheme: mapping.SchemeHMACHex, Header: "X-Sig", Prefix: "sha256="}, []string{"p"}, http.Header{"X-Sig": {SignHMACHex("p", "sha256=", body)}}, body, 0, nil},
		{"hmac hex no prefix", mapping.Signature{Scheme: mapping.SchemeHMACHex, Header: "X-Sig", Prefix: "sha256="}, []string{"p"}, http.Header{"X-Sig": {SignHMACHex("p", "", body)}}, body, -1, ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.sig, tt.secrets, 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(tt.h, tt.body, now)
			if !errors.Is(err, tt.wantErr) || got != tt.wantKey {
				t.Errorf("Verify = %d, %v; want %d, %v", got, err, tt.wantKey, tt.wantErr)
			}
			if v.Scheme() != tt.sig.Scheme {
				t.Errorf("Scheme = %s, want %s", v.Scheme(), tt.sig.Scheme)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{"whsec_!!"}, 0); err == nil {
		t.Error("New(bad whsec) = nil error")
	}
	if _, err := New(mapping.Signature{Scheme: mapping.SchemeMeta}, nil, 0); err == nil {
		t.Error("New(no secrets) = nil error")
	}
	if _, err := New(mapping.Signature{Scheme: "md5"}, []string{"x"}, 0); err == nil {
		t.Error("New(unknown scheme) = nil error")
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// TestBlankSecretsAreRefused: no verifier is built on an empty or white-space secret, in any
// scheme (an empty HMAC key verifies what anyone can sign).
func TestBlankSecretsAreRefused(t *testing.T) {
	for _, scheme := range []string{mapping.SchemeStandardWebhooks, mapping.SchemeMeta, mapping.SchemeTypeform, mapping.SchemeHMACHex} {
		blanks := []string{"", " ", "\t\n"}
		if scheme == mapping.SchemeStandardWebhooks {
			blanks = append(blanks, "whsec_", "whsec_ICAg") // no key; a key of three spaces
		}
		for _, secret := range blanks {
			sig := mapping.Signature{Scheme: scheme, Header: "X-Sig"}
			if _, err := New(sig, []string{"whsec_c2VjcmV0", secret}, 0); err == nil {
				t.Errorf("%s: New accepted secret %q", scheme, secret)
			}
		}
	}
}
