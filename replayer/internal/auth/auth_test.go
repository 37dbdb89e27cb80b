package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
)

func TestStatic(t *testing.T) {
	s, err := ParseStatic("t1=alice, t2=bob")
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]string{"t1": "alice", "t2": "bob", "t3": "", "": "", "t1 ": ""} {
		got, err := s.Authenticate(context.Background(), tok)
		if got != want || (want == "") != errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%q: got %q, %v; want %q", tok, got, err, want)
		}
	}
	if _, err := ParseStatic("novalue"); err == nil {
		t.Error("ParseStatic accepted an entry without =")
	}
}

func TestOIDCChecksWhatValidateDoesNot(t *testing.T) {
	payload := func(iss, email string, verified bool) Validator {
		return func(context.Context, string, string) (*idtoken.Payload, error) {
			return &idtoken.Payload{Issuer: iss, Claims: map[string]any{"email": email, "email_verified": verified}}, nil
		}
	}
	tests := []struct {
		name string
		v    Validator
		ok   bool
	}{
		{"good", payload("https://accounts.google.com", "ops@example.com", true), true},
		{"bare issuer", payload("accounts.google.com", "ops@example.com", true), true},
		{"other issuer", payload("https://evil.example", "ops@example.com", true), false},
		{"unverified", payload("accounts.google.com", "ops@example.com", false), false},
		{"not allowed", payload("accounts.google.com", "eve@example.com", true), false},
		{"invalid", func(context.Context, string, string) (*idtoken.Payload, error) { return nil, errors.New("bad sig") }, false},
	}
	for _, tc := range tests {
		o := &OIDC{Audience: "aud", Allowed: []string{"ops@example.com"}, Validate: tc.v}
		actor, err := o.Authenticate(context.Background(), "tok")
		if (err == nil) != tc.ok || (tc.ok && actor != "ops@example.com") {
			t.Errorf("%s: actor %q err %v", tc.name, actor, err)
		}
	}
}

func TestRequire(t *testing.T) {
	s, _ := ParseStatic("good=alice")
	h := Require(s)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(Actor(r.Context()))) }))
	for hdr, want := range map[string]int{"": 401, "Bearer bad": 401, "Basic good": 401, "Bearer good": 200} {
		req := httptest.NewRequest("GET", "/v1/dlq", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%q: %d, want %d", hdr, rec.Code, want)
		}
	}
}

func TestSessions(t *testing.T) {
	s, err := NewSessions([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	static, _ := ParseStatic("tok-a=alice,tok-b=bob")
	c, actor, err := s.Open(ctx, static, "tok-a")
	if err != nil || actor != "alice" {
		t.Fatalf("Open = %q, %v", actor, err)
	}
	if strings.Contains(c, "tok-a") {
		t.Error("the cookie holds the token")
	}
	if a, err := s.Check(ctx, static, c); err != nil || a != "alice" {
		t.Fatalf("Check = %q, %v", a, err)
	}
	if _, err := s.Check(ctx, static, c[:len(c)-2]+"xx"); err == nil {
		t.Error("tampered cookie accepted")
	}
	if _, _, err := s.Open(ctx, static, "nope"); err == nil {
		t.Error("Open accepted a bad token")
	}
	cb, _, _ := s.Open(ctx, static, "tok-b")
	if !s.CheckCSRF(c, s.CSRF(c)) || s.CheckCSRF(c, "") || s.CheckCSRF(cb, s.CSRF(c)) {
		t.Error("CSRF token not bound to its session")
	}
	later := *s
	later.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := later.Check(ctx, static, c); err == nil {
		t.Error("expired cookie accepted")
	}
}

// TestSessionsAreReauthorized: a session stands only while the token it was opened with is
// still configured for its actor (or the Google principal is still allowed).
func TestSessionsAreReauthorized(t *testing.T) {
	s, _ := NewSessions([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	ctx := context.Background()
	before, _ := ParseStatic("tok-a=alice,tok-b=bob")
	c, _, err := s.Open(ctx, before, "tok-a")
	if err != nil {
		t.Fatal(err)
	}
	for name, after := range map[string]string{
		"token removed":          "tok-b=bob",
		"token rotated":          "tok-a2=alice,tok-b=bob",
		"token given to another": "tok-a=mallory",
	} {
		a, _ := ParseStatic(after)
		if _, err := s.Check(ctx, a, c); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: session still accepted (%v)", name, err)
		}
	}
	if _, err := s.Check(ctx, before, c); err != nil {
		t.Errorf("unchanged configuration: %v", err)
	}
	valid := func(context.Context, string, string) (*idtoken.Payload, error) {
		return &idtoken.Payload{Issuer: "https://accounts.google.com", Claims: map[string]any{"email": "ops@example.com", "email_verified": true}}, nil
	}
	o := &OIDC{Audience: "aud", Allowed: []string{"ops@example.com", "x@example.com"}, Validate: valid}
	oc, _, err := s.Open(ctx, o, "id-token")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, o, oc); err != nil {
		t.Errorf("allowed principal: %v", err)
	}
	revoked := &OIDC{Audience: "aud", Allowed: []string{"x@example.com"}, Validate: valid}
	if _, err := s.Check(ctx, revoked, oc); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("principal removed from the allow-list: session still accepted (%v)", err)
	}
}

type memGens map[string]int64

func (m memGens) Generation(_ context.Context, actor string) (int64, error) { return m[actor], nil }
func (m memGens) Revoke(_ context.Context, actor string) error              { m[actor]++; return nil }

// TestSessionsCanBeRevoked: Revoke ends every session of the actor opened before it, and only
// those.
func TestSessionsCanBeRevoked(t *testing.T) {
	s, _ := NewSessions([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	s.Gens = memGens{}
	ctx := context.Background()
	static, _ := ParseStatic("tok-a=alice,tok-b=bob")
	a1, _, _ := s.Open(ctx, static, "tok-a")
	a2, _, _ := s.Open(ctx, static, "tok-a")
	b1, _, _ := s.Open(ctx, static, "tok-b")
	if err := s.Revoke(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{a1, a2} {
		if _, err := s.Check(ctx, static, c); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("revoked session accepted (%v)", err)
		}
	}
	if _, err := s.Check(ctx, static, b1); err != nil {
		t.Errorf("another actor's session ended: %v", err)
	}
	a3, _, _ := s.Open(ctx, static, "tok-a")
	if _, err := s.Check(ctx, static, a3); err != nil {
		t.Errorf("a session opened after the revocation: %v", err)
	}
}

func TestLoginCSRF(t *testing.T) {
	s, _ := NewSessions([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	n := s.LoginNonce()
	if n == s.LoginNonce() {
		t.Error("nonces repeat")
	}
	if !s.CheckLoginCSRF(n, s.LoginCSRF(n)) || s.CheckLoginCSRF(n, "") || s.CheckLoginCSRF("", s.LoginCSRF("")) || s.CheckLoginCSRF(s.LoginNonce(), s.LoginCSRF(n)) {
		t.Error("login CSRF token not bound to its nonce")
	}
}

// TestSafeNext: only same-site paths survive.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/":                           "/",
		"/ui/dlq/abc?include=raw":     "/ui/dlq/abc?include=raw",
		"/ui/events?q=Ada%20Lovelace": "/ui/events?q=Ada%20Lovelace",
		"":                            "/",
		"https://evil.example/":       "/",
		"//evil.example":              "/",
		"/\\evil.example":             "/",
		"/%09/evil.example":           "/",
		"/\t/evil.example":            "/",
		"/%0a/evil.example":           "/",
		"/%2F/evil.example":           "/",
		"/%5Cevil.example":            "/",
		"/ui\\..\\evil":               "/",
		"/%E2%80%A8/evil.example":     "/",
		"javascript:alert(1)":         "/",
		"/ /evil.example":             "/",
		"evil.example":                "/",
		"/%zz":                        "/",
	} {
		if got := SafeNext(next); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
