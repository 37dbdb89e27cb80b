package loadgen

import (
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in      string
		want    Window
		wantErr bool
	}{
		{"5s@10s", Window{At: 10 * time.Second, For: 5 * time.Second}, false},
		{"1500ms@0s", Window{At: 0, For: 1500 * time.Millisecond}, false},
		{" 2s@1m ", Window{At: time.Minute, For: 2 * time.Second}, false},
		{"5s", Window{}, true},
		{"0s@1s", Window{}, true},
		{"5s@-1s", Window{}, true},
		{"five@10s", Window{}, true},
		{"5s@ten", Window{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseWindow(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseWindow(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseWindow(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
	if got := (Window{At: 10 * time.Second, For: 5 * time.Second}).String(); got != "5s@10s" {
		t.Errorf("String = %q, want 5s@10s", got)
	}
}

func TestChaos_Steps(t *testing.T) {
	base := fakecrm.Faults{ErrorRate: 0.1, RateLimitPerSec: 50, LatencyMS: 20, RetryAfterSec: 1}
	down := base
	down.Outage = true
	onlyOutage := fakecrm.Faults{RetryAfterSec: 1}
	onlyOutageDown := onlyOutage
	onlyOutageDown.Outage = true
	tests := []struct {
		name  string
		chaos Chaos
		want  []Step
	}{
		{"none", Chaos{}, nil},
		{"standing only", Chaos{ErrorRate: 0.1, RateLimit: 50, Latency: 20 * time.Millisecond},
			[]Step{{0, base, "standing faults"}}},
		{"standing and outage", Chaos{ErrorRate: 0.1, RateLimit: 50, Latency: 20 * time.Millisecond, Outage: Window{At: 10 * time.Second, For: 5 * time.Second}},
			[]Step{{0, base, "standing faults"}, {10 * time.Second, down, "outage starts"}, {15 * time.Second, base, "outage ends"}}},
		{"outage from the start", Chaos{Outage: Window{At: 0, For: 2 * time.Second}},
			[]Step{{0, onlyOutageDown, "outage starts"}, {2 * time.Second, onlyOutage, "outage ends"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.chaos.Steps()
			if len(got) != len(tt.want) {
				t.Fatalf("Steps = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("step %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8081", true},
		{"http://localhost:8081/", true},
		{"http://[::1]:8081", true},
		{"http://127.5.0.1", true},
		{"http://10.0.0.1:8081", false},
		{"https://example.com", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8081", false},
	} {
		if err := CheckLoopback(tt.url); (err == nil) != tt.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}
