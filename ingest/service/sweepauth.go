package service

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/leadpipe/leadpipe/common/idauth"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/secrets"
)

// authenticator checks the bearer credential of an internal call; nil lets every call in.
type authenticator interface {
	Authenticate(ctx context.Context, token string) (string, error)
}

// staticToken accepts one bearer token (SWEEP_AUTH=token).
type staticToken []byte

func (t staticToken) Authenticate(_ context.Context, token string) (string, error) {
	if token == "" || subtle.ConstantTimeCompare(t, []byte(token)) != 1 {
		return "", idauth.ErrUnauthenticated
	}
	return "sweep-token", nil
}

// sweepAuthenticator builds the check of POST /internal/sweep from SWEEP_AUTH: the shared
// OIDC verifier (Cloud Scheduler's ID token: audience, Google issuer, verified email, allowed
// service account), a static token, or none.
func sweepAuthenticator(ctx context.Context, cfg Config, r *secrets.Resolver, validate idauth.Validator) (authenticator, error) {
	switch cfg.SweepAuth {
	case "none":
		return nil, nil
	case "token":
		tok, err := r.Resolve(ctx, cfg.SweepToken)
		if err != nil {
			return nil, fmt.Errorf("SWEEP_TOKEN: %w", err)
		}
		if strings.TrimSpace(tok) == "" {
			return nil, errors.New("SWEEP_TOKEN: the secret is blank")
		}
		return staticToken(tok), nil
	default:
		return &idauth.Verifier{Audience: cfg.SweepAudience, Allowed: idauth.SplitList(cfg.SweepServiceAccounts), Validate: validate}, nil
	}
}

// requireCaller answers 401 unless the call carries a credential a accepts.
func requireCaller(a authenticator) gin.HandlerFunc {
	return func(c *gin.Context) {
		if a == nil {
			return
		}
		if _, err := a.Authenticate(c.Request.Context(), idauth.BearerToken(c.Request)); err != nil {
			logging.FromContext(c.Request.Context()).WarnContext(c.Request.Context(), "internal call rejected", "route", c.FullPath())
			c.Header("WWW-Authenticate", `Bearer realm="ingest"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"status": "error", "error": "caller not authenticated"})
		}
	}
}
