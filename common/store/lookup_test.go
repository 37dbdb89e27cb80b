package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pii"
)

// The lookup index holds keyed hashes only: no document id or field of an entry contains the
// email, the phone digits or the external id it was built from, and the hashes find the event.
func TestLookupIndexHoldsNoClearValues(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	h, err := pii.NewHasher([]byte("store-test-pii-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	doc := newDoc("lookup-1")
	doc.Event.Identity = event.Identity{Email: "Ada.Lovelace@Example.com", PhoneE164: "+14155550100", ContactExternalID: "ext-ada-1815"}
	if err := st.IndexEvent(ctx, h, doc); err != nil {
		t.Fatal(err)
	}
	ids, err := st.LookupEvents(ctx, []string{h.Email("ada.lovelace@example.com")}, 10)
	if err != nil || len(ids) != 1 || ids[0] != doc.DocID {
		t.Fatalf("lookup by email token = %v, %v; want [%s]", ids, err, doc.DocID)
	}
	snaps, err := client.Collection("lookup").Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) == 0 {
		t.Fatal("no lookup entries written")
	}
	needles := []string{"ada", "lovelace", "example.com", "4155550100", "ext-ada"}
	for _, s := range snaps {
		for _, n := range needles {
			if strings.Contains(strings.ToLower(s.Ref.ID), n) {
				t.Errorf("lookup entry id %s holds %q", s.Ref.ID, n)
			}
			for k, v := range s.Data() {
				if str, _ := v.(string); strings.Contains(strings.ToLower(str), n) {
					t.Errorf("lookup entry %s field %s holds %q", s.Ref.ID, k, n)
				}
			}
		}
	}
}
