package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
	c := s.Issue("alice")
	if a, err := s.Actor(c); err != nil || a != "alice" {
		t.Fatalf("Actor = %q, %v", a, err)
	}
	if _, err := s.Actor(c[:len(c)-2] + "xx"); err == nil {
		t.Error("tampered cookie accepted")
	}
	if !s.CheckCSRF(c, s.CSRF(c)) || s.CheckCSRF(c, "") || s.CheckCSRF(s.Issue("bob"), s.CSRF(c)) {
		t.Error("CSRF token not bound to its session")
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := s.Actor(c); err == nil {
		t.Error("expired cookie accepted")
	}
}
