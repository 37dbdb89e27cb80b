package service

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
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
	snaps, err := f.store.Client().Collection(store.CollLookup).Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		for _, v := range s.Data() {
			if str, _ := v.(string); strings.Contains(str, "@") || strings.Contains(s.Ref.ID, "@") {
				t.Errorf("lookup entry %s holds an email in clear", s.Ref.ID)
			}
		}
	}
}
