package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
)

// Fetched is a record read from a source's own API for a thin event (the Graph API lead of a
// Meta Lead Ads event), stored next to the raw webhook so a replay or a redelivery needs the
// source's API no more: enrichment reads the archived copy first.
type Fetched struct {
	Source    string          `json:"source"`
	Provider  string          `json:"provider"` // e.g. meta_graph
	ID        string          `json:"id"`       // the source's id, e.g. the leadgen id
	FetchedAt time.Time       `json:"fetched_at"`
	Body      json.RawMessage `json:"body"` // as the source's API answered
}

// FetchedName is the object name of a fetched record: "raw/{source}/{provider}/{id}.json",
// beside the source's raw payloads and deterministic in the source's own id, so the processor's
// fetch and reconcile's listing of the same lead land on one object, written once. Source ids
// are not personal data.
func FetchedName(source, provider, id string) string {
	return "raw/" + source + "/" + provider + "/" + url.PathEscape(id) + ".json"
}

// PutFetched writes f under FetchedName if no object exists there and returns the gs://
// reference; an existing object is kept (the first fetch wins) and is not an error. Storage
// failures come back classified.
func (a *Archive) PutFetched(ctx context.Context, f *Fetched) (string, error) {
	name := FetchedName(f.Source, f.Provider, f.ID)
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("archive %s: %w", name, err)
	}
	w := a.client.Bucket(a.bucket).Object(name).If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ContentType = "application/json"
	w.Metadata = map[string]string{"source": f.Source, "provider": f.Provider, "fetched_at": f.FetchedAt.UTC().Format(time.RFC3339Nano)}
	w.ChunkSize = 0
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

// GetFetched reads the fetched record of (source, provider, id). A missing object is
// storage.ErrObjectNotExist (errors.Is), classified permanent; other failures are classified.
func (a *Archive) GetFetched(ctx context.Context, source, provider, id string) (*Fetched, error) {
	name := FetchedName(source, provider, id)
	r, err := a.client.Bucket(a.bucket).Object(name).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.Ref(name), classify(err))
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.Ref(name), classify(err))
	}
	var f Fetched
	if err := json.Unmarshal(b, &f); err != nil || !strings.HasPrefix(strings.TrimSpace(string(f.Body)), "{") {
		return nil, fmt.Errorf("decode %s: not a fetched record", a.Ref(name))
	}
	return &f, nil
}
