// Package signature verifies webhook signatures: Standard Webhooks (canonical sources), Meta's
// X-Hub-Signature-256, Typeform-Signature, and a configurable hex HMAC header. Every scheme
// accepts several secrets at once, so a source can rotate its secret without downtime, and
// compares MACs in constant time.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/mapping"
)

// Verification failures. All of them answer 401; they differ only in logs.
var (
	// ErrMissing: the signature (or a header it needs) is absent or malformed.
	ErrMissing = errors.New("signature missing or malformed")
	// ErrBlankSecret: a secret is empty or only white space; New refuses it.
	ErrBlankSecret = errors.New("blank secret")
	// ErrMismatch: no secret of the source produces the signature.
	ErrMismatch = errors.New("signature mismatch")
	// ErrTimestamp: the signed timestamp is outside the tolerance (replay protection).
	ErrTimestamp = errors.New("signature timestamp outside tolerance")
)

// Verifier checks one delivery. Implementations are safe for concurrent use.
type Verifier interface {
	// Verify returns the index of the secret that matched.
	Verify(h http.Header, body []byte, now time.Time) (keyIndex int, err error)
	// Scheme is the scheme name (mapping.Scheme*).
	Scheme() string
}

// New returns the verifier of sig with the given secret values (already resolved). Standard
// Webhooks secrets are "whsec_<base64>"; the others are used as they are. tolerance bounds the
// Standard Webhooks timestamp; 0 disables the check.
func New(sig mapping.Signature, secrets []string, tolerance time.Duration) (Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("signature: no secrets")
	}
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		// An empty key signs anything for anyone who knows it is empty: refuse it however it
		// got here (an env var set to "", a Secret Manager version holding a blank line).
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("signature: secret %d: %w", i, ErrBlankSecret)
		}
		if sig.Scheme == mapping.SchemeStandardWebhooks {
			k, err := DecodeWhsec(s)
			if err != nil {
				return nil, fmt.Errorf("signature: secret %d: %w", i, err)
			}
			keys[i] = k
			continue
		}
		keys[i] = []byte(s)
	}
	switch sig.Scheme {
	case mapping.SchemeStandardWebhooks:
		return &StandardWebhooks{keys: keys, tolerance: tolerance}, nil
	case mapping.SchemeMeta:
		return &bodyHMAC{scheme: sig.Scheme, header: "X-Hub-Signature-256", prefix: "sha256=", enc: hexEnc, keys: keys}, nil
	case mapping.SchemeTypeform:
		return &bodyHMAC{scheme: sig.Scheme, header: "Typeform-Signature", prefix: "sha256=", enc: b64Enc, keys: keys}, nil
	case mapping.SchemeHMACHex:
		return &bodyHMAC{scheme: sig.Scheme, header: sig.Header, prefix: sig.Prefix, enc: hexEnc, keys: keys}, nil
	}
	return nil, fmt.Errorf("signature: unknown scheme %q", sig.Scheme)
}

// DecodeWhsec decodes a Standard Webhooks secret ("whsec_" + base64 key).
func DecodeWhsec(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(k) == 0 || strings.TrimSpace(string(k)) == "" {
		return nil, errors.New("not a whsec_<base64> secret")
	}
	return k, nil
}

// StandardWebhooks verifies webhook-id, webhook-timestamp and webhook-signature
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>", several space-separated signatures allowed).
type StandardWebhooks struct {
	keys      [][]byte
	tolerance time.Duration
}

var _ Verifier = (*StandardWebhooks)(nil)

// Scheme implements Verifier.
func (*StandardWebhooks) Scheme() string { return mapping.SchemeStandardWebhooks }

// Verify implements Verifier.
func (v *StandardWebhooks) Verify(h http.Header, body []byte, now time.Time) (int, error) {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return -1, ErrMissing
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return -1, ErrMissing
	}
	if v.tolerance > 0 {
		d := now.Sub(time.Unix(secs, 0))
		if d > v.tolerance || d < -v.tolerance {
			return -1, ErrTimestamp
		}
	}
	var given [][]byte
	for _, s := range strings.Fields(sigs) {
		b64, ok := strings.CutPrefix(s, "v1,")
		if !ok {
			continue
		}
		if mac, err := base64.StdEncoding.DecodeString(b64); err == nil {
			given = append(given, mac)
		}
	}
	if len(given) == 0 {
		return -1, ErrMissing
	}
	for i, k := range v.keys {
		want := standardMAC(k, id, ts, body)
		for _, g := range given {
			if hmac.Equal(g, want) {
				return i, nil
			}
		}
	}
	return -1, ErrMismatch
}

func standardMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignStandard returns the webhook-signature value for a delivery; for tests and senders.
func SignStandard(whsec, id string, ts time.Time, body []byte) (string, error) {
	k, err := DecodeWhsec(whsec)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(standardMAC(k, id, strconv.FormatInt(ts.Unix(), 10), body)), nil
}

type encoding int

const (
	hexEnc encoding = iota
	b64Enc
)

// bodyHMAC verifies a header of the form <prefix><encoded HMAC-SHA256 of the body>.
type bodyHMAC struct {
	scheme, header, prefix string
	enc                    encoding
	keys                   [][]byte
}

var _ Verifier = (*bodyHMAC)(nil)

func (v *bodyHMAC) Scheme() string { return v.scheme }

func (v *bodyHMAC) Verify(h http.Header, body []byte, _ time.Time) (int, error) {
	raw, ok := strings.CutPrefix(strings.TrimSpace(h.Get(v.header)), v.prefix)
	if !ok || raw == "" {
		return -1, ErrMissing
	}
	var given []byte
	var err error
	if v.enc == hexEnc {
		given, err = hex.DecodeString(strings.ToLower(raw))
	} else {
		given, err = base64.StdEncoding.DecodeString(raw)
	}
	if err != nil {
		return -1, ErrMissing
	}
	for i, k := range v.keys {
		if hmac.Equal(given, bodyMAC(k, body)) {
			return i, nil
		}
	}
	return -1, ErrMismatch
}

func bodyMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// SignMeta returns the X-Hub-Signature-256 value; for tests and senders.
func SignMeta(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(bodyMAC([]byte(secret), body))
}

// SignTypeform returns the Typeform-Signature value; for tests and senders.
func SignTypeform(secret string, body []byte) string {
	return "sha256=" + base64.StdEncoding.EncodeToString(bodyMAC([]byte(secret), body))
}

// SignHMACHex returns prefix + hex HMAC-SHA256 of the body; for tests and senders.
func SignHMACHex(secret, prefix string, body []byte) string {
	return prefix + hex.EncodeToString(bodyMAC([]byte(secret), body))
}
