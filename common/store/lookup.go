package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pii"
)

// collLookup is the "find any lead" index: one entry per (keyed hash of an identity value,
// event), so a lead can be found by email, phone or CRM external id without any of them stored
// in clear. Entry ids are "{token}_{event doc id}" (hashes only); writing one twice is
// harmless.
const collLookup = "lookup"

// LookupEntry is one index entry: Token = pii.Hasher.Token(kind, normalized value).
type LookupEntry struct {
	Token      string `firestore:"token"`
	Kind       string `firestore:"kind"`
	EventDocID string `firestore:"event_doc_id"`
}

// LookupTokens are the index tokens of an event's identity: its email, its phone (the full
// digits and the last ten, so a search without the country code finds it too) and its contact
// external id (the CRM's upsert key). Empty values give no token.
func LookupTokens(h *pii.Hasher, id event.Identity) []LookupEntry {
	var out []LookupEntry
	add := func(kind pii.Kind, tok string) {
		if tok != "" {
			out = append(out, LookupEntry{Token: tok, Kind: string(kind)})
		}
	}
	add(pii.KindEmail, h.Email(id.Email))
	for _, tok := range PhoneTokens(h, id.PhoneE164) {
		add(pii.KindPhone, tok)
	}
	if v := strings.TrimSpace(id.ContactExternalID); v != "" {
		add(pii.KindExternalID, h.Token(pii.KindExternalID, v))
	}
	return out
}

// PhoneTokens are the tokens of a phone number written in any format: all its digits, and its
// last ten digits when it has more (a national number typed without the country code).
func PhoneTokens(h *pii.Hasher, phone string) []string {
	var digits strings.Builder
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	d := digits.String()
	if len(d) < 6 {
		return nil
	}
	out := []string{h.Token(pii.KindPhone, "+"+d)}
	if len(d) > 10 {
		out = append(out, h.Token(pii.KindPhone, "+"+d[len(d)-10:]))
	}
	return out
}

// IndexEvent writes the lookup entries of an event document that exists (its identity hashed
// with h), one idempotent write each. Intake writes them with the event instead, in
// CreateEvent's commit; this indexes a document written without them.
func (s *Store) IndexEvent(ctx context.Context, h *pii.Hasher, doc *EventDoc) error {
	entries := LookupTokens(h, doc.Event.Identity)
	if len(entries) == 0 {
		return nil
	}
	// One plain write per entry (at most four): idempotent, so two deliveries of the same lead
	// writing them at once both succeed, and no batch contends on a shared commit.
	for _, e := range entries {
		e.EventDocID = doc.DocID
		if _, err := s.fs.Collection(collLookup).Doc(e.Token+"_"+doc.DocID).Set(ctx, e); err != nil {
			return fmt.Errorf("index event %s: %w", doc.DocID, classify(err))
		}
	}
	return nil
}

// LookupEvents returns the doc ids of events indexed under any of tokens, at most limit.
func (s *Store) LookupEvents(ctx context.Context, tokens []string, limit int) ([]string, error) {
	if len(tokens) == 0 {
		return nil, nil
	}
	if len(tokens) > 30 {
		tokens = tokens[:30] // Firestore's "in" takes up to 30 values
	}
	it := s.fs.Collection(collLookup).Where("token", "in", tokens).Limit(limit).Documents(ctx)
	defer it.Stop()
	var out []string
	seen := map[string]bool{}
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("lookup: %w", classify(err))
		}
		var e LookupEntry
		if err := snap.DataTo(&e); err != nil {
			return nil, fmt.Errorf("decode lookup %s: %w", snap.Ref.ID, err)
		}
		if !seen[e.EventDocID] {
			seen[e.EventDocID] = true
			out = append(out, e.EventDocID)
		}
	}
	return out, nil
}

// EventsWhere returns up to limit events whose field equals value (source event id, CRM record
// id: values that are not personal data and are indexed by Firestore's single-field indexes).
func (s *Store) EventsWhere(ctx context.Context, field, value string, limit int) ([]*EventDoc, error) {
	return s.queryEvents(ctx, s.fs.Collection(collEvents).Where(field, "==", value).Limit(limit), "events where "+field)
}

// EventsWithIDPrefix returns up to limit events whose document id starts with prefix (the
// short ids the page and replayctl show), a range over document names.
func (s *Store) EventsWithIDPrefix(ctx context.Context, prefix string, limit int) ([]*EventDoc, error) {
	c := s.fs.Collection(collEvents)
	q := c.Where(firestore.DocumentID, ">=", c.Doc(prefix)).Where(firestore.DocumentID, "<", c.Doc(prefix+"~")).Limit(limit)
	return s.queryEvents(ctx, q, "events with prefix")
}

// GetEvents reads events by doc id; missing ones are left out.
func (s *Store) GetEvents(ctx context.Context, ids []string) ([]*EventDoc, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	refs := make([]*firestore.DocumentRef, len(ids))
	for i, id := range ids {
		refs[i] = s.eventRef(id)
	}
	snaps, err := s.fs.GetAll(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("get events: %w", classify(err))
	}
	var out []*EventDoc
	for _, sn := range snaps {
		if !sn.Exists() {
			continue
		}
		d, err := decodeEvent(sn)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *Store) queryEvents(ctx context.Context, q firestore.Query, op string) ([]*EventDoc, error) {
	it := q.Documents(ctx)
	defer it.Stop()
	var out []*EventDoc
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, classify(err))
		}
		d, err := decodeEvent(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
}
