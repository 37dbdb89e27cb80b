package auth

import (
	"net/http"
	"slices"

	"github.com/leadpipe/leadpipe/common/logging"
)

// Push verifies Pub/Sub push requests: a Google ID token for Audience signed for one of the
// ServiceAccounts (the push subscription's identity).
type Push struct {
	Audience        string
	ServiceAccounts []string
	Validate        Validator
}

// Verify wraps a push handler. A request without a valid identity gets 401, which Pub/Sub
// treats as a nack: a misconfigured subscription keeps its messages instead of losing them.
func (p *Push) Verify(next http.Handler) http.Handler {
	o := &OIDC{Audience: p.Audience, Allowed: p.ServiceAccounts, Validate: p.Validate}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := BearerToken(r)
		if tok == "" {
			http.Error(w, "missing push identity", http.StatusUnauthorized)
			return
		}
		email, err := o.Authenticate(r.Context(), tok)
		if err != nil || !slices.Contains(p.ServiceAccounts, email) {
			logging.FromContext(r.Context()).WarnContext(r.Context(), "push: identity rejected")
			http.Error(w, "invalid push identity", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
