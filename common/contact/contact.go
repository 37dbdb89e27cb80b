// Package contact holds the pure data-quality policies that make one CRM contact out of many
// events: identity resolution (which canonical contact key an event's identifiers point to, and
// what to do when they disagree) and field trust and freshness (which of an event's fields may
// replace what the CRM record already holds). No I/O, no clock: the store runs these decisions
// inside its transactions (common/store, contact.go), the processor builds their inputs
// (processor/internal/contact).
package contact

import (
	"fmt"
	"strings"
	"time"
)

// Trust is a source's trust level for a field group, ordered: a higher level wins.
type Trust int

// Trust levels, as spelled in the sources file.
const (
	TrustLow      Trust = 1
	TrustStandard Trust = 2
	TrustHigh     Trust = 3
)

// ParseTrust reads "low", "standard" or "high".
func ParseTrust(s string) (Trust, error) {
	switch s {
	case "low":
		return TrustLow, nil
	case "standard":
		return TrustStandard, nil
	case "high":
		return TrustHigh, nil
	}
	return 0, fmt.Errorf("trust %q: want high, standard or low", s)
}

func (t Trust) String() string {
	switch t {
	case TrustLow:
		return "low"
	case TrustStandard:
		return "standard"
	case TrustHigh:
		return "high"
	}
	return fmt.Sprintf("trust(%d)", int(t))
}

// Group is a field group: sources are trusted per group.
type Group string

// Field groups.
const (
	// GroupIdentity: email and phone (identity.email, identity.phone_e164).
	GroupIdentity Group = "identity"
	// GroupContact: the person (first_name, last_name, job_title, ...).
	GroupContact Group = "contact"
	// GroupCompany: the organisation (company, website, industry, ...).
	GroupCompany Group = "company"
	// GroupMarketing: attribution (utm_*, campaign, ad ids, ...).
	GroupMarketing Group = "marketing"
	// GroupOther: every other attribute.
	GroupOther Group = "other"
)

// Groups lists the field groups.
var Groups = []Group{GroupIdentity, GroupContact, GroupCompany, GroupMarketing, GroupOther}

// ValidGroup reports whether g is a known group.
func ValidGroup(g string) bool {
	for _, k := range Groups {
		if string(k) == g {
			return true
		}
	}
	return false
}

// Field names of the identity fields as the record document keys them.
const (
	FieldEmail = "email"
	FieldPhone = "phone_e164"
)

var groupOf = map[string]Group{
	FieldEmail: GroupIdentity, FieldPhone: GroupIdentity,
	"first_name": GroupContact, "last_name": GroupContact, "full_name": GroupContact, "name": GroupContact,
	"job_title": GroupContact, "title": GroupContact, "city": GroupContact, "country": GroupContact,
	"company": GroupCompany, "company_name": GroupCompany, "website": GroupCompany, "industry": GroupCompany,
	"company_size": GroupCompany,
	"campaign":     GroupMarketing, "ad_id": GroupMarketing, "adset_id": GroupMarketing, "form_id": GroupMarketing,
	"lead_source": GroupMarketing,
}

// GroupOf is the group of a field (an attribute name, or FieldEmail / FieldPhone).
func GroupOf(field string) Group {
	if g, ok := groupOf[field]; ok {
		return g
	}
	if strings.HasPrefix(field, "utm_") {
		return GroupMarketing
	}
	return GroupOther
}

// CanonicalEmail is the email as the identity index keys it: trimmed and lower-cased; with
// gmail, addresses at gmail.com or googlemail.com also lose the dots and any +tag of their
// local part (Gmail delivers all those spellings to one mailbox), and googlemail.com becomes
// gmail.com. "" when the address has no "@".
func CanonicalEmail(email string, gmail bool) string {
	e := strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndex(e, "@")
	if at <= 0 || at == len(e)-1 {
		return ""
	}
	local, domain := e[:at], e[at+1:]
	if gmail && (domain == "gmail.com" || domain == "googlemail.com") {
		if i := strings.IndexByte(local, '+'); i >= 0 {
			local = local[:i]
		}
		local, domain = strings.ReplaceAll(local, ".", ""), "gmail.com"
		if local == "" {
			return ""
		}
	}
	return local + "@" + domain
}

// CanonicalPhone is an E.164 number as the index keys it: "+" and its digits; "" when there
// is no digit.
func CanonicalPhone(e164 string) string {
	var b strings.Builder
	for _, r := range e164 {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "+" + b.String()
}

// Identifier kinds in the identity index, in resolution priority order.
const (
	KindExternalID = "external_id" // the source's own contact id, scoped by source
	KindEmail      = "email"
	KindPhone      = "phone"
)

// Hit is one identifier of an event and what the identity index holds for it.
type Hit struct {
	Kind  string
	Token string // keyed hash of the canonical value
	// Key is the canonical contact key the index maps the identifier to; "" when unindexed.
	Key string
}

// Conflict is an identifier that the index maps to another contact than the one resolved.
type Conflict struct {
	Kind     string `firestore:"kind" json:"kind"`
	Token    string `firestore:"token" json:"token"`
	OtherKey string `firestore:"other_key" json:"other_key"`
}

// Resolution is the outcome of Resolve.
type Resolution struct {
	// Key is the canonical contact key the event is written to.
	Key string
	// New is true when no identifier was indexed: the event starts a contact (with proposed).
	New bool
	// Index are the hits to add to the index (unindexed ones), all pointing to Key.
	Index []Hit
	// Conflicts are the hits indexed to another key; they are left as they are.
	Conflicts []Conflict
}

// Resolve decides the canonical contact of an event from its identifiers' hits, given in
// priority order (external id, then email, then phone). The rule: the first indexed hit wins
// (so the email wins over the phone); every unindexed identifier joins that contact; an
// identifier indexed to another contact is a conflict, recorded and left pointing where it
// did: a conflict never creates a second contact nor moves an identifier. With no indexed hit
// the event starts a new contact under proposed.
func Resolve(hits []Hit, proposed string) Resolution {
	var r Resolution
	for _, h := range hits {
		if h.Key != "" {
			r.Key = h.Key
			break
		}
	}
	if r.Key == "" {
		r.Key, r.New = proposed, true
	}
	for _, h := range hits {
		switch {
		case h.Key == "":
			h.Key = r.Key
			r.Index = append(r.Index, h)
		case h.Key != r.Key:
			r.Conflicts = append(r.Conflicts, Conflict{Kind: h.Kind, Token: h.Token, OtherKey: h.Key})
		}
	}
	return r
}

// Stamp is where a field's value in the CRM came from: the record document keeps one per
// field (never the value itself).
type Stamp struct {
	Source     string    `firestore:"source" json:"source"`
	Trust      Trust     `firestore:"trust" json:"trust"`
	OccurredAt time.Time `firestore:"occurred_at" json:"occurred_at"`
	EventID    string    `firestore:"event_id,omitempty" json:"event_id,omitempty"`
}

// Value is one field an event carries, with the stamp it would leave.
type Value struct {
	Field string
	Value string
	// Identifier marks a field used to match the record (the email when it is the match key).
	Identifier bool
	Stamp      Stamp
}

// Verdict says why a value was or was not applied.
type Verdict string

// Verdicts.
const (
	Applied        Verdict = "applied"
	Empty          Verdict = "empty"           // empty values never blank a filled field
	LowerTrust     Verdict = "lower_trust"     // the field holds a value from a more trusted source
	Older          Verdict = "older"           // the field holds a newer value
	IdentifierHeld Verdict = "identifier_held" // an identifier set by another source of equal trust
)

// Decide is the trust and freshness rule for one field: cur is the field's stamp in the
// record (nil when the field was never set). A value applies only when it is non-empty, at
// least as trusted as cur and not older than cur. An identifier field already set is moreover
// replaced only by the source that set it or by a strictly more trusted one, so a peer source
// cannot move a match key.
func Decide(cur *Stamp, v Value) Verdict {
	switch {
	case strings.TrimSpace(v.Value) == "":
		return Empty
	case cur == nil:
		return Applied
	case v.Stamp.Trust < cur.Trust:
		return LowerTrust
	case v.Stamp.OccurredAt.Before(cur.OccurredAt):
		return Older
	case v.Identifier && v.Stamp.Trust == cur.Trust && v.Stamp.Source != cur.Source:
		return IdentifierHeld
	}
	return Applied
}

// Merge applies Decide to each value against the record's stamps: it returns the fields to
// send (in the order given), the fields withheld, and the record's stamps after the write.
// cur is not modified.
func Merge(cur map[string]Stamp, values []Value) (send, withheld []string, next map[string]Stamp) {
	next = make(map[string]Stamp, len(cur)+len(values))
	for k, s := range cur {
		next[k] = s
	}
	for _, v := range values {
		var c *Stamp
		if s, ok := next[v.Field]; ok {
			c = &s
		}
		switch Decide(c, v) {
		case Applied:
			send = append(send, v.Field)
			next[v.Field] = v.Stamp
		case Empty:
		default:
			withheld = append(withheld, v.Field)
		}
	}
	return send, withheld, next
}
