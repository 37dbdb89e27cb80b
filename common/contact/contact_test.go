package contact

import (
	"reflect"
	"testing"
	"time"
)

var (
	t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

func TestDecide(t *testing.T) {
	high := Stamp{Source: "crm_sync", Trust: TrustHigh, OccurredAt: t1}
	tests := []struct {
		name string
		cur  *Stamp
		v    Value
		want Verdict
	}{
		{"unset field takes any value", nil, Value{Value: "Ada", Stamp: Stamp{Source: "form", Trust: TrustLow, OccurredAt: t0}}, Applied},
		{"empty never blanks", &high, Value{Value: "", Stamp: Stamp{Source: "crm_sync", Trust: TrustHigh, OccurredAt: t1.Add(time.Hour)}}, Empty},
		{"blank is empty", &high, Value{Value: "  ", Stamp: Stamp{Source: "crm_sync", Trust: TrustHigh, OccurredAt: t1}}, Empty},
		{"empty on an unset field sends nothing", nil, Value{Value: ""}, Empty},
		{"lower trust, newer: refused", &high, Value{Value: "x", Stamp: Stamp{Source: "form", Trust: TrustLow, OccurredAt: t1.Add(time.Hour)}}, LowerTrust},
		{"older low-trust after newer high-trust: refused", &high, Value{Value: "x", Stamp: Stamp{Source: "form", Trust: TrustLow, OccurredAt: t0}}, LowerTrust},
		{"same trust, older: refused", &high, Value{Value: "x", Stamp: Stamp{Source: "crm_sync", Trust: TrustHigh, OccurredAt: t0}}, Older},
		{"higher trust but older: refused", &Stamp{Source: "form", Trust: TrustLow, OccurredAt: t1}, Value{Value: "x", Stamp: Stamp{Source: "crm_sync", Trust: TrustHigh, OccurredAt: t0}}, Older},
		{"same trust, same time (redelivery): applied", &high, Value{Value: "x", Stamp: high}, Applied},
		{"same trust, newer: applied", &high, Value{Value: "x", Stamp: Stamp{Source: "other", Trust: TrustHigh, OccurredAt: t1.Add(time.Second)}}, Applied},
		{"higher trust, newer: applied", &Stamp{Source: "form", Trust: TrustLow, OccurredAt: t0}, Value{Value: "x", Stamp: high}, Applied},
		{"identifier: lower trust never overwrites", &high, Value{Value: "x", Identifier: true, Stamp: Stamp{Source: "form", Trust: TrustStandard, OccurredAt: t1.Add(time.Hour)}}, LowerTrust},
		{"identifier: a peer source of equal trust cannot move it", &high, Value{Value: "x", Identifier: true, Stamp: Stamp{Source: "other", Trust: TrustHigh, OccurredAt: t1.Add(time.Hour)}}, IdentifierHeld},
		{"identifier: the source that set it may update it", &high, Value{Value: "x", Identifier: true, Stamp: Stamp{Source: "crm_sync", Trust: TrustHigh, OccurredAt: t1.Add(time.Hour)}}, Applied},
		{"identifier: a more trusted source may replace it", &Stamp{Source: "form", Trust: TrustLow, OccurredAt: t0}, Value{Value: "x", Identifier: true, Stamp: high}, Applied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.cur, tt.v); got != tt.want {
				t.Errorf("Decide = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestMergeOlderLowTrustAfterNewerHighTrust: the newer high-trust event's fields stay; the
// late low-trust event only fills what was empty.
func TestMergeOlderLowTrustAfterNewerHighTrust(t *testing.T) {
	high := Stamp{Source: "demo", Trust: TrustHigh, OccurredAt: t1}
	low := Stamp{Source: "typeform", Trust: TrustLow, OccurredAt: t0}
	_, _, rec := Merge(nil, []Value{
		{Field: FieldEmail, Value: "ada@example.com", Identifier: true, Stamp: high},
		{Field: "first_name", Value: "Ada", Stamp: high},
		{Field: "company", Value: "", Stamp: high},
	})
	send, withheld, next := Merge(rec, []Value{
		{Field: FieldEmail, Value: "ada.old@example.com", Identifier: true, Stamp: low},
		{Field: "first_name", Value: "A.", Stamp: low},
		{Field: "company", Value: "Engines", Stamp: low},
		{Field: "last_name", Value: "", Stamp: low},
	})
	if !reflect.DeepEqual(send, []string{"company"}) || !reflect.DeepEqual(withheld, []string{FieldEmail, "first_name"}) {
		t.Errorf("send %v withheld %v, want [company] and [email first_name]", send, withheld)
	}
	if next["first_name"] != high || next[FieldEmail] != high || next["company"] != low {
		t.Errorf("stamps after: %v", next)
	}
	if _, ok := next["last_name"]; ok {
		t.Error("an empty value left a stamp")
	}
	if _, ok := rec["company"]; ok {
		t.Error("Merge modified its input")
	}
	// Redelivery of the same event after a crash sends the same winning set.
	again, _, _ := Merge(next, []Value{{Field: "company", Value: "Engines", Stamp: low}, {Field: "first_name", Value: "A.", Stamp: low}})
	if !reflect.DeepEqual(again, []string{"company"}) {
		t.Errorf("redelivery sends %v, want [company]", again)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name      string
		hits      []Hit
		want      string
		wantNew   bool
		index     []string // kinds added
		conflicts []Conflict
	}{
		{"nothing indexed: new contact under the proposed key", []Hit{{Kind: KindEmail, Token: "e"}, {Kind: KindPhone, Token: "p"}}, "P", true, []string{KindEmail, KindPhone}, nil},
		{"email known: phone joins it", []Hit{{Kind: KindEmail, Token: "e", Key: "A"}, {Kind: KindPhone, Token: "p"}}, "A", false, []string{KindPhone}, nil},
		{"phone known: email joins it", []Hit{{Kind: KindEmail, Token: "e"}, {Kind: KindPhone, Token: "p", Key: "B"}}, "B", false, []string{KindEmail}, nil},
		{"both agree", []Hit{{Kind: KindEmail, Token: "e", Key: "A"}, {Kind: KindPhone, Token: "p", Key: "A"}}, "A", false, nil, nil},
		{"conflict: email wins, phone left on B, recorded", []Hit{{Kind: KindEmail, Token: "e", Key: "A"}, {Kind: KindPhone, Token: "p", Key: "B"}}, "A", false, nil,
			[]Conflict{{Kind: KindPhone, Token: "p", OtherKey: "B"}}},
		{"external id outranks email", []Hit{{Kind: KindExternalID, Token: "x", Key: "X"}, {Kind: KindEmail, Token: "e", Key: "A"}, {Kind: KindPhone, Token: "p"}}, "X", false, []string{KindPhone},
			[]Conflict{{Kind: KindEmail, Token: "e", OtherKey: "A"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Resolve(tt.hits, "P")
			if r.Key != tt.want || r.New != tt.wantNew {
				t.Errorf("key %s new %v, want %s %v", r.Key, r.New, tt.want, tt.wantNew)
			}
			var kinds []string
			for _, h := range r.Index {
				kinds = append(kinds, h.Kind)
				if h.Key != r.Key {
					t.Errorf("index entry %s -> %s, want %s", h.Kind, h.Key, r.Key)
				}
			}
			if !reflect.DeepEqual(kinds, tt.index) || !reflect.DeepEqual(r.Conflicts, tt.conflicts) {
				t.Errorf("index %v conflicts %v, want %v %v", kinds, r.Conflicts, tt.index, tt.conflicts)
			}
		})
	}
}

func TestCanonicalEmailAndPhone(t *testing.T) {
	for _, tt := range []struct {
		in    string
		gmail bool
		want  string
	}{
		{"  Jane.Doe@Example.COM ", false, "jane.doe@example.com"},
		{"Jane.Doe+ads@gmail.com", false, "jane.doe+ads@gmail.com"},
		{"Jane.Doe+ads@gmail.com", true, "janedoe@gmail.com"},
		{"j.a.n.e.doe@GoogleMail.com", true, "janedoe@gmail.com"},
		{"jane.doe+x@example.com", true, "jane.doe+x@example.com"},
		{"not-an-email", true, ""},
		{"+@gmail.com", true, ""},
	} {
		if got := CanonicalEmail(tt.in, tt.gmail); got != tt.want {
			t.Errorf("CanonicalEmail(%q, %v) = %q, want %q", tt.in, tt.gmail, got, tt.want)
		}
	}
	if a, b := CanonicalPhone("+1 (415) 555-0100"), CanonicalPhone("+14155550100"); a != b || a != "+14155550100" {
		t.Errorf("CanonicalPhone: %q %q", a, b)
	}
	if CanonicalPhone("n/a") != "" {
		t.Error("CanonicalPhone without digits")
	}
}

func TestGroupOf(t *testing.T) {
	for f, g := range map[string]Group{FieldEmail: GroupIdentity, FieldPhone: GroupIdentity, "first_name": GroupContact,
		"company": GroupCompany, "utm_campaign": GroupMarketing, "favourite_colour": GroupOther} {
		if got := GroupOf(f); got != g {
			t.Errorf("GroupOf(%s) = %s, want %s", f, got, g)
		}
	}
}
