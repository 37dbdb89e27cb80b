// Package pushauth verifies the OIDC token Pub/Sub attaches to push requests. idtoken.Validate
// checks signature, audience and expiry but not who the token is for: the middleware also
// checks iss, email (the push subscription's service account) and email_verified.
package pushauth

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/api/idtoken"

	"github.com/leadpipe/leadpipe/common/logging"
)

// Validator validates a token for an audience; idtoken.Validate in production.
type Validator func(ctx context.Context, token, audience string) (*idtoken.Payload, error)

// Config says what a valid push token looks like.
type Config struct {
	Audience       string // required: the audience set on the push subscription
	ServiceAccount string // required: the push subscription's service account email
	Validate       Validator
}

var issuers = map[string]bool{"https://accounts.google.com": true, "accounts.google.com": true}

// Middleware answers 401 when the bearer token is missing or invalid and 403 when it is valid
// but not the expected identity. Both nack: a misconfigured identity must not drop messages.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	if cfg.Validate == nil {
		cfg.Validate = idtoken.Validate
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || tok == "" {
				http.Error(w, "missing bearer token", http.StatusUnauthorized)
				return
			}
			p, err := cfg.Validate(r.Context(), tok, cfg.Audience)
			if err != nil {
				logging.FromContext(r.Context()).WarnContext(r.Context(), "push token rejected", "reason", "invalid token")
				http.Error(w, "invalid token", http.StatusUnauthorized)
				return
			}
			email, _ := p.Claims["email"].(string)
			verified, _ := p.Claims["email_verified"].(bool)
			if !issuers[p.Issuer] || !verified || email != cfg.ServiceAccount {
				logging.FromContext(r.Context()).WarnContext(r.Context(), "push token rejected", "reason", "unexpected identity")
				http.Error(w, "unexpected token identity", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
