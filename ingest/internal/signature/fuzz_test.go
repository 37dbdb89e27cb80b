package signature

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/mapping"
)

// Each fuzz target checks, for any input: a signature made with the secret verifies; any
// other header value either fails with a sentinel error or is one that verifies the same body
// (never a panic, never a false accept of a different body).

func FuzzStandardWebhooks(f *testing.F) {
	f.Add([]byte(`{"a":1}`), "msg_1", int64(1774182895), "v1,AAAA")
	f.Add([]byte{}, "", int64(0), "")
	const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v, err := New(mapping.Signature{Scheme: mapping.SchemeStandardWebhooks}, []string{whsec}, 5*time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, id string, ts int64, garbage string) {
		at := time.Unix(ts, 0)
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		sig, err := SignStandard(whsec, id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		h.Set("webhook-signature", sig)
		if _, err := v.Verify(h, body, at); err != nil && id != "" {
			t.Fatalf("own signature rejected: %v", err)
		}
		h.Set("webhook-signature", garbage)
		if _, err := v.Verify(h, body, at); err != nil && !isSentinel(err) {
			t.Fatalf("unexpected error %v", err)
		}
		h.Set("webhook-signature", sig)
		if _, err := v.Verify(h, append(bytes.Clone(body), 'x'), at); err == nil {
			t.Fatal("tampered body accepted")
		}
	})
}

func FuzzMeta(f *testing.F) {
	fuzzBodyHMAC(f, mapping.Signature{Scheme: mapping.SchemeMeta}, "X-Hub-Signature-256", func(s string, b []byte) string { return SignMeta(s, b) })
}

func FuzzTypeform(f *testing.F) {
	fuzzBodyHMAC(f, mapping.Signature{Scheme: mapping.SchemeTypeform}, "Typeform-Signature", func(s string, b []byte) string { return SignTypeform(s, b) })
}

func FuzzHMACHex(f *testing.F) {
	fuzzBodyHMAC(f, mapping.Signature{Scheme: mapping.SchemeHMACHex, Header: "X-Sig", Prefix: "sha256="}, "X-Sig", func(s string, b []byte) string { return SignHMACHex(s, "sha256=", b) })
}

func fuzzBodyHMAC(f *testing.F, sig mapping.Signature, header string, sign func(string, []byte) string) {
	f.Add([]byte(`{"a":1}`), "sha256=00")
	f.Add([]byte{}, "")
	const secret = "fuzz-secret"
	v, err := New(sig, []string{"old", secret}, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, garbage string) {
		h := http.Header{}
		h.Set(header, sign(secret, body))
		if i, err := v.Verify(h, body, time.Time{}); err != nil || i != 1 {
			t.Fatalf("own signature: %d, %v", i, err)
		}
		if _, err := v.Verify(h, append(bytes.Clone(body), 'x'), time.Time{}); !errors.Is(err, ErrMismatch) {
			t.Fatalf("tampered body: %v, want ErrMismatch", err)
		}
		h.Set(header, garbage)
		if _, err := v.Verify(h, body, time.Time{}); err != nil && !isSentinel(err) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func isSentinel(err error) bool {
	return errors.Is(err, ErrMissing) || errors.Is(err, ErrMismatch) || errors.Is(err, ErrTimestamp)
}
