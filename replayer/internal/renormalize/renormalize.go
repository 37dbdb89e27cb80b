// Package renormalize rebuilds an event from its archived raw payload with its source's
// current mapping, for replays after a mapping fix.
package renormalize

import (
	"context"
	"fmt"
	"net/http"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
)

// RawStore reads archived raw payloads.
type RawStore interface {
	Get(ctx context.Context, ref string) (*archive.Raw, error)
}

// Renormalizer re-runs the current mapping on the raw body.
type Renormalizer struct {
	sources *mapping.Sources
	raw     RawStore
}

var _ replay.Renormalizer = (*Renormalizer)(nil)

// New returns a Renormalizer over the sources file's mappings and the raw archive.
func New(sources *mapping.Sources, raw RawStore) *Renormalizer {
	return &Renormalizer{sources: sources, raw: raw}
}

// Renormalize returns the event with the same idempotency key that the source's current
// mapping produces from the raw payload. The correlation id and audit pointers stay the
// original's. replay.ErrRenormalize when the source, the payload or the mapping fails;
// replay.ErrKeyChanged when no event with the same key comes out.
func (r *Renormalizer) Renormalize(ctx context.Context, doc *store.EventDoc) (*event.Event, error) {
	src, ok := r.sources.Get(doc.Source)
	if !ok {
		return nil, fmt.Errorf("%w: source %q is not configured", replay.ErrRenormalize, doc.Source)
	}
	ref := doc.RawRef
	if ref == "" {
		ref = doc.Event.Audit.RawEventRef
	}
	if ref == "" {
		return nil, fmt.Errorf("%w: event has no raw payload reference", replay.ErrRenormalize)
	}
	raw, err := r.raw.Get(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", replay.ErrRenormalize, err)
	}
	evs, err := src.Normalize(raw.Body, http.Header(raw.Headers), raw.ReceivedAt)
	if err != nil {
		return nil, fmt.Errorf("%w: mapping %s: %w", replay.ErrRenormalize, src.MappingVersion, err)
	}
	for i := range evs {
		if evs[i].IdempotencyKey != doc.IdempotencyKey {
			continue
		}
		ev := evs[i]
		ev.CorrelationID = doc.Event.CorrelationID
		ev.Audit = doc.Event.Audit
		if ev.Audit.RawEventRef == "" {
			ev.Audit.RawEventRef = ref
		}
		return &ev, nil
	}
	return nil, replay.ErrKeyChanged
}
