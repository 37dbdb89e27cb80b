package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/contact"
)

// This file is one contact across sources, per CRM (issue 15): the identity index, the record
// documents with each field's provenance, and the identity conflicts. The processor calls
// ResolveContact after enrichment and before the CRM write, fenced by its lease, then
// CommitContact after a successful write (ReleaseContact after a failed one). The decisions are
// the pure policies of common/contact; this file only reads and writes them atomically.

// Collections of the contact model.
const (
	// collIdentities: identities/{crm}:{kind}:{token} maps one identifier (keyed hash) to its
	// canonical contact key.
	collIdentities = "identities"
	// collCRMRecords: crm_records/{crm}:{token of the contact key}, per field the source, trust
	// and occurred_at of the value the CRM holds (never the value), and the write hold.
	collCRMRecords = "crm_records"
	// collIdentityConflicts: identity_conflicts/{event doc id}:{kind}, one per identifier an
	// event carried that the index maps to another contact.
	collIdentityConflicts = "identity_conflicts"
)

// ErrContactBusy: another event holds the contact's record for its CRM write; retry shortly.
var ErrContactBusy = errors.New("contact record held by another event")

// ContactRequest is what ResolveContact decides on.
type ContactRequest struct {
	CRM string
	// Proposed is the key of a new contact (the event's own upsert key).
	Proposed string
	// Identifiers in resolution priority order (external id, email, phone); Key unset.
	Identifiers []contact.Hit
	// Values are the event's fields with their stamps.
	Values []contact.Value
	// Create says the event may start a contact (false for update-only events: an unknown
	// contact is left to the CRM's no-match and indexes nothing).
	Create bool
	// KeyToken maps a contact key to the token its record document is named by.
	KeyToken func(key string) string
}

// ContactResult is what the resolution recorded on the event document (events/{id}.contact).
type ContactResult struct {
	CRM       string             `firestore:"crm" json:"crm"`
	Key       string             `firestore:"key" json:"key"`
	RecordDoc string             `firestore:"record_doc" json:"record_doc"`
	New       bool               `firestore:"new" json:"new"`
	Sent      []string           `firestore:"sent" json:"sent"`
	Withheld  []string           `firestore:"withheld,omitempty" json:"withheld,omitempty"`
	Conflicts []contact.Conflict `firestore:"conflicts,omitempty" json:"conflicts,omitempty"`
	Fence     int64              `firestore:"fence" json:"fence"`
}

// ContactPlan is a resolved contact: the key to upsert by and the fields to send.
type ContactPlan struct {
	ContactResult
	// Known: the pipeline wrote this contact to the CRM before (its record document has
	// fields), so the write is an update even when sent as an upsert.
	Known  bool
	recID  string
	values []contact.Value
	// version is the record document's update time as ClaimFirst created it (zero otherwise);
	// withVerdict says CommitContact left its stamps to the verdict's commit.
	version     time.Time
	withVerdict bool
}

// RecordDoc is a CRM record document.
type RecordDoc struct {
	CRM        string                   `firestore:"crm" json:"crm"`
	ContactKey string                   `firestore:"contact_key" json:"contact_key"`
	Fields     map[string]contact.Stamp `firestore:"fields" json:"fields"`
	Hold       *RecordHold              `firestore:"hold,omitempty" json:"hold,omitempty"`
	CreatedAt  time.Time                `firestore:"created_at" json:"created_at"`
	UpdatedAt  time.Time                `firestore:"updated_at" json:"updated_at"`
}

// RecordHold is the event whose CRM write is in flight for the record.
type RecordHold struct {
	Event     string    `firestore:"event" json:"event"`
	Fence     int64     `firestore:"fence" json:"fence"`
	ExpiresAt time.Time `firestore:"expires_at" json:"expires_at"`
}

type identityDoc struct {
	CRM        string    `firestore:"crm"`
	Kind       string    `firestore:"kind"`
	ContactKey string    `firestore:"contact_key"`
	Event      string    `firestore:"event"`
	CreatedAt  time.Time `firestore:"created_at"`
}

// IdentityConflict is one recorded conflict (read-only for operators).
type IdentityConflict struct {
	ID        string    `firestore:"-" json:"id"`
	CRM       string    `firestore:"crm" json:"crm"`
	Event     string    `firestore:"event" json:"event"`
	Source    string    `firestore:"source" json:"source"`
	Kind      string    `firestore:"kind" json:"kind"`
	Token     string    `firestore:"token" json:"token"`
	KeptKey   string    `firestore:"kept_key" json:"kept_key"`
	OtherKey  string    `firestore:"other_key" json:"other_key"`
	Rule      string    `firestore:"rule" json:"rule"`
	CreatedAt time.Time `firestore:"created_at" json:"created_at"`
}

// ConflictRule is the rule recorded with every identity conflict.
const ConflictRule = "first indexed identifier wins (external id, then email, then phone); the other identifier keeps its contact"

func (s *Store) identityRef(crm string, h contact.Hit) *firestore.DocumentRef {
	return s.fs.Collection(collIdentities).Doc(crm + ":" + h.Kind + ":" + h.Token)
}

func (s *Store) recordRef(id string) *firestore.DocumentRef {
	return s.fs.Collection(collCRMRecords).Doc(id)
}

// ResolveContact resolves the event's contact in one transaction fenced by l (the event must
// still carry l's fence and be processing, else ErrFenceSuperseded): it reads the identity
// index for every identifier, decides the canonical key (contact.Resolve), adds the missing
// identifiers to the index (unless the event may not create a contact and none is known),
// records conflicts, decides the fields to send against the record document's stamps
// (contact.Merge), takes the record's hold until l expires (ErrContactBusy when another
// event's live hold is there) and writes the outcome on the event document. Two events of
// one new person resolving at the same moment serialize on the index documents, so both get
// one key.
func (s *Store) ResolveContact(ctx context.Context, l *Lease, req ContactRequest) (*ContactPlan, error) {
	if p := l.plan; p != nil && p.CRM == req.CRM {
		// Resolved by the claim's own commit (ClaimFirst): a new contact, indexed and held.
		return p, nil
	}
	ev := s.eventRef(l.DocID)
	// This transaction writes the event document: the version the claim wrote is gone, so the
	// verdict takes the transactional path.
	l.version = time.Time{}
	var plan *ContactPlan
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		plan = nil
		doc, err := txEvent(tx, ev)
		if err != nil {
			return err
		}
		if doc == nil || doc.Fence != l.Fence || doc.State != StateProcessing {
			return ErrFenceSuperseded
		}
		hits := append([]contact.Hit(nil), req.Identifiers...)
		refs := make([]*firestore.DocumentRef, len(hits))
		for i, h := range hits {
			refs[i] = s.identityRef(req.CRM, h)
		}
		snaps, err := tx.GetAll(refs)
		if err != nil {
			return err
		}
		for i, snap := range snaps {
			if !snap.Exists() {
				continue
			}
			var d identityDoc
			if err := snap.DataTo(&d); err != nil {
				return fmt.Errorf("decode identity %s: %w", snap.Ref.ID, err)
			}
			hits[i].Key = d.ContactKey
		}
		res := contact.Resolve(hits, req.Proposed)
		recID := req.CRM + ":" + req.KeyToken(res.Key)
		rec, err := txRecord(tx, s.recordRef(recID))
		if err != nil {
			return err
		}
		now := s.Now()
		if rec.Hold != nil && rec.Hold.Event != l.DocID && rec.Hold.ExpiresAt.After(now) {
			return ErrContactBusy
		}
		p := newPlan(l, req, res, recID, rec)
		if res.New && !req.Create {
			// Nothing known and no right to create: leave the index alone; the CRM decides.
			plan = p
			return tx.Update(ev, []firestore.Update{{Path: "contact", Value: p.ContactResult}, {Path: fUpdatedAt, Value: now}})
		}
		for _, h := range res.Index {
			if err := tx.Set(s.identityRef(req.CRM, h), identityDoc{CRM: req.CRM, Kind: h.Kind, ContactKey: h.Key, Event: l.DocID, CreatedAt: now}); err != nil {
				return err
			}
		}
		for _, c := range res.Conflicts {
			ic := IdentityConflict{CRM: req.CRM, Event: l.DocID, Source: doc.Source, Kind: c.Kind, Token: c.Token,
				KeptKey: res.Key, OtherKey: c.OtherKey, Rule: ConflictRule, CreatedAt: now}
			if err := tx.Set(s.fs.Collection(collIdentityConflicts).Doc(l.DocID+":"+c.Kind), ic); err != nil {
				return err
			}
		}
		if rec.CreatedAt.IsZero() {
			rec.CRM, rec.ContactKey, rec.CreatedAt = req.CRM, res.Key, now
		}
		rec.Hold = &RecordHold{Event: l.DocID, Fence: l.Fence, ExpiresAt: l.ExpiresAt}
		rec.UpdatedAt = now
		if err := tx.Set(s.recordRef(recID), rec); err != nil {
			return err
		}
		plan = p
		return tx.Update(ev, []firestore.Update{{Path: "contact", Value: p.ContactResult}, {Path: fUpdatedAt, Value: now}})
	})
	for _, sentinel := range []error{ErrFenceSuperseded, ErrContactBusy} {
		if errors.Is(err, sentinel) {
			return nil, fmt.Errorf("resolve contact %s: %w", l.DocID, sentinel)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("resolve contact %s: %w", l.DocID, classify(err))
	}
	return plan, nil
}

// newPlan is the plan of a resolution res against the record document rec as read: the fields
// that win (contact.Merge) and the values to stamp when the write succeeds.
func newPlan(l *Lease, req ContactRequest, res contact.Resolution, recID string, rec *RecordDoc) *ContactPlan {
	send, withheld, _ := contact.Merge(rec.Fields, req.Values)
	p := &ContactPlan{ContactResult: ContactResult{CRM: req.CRM, Key: res.Key, RecordDoc: collCRMRecords + "/" + recID,
		New: res.New, Sent: send, Withheld: withheld, Conflicts: res.Conflicts, Fence: l.Fence},
		Known: len(rec.Fields) > 0, recID: recID}
	for _, v := range req.Values {
		if slices.Contains(send, v.Field) {
			p.values = append(p.values, v)
		}
	}
	if p.Sent == nil {
		p.Sent = []string{}
	}
	return p
}

// CommitContact records a successful CRM write of p: the winning fields' stamps go into the
// record document (each re-decided against what is there now, so a hold that expired and was
// taken over meanwhile still leaves the newest, most trusted provenance) and the hold is
// released if it is still p's. Idempotent: a redelivery after a crash before this commit
// resolves the same winning set again and sends it again.
func (s *Store) CommitContact(ctx context.Context, l *Lease, p *ContactPlan) error {
	if p != nil && p.version.After(time.Time{}) && l.version.After(time.Time{}) {
		// The claim created the record document (ClaimFirst): its stamps are written by the
		// verdict's own commit (Complete), or by settleRecord if that commit falls back.
		p.withVerdict = true
		return nil
	}
	return s.settleRecord(ctx, "commit contact", l, p, true)
}

// ReleaseContact releases p's hold after a failed CRM write, changing no stamp.
func (s *Store) ReleaseContact(ctx context.Context, l *Lease, p *ContactPlan) error {
	return s.settleRecord(ctx, "release contact", l, p, false)
}

func (s *Store) settleRecord(ctx context.Context, op string, l *Lease, p *ContactPlan, commit bool) error {
	if p == nil || p.recID == "" {
		return nil
	}
	ref := s.recordRef(p.recID)
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		rec, err := txRecord(tx, ref)
		if err != nil {
			return err
		}
		if rec.CreatedAt.IsZero() {
			if !commit {
				return nil
			}
			rec.CRM, rec.ContactKey, rec.CreatedAt = p.CRM, p.Key, s.Now()
		}
		if commit {
			_, _, rec.Fields = contact.Merge(rec.Fields, p.values)
		}
		if rec.Hold != nil && rec.Hold.Event == l.DocID && rec.Hold.Fence == l.Fence {
			rec.Hold = nil
		}
		rec.UpdatedAt = s.Now()
		return tx.Set(ref, rec)
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, l.DocID, classify(err))
	}
	return nil
}

// txRecord reads a record document in a transaction; an empty one when it does not exist.
func txRecord(tx *firestore.Transaction, ref *firestore.DocumentRef) (*RecordDoc, error) {
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return &RecordDoc{}, nil
	}
	if err != nil {
		return nil, err
	}
	var r RecordDoc
	if err := snap.DataTo(&r); err != nil {
		return nil, fmt.Errorf("decode record %s: %w", ref.ID, err)
	}
	return &r, nil
}

// GetRecordDoc reads a record document by id ({crm}:{token}) or by the reference an event's
// contact result names (ContactResult.RecordDoc, "crm_records/{id}"); ErrNotFound when missing.
func (s *Store) GetRecordDoc(ctx context.Context, id string) (*RecordDoc, error) {
	id = strings.TrimPrefix(id, collCRMRecords+"/")
	return get(ctx, s.recordRef(id), "get record", func(snap *firestore.DocumentSnapshot) (*RecordDoc, error) {
		var r RecordDoc
		if err := snap.DataTo(&r); err != nil {
			return nil, fmt.Errorf("decode record %s: %w", snap.Ref.ID, err)
		}
		return &r, nil
	})
}

// ListIdentityConflicts returns up to limit recorded identity conflicts, newest first.
func (s *Store) ListIdentityConflicts(ctx context.Context, limit int) ([]IdentityConflict, error) {
	if limit <= 0 {
		limit = 50
	}
	it := s.fs.Collection(collIdentityConflicts).OrderBy("created_at", firestore.Desc).Limit(limit).Documents(ctx)
	defer it.Stop()
	var out []IdentityConflict
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list identity conflicts: %w", classify(err))
		}
		var c IdentityConflict
		if err := snap.DataTo(&c); err != nil {
			return nil, fmt.Errorf("decode identity conflict %s: %w", snap.Ref.ID, err)
		}
		c.ID = snap.Ref.ID
		out = append(out, c)
	}
}

type leaseKey struct{}

// WithLease returns a context carrying the lease the handler holds for the event it
// processes, so steps inside the CRM chain (contact resolution) can fence their writes.
func WithLease(ctx context.Context, l *Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// LeaseFromContext returns the lease WithLease put in ctx, or nil.
func LeaseFromContext(ctx context.Context) *Lease {
	l, _ := ctx.Value(leaseKey{}).(*Lease)
	return l
}
