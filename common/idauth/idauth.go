// Package idauth verifies Google-signed OIDC ID tokens for service-to-service calls (Cloud
// Scheduler, Pub/Sub push, operators' gcloud tokens): idtoken.Validate checks signature,
// audience and expiry only, so Verifier also checks a Google issuer, a verified email and an
// allow-list of principals. The replayer's API and internal routes and ingest's
// POST /internal/sweep share it.
package idauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/api/idtoken"
)

// ErrUnauthenticated: no credential, or one that does not check out. Callers answer 401.
var ErrUnauthenticated = errors.New("unauthenticated")

// Validator validates a Google ID token for an audience; idtoken.Validate in production, a
// locally signed token's check in tests.
type Validator func(ctx context.Context, token, audience string) (*idtoken.Payload, error)

// Verifier accepts Google ID tokens for Audience whose verified email is in Allowed.
type Verifier struct {
	Audience string
	Allowed  []string
	// Validate defaults to idtoken.Validate.
	Validate Validator
}

// Authenticate returns the token's email, or an error wrapping ErrUnauthenticated.
func (v *Verifier) Authenticate(ctx context.Context, token string) (string, error) {
	if strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: no token", ErrUnauthenticated)
	}
	validate := v.Validate
	if validate == nil {
		validate = idtoken.Validate
	}
	p, err := validate(ctx, token, v.Audience)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	email, err := CheckClaims(p)
	if err != nil {
		return "", err
	}
	if !slices.Contains(v.Allowed, email) {
		return "", fmt.Errorf("%w: principal not allowed", ErrUnauthenticated)
	}
	return email, nil
}

// CheckClaims checks what idtoken.Validate does not: a Google issuer and a verified email. It
// returns the email.
func CheckClaims(p *idtoken.Payload) (string, error) {
	if p.Issuer != "accounts.google.com" && p.Issuer != "https://accounts.google.com" {
		return "", fmt.Errorf("%w: issuer %q", ErrUnauthenticated, p.Issuer)
	}
	email, _ := p.Claims["email"].(string)
	verified, _ := p.Claims["email_verified"].(bool)
	if email == "" || !verified {
		return "", fmt.Errorf("%w: no verified email", ErrUnauthenticated)
	}
	return email, nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// SplitList reads a comma-separated list of principals, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
