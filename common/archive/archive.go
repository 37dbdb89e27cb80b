// Package archive stores raw webhook payloads in Cloud Storage, write-once, so a lead can be
// re-normalized or audited later exactly as the sender sent it.
//
// Object names are "raw/{source}/{sha256 of body}.json": deterministic, so a retried delivery
// maps to the same object and the write-once precondition makes the second write a no-op.
// Names hold no personal data.
package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/leadpipe/leadpipe/common/failure"
)

// Raw is the stored object: the body as received plus the context needed to trust it later.
type Raw struct {
	Source      string              `json:"source"`
	ReceivedAt  time.Time           `json:"received_at"`
	ContentType string              `json:"content_type,omitempty"`
	Headers     map[string][]string `json:"headers"`
	Signature   SignatureResult     `json:"signature"`
	Body        []byte              `json:"body"` // base64 in JSON
}

// SignatureResult is what the signature check concluded.
type SignatureResult struct {
	Scheme   string `json:"scheme"`
	Verified bool   `json:"verified"`
	// KeyIndex is which of the source's active secrets matched (rotation), -1 when none.
	KeyIndex int `json:"key_index"`
}

// credentialHeaders are dropped before storing; signature headers are kept (they are MACs,
// not secrets) so the verification can be re-checked.
var credentialHeaders = map[string]bool{
	"Authorization":              true,
	"Proxy-Authorization":        true,
	"Cookie":                     true,
	"Set-Cookie":                 true,
	"X-Api-Key":                  true,
	"X-Goog-Iap-Jwt-Assertion":   true,
	"X-Serverless-Authorization": true,
}

// SafeHeaders copies h without credentials.
func SafeHeaders(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		ck := http.CanonicalHeaderKey(k)
		if credentialHeaders[ck] || strings.Contains(strings.ToLower(ck), "token") {
			continue
		}
		out[ck] = append([]string(nil), v...)
	}
	return out
}

// Archive writes to and reads from one bucket.
type Archive struct {
	client *storage.Client
	bucket string
}

// New returns an Archive on bucket.
func New(client *storage.Client, bucket string) *Archive {
	return &Archive{client: client, bucket: bucket}
}

// Bucket is the bucket name.
func (a *Archive) Bucket() string { return a.bucket }

// ObjectName is the deterministic object name for a source's body.
func ObjectName(source string, body []byte) string {
	sum := sha256.Sum256(body)
	return "raw/" + source + "/" + hex.EncodeToString(sum[:]) + ".json"
}

// Ref is "gs://bucket/name".
func (a *Archive) Ref(name string) string { return "gs://" + a.bucket + "/" + name }

// Put writes raw under its deterministic name if no object exists there, and returns the
// gs:// reference. An existing object (a retried delivery) is not an error. Storage failures
// come back classified (failure.Retryable, failure.Auth, ...).
func (a *Archive) Put(ctx context.Context, raw *Raw) (string, error) {
	name := ObjectName(raw.Source, raw.Body)
	b, err := json.Marshal(raw)
	if err != nil {
		return "", fmt.Errorf("archive %s: %w", name, err)
	}
	w := a.client.Bucket(a.bucket).Object(name).If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ContentType = "application/json"
	w.Metadata = map[string]string{"source": raw.Source, "received_at": raw.ReceivedAt.UTC().Format(time.RFC3339Nano)}
	w.ChunkSize = 0 // single request: payloads are small
	if _, err := w.Write(b); err != nil {
		_ = w.Close()
		return "", fmt.Errorf("archive %s: %w", name, classify(err))
	}
	if err := w.Close(); err != nil {
		var ge *googleapi.Error
		if errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed {
			return a.Ref(name), nil
		}
		return "", fmt.Errorf("archive %s: %w", name, classify(err))
	}
	return a.Ref(name), nil
}

// Get reads a stored payload by its gs:// reference.
func (a *Archive) Get(ctx context.Context, ref string) (*Raw, error) {
	bucket, name, ok := strings.Cut(strings.TrimPrefix(ref, "gs://"), "/")
	if !ok || !strings.HasPrefix(ref, "gs://") {
		return nil, fmt.Errorf("read %q: not a gs:// reference", ref)
	}
	r, err := a.client.Bucket(bucket).Object(name).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref, classify(err))
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref, classify(err))
	}
	var raw Raw
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ref, err)
	}
	return &raw, nil
}

// classify maps storage errors to failure classes.
func classify(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, storage.ErrObjectNotExist) || errors.Is(err, storage.ErrBucketNotExist) {
		return failure.Wrap(failure.Permanent, err, "gcs object or bucket not found")
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == http.StatusUnauthorized || ge.Code == http.StatusForbidden:
			return &failure.Error{Class: failure.Auth, Code: ge.Code, Message: "gcs", Err: err}
		case ge.Code == http.StatusTooManyRequests || ge.Code >= 500:
			return &failure.Error{Class: failure.Retryable, Code: ge.Code, Message: "gcs", Err: err}
		case ge.Code >= 400:
			return &failure.Error{Class: failure.Permanent, Code: ge.Code, Message: "gcs", Err: err}
		}
	}
	return failure.Wrap(failure.Retryable, err, "gcs")
}
