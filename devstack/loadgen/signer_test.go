package loadgen

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

// The published Standard Webhooks example (a copy of /work/shared/fixtures): ingest's verifier
// is internal to ingest, so the signer is checked against the specification's own vector.
type vector struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func loadVector(t *testing.T) vector {
	t.Helper()
	b, err := os.ReadFile("testdata/standard_webhooks_vector.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSigner_KnownVector(t *testing.T) {
	v := loadVector(t)
	s, err := NewSigner(v.Secret)
	if err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseInt(v.Headers["webhook-timestamp"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	id := v.Headers["webhook-id"]
	if got, want := s.Sign(id, time.Unix(secs, 0), []byte(v.Body)), v.Headers["webhook-signature"]; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	h := s.Headers(id, time.Unix(secs, 0), []byte(v.Body))
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if h[k] != v.Headers[k] {
			t.Errorf("Headers[%s] = %q, want %q", k, h[k], v.Headers[k])
		}
	}
}

func TestSigner_EveryInputChangesTheSignature(t *testing.T) {
	v := loadVector(t)
	s, _ := NewSigner(v.Secret)
	ts := time.Unix(1614265330, 0)
	base := s.Sign("msg_1", ts, []byte(v.Body))
	other, _ := NewSigner("whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	for name, got := range map[string]string{
		"body":      s.Sign("msg_1", ts, []byte(v.Body+" ")),
		"id":        s.Sign("msg_2", ts, []byte(v.Body)),
		"timestamp": s.Sign("msg_1", ts.Add(time.Second), []byte(v.Body)),
		"secret":    other.Sign("msg_1", ts, []byte(v.Body)),
	} {
		if got == base {
			t.Errorf("changing the %s kept the signature %q", name, got)
		}
	}
	// Without the prefix the secret is the same key.
	bare, err := NewSigner(v.Secret[len("whsec_"):])
	if err != nil {
		t.Fatal(err)
	}
	if got := bare.Sign("msg_1", ts, []byte(v.Body)); got != base {
		t.Errorf("secret without whsec_: %q, want %q", got, base)
	}
}

func TestNewSigner_RejectsBadSecrets(t *testing.T) {
	for _, s := range []string{"", "whsec_", "whsec_not base64!", "whsec_%%%%"} {
		if _, err := NewSigner(s); !errors.Is(err, ErrSecret) {
			t.Errorf("NewSigner(%q) error = %v, want ErrSecret", s, err)
		}
	}
}
