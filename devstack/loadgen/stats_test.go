package loadgen

import (
	"testing"
	"time"
)

func ms1(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", ms1(7), 50, 7 * time.Millisecond},
		{"single p99", ms1(7), 99, 7 * time.Millisecond},
		{"1..100 p50", seq(100), 50, 50 * time.Millisecond},
		{"1..100 p95", seq(100), 95, 95 * time.Millisecond},
		{"1..100 p99", seq(100), 99, 99 * time.Millisecond},
		{"1..100 p100", seq(100), 100, 100 * time.Millisecond},
		{"1..1000 p99.9 (float rounding)", seq(1000), 99.9, 999 * time.Millisecond},
		{"1..10 p95 rounds up", seq(10), 95, 10 * time.Millisecond},
		{"1..10 p50", seq(10), 50, 5 * time.Millisecond},
		{"1..3 p50", seq(3), 50, 2 * time.Millisecond},
		{"p0 is the minimum", seq(10), 0, 1 * time.Millisecond},
		{"p above 100 is the maximum", seq(10), 150, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := ms1(30, 10, 20, 50, 40)
	got := Summarize(in)
	want := Latency{Count: 5, P50: 30 * time.Millisecond, P95: 50 * time.Millisecond, P99: 50 * time.Millisecond, Max: 50 * time.Millisecond}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if in[0] != 30*time.Millisecond {
		t.Errorf("Summarize sorted its input in place: %v", in)
	}
	if got := Summarize(nil); got != (Latency{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
}
