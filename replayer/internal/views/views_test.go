package views

import (
	"errors"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/store"
)

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", DefaultWindow, false},
		{"1h", time.Hour, false},
		{" 24h ", 24 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"30s", 0, true},
		{"31d", 0, true},
		{"forever", 0, true},
		{"xd", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseWindow(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("ParseWindow(%q) = %v, %v; want ErrInvalid", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseWindow(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if back, err := ParseWindow(FormatWindow(got)); err != nil || back != got {
				t.Errorf("FormatWindow(%v) = %q does not read back", got, FormatWindow(got))
			}
		})
	}
}

func TestBuckets(t *testing.T) {
	since := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	now := since.Add(2*time.Minute + 30*time.Second)
	at := func(d time.Duration) time.Time { return since.Add(d) }
	created := []store.EventTimes{{CreatedAt: at(10 * time.Second)}, {CreatedAt: at(70 * time.Second)}, {CreatedAt: at(-time.Second)}, {CreatedAt: at(5 * time.Minute)}}
	completed := []store.EventTimes{{CompletedAt: at(130 * time.Second)}}
	got := buckets(since, now, created, completed)
	if len(got) != 3 {
		t.Fatalf("%d buckets, want 3 (10:00, 10:01, 10:02)", len(got))
	}
	want := [][2]int{{1, 0}, {1, 0}, {0, 1}}
	for i, m := range got {
		if m.Accepted != want[i][0] || m.Succeeded != want[i][1] || !m.At.Equal(since.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("bucket %d = %+v, want accepted %d succeeded %d", i, m, want[i][0], want[i][1])
		}
	}
}

func TestCRMStatuses(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	got := crmStatuses([]store.CRMHealth{{CRM: "salesforce", State: store.CRMOpen}, {CRM: "_readyz"}},
		[]store.EventTimes{{CRM: "hubspot", CompletedAt: now.Add(-10 * time.Second)}, {CRM: "hubspot", CompletedAt: now.Add(-2 * time.Minute)}}, now)
	if len(got) != 2 || got[0].CRM != "hubspot" || got[0].Circuit != "unknown" || got[0].SentLastMinute != 1 ||
		got[1].CRM != "salesforce" || got[1].Circuit != store.CRMOpen {
		t.Errorf("crmStatuses = %+v", got)
	}
}

func TestPhoneLike(t *testing.T) {
	for in, want := range map[string]bool{
		"+1 (415) 555-0123": true, "415.555.0123": true, "12345": false, "ada@example.com": false, "c-123456": false,
	} {
		if got := phoneLike(in) != ""; got != want {
			t.Errorf("phoneLike(%q) = %t, want %t", in, got, want)
		}
	}
}

func TestParseFilter(t *testing.T) {
	f, err := ParseFilter(map[string][]string{"status": {"open"}, "since": {"2026-01-02T03:04"}, "until": {"2026-01-03T00:00:00Z"}})
	if err != nil || !f.Since.Equal(time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)) || f.Until.IsZero() {
		t.Errorf("ParseFilter = %+v, %v", f, err)
	}
	if _, err := ParseFilter(map[string][]string{"status": {"lost"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad status: %v, want ErrInvalid", err)
	}
	if _, err := ParseFilter(map[string][]string{"since": {"yesterday"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad since: %v, want ErrInvalid", err)
	}
}
