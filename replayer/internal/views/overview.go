package views

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
)

// Overview bounds.
const (
	// DefaultWindow is the overview's window when none is given.
	DefaultWindow = 24 * time.Hour
	// MaxWindow is the longest window accepted.
	MaxWindow = 30 * 24 * time.Hour
	// chartMinutes is the throughput chart's span (the last hour, or the window if shorter).
	chartMinutes = 60
	// chartLimit bounds the events read for the chart; beyond it the chart says so.
	chartLimit = 5000
	// waitingLimit bounds the unfinished leads listed.
	waitingLimit = 25
)

// Overview is GET /v1/overview and the triage page's home: how the pipeline is doing.
type Overview struct {
	GeneratedAt time.Time `json:"generated_at"`
	Window      string    `json:"window"`
	Since       time.Time `json:"since"`
	// States counts events by state. Unfinished states (received, processing, failed awaiting
	// retry, parked) count every such event, whatever its age: a lead waiting for three days
	// is still waiting. Finished states count events created within the window.
	States []StateCount `json:"states"`
	// InFlight is the sum of the unfinished states.
	InFlight int64 `json:"in_flight"`
	// OldestUnfinishedAt is the creation time of the oldest unfinished event (zero: none);
	// OldestUnfinishedAgeSec its age.
	OldestUnfinishedAt     time.Time `json:"oldest_unfinished_at,omitzero"`
	OldestUnfinishedAgeSec int64     `json:"oldest_unfinished_age_sec"`
	// CRMs: each CRM's circuit state (from the processor's crm_health) and its send rate.
	CRMs []CRMStatus `json:"crms"`
	// DLQOpen counts open DLQ records by failure class; DLQOpenTotal is their sum.
	DLQOpen      []ClassCount `json:"dlq_open"`
	DLQOpenTotal int64        `json:"dlq_open_total"`
	// Throughput is accepted and succeeded events per minute, oldest minute first.
	Throughput          []Minute `json:"throughput"`
	ThroughputTruncated bool     `json:"throughput_truncated,omitempty"`
	// Waiting lists unfinished leads, oldest first: those retrying or parked, not only the ones
	// in the DLQ.
	Waiting []*EventView `json:"waiting"`
}

// StateCount is the number of events in one state.
type StateCount struct {
	State      string `json:"state"`
	Count      int64  `json:"count"`
	Unfinished bool   `json:"unfinished"`
}

// CRMStatus is one CRM's circuit and send rate.
type CRMStatus struct {
	CRM string `json:"crm"`
	// Circuit is closed, open, half_open, or unknown (the processor never wrote its health).
	Circuit       store.CRMState `json:"circuit"`
	ChangedAt     time.Time      `json:"changed_at,omitzero"`
	LastSuccessAt time.Time      `json:"last_success_at,omitzero"`
	LastFailureAt time.Time      `json:"last_failure_at,omitzero"`
	// SentLastMinute counts the events written to this CRM in the last minute.
	SentLastMinute int `json:"sent_last_minute"`
}

// ClassCount is the number of open DLQ records of one failure class.
type ClassCount struct {
	Class string `json:"failure_class"`
	Count int64  `json:"count"`
}

// Minute is one bucket of the throughput chart.
type Minute struct {
	At        time.Time `json:"at"`
	Accepted  int       `json:"accepted"`
	Succeeded int       `json:"succeeded"`
}

// overviewStates is the order states are shown in.
var overviewStates = []store.State{store.StateReceived, store.StateProcessing, store.StateFailed, store.StateParked,
	store.StateSucceeded, store.StateQuarantined, store.StateDiscarded}

// dlqClasses are the failure classes counted ("unknown": a reason nobody classified).
var dlqClasses = []string{string(failure.Retryable), string(failure.Conflict), string(failure.Permanent),
	string(failure.Auth), string(failure.Outage), "unknown"}

// ParseWindow reads a window such as "1h" or "24h" (default DefaultWindow, at most MaxWindow).
func ParseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultWindow, nil
	}
	var w time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		w = time.Duration(n) * 24 * time.Hour
	} else {
		w, err = time.ParseDuration(s)
	}
	if err != nil || w < time.Minute || w > MaxWindow {
		return 0, fmt.Errorf("%w: window must be a duration between 1m and 30d (e.g. 1h, 24h, 7d)", ErrInvalid)
	}
	return w, nil
}

// FormatWindow writes a window as ParseWindow reads it: "7d", "24h", "90m".
func FormatWindow(w time.Duration) string {
	switch {
	case w >= 48*time.Hour && w%(24*time.Hour) == 0:
		return strconv.Itoa(int(w/(24*time.Hour))) + "d"
	case w%time.Hour == 0:
		return strconv.Itoa(int(w/time.Hour)) + "h"
	case w%time.Minute == 0:
		return strconv.Itoa(int(w/time.Minute)) + "m"
	}
	return w.String()
}

// Overview gathers the overview over window (the store queries run concurrently: aggregation
// counts, one query for the oldest unfinished leads, two bounded reads for the chart).
func (r *Reader) Overview(ctx context.Context, window time.Duration) (*Overview, error) {
	now := r.st.Now()
	o := &Overview{GeneratedAt: now, Window: FormatWindow(window), Since: now.Add(-window)}
	o.States = make([]StateCount, len(overviewStates))
	o.DLQOpen = make([]ClassCount, len(dlqClasses))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, s := range overviewStates {
		unfinished := slices.Contains(store.UnfinishedStates, s)
		o.States[i] = StateCount{State: string(s), Unfinished: unfinished}
		g.Go(func() error {
			since := o.Since
			if unfinished {
				since = time.Time{}
			}
			n, err := r.st.CountEvents(gctx, s, since)
			o.States[i].Count = n
			return err
		})
	}
	for i, c := range dlqClasses {
		o.DLQOpen[i].Class = c
		g.Go(func() error {
			n, err := r.st.CountDLQStatus(gctx, store.DLQOpen, failure.Class(c))
			o.DLQOpen[i].Count = n
			return err
		})
	}
	g.Go(func() error {
		var err error
		docs, err := r.st.OldestUnfinished(gctx, waitingLimit)
		o.Waiting = make([]*EventView, 0, len(docs))
		for _, d := range docs {
			o.Waiting = append(o.Waiting, NewEventView(d))
		}
		return err
	})
	chartSince := now.Truncate(time.Minute).Add(-time.Duration(chartMinutes-1) * time.Minute)
	if s := now.Add(-window).Truncate(time.Minute); s.After(chartSince) {
		chartSince = s
	}
	var created, completed []store.EventTimes
	var truncA, truncB bool
	g.Go(func() (err error) {
		created, truncA, err = r.st.RecentEvents(gctx, "created_at", chartSince, chartLimit)
		return err
	})
	g.Go(func() (err error) {
		completed, truncB, err = r.st.RecentEvents(gctx, "completed_at", chartSince, chartLimit)
		return err
	})
	var health []store.CRMHealth
	g.Go(func() (err error) {
		health, err = r.st.AllCRMHealth(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	for _, s := range o.States {
		if s.Unfinished {
			o.InFlight += s.Count
		}
	}
	for _, c := range o.DLQOpen {
		o.DLQOpenTotal += c.Count
	}
	if len(o.Waiting) > 0 {
		o.OldestUnfinishedAt = o.Waiting[0].CreatedAt
		o.OldestUnfinishedAgeSec = int64(now.Sub(o.OldestUnfinishedAt) / time.Second)
	}
	o.Throughput, o.ThroughputTruncated = buckets(chartSince, now, created, completed), truncA || truncB
	o.CRMs = crmStatuses(health, completed, now)
	return o, nil
}

// buckets counts accepted (created) and succeeded (completed) events per minute from since to
// now.
func buckets(since, now time.Time, created, completed []store.EventTimes) []Minute {
	n := int(now.Truncate(time.Minute).Sub(since)/time.Minute) + 1
	out := make([]Minute, n)
	for i := range out {
		out[i].At = since.Add(time.Duration(i) * time.Minute)
	}
	idx := func(t time.Time) int {
		if t.Before(since) {
			return -1
		}
		i := int(t.Sub(since) / time.Minute)
		if i >= n {
			return -1
		}
		return i
	}
	for _, e := range created {
		if i := idx(e.CreatedAt); i >= 0 {
			out[i].Accepted++
		}
	}
	for _, e := range completed {
		if i := idx(e.CompletedAt); i >= 0 {
			out[i].Succeeded++
		}
	}
	return out
}

// crmStatuses joins the breaker states with the last minute's writes per CRM, sorted by name.
func crmStatuses(health []store.CRMHealth, completed []store.EventTimes, now time.Time) []CRMStatus {
	by := map[string]*CRMStatus{}
	get := func(crm string) *CRMStatus {
		if s, ok := by[crm]; ok {
			return s
		}
		s := &CRMStatus{CRM: crm, Circuit: "unknown"}
		by[crm] = s
		return s
	}
	for _, h := range health {
		if strings.HasPrefix(h.CRM, "_") || h.CRM == "" {
			continue
		}
		s := get(h.CRM)
		s.Circuit, s.ChangedAt, s.LastSuccessAt, s.LastFailureAt = h.State, h.ChangedAt, h.LastSuccessAt, h.LastFailureAt
	}
	for _, e := range completed {
		if e.CRM != "" && !e.CompletedAt.Before(now.Add(-time.Minute)) {
			get(e.CRM).SentLastMinute++
		}
	}
	out := make([]CRMStatus, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b CRMStatus) int { return strings.Compare(a.CRM, b.CRM) })
	return out
}

// CircuitOpen reports the health of the CRM a DLQ record's event routes to when its circuit is
// not closed (open or half-open): a replay now would only fail again. nil when the CRM is
// healthy, unknown, or the record has no event.
func (r *Reader) CircuitOpen(ctx context.Context, id string) (*store.CRMHealth, error) {
	doc, err := r.st.GetEvent(ctx, id)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.CRMCircuitOpen(ctx, doc.Event.Routing.CRM)
}

// CRMCircuitOpen is CircuitOpen by CRM name.
func (r *Reader) CRMCircuitOpen(ctx context.Context, crm string) (*store.CRMHealth, error) {
	h, err := r.CRMHealth(ctx, crm)
	if err != nil || h == nil || h.State == store.CRMClosed {
		return nil, err
	}
	return h, nil
}
