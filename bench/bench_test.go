package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	ds := []time.Duration{ms(5), ms(1), ms(4), ms(2), ms(3), ms(10), ms(9), ms(8), ms(7), ms(6)}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, ms(5)}, {90, ms(9)}, {99, ms(10)}, {100, ms(10)}, {1, ms(1)}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("no samples: want 0")
	}
	if ds[0] != ms(5) {
		t.Error("Percentile sorted its input")
	}
}

func TestRoundTrips(t *testing.T) {
	base := []time.Duration{ms(10), ms(12), ms(11)}
	with := []time.Duration{ms(91), ms(95), ms(90)}
	got, err := RoundTrips(base, with, ms(40))
	if err != nil {
		t.Fatal(err)
	}
	if want := 2.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("round trips = %v, want %v (median 91ms - 11ms over 40ms)", got, want)
	}
	if _, err := RoundTrips(nil, with, ms(40)); err == nil {
		t.Error("no base samples: want an error")
	}
	if _, err := RoundTrips(base, with, 0); err == nil {
		t.Error("zero latency: want an error")
	}
}

func TestClearTimeAndBacklog(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	up := at(10)
	leads := []Lead{
		{Accepted: at(1), InCRM: at(1.1)},   // before the outage
		{Accepted: at(5), InCRM: at(10.5)},  // backlog
		{Accepted: at(8), InCRM: at(12)},    // backlog, the last one out
		{Accepted: at(11), InCRM: at(11.9)}, // arrived during the drain
		{Accepted: at(12.5), InCRM: at(12.7)},
		{Accepted: at(13.8), InCRM: time.Time{}}, // in flight at the end: within slack
	}
	if n := Backlog(leads, up); n != 2 {
		t.Errorf("backlog = %d, want 2", n)
	}
	if first, ok := FirstInCRM(leads, up); !ok || !first.Equal(at(10.5)) {
		t.Errorf("first in the CRM after up = %v %v, want %v (the probe)", first.Sub(t0), ok, at(10.5).Sub(t0))
	}
	if _, ok := FirstInCRM(leads, at(20)); ok {
		t.Error("first in the CRM after the last record: want none")
	}
	got, ok := ClearTime(leads, up, at(14), 500*time.Millisecond)
	if !ok || !got.Equal(at(12)) {
		t.Errorf("clear = %v %v, want %v", got.Sub(t0), ok, at(12).Sub(t0))
	}
	// A lead that never arrives keeps the backlog from clearing.
	leads = append(leads, Lead{Accepted: at(6)})
	if _, ok := ClearTime(leads, up, at(14), 500*time.Millisecond); ok {
		t.Error("a lost backlog lead: want not cleared")
	}
	// No backlog: clear at once.
	if got, ok := ClearTime(leads[:1], up, at(14), 0); !ok || !got.Equal(up) {
		t.Errorf("no backlog: clear = %v %v, want up", got, ok)
	}
}

func TestDrainBound(t *testing.T) {
	got, err := DrainBound(300, 40, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := 13 * time.Second; got != want { // 1.1 x 300/30 + 2
		t.Errorf("bound = %v, want %v", got, want)
	}
	if _, err := DrainBound(10, 10, 10); err == nil {
		t.Error("R = arrival: want an error")
	}
}

func TestGoal(t *testing.T) {
	for _, c := range []struct {
		g    Goal
		v    float64
		want bool
	}{
		{Goal{"<=", 1}, 1, true}, {Goal{"<=", 1}, 1.01, false},
		{Goal{"<", 0.01}, 0.01, false}, {Goal{">=", 0.95}, 0.951, true},
		{Goal{"==", 0}, 0, true}, {Goal{"==", 0}, 1, false},
		{Goal{">=", 0.95}, math.NaN(), false}, {Goal{}, 1, false},
	} {
		if got := c.g.Met(c.v); got != c.want {
			t.Errorf("%v met by %v = %v, want %v", c.g, c.v, got, c.want)
		}
	}
}

func TestRendering(t *testing.T) {
	r := &Results{
		Date:     time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC),
		Duration: 540,
		Machine:  Machine{CPU: "Test CPU", Cores: 2, RAMBytes: 24 << 30, GoVersion: "go1.26", OS: "linux/amd64"},
		Settings: map[string]string{"R": "40/s", "firestore_latency": "40ms"},
		Figures: []Figure{
			NewFigure("a", "ingest answer round trips", 2.1, "", &Goal{"<=", 1}, "median | delta"),
			NewFigure("a", "RPCs per event (processor)", 3, "", &Goal{"<=", 3}, ""),
			NewFigure("e", "end-to-end p99", 812.5, "ms", nil, ""),
			NewFigure("d", "drain time", math.NaN(), "s", &Goal{"<=", 13}, "backlog never cleared"),
		},
		Notes: []string{"parking has not landed"},
	}
	md := r.Markdown()
	for _, want := range []string{
		"2026-12-01 13:00 UTC", "Test CPU, 2 cores, 24.0 GiB RAM, go1.26",
		"| a | ingest answer round trips | 2.1 | <= 1 | goal not met | median \\| delta |",
		"| a | RPCs per event (processor) | 3 | <= 3 | met |",
		"| e | end-to-end p99 | 812.5 ms |  |  |",
		"| d | drain time | -1 s | <= 13 s | goal not met |",
		"Goals met: 1 of 3.", "- R: `40/s`\n- firestore_latency: `40ms`\n", "- parking has not landed",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Figures) != 4 || *back.Figures[0].Met || !*back.Figures[1].Met || back.Figures[2].Met != nil || back.Figures[3].Value != -1 {
		t.Errorf("JSON round trip: %+v", back.Figures)
	}
}
