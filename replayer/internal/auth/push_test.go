package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/api/idtoken"
)

const (
	pushAudience = "https://replayer.example.run.app/pubsub/dlq"
	pushSA       = "pubsub-push@leadpipe.iam.gserviceaccount.com"
)

// fakeGoogle stands in for idtoken.Validate: it knows a few tokens and, like the real one,
// checks the audience it is asked for against the token's. It never reaches Google.
type fakeGoogle struct {
	tokens    map[string]*idtoken.Payload
	audiences []string // the audiences Validate was asked for
}

func (f *fakeGoogle) validate(_ context.Context, token, audience string) (*idtoken.Payload, error) {
	f.audiences = append(f.audiences, audience)
	p, ok := f.tokens[token]
	if !ok {
		return nil, errors.New("idtoken: invalid signature")
	}
	if p.Audience != audience {
		return nil, errors.New("idtoken: audience provided does not match aud claim in the JWT")
	}
	return p, nil
}

func pushToken(iss, aud string, claims map[string]any) *idtoken.Payload {
	return &idtoken.Payload{Issuer: iss, Audience: aud, Subject: "1234567890", Claims: claims}
}

func TestPushVerify(t *testing.T) {
	verified := func(email string) map[string]any { return map[string]any{"email": email, "email_verified": true} }
	google := &fakeGoogle{tokens: map[string]*idtoken.Payload{
		"good":           pushToken("https://accounts.google.com", pushAudience, verified(pushSA)),
		"bare-issuer":    pushToken("accounts.google.com", pushAudience, verified(pushSA)),
		"other-issuer":   pushToken("https://issuer.example.com", pushAudience, verified(pushSA)),
		"unverified":     pushToken("https://accounts.google.com", pushAudience, map[string]any{"email": pushSA, "email_verified": false}),
		"verified-text":  pushToken("https://accounts.google.com", pushAudience, map[string]any{"email": pushSA, "email_verified": "true"}),
		"no-email":       pushToken("https://accounts.google.com", pushAudience, map[string]any{"email_verified": true}),
		"other-account":  pushToken("https://accounts.google.com", pushAudience, verified("someone-else@leadpipe.iam.gserviceaccount.com")),
		"other-audience": pushToken("https://accounts.google.com", "https://processor.example.run.app/pubsub/leads", verified(pushSA)),
	}}
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"valid push identity", "Bearer good", http.StatusNoContent},
		{"issuer without scheme", "Bearer bare-issuer", http.StatusNoContent},
		{"no Authorization header", "", http.StatusUnauthorized},
		{"not a bearer token", "Basic good", http.StatusUnauthorized},
		{"bad signature", "Bearer forged", http.StatusUnauthorized},
		{"another issuer", "Bearer other-issuer", http.StatusUnauthorized},
		{"email not verified", "Bearer unverified", http.StatusUnauthorized},
		{"email_verified not a boolean", "Bearer verified-text", http.StatusUnauthorized},
		{"no email", "Bearer no-email", http.StatusUnauthorized},
		{"service account not allowed", "Bearer other-account", http.StatusUnauthorized},
		{"token for another audience", "Bearer other-audience", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			google.audiences = nil
			called := false
			h := (&Push{Audience: pushAudience, ServiceAccounts: []string{pushSA}, Validate: google.validate}).Verify(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					called = true
					w.WriteHeader(http.StatusNoContent)
				}))
			req := httptest.NewRequest("POST", "/pubsub/dlq", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status = %d, want %d", rec.Code, tc.want)
			}
			if called != (tc.want == http.StatusNoContent) {
				t.Errorf("push handler called = %t, want %t", called, !called)
			}
			for _, aud := range google.audiences {
				if aud != pushAudience {
					t.Errorf("token validated for audience %q, want the configured %q", aud, pushAudience)
				}
			}
		})
	}
}

// An empty allow-list accepts nobody, even with a valid Google token.
func TestPushVerifyEmptyAllowList(t *testing.T) {
	google := &fakeGoogle{tokens: map[string]*idtoken.Payload{
		"good": pushToken("https://accounts.google.com", pushAudience, map[string]any{"email": pushSA, "email_verified": true}),
	}}
	h := (&Push{Audience: pushAudience, Validate: google.validate}).Verify(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("push handler called") }))
	req := httptest.NewRequest("POST", "/pubsub/dlq", nil)
	req.Header.Set("Authorization", "Bearer good")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", rec.Code)
	}
}
