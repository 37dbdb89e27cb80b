package views

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
)

// MaxQuery bounds a search: keys and ids are far shorter, and Firestore refuses indexed values
// over 1500 bytes.
const MaxQuery = 1500

// findLimit bounds the leads one search returns.
const findLimit = 20

// How a search matched (Match.By).
const (
	ByKey         = "idempotency_key_or_id" // idempotency key, event doc id or event id
	ByShortID     = "short_id"
	ByEmail       = "email"
	ByPhone       = "phone"
	ByExternalID  = "crm_external_id"
	ByCRMRecordID = "crm_record_id"
	BySourceEvent = "source_event_id"
)

// Match is one lead a search found.
type Match struct {
	By    string           `json:"matched_by"`
	Event *EventView       `json:"event"`
	DLQ   *store.DLQRecord `json:"dlq,omitempty"`
}

// FindResult is GET /v1/events?q=.
type FindResult struct {
	Matches []Match `json:"matches"`
	// Note explains a search that could not use every index (no PII_HASH_KEY).
	Note string `json:"note,omitempty"`
}

// Find looks a lead up by anything an operator may have at hand: idempotency key, event id or
// doc id, a short id (a prefix of the doc id), email, phone in any format, CRM external id
// (the contact's upsert key), CRM record id, or source event id. Email, phone and external id
// go through the keyed-hash lookup index, so the query itself is never stored or compared in
// clear. An empty result is not an error.
func (r *Reader) Find(ctx context.Context, q string) (*FindResult, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, fmt.Errorf("%w: q is required", ErrInvalid)
	}
	if len(q) > MaxQuery {
		return nil, fmt.Errorf("%w: q longer than %d bytes", ErrInvalid, MaxQuery)
	}
	res := &FindResult{Matches: []Match{}}
	seen := map[string]bool{}
	add := func(by string, docs ...*store.EventDoc) {
		for _, d := range docs {
			if d == nil || seen[d.DocID] || len(res.Matches) >= findLimit {
				continue
			}
			seen[d.DocID] = true
			res.Matches = append(res.Matches, Match{By: by, Event: NewEventView(d)})
		}
	}
	if d, err := r.st.FindEvent(ctx, q); err == nil {
		add(ByKey, d)
	} else if !isNotFound(err) {
		return nil, err
	}
	lower := strings.ToLower(q)
	if len(lower) >= 6 && len(lower) < 64 && isHex(lower) {
		docs, err := r.st.EventsWithIDPrefix(ctx, lower, findLimit)
		if err != nil {
			return nil, err
		}
		add(ByShortID, docs...)
	}
	if r.hasher != nil {
		groups := []struct {
			by     string
			tokens []string
		}{
			{ByEmail, r.emailTokens(q)},
			{ByPhone, store.PhoneTokens(r.hasher, phoneLike(q))},
			{ByExternalID, []string{r.hasher.Token(pii.KindExternalID, q)}},
		}
		for _, g := range groups {
			if len(g.tokens) == 0 {
				continue
			}
			ids, err := r.st.LookupEvents(ctx, g.tokens, findLimit)
			if err != nil {
				return nil, err
			}
			docs, err := r.st.GetEvents(ctx, ids)
			if err != nil {
				return nil, err
			}
			add(g.by, docs...)
		}
	} else if strings.Contains(q, "@") || phoneLike(q) != "" {
		res.Note = "search by email, phone or CRM external id is off: the replayer has no PII_HASH_KEY"
	}
	for _, f := range []struct{ by, field string }{{ByCRMRecordID, "crm_record_id"}, {BySourceEvent, "event.source_event_id"}} {
		docs, err := r.st.EventsWhere(ctx, f.field, q, findLimit)
		if err != nil {
			return nil, err
		}
		add(f.by, docs...)
	}
	for i := range res.Matches {
		rec, err := r.st.GetDLQ(ctx, res.Matches[i].Event.ID)
		switch {
		case err == nil:
			res.Matches[i].DLQ = rec
		case !isNotFound(err):
			return nil, err
		}
	}
	return res, nil
}

// phoneLike returns q when it reads as a phone number (digits with + - ( ) . and spaces, at
// least six digits), else "".
func phoneLike(q string) string {
	digits := 0
	for _, c := range q {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune("+-(). ", c):
		default:
			return ""
		}
	}
	if digits < 6 {
		return ""
	}
	return q
}

// emailTokens is the lookup token of q when it reads as an email.
func (r *Reader) emailTokens(q string) []string {
	if !strings.Contains(q, "@") {
		return nil
	}
	return []string{r.hasher.Email(q)}
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
