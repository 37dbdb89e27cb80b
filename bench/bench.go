// Package bench holds the pure parts of `make bench` (bench/cmd/bench): the figures with their
// goals, the arithmetic that turns measurements into figures (percentiles, sequential round
// trips, drain time) and the rendering of bench/results.md and bench/results.json. Nothing here
// measures; the command does, on a `devstack up --processes` stack.
package bench

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds; 0 for no samples.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Median is Percentile(ds, 50).
func Median(ds []time.Duration) time.Duration { return Percentile(ds, 50) }

// RoundTrips is how many sequential round trips an injected per-RPC latency adds to a path:
// the growth of the path's median latency divided by the injected latency.
func RoundTrips(base, withLatency []time.Duration, injected time.Duration) (float64, error) {
	if len(base) == 0 || len(withLatency) == 0 {
		return 0, errors.New("round trips: no samples")
	}
	if injected <= 0 {
		return 0, errors.New("round trips: injected latency must be positive")
	}
	return float64(Median(withLatency)-Median(base)) / float64(injected), nil
}

// Lead is one accepted lead's two instants: when ingest answered 2xx and when its CRM record
// was created (zero: not in the CRM).
type Lead struct {
	Accepted, InCRM time.Time
}

// ClearTime is when a backlog is cleared after the CRM comes back at up: the earliest instant
// T >= up at which every lead accepted before T-slack is in the CRM by T (slack is the
// pipeline's normal latency, so leads merely in flight do not count as backlog). ok is false
// when no such instant is observed (a lead accepted before the end of the observation never
// reached the CRM, or reached it only after end).
func ClearTime(leads []Lead, up, end time.Time, slack time.Duration) (time.Time, bool) {
	cands := []time.Time{up}
	for _, l := range leads {
		if !l.InCRM.IsZero() && l.InCRM.After(up) && !l.InCRM.After(end) {
			cands = append(cands, l.InCRM)
		}
	}
	slices.SortFunc(cands, func(a, b time.Time) int { return a.Compare(b) })
	for _, t := range cands {
		clear := true
		for _, l := range leads {
			if l.Accepted.Before(t.Add(-slack)) && (l.InCRM.IsZero() || l.InCRM.After(t)) {
				clear = false
				break
			}
		}
		if clear {
			return t, true
		}
	}
	return time.Time{}, false
}

// FirstInCRM is the earliest time after t at which a lead reached the CRM: after an outage, the
// breaker's successful probe, when the circuit closes and the drain starts.
func FirstInCRM(leads []Lead, t time.Time) (time.Time, bool) {
	var first time.Time
	for _, l := range leads {
		if !l.InCRM.IsZero() && l.InCRM.After(t) && (first.IsZero() || l.InCRM.Before(first)) {
			first = l.InCRM
		}
	}
	return first, !first.IsZero()
}

// Backlog is the number of leads accepted before up and not in the CRM at up.
func Backlog(leads []Lead, up time.Time) int {
	n := 0
	for _, l := range leads {
		if l.Accepted.Before(up) && (l.InCRM.IsZero() || l.InCRM.After(up)) {
			n++
		}
	}
	return n
}

// DrainBound is the goal for the drain time: 1.1 x backlog / (R - arrival) + 2 s.
func DrainBound(backlog int, rate, arrival float64) (time.Duration, error) {
	if rate <= arrival {
		return 0, fmt.Errorf("drain bound: CRM rate %g must exceed the arrival rate %g", rate, arrival)
	}
	secs := 1.1*float64(backlog)/(rate-arrival) + 2
	return time.Duration(secs * float64(time.Second)), nil
}
