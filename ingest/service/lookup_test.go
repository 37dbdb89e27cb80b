package service

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pii"
)

// With PII_HASH_KEY, an accepted lead's email and CRM external id are in the lookup index as
// keyed hashes pointing at its event, so the replayer can find it; nothing in clear.
func TestAcceptedLeadIsIndexed(t *testing.T) {
	const key = "ingest-test-pii-key-0123456789"
	f := newFixture(t, map[string]string{"PII_HASH_KEY": key})
	l := newLead(t)
	if a := f.do(f.request(l)); a.code != http.StatusAccepted {
		t.Fatalf("answer = %d %v", a.code, a.body)
	}
	doc := f.eventDoc(l.key())
	h, err := pii.NewHasher([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	email := doc.Event.Identity.Email
	for what, tok := range map[string]string{
		"email":       h.Email(strings.ToUpper(email)),
		"external id": h.Token(pii.KindExternalID, doc.Event.Identity.ContactExternalID),
	} {
		ids, err := f.store.LookupEvents(ctx, []string{tok}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != event.DocID(l.key()) {
			t.Errorf("lookup by %s = %v, want the event %s", what, ids, event.DocID(l.key()))
		}
	}
	// The store hashes what it indexes (common/store TestLookupIndexHoldsNoClearValues): the
	// values in clear find nothing.
	for _, clear := range []string{email, strings.ToLower(email), doc.Event.Identity.ContactExternalID} {
		if ids, err := f.store.LookupEvents(ctx, []string{clear}, 10); err != nil || len(ids) != 0 {
			t.Errorf("lookup by a value in clear = %v, %v; want nothing", ids, err)
		}
	}
}
