// Package auth authenticates the replayer's callers: operators and scripts on the /v1 API and
// the triage page (a Google ID token checked for audience, issuer, verified email and an
// allow-list, or locally a static token mapped to an actor name), and Pub/Sub on the push
// endpoint. The authenticated actor travels in the request context.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/api/idtoken"
)

// ErrUnauthenticated: no credential, or one that does not check out. Callers answer 401.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator turns a bearer credential into an actor name.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (actor string, err error)
}

// Static maps configured tokens to actor names (local and test use).
type Static struct {
	tokens []staticToken
}

type staticToken struct {
	token []byte
	actor string
}

var _ Authenticator = (*Static)(nil)

// ParseStatic reads "token1=alice,token2=bob".
func ParseStatic(spec string) (*Static, error) {
	s := &Static{}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		tok, actor, ok := strings.Cut(part, "=")
		if !ok || tok == "" || actor == "" {
			return nil, fmt.Errorf("REPLAYER_TOKENS: entry %d is not token=actor", len(s.tokens)+1)
		}
		s.tokens = append(s.tokens, staticToken{token: []byte(tok), actor: actor})
	}
	if len(s.tokens) == 0 {
		return nil, errors.New("REPLAYER_TOKENS: no tokens")
	}
	return s, nil
}

// Authenticate compares token with every configured token in constant time.
func (s *Static) Authenticate(_ context.Context, token string) (string, error) {
	actor := ""
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare(t.token, []byte(token)) == 1 {
			actor = t.actor
		}
	}
	if actor == "" {
		return "", ErrUnauthenticated
	}
	return actor, nil
}

// Validator validates a Google ID token for an audience; idtoken.Validate in production.
type Validator func(ctx context.Context, token, audience string) (*idtoken.Payload, error)

// OIDC accepts Google ID tokens for Audience whose verified email is in Allowed.
// idtoken.Validate checks signature, audience and expiry only; issuer, email and
// email_verified are checked here.
type OIDC struct {
	Audience string
	Allowed  []string
	Validate Validator
}

var _ Authenticator = (*OIDC)(nil)

// Authenticate returns the token's email.
func (o *OIDC) Authenticate(ctx context.Context, token string) (string, error) {
	validate := o.Validate
	if validate == nil {
		validate = idtoken.Validate
	}
	p, err := validate(ctx, token, o.Audience)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	email, err := CheckClaims(p)
	if err != nil {
		return "", err
	}
	if !slices.Contains(o.Allowed, email) {
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

type actorKey struct{}

// WithActor returns ctx carrying actor.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// Actor returns the authenticated actor, or "".
func Actor(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// Require lets a request through only with a valid bearer token, putting its actor in the
// context; otherwise it answers 401 with a JSON error and a WWW-Authenticate challenge.
func Require(a Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := BearerToken(r)
			actor := ""
			var err error = ErrUnauthenticated
			if tok != "" {
				actor, err = a.Authenticate(r.Context(), tok)
			}
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="replayer"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":{"code":401,"message":"missing or invalid bearer token"}}`))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithActor(r.Context(), actor)))
		})
	}
}
