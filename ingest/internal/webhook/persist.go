package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/store"
)

// delivery is one verified POST on its way to storage.
type delivery struct {
	src           *Source
	body          []byte
	receivedAt    time.Time
	correlationID string
	raw           *archive.Raw
	rawRef        string
	docs          []*store.EventDoc
	// reasons[i] is the unusable reason code of docs[i] in a delivery of several items ("" for
	// a usable one).
	reasons []string
}

// eventDoc is the document of a normalized event, in the outbox until published.
func (d *delivery) eventDoc(ev event.Event, delay time.Duration) *store.EventDoc {
	docID := event.DocID(ev.IdempotencyKey)
	ev.CorrelationID = d.correlationID
	ev.Audit.RawEventRef = d.rawRef
	ev.Audit.NormalizedEventRef = store.DocPath(docID)
	due := d.receivedAt.Add(delay)
	return &store.EventDoc{
		DocID: docID, IdempotencyKey: ev.IdempotencyKey, EventID: ev.EventID, Source: ev.Source,
		EventType: ev.EventType, CorrelationID: ev.CorrelationID, MappingVersion: ev.MappingVersion,
		Event: ev, RawRef: d.rawRef, State: store.StateReceived, OutboxDueAt: &due,
	}
}

// quarantineDoc is the document of an unusable payload: quarantined by ingest at once, in the
// outbox for the DLQ topic.
func (d *delivery) quarantineDoc(ue *mapping.UnusableError, delay time.Duration) *store.EventDoc {
	doc := d.eventDoc(*ue.Partial, delay)
	doc.State = store.StateQuarantined
	doc.QuarantinedBy = store.ByIngest
	doc.QuarantinedAt = d.receivedAt
	doc.FailureClass = failure.Permanent
	doc.ErrorMessage = ue.Error()
	return doc
}

// persist writes the raw payload and creates the event documents, concurrently. created[i]
// reports whether docs[i] was new (false: its idempotency key was known). Any write failure
// other than a duplicate is returned (classified), and the caller must not answer 2xx: the
// sender's retry finds the same object name and document ids, so a partial write is harmless.
func (h *Handler) persist(ctx context.Context, d *delivery) ([]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.PersistTimeout)
	defer cancel()
	created := make([]bool, len(d.docs))
	errs := make([]error, 2*len(d.docs)+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := h.archive.Put(ctx, d.raw); err != nil {
			errs[len(d.docs)] = err
		}
	})
	for i, doc := range d.docs {
		wg.Go(func() {
			err := h.store.CreateEvent(ctx, doc)
			switch {
			case err == nil:
				created[i] = true
			case errors.Is(err, store.ErrDuplicate):
				errs[i] = h.loadExisting(ctx, d.docs, i)
			default:
				errs[i] = err
			}
		})
		if h.opts.Hasher != nil {
			// The lookup index beside the event (hashes only; idempotent, so a sender's retry
			// after a failure here writes it again).
			wg.Go(func() { errs[len(d.docs)+1+i] = h.store.IndexEvent(ctx, h.opts.Hasher, doc) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("persist: %w", err)
	}
	return created, nil
}

// loadExisting replaces docs[i] with the stored document of its key, for the duplicate answer
// and a possible re-publish.
func (h *Handler) loadExisting(ctx context.Context, docs []*store.EventDoc, i int) error {
	existing, err := h.store.GetEvent(ctx, docs[i].DocID)
	if err != nil {
		return err
	}
	docs[i] = existing
	return nil
}
