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
	"strings"

	"google.golang.org/api/idtoken"

	"github.com/leadpipe/leadpipe/common/idauth"
)

// ErrUnauthenticated: no credential, or one that does not check out. Callers answer 401.
var ErrUnauthenticated = idauth.ErrUnauthenticated

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
type Validator = idauth.Validator

// OIDC accepts Google ID tokens for Audience whose verified email is in Allowed (the shared
// verifier of common/idauth: issuer, email and email_verified are checked there).
type OIDC = idauth.Verifier

var _ Authenticator = (*OIDC)(nil)

// CheckClaims checks a Google issuer and a verified email; see idauth.CheckClaims.
func CheckClaims(p *idtoken.Payload) (string, error) { return idauth.CheckClaims(p) }

// BearerToken returns the token of an "Authorization: Bearer <token>" header, or "".
func BearerToken(r *http.Request) string { return idauth.BearerToken(r) }

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
