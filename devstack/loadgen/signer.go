package loadgen

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Signer signs deliveries with the Standard Webhooks scheme that ingest verifies for canonical
// sources: webhook-signature is "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." +
// body)), where key is the base64-decoded part of the "whsec_" secret. It is written here, not
// imported, so the load generator checks ingest's verifier from the outside. Safe for
// concurrent use.
type Signer struct {
	key []byte
}

// ErrSecret is returned for a secret that is not "whsec_<base64>" (the prefix is optional).
var ErrSecret = errors.New("secret is not whsec_<base64>")

// NewSigner decodes a Standard Webhooks secret.
func NewSigner(secret string) (*Signer, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(secret), "whsec_"))
	if err != nil || len(k) == 0 {
		return nil, ErrSecret
	}
	return &Signer{key: k}, nil
}

// Sign returns the webhook-signature header value for one delivery.
func (s *Signer) Sign(msgID string, ts time.Time, body []byte) string {
	return s.sign(msgID, strconv.FormatInt(ts.Unix(), 10), body)
}

func (s *Signer) sign(msgID, ts string, body []byte) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(msgID))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Headers returns the three Standard Webhooks headers for one delivery at ts.
func (s *Signer) Headers(msgID string, ts time.Time, body []byte) map[string]string {
	t := strconv.FormatInt(ts.Unix(), 10)
	return map[string]string{
		"webhook-id":        msgID,
		"webhook-timestamp": t,
		"webhook-signature": s.sign(msgID, t, body),
	}
}
