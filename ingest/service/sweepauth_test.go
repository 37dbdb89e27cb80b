package service

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
)

// googleKeys is a local stand-in for Google's signing keys: it signs ID tokens and serves
// their JWKS to idtoken's own validator (through its HTTP client), so the real RS256
// verification runs.
type googleKeys struct {
	key *rsa.PrivateKey
}

func newGoogleKeys(t *testing.T) *googleKeys {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &googleKeys{key: k}
}

func (g *googleKeys) RoundTrip(r *http.Request) (*http.Response, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "test-key", "use": "sig", "alg": "RS256",
		"n": b64(g.key.N.Bytes()), "e": b64(big.NewInt(int64(g.key.E)).Bytes()),
	}}})
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(jwks)), Request: r}, nil
}

func (g *googleKeys) validator(t *testing.T) func(ctx context.Context, token, audience string) (*idtoken.Payload, error) {
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(&http.Client{Transport: g}))
	if err != nil {
		t.Fatal(err)
	}
	return v.Validate
}

// sign makes an RS256 ID token with claims, signed by key.
func sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	b64 := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "test-key", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	signed := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

// TestSweepRequiresTheSchedulersOIDCToken: POST /internal/sweep is on the public service; it
// answers only a Google-signed ID token for its audience from the scheduler's service account.
func TestSweepRequiresTheSchedulersOIDCToken(t *testing.T) {
	const aud, sa = "https://ingest.example.run.app/internal/sweep", "scheduler@proj.iam.gserviceaccount.com"
	g := newGoogleKeys(t)
	sweepValidate = g.validator(t)
	t.Cleanup(func() { sweepValidate = nil })
	f := newFixture(t, map[string]string{"SWEEP_AUTH": "oidc", "SWEEP_AUDIENCE": aud, "SWEEP_SERVICE_ACCOUNTS": "other@proj.iam.gserviceaccount.com, " + sa})
	claims := func(mut func(map[string]any)) map[string]any {
		now := time.Now()
		c := map[string]any{"iss": "https://accounts.google.com", "aud": aud, "sub": "1234", "email": sa, "email_verified": true,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mut != nil {
			mut(c)
		}
		return c
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"scheduler", sign(t, g.key, claims(nil)), http.StatusOK},
		{"no token", "", http.StatusUnauthorized},
		{"garbage", "not-a-jwt", http.StatusUnauthorized},
		{"other audience", sign(t, g.key, claims(func(c map[string]any) { c["aud"] = "https://replayer.example" })), http.StatusUnauthorized},
		{"other service account", sign(t, g.key, claims(func(c map[string]any) { c["email"] = "eve@proj.iam.gserviceaccount.com" })), http.StatusUnauthorized},
		{"unverified email", sign(t, g.key, claims(func(c map[string]any) { c["email_verified"] = false })), http.StatusUnauthorized},
		{"other issuer", sign(t, g.key, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), http.StatusUnauthorized},
		{"expired", sign(t, g.key, claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), http.StatusUnauthorized},
		{"not Google's key", sign(t, other, claims(nil)), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.url+"/internal/sweep", nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if a := f.do(req); a.code != tt.want {
				t.Errorf("sweep = %d %v, want %d", a.code, a.body, tt.want)
			}
		})
	}
}

// TestSweepTokenMode: SWEEP_AUTH=token takes exactly the configured bearer token.
func TestSweepTokenMode(t *testing.T) {
	f := newFixture(t, map[string]string{"SWEEP_AUTH": "token", "SWEEP_TOKEN": "env:THE_SWEEP_TOKEN", "THE_SWEEP_TOKEN": "s3cret-sweep"})
	for tok, want := range map[string]int{"": 401, "wrong": 401, "s3cret-sweep": 200} {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/internal/sweep", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if a := f.do(req); a.code != want {
			t.Errorf("token %q: sweep = %d, want %d", tok, a.code, want)
		}
	}
}
