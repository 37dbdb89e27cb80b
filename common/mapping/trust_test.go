package mapping

import (
	"strings"
	"testing"

	"github.com/leadpipe/leadpipe/common/contact"
)

func TestTrustByFieldGroup(t *testing.T) {
	src := func(trust string) (*Source, error) {
		s, err := ParseSources([]byte(`sources: {a: {kind: canonical, secrets: [env:X], routing: {crm: c}` + trust + `}}`))
		if err != nil {
			return nil, err
		}
		a, _ := s.Get("a")
		return a, nil
	}
	a, err := src(`, trust: {default: low, identity: high, marketing: standard}`)
	if err != nil {
		t.Fatal(err)
	}
	for g, want := range map[contact.Group]contact.Trust{contact.GroupIdentity: contact.TrustHigh, contact.GroupMarketing: contact.TrustStandard,
		contact.GroupContact: contact.TrustLow, contact.GroupCompany: contact.TrustLow, contact.GroupOther: contact.TrustLow} {
		if got := a.TrustFor(g); got != want {
			t.Errorf("TrustFor(%s) = %s, want %s", g, got, want)
		}
	}
	if a.Trust != TrustLow {
		t.Errorf("default trust %q, want low", a.Trust)
	}
	b, err := src(`, trust: high`)
	if err != nil || b.TrustFor(contact.GroupCompany) != contact.TrustHigh {
		t.Fatalf("scalar trust: %v %v", err, b)
	}
	c, err := src(``)
	if err != nil || c.TrustFor(contact.GroupIdentity) != contact.TrustStandard || c.Trust != TrustStandard {
		t.Fatalf("no trust key: %v", err)
	}
	for _, bad := range []string{`, trust: {utm: high}`, `, trust: {contact: total}`, `, trust: {default: nope}`, `, trust: [high]`} {
		if _, err := src(bad); err == nil || !strings.Contains(err.Error(), "trust") {
			t.Errorf("%s: err %v, want a trust error", bad, err)
		}
	}
}
