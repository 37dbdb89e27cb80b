package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Goal is a figure's target: Op is "<=", "<", ">=" or "==" against Limit; the zero Goal is
// none (a figure reported for information).
type Goal struct {
	Op    string  `json:"op,omitempty"`
	Limit float64 `json:"limit,omitempty"`
}

// Met reports whether v reaches the goal (false for NaN, a figure that could not be measured).
func (g Goal) Met(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch g.Op {
	case "<=":
		return v <= g.Limit
	case "<":
		return v < g.Limit
	case ">=":
		return v >= g.Limit
	case "==":
		return v == g.Limit
	}
	return false
}

// String is "<= 1", "" for none.
func (g Goal) String() string {
	if g.Op == "" {
		return ""
	}
	return g.Op + " " + num(g.Limit)
}

// Figure is one measured number.
type Figure struct {
	Scenario string  `json:"scenario"`
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit,omitempty"`
	Goal     *Goal   `json:"goal,omitempty"`
	// Met is set when there is a goal.
	Met *bool `json:"met,omitempty"`
	// Detail says how it was measured or what it is made of.
	Detail string `json:"detail,omitempty"`
}

// NewFigure makes a figure and, with a goal, judges it.
func NewFigure(scenario, name string, v float64, unit string, g *Goal, detail string) Figure {
	f := Figure{Scenario: scenario, Name: name, Value: v, Unit: unit, Goal: g, Detail: detail}
	if g != nil {
		met := g.Met(v)
		f.Met = &met
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		f.Value = -1 // JSON has no NaN; Detail says why
	}
	return f
}

// Verdict is "met", "not met" or "" (no goal).
func (f Figure) Verdict() string {
	switch {
	case f.Met == nil:
		return ""
	case *f.Met:
		return "met"
	}
	return "goal not met"
}

// Machine describes where the run happened.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	RAMBytes  int64  `json:"ram_bytes"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// Results is one `make bench` run.
type Results struct {
	Date     time.Time `json:"date"`
	Duration float64   `json:"duration_seconds"`
	Machine  Machine   `json:"machine"`
	// Settings are the run's parameters (injected latency, R, arrival rates, durations).
	Settings map[string]string `json:"settings"`
	Figures  []Figure          `json:"figures"`
	// Notes are what a reader needs to read the figures right (a feature not landed, an
	// approximation).
	Notes []string `json:"notes,omitempty"`
}

// JSON is the indented JSON of r.
func (r *Results) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Markdown renders bench/results.md.
func (r *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# leadpipe benchmark results\n\n")
	fmt.Fprintf(&b, "Written by `make bench` (bench/cmd/bench) on %s in %.0f s. Every figure below comes from this one run; none is typed in.\n\n",
		r.Date.UTC().Format("2006-01-02 15:04 UTC"), r.Duration)
	fmt.Fprintf(&b, "Machine: %s, %d cores, %.1f GiB RAM, %s, %s.\n\n", r.Machine.CPU, r.Machine.Cores,
		float64(r.Machine.RAMBytes)/(1<<30), r.Machine.GoVersion, r.Machine.OS)
	met, goals := 0, 0
	for _, f := range r.Figures {
		if f.Met != nil {
			goals++
			if *f.Met {
				met++
			}
		}
	}
	fmt.Fprintf(&b, "Goals met: %d of %d.\n\n", met, goals)
	b.WriteString("| scenario | figure | value | goal | verdict | how |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		v := num(f.Value)
		if f.Unit != "" {
			v += " " + f.Unit
		}
		g := ""
		if f.Goal != nil {
			g = f.Goal.String()
			if f.Unit != "" {
				g += " " + f.Unit
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Scenario, f.Name, v, g, f.Verdict(), cell(f.Detail))
	}
	if len(r.Settings) > 0 {
		b.WriteString("\nSettings:\n\n")
		for _, k := range sortedKeys(r.Settings) {
			fmt.Fprintf(&b, "- %s: `%s`\n", k, r.Settings[k])
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// num prints up to three decimals, without trailing zeros.
func num(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
