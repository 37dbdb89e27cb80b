// Package views is the replayer's read model: what the JSON API answers and the triage page
// renders, built from the store in one place, so the two show the same facts and neither
// reaches into the other. It reads only; replays, discards and bulk jobs are the replay and
// bulk packages'.
//
// Nothing here returns personal data unless the actor may read raw payloads (Detail with
// includeRaw); searches by email or phone go through keyed hashes (store.CollLookup).
package views

import (
	"github.com/leadpipe/leadpipe/common/failure"

	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
)

// RawStore reads archived raw payloads.
type RawStore interface {
	Get(ctx context.Context, ref string) (*archive.Raw, error)
}

var _ RawStore = (*archive.Archive)(nil)

// ErrForbidden: the actor lacks the permission (raw payloads).
var ErrForbidden = errors.New("forbidden")

// ErrInvalid: a filter, window or query the read model cannot use (HTTP 400).
var ErrInvalid = errors.New("invalid request")

// Reader builds the views. Safe for concurrent use.
type Reader struct {
	st         *store.Store
	raw        RawStore
	rawReaders []string
	hasher     *pii.Hasher
}

// New returns a Reader. raw may be nil (no payloads shown); hasher may be nil (no search by
// email, phone or CRM external id: PII_HASH_KEY unset).
func New(st *store.Store, raw RawStore, rawReaders []string, hasher *pii.Hasher) *Reader {
	return &Reader{st: st, raw: raw, rawReaders: rawReaders, hasher: hasher}
}

// Now is the store's clock.
func (r *Reader) Now() time.Time { return r.st.Now() }

// CanReadRaw reports whether actor may see raw payloads and normalized events.
func (r *Reader) CanReadRaw(actor string) bool { return slices.Contains(r.rawReaders, actor) }

// ParseFilter reads source, failure_class, status, since and until from q (RFC 3339, or the
// page's "2006-01-02T15:04" in UTC); ErrInvalid for a bad status or time.
func ParseFilter(q map[string][]string) (store.DLQFilter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	f := store.DLQFilter{Source: get("source"), FailureClass: failure.Class(get("failure_class")), Status: store.DLQStatus(get("status"))}
	switch f.Status {
	case "", store.DLQOpen, store.DLQReplayed, store.DLQDiscarded, store.DLQResolved:
	default:
		return f, fmt.Errorf("%w: status must be open, replayed, discarded or resolved", ErrInvalid)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := get(p.name); s != "" {
			t, err := parseTime(s)
			if err != nil {
				return f, fmt.Errorf("%w: %s must be RFC 3339", ErrInvalid, p.name)
			}
			*p.dst = t.UTC()
		}
	}
	return f, nil
}

// parseTime takes RFC 3339, and the page's datetime-local form ("2006-01-02T15:04", read as
// UTC: the page converts the viewer's local time before it submits).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04", s)
}

// ListDLQ is one page of DLQ records matching f.
func (r *Reader) ListDLQ(ctx context.Context, f store.DLQFilter, n int, token string) (*store.DLQPage, error) {
	page, err := r.st.ListDLQ(ctx, f, n, token)
	if err != nil {
		return nil, err
	}
	if page.Records == nil {
		page.Records = []*store.DLQRecord{}
	}
	return page, nil
}

// CountDLQ groups records with status by failure class and source (at most limit read).
func (r *Reader) CountDLQ(ctx context.Context, status store.DLQStatus, limit int) ([]store.DLQCount, bool, error) {
	return r.st.CountDLQ(ctx, status, limit)
}

// CountMatching counts the records f matches: the preview of a bulk action.
func (r *Reader) CountMatching(ctx context.Context, f store.DLQFilter) (int64, error) {
	return r.st.CountDLQFilter(ctx, f)
}

// Audit is one page of audit entries.
func (r *Reader) Audit(ctx context.Context, f store.AuditFilter, n int, token string) (*store.AuditPage, error) {
	page, err := r.st.ListAudit(ctx, f, n, token)
	if err != nil {
		return nil, err
	}
	if page.Entries == nil {
		page.Entries = []*store.AuditEntry{}
	}
	return page, nil
}

// Job is a bulk replay job.
func (r *Reader) Job(ctx context.Context, id string) (*store.ReplayJob, error) {
	return r.st.GetReplayJob(ctx, id)
}

// Detail gathers a record, its event and attempts, and with includeRaw the normalized event
// and raw payload (ErrForbidden unless actor may read them). A replayed record whose event has
// since succeeded is marked resolved on the way (store.ResolveDLQ), so nobody sees "replayed"
// for a lead that is in the CRM.
func (r *Reader) Detail(ctx context.Context, id, actor string, includeRaw bool) (*Detail, error) {
	if includeRaw && !r.CanReadRaw(actor) {
		return nil, fmt.Errorf("raw payload: %w", ErrForbidden)
	}
	id, err := r.resolveShortID(ctx, id)
	if err != nil {
		return nil, err
	}
	if includeRaw {
		// A raw read needs a reason and is audited before anything is returned.
		reason := readReason(ctx)
		if reason == "" {
			return nil, fmt.Errorf("%w: a reason is required to read the raw payload and normalized event", ErrInvalid)
		}
		if len(reason) > MaxReason {
			return nil, fmt.Errorf("%w: reason longer than %d bytes", ErrInvalid, MaxReason)
		}
		if _, err := r.st.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: ActionReadRaw, Reason: reason, Targets: []string{id}}); err != nil {
			return nil, err
		}
	}
	rec, err := r.st.GetDLQ(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &Detail{Record: rec, Attempts: []store.Attempt{}}
	doc, err := r.st.GetEvent(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, nil
	case err != nil:
		return nil, err
	}
	if rec.Status == store.DLQReplayed && doc.State == store.StateSucceeded {
		if ok, err := r.st.Resolve(ctx, id); err == nil && ok {
			if rec, err = r.st.GetDLQ(ctx, id); err != nil {
				return nil, err
			}
			d.Record = rec
		}
	}
	d.Event = NewEventView(doc)
	if d.Attempts, err = r.st.Attempts(ctx, id); err != nil {
		return nil, err
	}
	if includeRaw {
		ev := doc.Event
		d.Normalized = &ev
		if ref := first(rec.RawEventRef, d.Event.RawEventRef); ref != "" && r.raw != nil {
			if d.Raw, err = r.raw.Get(ctx, ref); err != nil {
				d.RawError = "raw payload unavailable"
				logging.FromContext(ctx).WarnContext(ctx, "views: raw read failed", "dlq_id", id, "error", err.Error())
			}
		}
	}
	return d, nil
}

// ActionReadRaw is the audit action of a raw payload / normalized event read.
const ActionReadRaw = "read_raw"

// MaxReason is the longest reason accepted for an audited action, in bytes.
const MaxReason = 2000

type readReasonKey struct{}

// WithReadReason returns ctx carrying the operator's reason for a raw read (the reason query
// parameter of the API and the triage page); Detail with includeRaw requires one.
func WithReadReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, readReasonKey{}, strings.TrimSpace(reason))
}

func readReason(ctx context.Context) string {
	s, _ := ctx.Value(readReasonKey{}).(string)
	return s
}

// resolveShortID turns a unique prefix of a record id (the 12 characters lists show) into the
// full id; a full id, or a prefix that matches nothing or several, is returned unchanged or
// refused.
func (r *Reader) resolveShortID(ctx context.Context, id string) (string, error) {
	if len(id) >= 64 || len(id) < 6 || !isHex(id) {
		return id, nil
	}
	docs, err := r.st.EventsWithIDPrefix(ctx, id, 2)
	if err != nil {
		return "", err
	}
	switch len(docs) {
	case 1:
		return docs[0].DocID, nil
	case 0:
		return id, nil
	}
	return "", fmt.Errorf("%w: short id %s matches more than one lead; give more characters", ErrInvalid, id)
}

// ResolveID is resolveShortID for the writers (replay and discard take full ids).
func (r *Reader) ResolveID(ctx context.Context, id string) (string, error) {
	return r.resolveShortID(ctx, id)
}

// Where finds a lead by idempotency key, event document id or event id.
func (r *Reader) Where(ctx context.Context, key string) (*Where, error) {
	doc, err := r.st.FindEvent(ctx, key)
	if err != nil {
		return nil, err
	}
	return r.where(ctx, doc)
}

func (r *Reader) where(ctx context.Context, doc *store.EventDoc) (*Where, error) {
	out := &Where{Event: NewEventView(doc)}
	var err error
	if out.Attempts, err = r.st.Attempts(ctx, doc.DocID); err != nil {
		return nil, err
	}
	rec, err := r.st.GetDLQ(ctx, doc.DocID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		out.DLQ = rec
	}
	return out, nil
}

// CRMHealth is a CRM's breaker state, nil when the processor never wrote one.
func (r *Reader) CRMHealth(ctx context.Context, crm string) (*store.CRMHealth, error) {
	h, err := r.st.CRMHealth(ctx, crm)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return h, err
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// IdentityConflicts lists the newest identity conflicts (an identifier of an event already
// indexed to another contact: the event went to the kept contact, the rule is recorded), at
// most limit. Tokens are keyed hashes; no personal data.
func (r *Reader) IdentityConflicts(ctx context.Context, limit int) ([]store.IdentityConflict, error) {
	cs, err := r.st.ListIdentityConflicts(ctx, limit)
	if cs == nil && err == nil {
		cs = []store.IdentityConflict{}
	}
	return cs, err
}
