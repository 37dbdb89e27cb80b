package service_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/contact"
	"github.com/leadpipe/leadpipe/common/store"
)

// An identity conflict the processor records (an event whose email is indexed to one contact
// and its phone to another) is visible to operators at GET /v1/identity-conflicts: which
// contact was kept, which identifier pointed elsewhere, by keyed hashes only.
func TestIdentityConflictsAreListed(t *testing.T) {
	reset(t)
	ctx := context.Background()
	var empty struct {
		Conflicts []store.IdentityConflict `json:"conflicts"`
	}
	if code := call(t, "GET", "/v1/identity-conflicts", bobToken, nil, &empty); code != http.StatusOK || empty.Conflicts == nil || len(empty.Conflicts) != 0 {
		t.Fatalf("no conflicts yet: %d %+v, want 200 and an empty list", code, empty)
	}
	pol := store.LeasePolicy{Owner: "p", TTL: time.Minute, MaxAttempts: 5}
	resolve := func(n string, hits ...contact.Hit) *store.ContactPlan {
		t.Helper()
		ev := newEvent(n)
		l, err := st.Claim(ctx, &ev, pol)
		if err != nil {
			t.Fatal(err)
		}
		p, err := st.ResolveContact(ctx, l, store.ContactRequest{CRM: "salesforce", Proposed: "key-" + n, Create: true,
			Identifiers: hits, KeyToken: func(k string) string { return "k-" + k }})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CommitContact(ctx, l, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	email := contact.Hit{Kind: contact.KindEmail, Token: "tok-email-" + nonce()}
	phone := contact.Hit{Kind: contact.KindPhone, Token: "tok-phone-" + nonce()}
	a := resolve("conflict-a-"+nonce(), email)
	b := resolve("conflict-b-"+nonce(), phone)
	c := resolve("conflict-c-"+nonce(), email, phone)
	if c.Key != a.Key {
		t.Fatalf("the event with both identifiers went to %q, want the email's contact %q", c.Key, a.Key)
	}
	var got struct {
		Conflicts []store.IdentityConflict `json:"conflicts"`
	}
	if code := call(t, "GET", "/v1/identity-conflicts?limit=10", bobToken, nil, &got); code != http.StatusOK {
		t.Fatalf("list conflicts: %d", code)
	}
	if len(got.Conflicts) != 1 || got.Conflicts[0].KeptKey != a.Key || got.Conflicts[0].OtherKey != b.Key || got.Conflicts[0].Kind != string(contact.KindPhone) {
		t.Errorf("conflicts = %+v, want one: phone kept on %s, pointing at %s", got.Conflicts, a.Key, b.Key)
	}
	if code := call(t, "GET", "/v1/identity-conflicts?limit=0", bobToken, nil, nil); code != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", code)
	}
	if code := call(t, "GET", "/v1/identity-conflicts", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
}
