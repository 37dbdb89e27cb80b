package identity

import (
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/contact"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
)

func TestFilteredSendsOnlyWinners(t *testing.T) {
	ev := &event.Event{Source: "form", Identity: event.Identity{ContactExternalID: "f-1", Email: "a@example.com", PhoneE164: "+15550001"},
		Attributes: map[string]string{"first_name": "A", "company": "C", "utm_source": "u"}, Routing: event.Routing{CRM: "salesforce"}}
	plan := &store.ContactPlan{ContactResult: store.ContactResult{Key: "K", Sent: []string{"company", contact.FieldPhone}}}
	out := Filtered(ev, plan)
	if out.Identity.ContactExternalID != "K" || out.Identity.Email != "" || out.Identity.PhoneE164 != "+15550001" {
		t.Errorf("identity %+v", out.Identity)
	}
	if len(out.Attributes) != 1 || out.Attributes["company"] != "C" {
		t.Errorf("attributes %v", out.Attributes)
	}
	if ev.Identity.Email == "" || len(ev.Attributes) != 3 {
		t.Error("Filtered modified its input")
	}
	// On a route keyed by the email, the email is the record's id: it stays.
	ev.Routing.UpsertKey = "email"
	if Filtered(ev, plan).Identity.Email != "a@example.com" {
		t.Error("email-keyed route lost its match key")
	}
}

func TestRequestTokensAndStamps(t *testing.T) {
	h, err := pii.NewHasher([]byte("0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &Config{CRM: "salesforce", Hasher: h, GmailCanonical: true, Trust: func(src string, g contact.Group) contact.Trust {
		if g == contact.GroupMarketing {
			return contact.TrustHigh
		}
		return contact.TrustLow
	}}
	a := c.request(&event.Event{Source: "form", OccurredAt: at, Identity: event.Identity{Email: "J.Doe+x@Gmail.com", PhoneE164: "+1 555 0001"},
		Attributes: map[string]string{"utm_source": "ad"}, Routing: event.Routing{Mode: event.ModeUpdateOnly}})
	b := c.request(&event.Event{Source: "crm", Identity: event.Identity{Email: "jdoe@gmail.com", PhoneE164: "+15550001"}})
	if len(a.Identifiers) != 2 || a.Identifiers[0] != b.Identifiers[0] || a.Identifiers[1] != b.Identifiers[1] {
		t.Fatalf("identifiers differ: %v %v", a.Identifiers, b.Identifiers)
	}
	for _, id := range a.Identifiers {
		if id.Token == "" || id.Token == "jdoe@gmail.com" {
			t.Errorf("token %q", id.Token)
		}
	}
	if a.Create {
		t.Error("update-only request may create")
	}
	for _, v := range a.Values {
		want := contact.TrustLow
		if v.Field == "utm_source" {
			want = contact.TrustHigh
		}
		if v.Stamp.Trust != want || !v.Stamp.OccurredAt.Equal(at) || v.Stamp.Source != "form" {
			t.Errorf("%s stamp %+v", v.Field, v.Stamp)
		}
		if v.Field == contact.FieldEmail && !v.Identifier {
			t.Error("email not an identifier")
		}
	}
}
