package fakecrm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/metagraph"
)

func seedFormLead(s *Server, id, form string, created time.Time) {
	s.SetMetaLead(id, fmt.Appendf(nil, `{"id":%q,"form_id":%q,"created_time":%q,"field_data":[{"name":"email","values":["lead-%s@example.com"]}]}`,
		id, form, created.UTC().Format(graphTime), id))
}

// TestMetaGraphThroughTheClient drives the fake Graph API with the pipeline's own client: form
// listings with the time filter and paging, and each fault set through the control API.
func TestMetaGraphThroughTheClient(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	c := &metagraph.Client{BaseURL: s.URL(), Version: "v19.0", AccessToken: "tok"}
	base := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("9001%02d", i)
		seedFormLead(s, id, "555", base.Add(time.Duration(i)*time.Minute))
		want = append(want, id)
	}
	seedFormLead(s, "900200", "556", base.Add(time.Minute))            // another form
	seedFormLead(s, "900300", "555", base.Add(-time.Hour))             // before the window
	seedFormLead(s, "900400", "555", base.Add(10*time.Minute))         // at until (exclusive)
	s.SetMetaLead("900500", []byte(`{"id":"900500","field_data":[]}`)) // not listable

	var got []string
	pages := 0
	err := c.FormLeads(ctx, "555", metagraph.Window{Since: base, Until: base.Add(10 * time.Minute)}, 3, func(p *metagraph.Page) error {
		pages++
		for _, l := range p.Leads {
			got = append(got, l.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got) // Graph lists newest first
	if pages != 3 || !slices.Equal(got, want) {
		t.Fatalf("listing: got %d pages %v, want 3 pages %v", pages, got, want)
	}

	if l, _, err := c.Lead(ctx, "900103"); err != nil || l.Fields()["email"] != "lead-900103@example.com" {
		t.Fatalf("lead: got %+v %v", l, err)
	}
	if r, _ := do(t, "DELETE", s.URL()+"/_control/meta/leads/900103", "", nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	if _, _, err := c.Lead(ctx, "900103"); !errors.Is(err, metagraph.ErrNotFound) || !failure.Is(err, failure.Permanent) {
		t.Errorf("deleted lead: got %v, want not found, permanent", err)
	}

	for _, tc := range []struct {
		faults MetaFaults
		class  failure.Class
		after  time.Duration
	}{
		{MetaFaults{ExpiredToken: true}, failure.Auth, 0},
		{MetaFaults{RateLimit: 1, RegainAccessMin: 2}, failure.Retryable, 2 * time.Minute},
		{MetaFaults{Outage: true}, failure.Retryable, 0},
	} {
		if r, b := do(t, "PUT", s.URL()+"/_control/meta/faults", "", tc.faults); r.StatusCode != http.StatusOK {
			t.Fatalf("set faults: %d %s", r.StatusCode, b)
		}
		for _, call := range []func() error{
			func() error { _, _, err := c.Lead(ctx, "900101"); return err },
			func() error {
				return c.FormLeads(ctx, "555", metagraph.Window{Since: base}, 3, func(*metagraph.Page) error { return nil })
			},
		} {
			err := call()
			if got, _ := failure.ClassOf(err); got != tc.class || failure.RetryAfter(err) != tc.after {
				t.Errorf("faults %+v: got %v (after %v), want %s after %v", tc.faults, err, failure.RetryAfter(err), tc.class, tc.after)
			}
			if tc.faults.RateLimit > 0 {
				break // one rate-limited answer only
			}
		}
		if tc.faults.RateLimit > 0 {
			if _, _, err := c.Lead(ctx, "900101"); err != nil {
				t.Errorf("after the rate limit: %v", err)
			}
		}
	}
	s.SetMetaFaults(MetaFaults{})
	noToken := &metagraph.Client{BaseURL: s.URL(), Version: "v19.0"}
	if _, _, err := noToken.Lead(ctx, "900101"); !failure.Is(err, failure.Auth) {
		t.Errorf("no token: got %v, want auth", err)
	}
}
