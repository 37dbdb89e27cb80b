package loadgen

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

// Chaos is the fault plan applied to the fake CRM during a run. The zero value injects nothing.
type Chaos struct {
	// ErrorRate answers this fraction (0..1) of CRM requests 500 for the whole run.
	ErrorRate float64
	// RateLimit admits this many CRM requests per second and answers the rest 429 (0: none).
	RateLimit float64
	// Latency delays every CRM answer.
	Latency time.Duration
	// Outage answers every CRM request 503 during the window (zero For: none).
	Outage Window
}

// Window is a span of the run: from At after the start, for For.
type Window struct {
	At, For time.Duration
}

// ParseWindow parses "DURATION@START", e.g. "5s@10s": 5 s starting 10 s into the run.
func ParseWindow(s string) (Window, error) {
	d, at, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Window{}, fmt.Errorf("window %q: want DURATION@START, e.g. 5s@10s", s)
	}
	var w Window
	var err error
	if w.For, err = time.ParseDuration(d); err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	if w.At, err = time.ParseDuration(at); err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	if w.For <= 0 || w.At < 0 || w.For > time.Hour || w.At > time.Hour {
		return Window{}, fmt.Errorf("window %q: duration must be in (0, 1h], start in [0, 1h]", s)
	}
	return w, nil
}

// String is the flag form, "5s@10s".
func (w Window) String() string {
	if w.For == 0 {
		return ""
	}
	return w.For.String() + "@" + w.At.String()
}

// Validate reports the first invalid field.
func (c Chaos) Validate() error {
	switch {
	case c.ErrorRate < 0 || c.ErrorRate > 1:
		return errors.New("crm error rate must be 0..1")
	case c.RateLimit < 0:
		return errors.New("crm rate limit must be >= 0")
	case c.Latency < 0 || c.Latency > time.Minute:
		return errors.New("crm latency must be 0..1m")
	}
	return nil
}

// Zero reports whether the plan injects nothing.
func (c Chaos) Zero() bool { return c == Chaos{} }

// Step is one change of the fake CRM's standing faults at At after the run starts.
type Step struct {
	At     time.Duration
	Faults fakecrm.Faults
	What   string
}

// Steps returns the fault changes of the plan in time order: the standing faults at 0, then the
// outage start and end if any. None for the zero plan. The runner restores the CRM's previous
// faults after the run.
func (c Chaos) Steps() []Step {
	if c.Zero() {
		return nil
	}
	base := fakecrm.Faults{
		ErrorRate:       c.ErrorRate,
		RateLimitPerSec: c.RateLimit,
		LatencyMS:       int(c.Latency / time.Millisecond),
		RetryAfterSec:   1,
	}
	steps := []Step{{At: 0, Faults: base, What: "standing faults"}}
	if c.Outage.For > 0 {
		down := base
		down.Outage = true
		if c.Outage.At == 0 {
			steps = steps[:0]
		}
		steps = append(steps,
			Step{At: c.Outage.At, Faults: down, What: "outage starts"},
			Step{At: c.Outage.At + c.Outage.For, Faults: base, What: "outage ends"})
	}
	return steps
}
