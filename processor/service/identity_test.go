package service_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// identitySources: "form" is low trust except for marketing; "crmsync" is high trust.
const identitySources = `sources:
  form:
    kind: canonical
    trust: {default: low, marketing: high}
    secrets: [env:X]
    routing: {crm: salesforce}
  crmsync:
    kind: canonical
    trust: high
    secrets: [env:X]
    routing: {crm: salesforce}
`

func startIdentityProcessor(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sources.yaml")
	if err := os.WriteFile(path, []byte(identitySources), 0o600); err != nil {
		t.Fatal(err)
	}
	return startProcessor(t, map[string]string{"PII_HASH_KEY": "test-pii-key-0123456789abcdef", "SOURCES_FILE": path,
		"IDENTITY_GMAIL_CANONICAL": "true"})
}

// personEvent is an event of source for a person known by email and phone only.
func personEvent(source, email, phone string, at time.Time, attrs map[string]string) *event.Event {
	ev := newEvent("unused")
	ev.Source, ev.OccurredAt = source, at
	ev.IdempotencyKey = event.IdempotencyKey(source, ev.EventType, ev.EventID)
	ev.Identity = event.Identity{Email: email, PhoneE164: phone}
	ev.Attributes = attrs
	return ev
}

// deliver posts ev until its delivery is acked, as Pub/Sub redelivers a nacked message.
func deliver(t *testing.T, url string, ev *event.Event) pushAnswer {
	t.Helper()
	for i := 0; ; i++ {
		a := post(t, url, envelope(ev, fmt.Sprintf("m-%s-%d", ev.EventID, i)))
		if a.Status == 200 || i == 20 {
			return a
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func salesforceByEmail(email string) []fakecrm.Record {
	var out []fakecrm.Record
	for _, r := range fake.Records() {
		if e, _ := r.Fields["Email"].(string); r.System == fakecrm.SystemSalesforce && strings.EqualFold(strings.TrimSpace(e), email) {
			out = append(out, r)
		}
	}
	return out
}

// TestSamePersonTwoSourcesOneRecord: a person from two sources, email and phone in different
// case and formatting (and a Gmail spelling), processed one after the other and, for other
// people, both at the same moment, yields one CRM record per person, upserted by one key.
func TestSamePersonTwoSourcesOneRecord(t *testing.T) {
	reset(t)
	url := startIdentityProcessor(t)
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

	a := personEvent("form", "Ada.Lovelace@Example.COM", "+44 20 7946 0001", t0, map[string]string{"last_name": "Lovelace", "company": "Engines"})
	b := personEvent("crmsync", "ada.lovelace@example.com", "+442079460001", t0.Add(time.Minute), map[string]string{"first_name": "Ada"})
	for _, ev := range []*event.Event{a, b} {
		if got := deliver(t, url, ev); got.Outcome != "succeeded" {
			t.Fatalf("%s: outcome %s", ev.Source, got.Outcome)
		}
	}
	recs := salesforceByEmail("ada.lovelace@example.com")
	if len(recs) != 1 || fake.CreateCount(recs[0].Key) != 1 {
		t.Fatalf("records for Ada: %d (%v), want 1 created once", len(recs), recs)
	}
	da, db := doc(t, a), doc(t, b)
	if da.Contact == nil || db.Contact == nil || da.Contact.Key != db.Contact.Key || !da.Contact.New || db.Contact.New {
		t.Fatalf("contacts: %+v %+v, want one key, new then known", da.Contact, db.Contact)
	}
	if recs[0].Key != da.Contact.Key || recs[0].Fields["FirstName"] != "Ada" || recs[0].Fields["Company"] != "Engines" {
		t.Errorf("record %s fields %v", recs[0].Key, recs[0].Fields)
	}
	if strings.Contains(da.Contact.RecordDoc, "ada") || strings.Contains(da.Contact.Key, "ada") {
		t.Errorf("record doc %s / key %s holds the email", da.Contact.RecordDoc, da.Contact.Key)
	}

	// Both at the same moment, for several new people; the second source spells the Gmail
	// address with dots and a +tag.
	const people = 8
	var wg sync.WaitGroup
	var pairs [][2]*event.Event
	for i := range people {
		e1 := personEvent("form", fmt.Sprintf("Grace%dHopper@gmail.com", i), fmt.Sprintf("+1 415 555 01%02d", i), t0, map[string]string{"last_name": "Hopper"})
		e2 := personEvent("crmsync", fmt.Sprintf("grace%d.hopper+ads@GMAIL.com", i), fmt.Sprintf("+1415555%04d", 100+i), t0, map[string]string{"first_name": "Grace"})
		pairs = append(pairs, [2]*event.Event{e1, e2})
	}
	start := make(chan struct{})
	for _, p := range pairs {
		for _, ev := range p {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if got := deliver(t, url, ev); got.Outcome != "succeeded" {
					t.Errorf("%s %s: outcome %s", ev.Source, ev.EventID, got.Outcome)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	for i, p := range pairs {
		d1, d2 := doc(t, p[0]), doc(t, p[1])
		if d1.Contact == nil || d2.Contact == nil || d1.Contact.Key != d2.Contact.Key {
			t.Errorf("person %d: two keys: %+v %+v", i, d1.Contact, d2.Contact)
			continue
		}
		n := 0
		for _, r := range fake.Records() {
			if r.Key == d1.Contact.Key {
				n++
			}
		}
		if n != 1 || fake.CreateCount(d1.Contact.Key) != 1 {
			t.Errorf("person %d: %d records, %d creates, want 1 and 1", i, n, fake.CreateCount(d1.Contact.Key))
		}
	}
	if got, want := len(fake.Records()), 1+people; got != want {
		t.Errorf("CRM records: %d, want %d", got, want)
	}
}

// TestOlderLowTrustAfterNewerHighTrust: a late, older event of a low-trust source changes no
// value the newer high-trust event wrote; it fills only an empty field, and its high-trust
// group (marketing) still applies where it is newer. Empty values blank nothing.
func TestOlderLowTrustAfterNewerHighTrust(t *testing.T) {
	reset(t)
	url := startIdentityProcessor(t)
	t1 := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	newer := personEvent("crmsync", "Marie.Curie@example.org", "+33 123 456 789", t1,
		map[string]string{"first_name": "Marie", "last_name": "Curie", "company": "Sorbonne"})
	older := personEvent("form", "m.curie@example.org", "+33123456789", t1.Add(-time.Hour),
		map[string]string{"first_name": "M.", "last_name": "", "company": "Old Lab", "utm_source": "poster"})
	for _, ev := range []*event.Event{newer, older} {
		if got := deliver(t, url, ev); got.Outcome != "succeeded" {
			t.Fatalf("%s: outcome %s", ev.Source, got.Outcome)
		}
	}
	d := doc(t, older)
	if d.Contact == nil || d.Contact.Key != doc(t, newer).Contact.Key {
		t.Fatalf("older event resolved to %+v", d.Contact)
	}
	var rec *fakecrm.Record
	for _, r := range fake.Records() {
		if r.Key == d.Contact.Key {
			rec = &r
		}
	}
	if rec == nil || len(fake.Records()) != 1 {
		t.Fatalf("want one record keyed %s, have %v", d.Contact.Key, fake.Records())
	}
	for f, want := range map[string]string{"FirstName": "Marie", "LastName": "Curie", "Company": "Sorbonne", "Email": "Marie.Curie@example.org", "Phone": "+33 123 456 789", "LeadSource": "crmsync"} {
		if got := rec.Fields[f]; got != want {
			t.Errorf("CRM %s = %v, want %q (the newer high-trust value)", f, got, want)
		}
	}
	if strings.Join(d.Contact.Sent, ",") != "utm_source" {
		t.Errorf("older event sent %v, want only utm_source (withheld %v)", d.Contact.Sent, d.Contact.Withheld)
	}
	r, err := st.GetRecordDoc(t.Context(), d.Contact.RecordDoc)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Fields["first_name"]; s.Source != "crmsync" || !s.OccurredAt.Equal(t1) {
		t.Errorf("first_name stamp %+v, want crmsync at %v", s, t1)
	}
	if s := r.Fields["utm_source"]; s.Source != "form" {
		t.Errorf("utm_source stamp %+v, want form", s)
	}
	if r.Hold != nil {
		t.Errorf("hold left on the record: %+v", r.Hold)
	}
}

// TestIdentityConflictEmailWins: the email maps to one contact and the phone to another: the
// event is written to the email's contact (no new contact), and the conflict is recorded on
// the event and in identity_conflicts.
func TestIdentityConflictEmailWins(t *testing.T) {
	reset(t)
	url := startIdentityProcessor(t)
	t0 := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	x := personEvent("crmsync", "x@example.net", "+15550000001", t0, map[string]string{"last_name": "X"})
	y := personEvent("crmsync", "y@example.net", "+15550000002", t0, map[string]string{"last_name": "Y"})
	mixed := personEvent("form", "X@Example.net", "+1 555 000 0002", t0.Add(time.Minute), nil)
	for _, ev := range []*event.Event{x, y, mixed} {
		if got := deliver(t, url, ev); got.Outcome != "succeeded" {
			t.Fatalf("outcome %s", got.Outcome)
		}
	}
	dm := doc(t, mixed)
	if dm.Contact.Key != doc(t, x).Contact.Key || len(dm.Contact.Conflicts) != 1 || dm.Contact.Conflicts[0].Kind != "phone" ||
		dm.Contact.Conflicts[0].OtherKey != doc(t, y).Contact.Key {
		t.Fatalf("mixed event contact %+v", dm.Contact)
	}
	if n := len(fake.Records()); n != 2 {
		t.Errorf("records %d, want 2 (no contact created for the conflict)", n)
	}
	cs, err := st.ListIdentityConflicts(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Event != event.DocID(mixed.IdempotencyKey) || cs[0].KeptKey != dm.Contact.Key || cs[0].Rule == "" {
		t.Errorf("conflicts %+v", cs)
	}
}
