// Package intake is the durable half of taking a lead in, shared by ingest's webhook handler and
// the replayer's reconcile so that both write exactly the same documents: the raw payload
// written once to GCS and the event documents created in Firestore (create-if-absent on the
// hashed idempotency key), concurrently, both durable before the caller reports success. The
// created documents sit in the outbox (outbox_due_at) until common/outbox publishes them.
package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
)

// Receipt is what the taker-in knows about one payload, beyond its events.
type Receipt struct {
	// RawRef is the gs:// reference of the archived raw payload.
	RawRef string
	// CorrelationID is the sender's (or a generated) correlation id.
	CorrelationID string
	// ReceivedAt is when the payload was taken in.
	ReceivedAt time.Time
	// OutboxDelay is how long after ReceivedAt the outbox sweep may publish the event.
	OutboxDelay time.Duration
}

// EventDoc is the document of a normalized event, in the outbox until published.
func EventDoc(ev event.Event, r Receipt) *store.EventDoc {
	docID := event.DocID(ev.IdempotencyKey)
	ev.CorrelationID = r.CorrelationID
	ev.Audit.RawEventRef = r.RawRef
	ev.Audit.NormalizedEventRef = store.DocPath(docID)
	if ref := fetchedRef(&ev, r.RawRef); ref != "" {
		refs := make(map[string]string, len(ev.Enrich.Refs)+1)
		for k, v := range ev.Enrich.Refs {
			refs[k] = v
		}
		refs[RefFetched] = ref
		enrich := *ev.Enrich
		enrich.Refs = refs
		ev.Enrich = &enrich
	}
	due := r.ReceivedAt.Add(r.OutboxDelay)
	return &store.EventDoc{
		DocID: docID, IdempotencyKey: ev.IdempotencyKey, EventID: ev.EventID, Source: ev.Source,
		EventType: ev.EventType, CorrelationID: ev.CorrelationID, MappingVersion: ev.MappingVersion,
		Event: ev, RawRef: r.RawRef, State: store.StateReceived, OutboxDueAt: &due,
	}
}

// RefFetched is the Enrich.Refs entry naming where the processor archives (and first looks for)
// the lead it fetches for a thin event: the gs:// reference of archive.FetchedName in the raw
// payload's bucket. The name is deterministic, so the reference exists before the object does.
const RefFetched = "fetched_ref"

// fetchedRef is the fetched-lead reference of a Meta Graph event, beside its raw payload.
func fetchedRef(ev *event.Event, rawRef string) string {
	if ev.Enrich == nil || ev.Enrich.Provider != mapping.EnrichMetaGraph || ev.Enrich.Refs["leadgen_id"] == "" {
		return ""
	}
	bucket, _, ok := strings.Cut(strings.TrimPrefix(rawRef, "gs://"), "/")
	if !ok || !strings.HasPrefix(rawRef, "gs://") {
		return ""
	}
	return "gs://" + bucket + "/" + archive.FetchedName(ev.Source, mapping.EnrichMetaGraph, ev.Enrich.Refs["leadgen_id"])
}

// Persist writes the raw payload and creates the event documents, concurrently: each event
// document is one Firestore commit, with its "find a lead" index entries (store.LookupTokens:
// hashes only) in the same commit, so taking a lead in costs one sequential Firestore round
// trip. created[i] reports whether docs[i] was new; a known idempotency key is not an error,
// and docs[i] is then replaced by the stored document (for a duplicate answer and a possible
// re-publish). Any other write failure is returned (classified), and the caller must not
// report success: a retry finds the same object name and document ids, so a partial write is
// harmless. ctx bounds the writes. A nil hasher writes no index entries (PII_HASH_KEY unset).
func Persist(ctx context.Context, st *store.Store, ar *archive.Archive, hasher *pii.Hasher, raw *archive.Raw, docs []*store.EventDoc) ([]bool, error) {
	created := make([]bool, len(docs))
	errs := make([]error, len(docs)+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := ar.Put(ctx, raw); err != nil {
			errs[len(docs)] = err
		}
	})
	for i, doc := range docs {
		wg.Go(func() {
			var index []store.LookupEntry
			if hasher != nil {
				index = store.LookupTokens(hasher, doc.Event.Identity)
			}
			err := st.CreateEvent(ctx, doc, index...)
			switch {
			case err == nil:
				created[i] = true
			case errors.Is(err, store.ErrDuplicate):
				existing, gerr := st.GetEvent(ctx, doc.DocID)
				if gerr != nil {
					errs[i] = gerr
					return
				}
				docs[i] = existing
			default:
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("persist: %w", err)
	}
	return created, nil
}
