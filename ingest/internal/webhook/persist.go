package webhook

import (
	"context"
	"time"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/intake"
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
	return intake.EventDoc(ev, intake.Receipt{RawRef: d.rawRef, CorrelationID: d.correlationID, ReceivedAt: d.receivedAt, OutboxDelay: delay})
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

// persist writes the raw payload and creates the event documents (intake.Persist, shared with
// the replayer's reconcile), within the persist timeout.
func (h *Handler) persist(ctx context.Context, d *delivery) ([]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.PersistTimeout)
	defer cancel()
	return intake.Persist(ctx, h.store, h.archive, h.opts.Hasher, d.raw, d.docs)
}
