package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/contact"
	"github.com/leadpipe/leadpipe/common/store"
)

func contactRequest(proposed string, at time.Time, trust contact.Trust, values map[string]string) store.ContactRequest {
	req := store.ContactRequest{CRM: "salesforce", Proposed: proposed, Create: true,
		Identifiers: []contact.Hit{{Kind: contact.KindEmail, Token: "tok-email"}, {Kind: contact.KindPhone, Token: "tok-phone"}},
		KeyToken:    func(k string) string { return "k-" + k }}
	for f, v := range values {
		req.Values = append(req.Values, contact.Value{Field: f, Value: v, Stamp: contact.Stamp{Source: proposed, Trust: trust, OccurredAt: at}})
	}
	return req
}

// TestResolveContactConcurrentNewPerson: many events of one new person resolving at the same
// moment all get one contact key; the record's hold admits one writer at a time.
func TestResolveContactConcurrentNewPerson(t *testing.T) {
	s, _ := lifecycleStore(t)
	const n = 6
	leases := make([]*store.Lease, n)
	for i := range n {
		l, err := s.Claim(t.Context(), leadEvent(fmt.Sprintf("cc-%d", i)), policy("p", time.Minute, 5))
		if err != nil {
			t.Fatal(err)
		}
		leases[i] = l
	}
	keys := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, err := s.ResolveContact(t.Context(), leases[i], contactRequest(fmt.Sprintf("key-%d", i), t0, contact.TrustStandard, map[string]string{"first_name": "Ada"}))
				if errors.Is(err, store.ErrContactBusy) {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				keys[i] = p.Key
				mu.Unlock()
				if err := s.CommitContact(t.Context(), leases[i], p); err != nil {
					t.Error(err)
				}
				return
			}
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if k != keys[0] || k == "" {
			t.Fatalf("event %d resolved to %q, event 0 to %q", i, k, keys[0])
		}
	}
	rec, err := s.GetRecordDoc(t.Context(), "salesforce:k-"+keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if rec.Hold != nil || rec.Fields["first_name"].Source == "" {
		t.Errorf("record after all commits: %+v", rec)
	}
}

// TestResolveContactFencedAndHeld: a superseded lease resolves nothing; another event's live
// hold answers ErrContactBusy until it is committed or released; an update-only event of an
// unknown person indexes nothing.
func TestResolveContactFencedAndHeld(t *testing.T) {
	s, clk := lifecycleStore(t)
	a, _ := s.Claim(t.Context(), leadEvent("fh-a"), policy("p", 10*time.Second, 5))
	b, _ := s.Claim(t.Context(), leadEvent("fh-b"), policy("p", 10*time.Second, 5))

	upd := contactRequest("upd", t0, contact.TrustHigh, nil)
	upd.Create = false
	p, err := s.ResolveContact(t.Context(), b, upd)
	if err != nil || !p.New {
		t.Fatalf("update-only unknown: %+v %v", p, err)
	}
	pa, err := s.ResolveContact(t.Context(), a, contactRequest("ka", t0, contact.TrustHigh, map[string]string{"company": "Engines"}))
	if err != nil || pa.Key != "ka" || !pa.New {
		t.Fatalf("first resolution: %+v %v (the update-only event must not have indexed its identifiers)", pa, err)
	}
	if _, err := s.ResolveContact(t.Context(), b, contactRequest("kb", t0, contact.TrustHigh, nil)); !errors.Is(err, store.ErrContactBusy) {
		t.Fatalf("second event during a's hold: %v, want ErrContactBusy", err)
	}
	if err := s.ReleaseContact(t.Context(), a, pa); err != nil {
		t.Fatal(err)
	}
	pb, err := s.ResolveContact(t.Context(), b, contactRequest("kb", t0.Add(-time.Hour), contact.TrustLow, map[string]string{"company": "Old"}))
	if err != nil || pb.Key != "ka" || pb.Known {
		t.Fatalf("after release: %+v %v (released without commit: no stamps, so not known)", pb, err)
	}
	if err := s.CommitContact(t.Context(), b, pb); err != nil {
		t.Fatal(err)
	}

	// a's lease expires and is taken over: a's old lease can resolve nothing.
	clk.advance(11 * time.Second)
	if _, err := s.Claim(t.Context(), leadEvent("fh-a"), policy("q", 10*time.Second, 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveContact(t.Context(), a, contactRequest("ka", t0, contact.TrustHigh, nil)); !errors.Is(err, store.ErrFenceSuperseded) {
		t.Fatalf("superseded lease: %v, want ErrFenceSuperseded", err)
	}
	d, err := s.GetEvent(t.Context(), b.DocID)
	if err != nil || d.Contact == nil || d.Contact.Key != "ka" || len(d.Contact.Sent) != 1 {
		t.Errorf("event b's contact record: %+v %v", d.Contact, err)
	}
}
