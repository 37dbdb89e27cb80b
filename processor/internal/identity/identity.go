// Package identity is the processor's data-quality step, a crm.Middleware that runs after
// enrichment (so a thin Meta lead has its email and phone) and before the CRM write: it
// resolves the event's canonical contact through the identity index (store.ResolveContact,
// one Firestore transaction fenced by the event's lease), sends only the fields that win the
// trust and freshness rule (common/contact), and commits their provenance to the record
// document after a successful write (store.CommitContact). Identifiers are keyed hashes
// (common/pii): no email or phone is stored in the index or in a document id.
package identity

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/leadpipe/leadpipe/common/contact"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
)

// Resolver is the store's contact model (store.Store implements it).
type Resolver interface {
	ResolveContact(ctx context.Context, l *store.Lease, req store.ContactRequest) (*store.ContactPlan, error)
	CommitContact(ctx context.Context, l *store.Lease, p *store.ContactPlan) error
	ReleaseContact(ctx context.Context, l *store.Lease, p *store.ContactPlan) error
}

var _ Resolver = (*store.Store)(nil)

// Config configures the step for one CRM.
type Config struct {
	CRM    string
	Store  Resolver
	Hasher *pii.Hasher
	// GmailCanonical folds Gmail dots and +tags in the index (IDENTITY_GMAIL_CANONICAL).
	GmailCanonical bool
	// Trust is a source's trust for a field group; nil trusts every source "standard".
	Trust func(source string, g contact.Group) contact.Trust
	// BusyWait is the Retry-After of a contact held by another event's write. Default 200ms.
	BusyWait time.Duration
	// Metrics may be nil.
	Metrics *Metrics
}

// Metrics counts resolutions and identity conflicts.
type Metrics struct {
	resolved  metric.Int64Counter
	conflicts metric.Int64Counter
}

// NewMetrics creates leadpipe.processor.identity.resolutions {crm, contact: new|known|unknown}
// and leadpipe.processor.identity.conflicts {crm, kind} on the global meter provider.
func NewMetrics() *Metrics {
	m := otel.Meter(crm.MeterName)
	r, _ := m.Int64Counter("leadpipe.processor.identity.resolutions", metric.WithUnit("{event}"),
		metric.WithDescription("Contact resolutions by CRM and contact (new, known, unknown: update-only and not in the index)."))
	c, _ := m.Int64Counter("leadpipe.processor.identity.conflicts", metric.WithUnit("{conflict}"),
		metric.WithDescription("Identifiers the identity index maps to another contact than the one resolved, by CRM and identifier kind."))
	return &Metrics{resolved: r, conflicts: c}
}

// Middleware returns the step; see the package comment. Without a lease in the context
// (store.WithLease) or without any identifier it passes the event on unchanged.
func Middleware(c Config) crm.Middleware {
	if c.BusyWait <= 0 {
		c.BusyWait = 200 * time.Millisecond
	}
	return func(next crm.Upserter) crm.Upserter {
		return crm.Func(func(ctx context.Context, ev *event.Event) (crm.Result, error) {
			l := store.LeaseFromContext(ctx)
			req := c.request(ev)
			if l == nil || len(req.Identifiers) == 0 {
				return next.Upsert(ctx, ev)
			}
			plan, err := c.Store.ResolveContact(ctx, l, req)
			switch {
			case errors.Is(err, store.ErrContactBusy):
				return crm.Result{}, &failure.Error{Class: failure.Retryable, After: c.BusyWait, Message: "contact record busy with another event's write", Err: err}
			case err != nil:
				return crm.Result{}, err
			}
			c.Metrics.record(ctx, c.CRM, plan, req.Create)
			log := logging.FromContext(ctx)
			if len(plan.Conflicts) > 0 {
				log.WarnContext(ctx, "identity conflict: email wins, recorded", "crm", c.CRM, "conflicts", len(plan.Conflicts))
			}
			out := Filtered(ev, plan)
			res, err := next.Upsert(crm.WithContact(ctx, crm.Contact{Key: plan.Key, Known: plan.Known}), out)
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err != nil {
				if rerr := c.Store.ReleaseContact(sctx, l, plan); rerr != nil {
					log.WarnContext(ctx, "contact hold not released", "error", rerr.Error())
				}
				return res, err
			}
			if cerr := c.Store.CommitContact(sctx, l, plan); cerr != nil {
				// The CRM has the write; a redelivery would send the same winning set again.
				log.WarnContext(ctx, "contact provenance not committed", "error", cerr.Error())
			}
			return res, nil
		})
	}
}

// Prerequest is the resolution request the push handler hands to the claim (store.ClaimFirst),
// so that a new contact is indexed and held in the claim's own commit: nil for an event the
// claim cannot resolve alone (one to be enriched first, which may change its identity; an
// update-only one; one without identifiers). The step then resolves as usual.
func Prerequest(c Config) func(ev *event.Event) *store.ContactRequest {
	return func(ev *event.Event) *store.ContactRequest {
		if ev.Enrich != nil || ev.Routing.Mode == event.ModeUpdateOnly {
			return nil
		}
		req := c.request(ev)
		if len(req.Identifiers) == 0 {
			return nil
		}
		return &req
	}
}

// request builds the resolution request of ev: identifiers (external id scoped by source,
// canonical email, E.164 phone) as keyed tokens, in priority order, and the event's fields
// with their stamps.
func (c *Config) request(ev *event.Event) store.ContactRequest {
	req := store.ContactRequest{CRM: c.CRM, Proposed: crm.ExternalID(ev, c.Hasher), Create: ev.Routing.Mode != event.ModeUpdateOnly,
		KeyToken: func(k string) string { return c.Hasher.Token(pii.KindExternalID, "contact\x00"+k) }}
	id := ev.Identity
	if id.ContactExternalID != "" {
		req.Identifiers = append(req.Identifiers, contact.Hit{Kind: contact.KindExternalID, Token: c.Hasher.Token(pii.KindExternalID, ev.Source+"\x00"+id.ContactExternalID)})
	}
	if e := contact.CanonicalEmail(id.Email, c.GmailCanonical); e != "" {
		req.Identifiers = append(req.Identifiers, contact.Hit{Kind: contact.KindEmail, Token: c.Hasher.Token(pii.KindEmail, e)})
	}
	if p := contact.CanonicalPhone(id.PhoneE164); p != "" {
		req.Identifiers = append(req.Identifiers, contact.Hit{Kind: contact.KindPhone, Token: c.Hasher.Token(pii.KindPhone, p)})
	}
	stamp := func(field string) contact.Stamp {
		t := contact.TrustStandard
		if c.Trust != nil {
			t = c.Trust(ev.Source, contact.GroupOf(field))
		}
		return contact.Stamp{Source: ev.Source, Trust: t, OccurredAt: ev.OccurredAt.UTC(), EventID: ev.EventID}
	}
	req.Values = append(req.Values,
		contact.Value{Field: contact.FieldEmail, Value: id.Email, Identifier: true, Stamp: stamp(contact.FieldEmail)},
		contact.Value{Field: contact.FieldPhone, Value: id.PhoneE164, Stamp: stamp(contact.FieldPhone)})
	for _, k := range sortedKeys(ev.Attributes) {
		req.Values = append(req.Values, contact.Value{Field: k, Value: ev.Attributes[k], Stamp: stamp(k)})
	}
	return req
}

// Filtered is the event the adapter writes: upserted by the canonical contact key
// (identity.contact_external_id, which crm.ExternalID returns), carrying only the fields in
// plan.Sent. A route whose match key is the email itself (upsert_key "email") keeps the email:
// it is the record's id there, not a field change.
func Filtered(ev *event.Event, plan *store.ContactPlan) *event.Event {
	out := *ev
	sent := make(map[string]bool, len(plan.Sent))
	for _, f := range plan.Sent {
		sent[f] = true
	}
	out.Identity.ContactExternalID = plan.Key
	if !sent[contact.FieldEmail] && ev.Routing.UpsertKey != "email" {
		out.Identity.Email = ""
	}
	if !sent[contact.FieldPhone] {
		out.Identity.PhoneE164 = ""
	}
	out.Attributes = maps.Clone(ev.Attributes)
	for k := range out.Attributes {
		if !sent[k] {
			delete(out.Attributes, k)
		}
	}
	return &out
}

func (m *Metrics) record(ctx context.Context, crmName string, p *store.ContactPlan, create bool) {
	if m == nil {
		return
	}
	state := "known"
	switch {
	case p.New && !create:
		state = "unknown"
	case p.New:
		state = "new"
	}
	m.resolved.Add(ctx, 1, metric.WithAttributes(attribute.String("crm", crmName), attribute.String("contact", state)))
	for _, c := range p.Conflicts {
		m.conflicts.Add(ctx, 1, metric.WithAttributes(attribute.String("crm", crmName), attribute.String("kind", c.Kind)))
	}
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
