package loadgen

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run. JSON field names are stable (the --json output).
type Report struct {
	RunID string `json:"run_id"`
	// Stack says what ran the pipeline; set by the caller (Run leaves it empty).
	Stack   string `json:"stack,omitempty"`
	Profile string `json:"profile"`
	Chaos   string `json:"chaos"`

	Leads       int `json:"leads"`
	DupsPerLead int `json:"dups_per_lead"`
	Deliveries  int `json:"deliveries_sent"`
	// Answers counts deliveries by answer, "202 accepted", "200 duplicate", "503 error",
	// "transport error".
	Answers     map[string]int `json:"answers"`
	Accepted    int            `json:"accepted"`
	Duplicate   int            `json:"duplicate"`
	Quarantined int            `json:"quarantined"`
	Errors      int            `json:"errors"`
	// AcceptedLeads had at least one 2xx answer; RejectedLeads none.
	AcceptedLeads int `json:"accepted_leads"`
	RejectedLeads int `json:"rejected_leads"`

	// IngestLatency is each delivery's round trip; EndToEnd is a lead's first send to its CRM
	// record's created_at.
	IngestLatency Latency `json:"ingest_latency"`
	EndToEnd      Latency `json:"end_to_end_latency"`
	// MaxSendLag is how late the latest delivery left compared with the plan (an overloaded
	// target or too few workers).
	MaxSendLag time.Duration `json:"max_send_lag_ns"`

	SendSeconds float64 `json:"send_seconds"`
	// AcceptedPerSec is accepted leads over SendSeconds; CRMRecordsPerSec is records of this run
	// over the time from the start to the last record's creation.
	AcceptedPerSec   float64 `json:"accepted_leads_per_sec"`
	CRMRecordsPerSec float64 `json:"crm_records_per_sec"`
	// SettleSeconds is from the start to every accepted lead being accounted for.
	SettleSeconds float64 `json:"settle_seconds"`

	CRMCalls int `json:"crm_calls"`
	CRM429   int `json:"crm_429"`
	CRM5xx   int `json:"crm_5xx"`

	InCRM            int `json:"in_crm"`
	InDLQ            int `json:"in_dlq"`
	DuplicateCreates int `json:"duplicate_creates"`
	Lost             int `json:"lost"`
	// Settled is false when the timeout came first; Lost then counts leads still in flight.
	Settled bool `json:"settled"`
	// LostIDs and DuplicateIDs name up to 20 leads of each kind.
	LostIDs      []string `json:"lost_ids,omitempty"`
	DuplicateIDs []string `json:"duplicate_ids,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

// OK reports whether the run kept both invariants: no lead lost, no record created twice.
func (rep *Report) OK() bool { return rep.Lost == 0 && rep.DuplicateCreates == 0 }

// report reads the final state of the CRM and the DLQ and builds the Report.
func (r *run) report(ctx context.Context, settled bool) (*Report, error) {
	records, err := r.crm.records(ctx)
	if err != nil {
		return nil, err
	}
	creates, err := r.crm.creates(ctx)
	if err != nil {
		return nil, err
	}
	calls, err := r.crm.calls(ctx)
	if err != nil {
		return nil, err
	}
	dlq, err := r.dlq.list(ctx)
	if err != nil {
		return nil, err
	}
	p := r.cfg.Plan
	rep := &Report{
		RunID: r.id, Profile: p.Profile, Chaos: r.cfg.Chaos.String(),
		Leads: p.Leads, DupsPerLead: p.Dups, Answers: map[string]int{}, Settled: settled,
		SendSeconds: r.sendEnd.Sub(r.start).Seconds(),
	}

	firstSend := make([]time.Time, p.Leads)
	var ingest []time.Duration
	var lastAnswer time.Time
	for i, res := range r.results {
		if !res.sent {
			continue
		}
		rep.Deliveries++
		lead := r.plan[i].Lead
		if firstSend[lead].IsZero() || res.at.Before(firstSend[lead]) {
			firstSend[lead] = res.at
		}
		rep.MaxSendLag = max(rep.MaxSendLag, res.lag)
		if end := res.at.Add(res.latency); end.After(lastAnswer) {
			lastAnswer = end
		}
		if res.code == 0 {
			rep.Answers["transport error"]++
			rep.Errors++
			continue
		}
		ingest = append(ingest, res.latency)
		rep.Answers[strconv.Itoa(res.code)+" "+orDash(res.status)]++
		switch {
		case res.code >= 300:
			rep.Errors++
		case res.status == "accepted":
			rep.Accepted++
		case res.status == "duplicate":
			rep.Duplicate++
		case res.status == "quarantined":
			rep.Quarantined++
		}
	}
	rep.IngestLatency = Summarize(ingest)
	if s := lastAnswer.Sub(r.start).Seconds(); s > 0 {
		rep.SendSeconds = s
	}

	created := map[string]time.Time{}
	for _, rec := range records {
		k := strings.ToLower(rec.Key)
		if t, ok := created[k]; !ok || rec.CreatedAt.Before(t) {
			created[k] = rec.CreatedAt
		}
	}
	var e2e []time.Duration
	var lastCreate time.Time
	for lead, ok := range r.accepted() {
		id := r.leadID(lead)
		n := creates[id]
		if n > 1 {
			rep.DuplicateCreates += n - 1
			rep.DuplicateIDs = appendCapped(rep.DuplicateIDs, id)
		}
		if ok {
			rep.AcceptedLeads++
		} else if firstSend[lead].IsZero() {
			continue // never sent (the run was cut short)
		} else {
			rep.RejectedLeads++
		}
		switch _, inDLQ := dlq[r.idempotencyKey(lead)]; {
		case n > 0:
			rep.InCRM++
			if t, ok := created[id]; ok {
				e2e = append(e2e, t.Sub(firstSend[lead]))
				if t.After(lastCreate) {
					lastCreate = t
				}
			}
		case inDLQ:
			rep.InDLQ++
		case ok:
			rep.Lost++
			rep.LostIDs = appendCapped(rep.LostIDs, id)
		}
	}
	rep.EndToEnd = Summarize(e2e)
	if rep.SendSeconds > 0 {
		rep.AcceptedPerSec = float64(rep.AcceptedLeads) / rep.SendSeconds
	}
	if s := lastCreate.Sub(r.start).Seconds(); s > 0 {
		rep.CRMRecordsPerSec = float64(rep.InCRM) / s
	}
	if settled {
		rep.SettleSeconds = r.settledAt.Sub(r.start).Seconds()
	}
	for _, c := range calls {
		if c.At.Before(r.start) {
			continue
		}
		rep.CRMCalls++
		switch {
		case c.Status == 429:
			rep.CRM429++
		case c.Status >= 500:
			rep.CRM5xx++
		}
	}
	if !settled {
		rep.Notes = append(rep.Notes, "timed out before every accepted lead was accounted for: lost counts leads still in flight")
	}
	if rep.RejectedLeads > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d leads got no 2xx answer to any delivery (not counted as lost)", rep.RejectedLeads))
	}
	return rep, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func appendCapped(s []string, v string) []string {
	if len(s) < 20 {
		return append(s, v)
	}
	return s
}

// String is the flag-like form of the plan, "error-rate=0.1 outage=5s@10s"; "none" when zero.
func (c Chaos) String() string {
	var parts []string
	if c.ErrorRate > 0 {
		parts = append(parts, fmt.Sprintf("error-rate=%g", c.ErrorRate))
	}
	if c.RateLimit > 0 {
		parts = append(parts, fmt.Sprintf("rate-limit=%g/s", c.RateLimit))
	}
	if c.Latency > 0 {
		parts = append(parts, "latency="+c.Latency.String())
	}
	if c.Outage.For > 0 {
		parts = append(parts, "outage="+c.Outage.String())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// WriteText prints the report for people.
func (rep *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	p("run", "%s  profile %s  chaos %s", rep.RunID, rep.Profile, rep.Chaos)
	if rep.Stack != "" {
		p("stack", "%s", rep.Stack)
	}
	p("leads", "%d distinct, %d extra deliveries each", rep.Leads, rep.DupsPerLead)
	p("deliveries sent", "%d in %.1fs (max send lag %s)", rep.Deliveries, rep.SendSeconds, ms(rep.MaxSendLag))
	keys := make([]string, 0, len(rep.Answers))
	for k := range rep.Answers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p("  answer "+k, "%d", rep.Answers[k])
	}
	p("answers", "accepted %d, duplicate %d, quarantined %d, error %d", rep.Accepted, rep.Duplicate, rep.Quarantined, rep.Errors)
	p("accepted leads", "%d (rejected %d)", rep.AcceptedLeads, rep.RejectedLeads)
	p("ingest latency", "%s", rep.IngestLatency)
	p("end-to-end latency", "%s", rep.EndToEnd)
	p("throughput", "%.1f accepted leads/s, %.1f CRM records/s", rep.AcceptedPerSec, rep.CRMRecordsPerSec)
	if rep.Settled {
		p("settled after", "%.1fs", rep.SettleSeconds)
	} else {
		p("settled", "NO (timeout)")
	}
	p("CRM calls", "%d (429: %d, 5xx: %d)", rep.CRMCalls, rep.CRM429, rep.CRM5xx)
	p("in CRM", "%d", rep.InCRM)
	p("in DLQ", "%d", rep.InDLQ)
	p("duplicate CRM creates", "%d%s", rep.DuplicateCreates, ids(rep.DuplicateIDs))
	p("lost leads", "%d%s", rep.Lost, ids(rep.LostIDs))
	for _, n := range rep.Notes {
		p("note", "%s", n)
	}
	verdict := "OK: no lead lost, no duplicate CRM record"
	if !rep.OK() {
		verdict = "FAIL: leads lost or duplicated"
	}
	p("result", "%s", verdict)
	return tw.Flush()
}

// String is "p50 12ms  p95 40ms  p99 80ms  max 120ms  (n=2000)".
func (l Latency) String() string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (n=%d)", ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max), l.Count)
}

func ms(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func ids(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return " (" + strings.Join(s, ", ") + ")"
}
