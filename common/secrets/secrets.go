// Package secrets resolves secret references from configuration files, which never hold the
// secrets themselves. A reference is either
//
//	env:NAME                              an environment variable (read through a config.Lookuper)
//	projects/P/secrets/S/versions/V       a Secret Manager secret version
//
// The Secret Manager client is created on first use only, so a stack whose references are all
// environment variables never needs Google credentials.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"

	"github.com/leadpipe/leadpipe/common/config"
)

// Sentinel errors. Resolve wraps them with the reference (never the value).
var (
	// ErrBadReference: the reference is neither env:NAME nor a Secret Manager version name.
	ErrBadReference = errors.New("bad secret reference")
	// ErrNotSet: the environment variable is unset or empty.
	ErrNotSet = errors.New("secret not set")
	// ErrBlank: the secret's value is empty or only white space (an environment variable set
	// to spaces, a Secret Manager version holding a blank line). A verifier keyed by it would
	// accept what anyone can sign, so Resolve refuses it.
	ErrBlank = errors.New("secret is blank")
)

// Resolver resolves references. It is safe for concurrent use.
type Resolver struct {
	env  config.Lookuper
	opts []option.ClientOption

	mu sync.Mutex
	sm *secretmanager.Client
}

// NewResolver returns a Resolver reading environment references through env (nil: the process
// environment). opts configure the Secret Manager client (tests point it at a fake).
func NewResolver(env config.Lookuper, opts ...option.ClientOption) *Resolver {
	if env == nil {
		env = config.OSLookuper()
	}
	return &Resolver{env: env, opts: opts}
}

// IsSecretManager reports whether ref names a Secret Manager version.
func IsSecretManager(ref string) bool {
	parts := strings.Split(ref, "/")
	return len(parts) == 6 && parts[0] == "projects" && parts[2] == "secrets" && parts[4] == "versions" &&
		parts[1] != "" && parts[3] != "" && parts[5] != ""
}

// Check reports whether ref is well formed, without resolving it.
func Check(ref string) error {
	if name, ok := strings.CutPrefix(ref, "env:"); ok && name != "" {
		return nil
	}
	if IsSecretManager(ref) {
		return nil
	}
	return fmt.Errorf("%w %q: want env:NAME or projects/P/secrets/S/versions/V", ErrBadReference, ref)
}

// Resolve returns the secret value. ctx bounds the Secret Manager call.
func (r *Resolver) Resolve(ctx context.Context, ref string) (string, error) {
	if err := Check(ref); err != nil {
		return "", err
	}
	if name, ok := strings.CutPrefix(ref, "env:"); ok {
		v, found := r.env.Lookup(name)
		if !found || v == "" {
			return "", fmt.Errorf("resolve %s: %w", ref, ErrNotSet)
		}
		if strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("resolve %s: %w", ref, ErrBlank)
		}
		return v, nil
	}
	c, err := r.client(ctx)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	resp, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: ref})
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	v := string(resp.GetPayload().GetData())
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("resolve %s: %w", ref, ErrBlank)
	}
	return v, nil
}

// Close releases the Secret Manager client, if one was created.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sm == nil {
		return nil
	}
	err := r.sm.Close()
	r.sm = nil
	return err
}

func (r *Resolver) client(ctx context.Context) (*secretmanager.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sm != nil {
		return r.sm, nil
	}
	c, err := secretmanager.NewClient(ctx, r.opts...)
	if err != nil {
		return nil, fmt.Errorf("secret manager client: %w", err)
	}
	r.sm = c
	return c, nil
}
