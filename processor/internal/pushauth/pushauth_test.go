package pushauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/api/idtoken"
)

func TestMiddleware(t *testing.T) {
	const sa = "push@p.iam.gserviceaccount.com"
	good := map[string]any{"email": sa, "email_verified": true}
	tests := []struct {
		name   string
		header string
		iss    string
		claims map[string]any
		err    error
		want   int
	}{
		{"valid", "Bearer t", "https://accounts.google.com", good, nil, 200},
		{"no token", "", "", nil, nil, 401},
		{"invalid signature", "Bearer t", "", nil, errors.New("bad sig"), 401},
		{"wrong issuer", "Bearer t", "https://evil.example", good, nil, 403},
		{"wrong email", "Bearer t", "accounts.google.com", map[string]any{"email": "x@y", "email_verified": true}, nil, 403},
		{"unverified email", "Bearer t", "accounts.google.com", map[string]any{"email": sa, "email_verified": false}, nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotAud string
			h := Middleware(Config{Audience: "aud", ServiceAccount: sa, Validate: func(_ context.Context, _, aud string) (*idtoken.Payload, error) {
				gotAud = aud
				if tt.err != nil {
					return nil, tt.err
				}
				return &idtoken.Payload{Issuer: tt.iss, Audience: aud, Claims: tt.claims}, nil
			}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			req := httptest.NewRequest("POST", "/pubsub/push", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status: got %d, want %d", rec.Code, tt.want)
			}
			if tt.header != "" && gotAud != "aud" {
				t.Errorf("audience passed to Validate: got %q, want aud", gotAud)
			}
		})
	}
}
