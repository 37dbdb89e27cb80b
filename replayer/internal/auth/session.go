package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sessions signs the triage page's session cookies and CSRF tokens with one HMAC key, and
// re-authorizes every session on every request.
//
// A cookie is "actor|credential|generation|expiry|mac": credential is a MAC of the token the
// session was opened with (never the token), generation the actor's session generation when it
// was opened. Check accepts a cookie only while the token (or, for Google identities, the
// principal) is still configured for the actor and the actor's generation has not moved on:
// removing a token or a principal from the configuration, or Revoke (logout), ends the
// sessions. The CSRF token of a form is a MAC of the session it was rendered for; the login
// form's is a MAC of a nonce cookie (LoginNonce), so a login cannot be forged cross-site.
type Sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
	// Gens holds the server-side session generations (a Firestore document per actor in the
	// service); nil: generation 0 for everyone, and Revoke fails.
	Gens Generations
}

// Generations stores each actor's session generation; Revoke moves it on.
type Generations interface {
	Generation(ctx context.Context, actor string) (int64, error)
	Revoke(ctx context.Context, actor string) error
}

// ErrNoRevocation: Revoke without a generation store.
var ErrNoRevocation = errors.New("session revocation not configured")

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

func (s *Sessions) credential(token string) string { return s.mac("credential", token) }

func (s *Sessions) generation(ctx context.Context, actor string) (int64, error) {
	if s.Gens == nil {
		return 0, nil
	}
	g, err := s.Gens.Generation(ctx, actor)
	if err != nil {
		return 0, fmt.Errorf("session generation: %w", err)
	}
	return g, nil
}

// Open authenticates token with a and returns a session cookie for its actor.
func (s *Sessions) Open(ctx context.Context, a Authenticator, token string) (cookie, actor string, err error) {
	if strings.TrimSpace(token) == "" {
		return "", "", ErrUnauthenticated
	}
	if actor, err = a.Authenticate(ctx, token); err != nil {
		return "", "", err
	}
	gen, err := s.generation(ctx, actor)
	if err != nil {
		return "", "", err
	}
	ac := base64.RawURLEncoding.EncodeToString([]byte(actor))
	cred := s.credential(token)
	g := strconv.FormatInt(gen, 10)
	exp := strconv.FormatInt(s.now().Add(s.ttl).Unix(), 10)
	return strings.Join([]string{ac, cred, g, exp, s.mac("session", ac, cred, g, exp)}, "|"), actor, nil
}

// Check verifies a cookie and re-authorizes it: its MAC and expiry, the credential it was
// opened with still configured for its actor in a, and the actor's generation unchanged. It
// returns the actor; ErrUnauthenticated (wrapped) when the session no longer stands, another
// error when the generation cannot be read.
func (s *Sessions) Check(ctx context.Context, a Authenticator, cookie string) (string, error) {
	parts := strings.Split(cookie, "|")
	if len(parts) != 5 {
		return "", ErrUnauthenticated
	}
	ac, cred, g, exp := parts[0], parts[1], parts[2], parts[3]
	if !hmac.Equal([]byte(parts[4]), []byte(s.mac("session", ac, cred, g, exp))) {
		return "", ErrUnauthenticated
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || s.now().Unix() > e {
		return "", fmt.Errorf("%w: session expired", ErrUnauthenticated)
	}
	b, err := base64.RawURLEncoding.DecodeString(ac)
	if err != nil || len(b) == 0 {
		return "", ErrUnauthenticated
	}
	actor := string(b)
	if !s.stillAuthorized(a, actor, cred) {
		return "", fmt.Errorf("%w: credential or principal no longer authorized", ErrUnauthenticated)
	}
	gen, err := s.generation(ctx, actor)
	if err != nil {
		return "", err
	}
	if strconv.FormatInt(gen, 10) != g {
		return "", fmt.Errorf("%w: session revoked", ErrUnauthenticated)
	}
	return actor, nil
}

// stillAuthorized: a static token session stands while that token is configured for the
// actor; a Google identity session while the principal is allowed.
func (s *Sessions) stillAuthorized(a Authenticator, actor, cred string) bool {
	switch a := a.(type) {
	case *Static:
		for _, t := range a.tokens {
			if t.actor == actor && hmac.Equal([]byte(cred), []byte(s.credential(string(t.token)))) {
				return true
			}
		}
		return false
	case *OIDC:
		return slices.Contains(a.Allowed, actor)
	}
	return false
}

// Revoke ends every session of actor (logout, or an operator locked out).
func (s *Sessions) Revoke(ctx context.Context, actor string) error {
	if s.Gens == nil {
		return ErrNoRevocation
	}
	if err := s.Gens.Revoke(ctx, actor); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	return nil
}

// CSRF returns the form token bound to a session (the cookie value, or for bearer-token
// clients the token itself).
func (s *Sessions) CSRF(session string) string { return s.mac("csrf", session) }

// CheckCSRF reports whether token belongs to session.
func (s *Sessions) CheckCSRF(session, token string) bool {
	return session != "" && token != "" && hmac.Equal([]byte(token), []byte(s.CSRF(session)))
}

// LoginNonce returns a fresh random value for the login form's nonce cookie.
func (s *Sessions) LoginNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// LoginCSRF is the login form's CSRF token for a nonce.
func (s *Sessions) LoginCSRF(nonce string) string { return s.mac("login-csrf", nonce) }

// CheckLoginCSRF reports whether token belongs to nonce.
func (s *Sessions) CheckLoginCSRF(nonce, token string) bool {
	return nonce != "" && token != "" && hmac.Equal([]byte(token), []byte(s.LoginCSRF(nonce)))
}

// SafeNext returns next when it is a path on this site, else "/". It refuses anything a
// browser could read as another origin or that hides a character: a scheme or host, "//" or
// "/\" at the start (raw or percent-decoded), backslashes, and control characters or white
// space, raw or percent-encoded ("/%09/evil.example" is "//evil.example" to a browser that
// strips the tab).
func SafeNext(next string) string {
	if !strings.HasPrefix(next, "/") || len(next) > 2048 {
		return "/"
	}
	decoded, err := url.PathUnescape(next)
	if err != nil {
		return "/"
	}
	if strings.ContainsRune(next, ' ') {
		return "/"
	}
	for _, v := range []string{next, decoded} {
		if strings.HasPrefix(v, "//") || strings.HasPrefix(v, `/\`) || strings.ContainsRune(v, '\\') {
			return "/"
		}
		for _, r := range v {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029' {
				return "/"
			}
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return "/"
	}
	return next
}
