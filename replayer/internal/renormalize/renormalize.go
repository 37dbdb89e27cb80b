// Package renormalize rebuilds an event from its archived raw payload with its source's
// current mapping, for replays after a mapping fix.
package renormalize

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/storage"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
)

// RawStore reads archived raw payloads.
type RawStore interface {
	Get(ctx context.Context, ref string) (*archive.Raw, error)
}

var _ RawStore = (*archive.Archive)(nil)

// Renormalizer re-runs the current mapping on the raw body.
type Renormalizer struct {
	sources SourceSet
	raw     RawStore
}

var _ replay.Renormalizer = (*Renormalizer)(nil)

// New returns a Renormalizer over the sources' current mappings and the raw archive.
func New(sources SourceSet, raw RawStore) *Renormalizer {
	return &Renormalizer{sources: sources, raw: raw}
}

// Renormalize returns the event with the same idempotency key that the source's current
// mapping produces from the raw payload. The correlation id and audit pointers stay the
// original's. Errors: replay.ErrRenormalize when the sources file, the source or the mapping
// fails, also wrapping replay.ErrRawMissing when the event has no archived payload;
// replay.ErrKeyChanged when no event with the same key comes out; a failure.Retryable (or
// other classified) error when the archive cannot be read right now.
func (r *Renormalizer) Renormalize(ctx context.Context, doc *store.EventDoc) (*event.Event, error) {
	sources, err := r.sources.Current()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", replay.ErrRenormalize, err)
	}
	src, ok := sources.Get(doc.Source)
	if !ok {
		return nil, fmt.Errorf("%w: source %q is not configured", replay.ErrRenormalize, doc.Source)
	}
	ref := doc.RawRef
	if ref == "" {
		ref = doc.Event.Audit.RawEventRef
	}
	if ref == "" {
		return nil, fmt.Errorf("%w: %w: the event has no raw payload reference", replay.ErrRenormalize, replay.ErrRawMissing)
	}
	raw, err := r.raw.Get(ctx, ref)
	switch {
	case errors.Is(err, storage.ErrObjectNotExist), errors.Is(err, storage.ErrBucketNotExist):
		return nil, fmt.Errorf("%w: %w: %s", replay.ErrRenormalize, replay.ErrRawMissing, ref)
	case failure.Is(err, failure.Retryable), failure.Is(err, failure.Outage), failure.Is(err, failure.Auth),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The archive may answer later (or after an IAM fix): not the request's fault.
		return nil, fmt.Errorf("raw payload %s: %w", ref, err)
	case err != nil:
		// Stored but unusable (not an archive entry, bad reference): retrying will not help.
		return nil, fmt.Errorf("%w: raw payload %s: %w", replay.ErrRenormalize, ref, err)
	}
	// Items, not Normalize: one lead of a Meta POST renormalizes even when another change of
	// the same POST is still unusable.
	items, err := src.NormalizeItems(raw.Body, http.Header(raw.Headers), raw.ReceivedAt)
	if err != nil {
		return nil, fmt.Errorf("%w: mapping %s: %w", replay.ErrRenormalize, src.MappingVersion, err)
	}
	for _, it := range items {
		if it.Unusable != nil && it.Unusable.Partial.IdempotencyKey == doc.IdempotencyKey {
			return nil, fmt.Errorf("%w: mapping %s: %w", replay.ErrRenormalize, src.MappingVersion, it.Unusable)
		}
		if it.Event == nil || it.Event.IdempotencyKey != doc.IdempotencyKey {
			continue
		}
		ev := *it.Event
		ev.CorrelationID = doc.Event.CorrelationID
		ev.Audit = doc.Event.Audit
		if ev.Audit.RawEventRef == "" {
			ev.Audit.RawEventRef = ref
		}
		return &ev, nil
	}
	return nil, replay.ErrKeyChanged
}
