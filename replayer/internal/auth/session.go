package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Sessions signs the triage page's session cookies and CSRF tokens with one HMAC key. A
// cookie is "actor|expiry|mac"; the CSRF token is a MAC of the cookie, so a form post is
// accepted only together with the session it was rendered for.
type Sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewSessions returns Sessions with key (at least 32 bytes) and cookie lifetime ttl.
func NewSessions(key []byte, ttl time.Duration) (*Sessions, error) {
	if len(key) < 32 {
		return nil, errors.New("session key shorter than 32 bytes")
	}
	return &Sessions{key: key, ttl: ttl, now: time.Now}, nil
}

func (s *Sessions) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Issue returns a cookie value for actor.
func (s *Sessions) Issue(actor string) string {
	a := base64.RawURLEncoding.EncodeToString([]byte(actor))
	exp := strconv.FormatInt(s.now().Add(s.ttl).Unix(), 10)
	return a + "|" + exp + "|" + s.mac("session", a, exp)
}

// Actor checks a cookie value and returns its actor.
func (s *Sessions) Actor(cookie string) (string, error) {
	parts := strings.Split(cookie, "|")
	if len(parts) != 3 {
		return "", ErrUnauthenticated
	}
	if !hmac.Equal([]byte(parts[2]), []byte(s.mac("session", parts[0], parts[1]))) {
		return "", ErrUnauthenticated
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || s.now().Unix() > exp {
		return "", ErrUnauthenticated
	}
	actor, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || len(actor) == 0 {
		return "", ErrUnauthenticated
	}
	return string(actor), nil
}

// CSRF returns the form token bound to a session (the cookie value, or for bearer-token
// clients the token itself).
func (s *Sessions) CSRF(session string) string { return s.mac("csrf", session) }

// CheckCSRF reports whether token belongs to session.
func (s *Sessions) CheckCSRF(session, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(s.CSRF(session)))
}
