// Package loadgen is the load generator and chaos tool of the local stack: it sends distinct,
// signed leads (each delivered several times, as vendors retry) to ingest at a rate profile,
// injects faults into the fake CRM on a timeline, waits until every accepted lead is in the CRM
// or in the DLQ, and reports latencies, throughput and the two invariants: no lead lost, no
// CRM record created twice. It talks to the pipeline only over HTTP (ingest, the fake CRM's
// /_control/ API, the replayer's /v1/dlq), so it runs the same against `make dev` and against a
// stack it boots in-process (Embedded), and it only ever sends to loopback addresses.
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
)

// Targets are the endpoints and credentials of a running stack (the exports of `devstack up`).
type Targets struct {
	IngestURL     string // INGEST_URL
	CRMURL        string // CRM_URL: the fake CRM (faults, records, calls)
	ReplayerURL   string // REPLAYER_URL
	ReplayerToken string // REPLAYER_TOKEN
	Source        string // DEMO_SOURCE; default "demo"
	Secret        string // DEMO_WEBHOOK_SECRET, whsec_<base64>
}

// Validate checks every URL is set and on loopback and the secret decodes.
func (t Targets) Validate() error {
	for _, u := range []struct{ name, v string }{{"ingest URL", t.IngestURL}, {"CRM URL", t.CRMURL}, {"replayer URL", t.ReplayerURL}} {
		if u.v == "" {
			return fmt.Errorf("%s is required", u.name)
		}
		if err := CheckLoopback(u.v); err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
	}
	if t.ReplayerToken == "" {
		return errors.New("replayer token is required (REPLAYER_TOKEN)")
	}
	if _, err := NewSigner(t.Secret); err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	return nil
}

// Config is one run.
type Config struct {
	Plan  Plan
	Chaos Chaos
	// Concurrency is the number of sending workers (in-flight deliveries). Default 64.
	Concurrency int
	// Timeout bounds the whole run: sending, waiting for the pipeline to settle and the final
	// reads. Default 5m.
	Timeout time.Duration
	// RequestTimeout bounds one delivery. Default 30s.
	RequestTimeout time.Duration
	// Poll is the interval of the settle checks. Default 500ms.
	Poll time.Duration
	// Settle is how long to wait after every lead is accounted for before the final reads, so
	// late duplicate creates still show. Default 1s.
	Settle time.Duration
	// Progress receives one line every few seconds while running; nil: quiet.
	Progress io.Writer
}

func (c *Config) defaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Poll == 0 {
		c.Poll = 500 * time.Millisecond
	}
	if c.Settle == 0 {
		c.Settle = time.Second
	}
}

// Validate reports the first invalid field (after defaults).
func (c Config) Validate() error {
	c.defaults()
	if err := c.Plan.Validate(); err != nil {
		return err
	}
	if err := c.Chaos.Validate(); err != nil {
		return err
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return errors.New("concurrency must be 1..1024")
	case c.Timeout < 0 || c.Timeout > 2*time.Hour:
		return errors.New("timeout must be at most 2h")
	}
	return nil
}

// result is the outcome of one delivery.
type result struct {
	sent    bool
	at      time.Time // when the request started
	latency time.Duration
	code    int    // 0: transport error
	status  string // the answer's "status" field
	lag     time.Duration
}

// run is the state of one Run.
type run struct {
	cfg       Config
	t         Targets
	id        string
	signer    *Signer
	hc        *http.Client
	crm       *crmControl
	dlq       *dlqClient
	plan      []Delivery
	results   []result
	start     time.Time
	sendEnd   time.Time
	settledAt time.Time
}

// Run executes cfg against t and returns the report. The error is for a run that could not be
// carried out (bad config, a target not answering); a run that lost or duplicated leads
// returns a Report whose OK() is false. Cancelling ctx stops sending and waiting; the report
// then covers what was sent.
func Run(ctx context.Context, cfg Config, t Targets) (*Report, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if t.Source == "" {
		t.Source = "demo"
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	signer, _ := NewSigner(t.Secret)
	hc := &http.Client{
		Timeout: cfg.RequestTimeout,
		Transport: &http.Transport{
			MaxIdleConns: cfg.Concurrency + 8, MaxIdleConnsPerHost: cfg.Concurrency + 8,
			IdleConnTimeout: 30 * time.Second,
		},
	}
	defer hc.CloseIdleConnections()
	r := &run{
		cfg: cfg, t: t, id: randomHex(4), signer: signer, hc: hc,
		crm:  &crmControl{base: strings.TrimRight(t.CRMURL, "/"), hc: hc},
		dlq:  &dlqClient{base: strings.TrimRight(t.ReplayerURL, "/"), token: t.ReplayerToken, hc: hc},
		plan: cfg.Plan.Deliveries(),
	}
	r.results = make([]result, len(r.plan))

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	prev, err := r.crm.faults(ctx)
	if err != nil {
		return nil, fmt.Errorf("loadgen: fake CRM at %s: %w", t.CRMURL, err)
	}
	if _, err := r.dlq.list(ctx); err != nil {
		return nil, fmt.Errorf("loadgen: replayer at %s: %w", t.ReplayerURL, err)
	}

	r.start = time.Now()
	chaosDone := make(chan error, 1)
	go func() { chaosDone <- r.chaos(ctx) }()
	stopProgress := r.progress(ctx)
	r.send(ctx)
	r.sendEnd = time.Now()
	settled := r.settle(ctx, chaosDone)
	stopProgress()

	// The final reads and the fault restore get their own short budget, so a run that hit its
	// timeout still reports and leaves the CRM as it found it.
	fin, finCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer finCancel()
	restoreErr := r.crm.setFaults(fin, prev)
	rep, err := r.report(fin, settled)
	if err != nil {
		return nil, fmt.Errorf("loadgen: final reads: %w", err)
	}
	if restoreErr != nil {
		rep.Notes = append(rep.Notes, "could not restore the CRM faults: "+restoreErr.Error())
	}
	return rep, nil
}

// leadID is lead i's source event id and CRM external id (lower case: the fake CRM counts
// creates by lower-cased key).
func (r *run) leadID(i int) string { return fmt.Sprintf("lg-%s-%06d", r.id, i) }

func (r *run) idempotencyKey(i int) string {
	return event.IdempotencyKey(r.t.Source, event.TypeLeadCreated, r.leadID(i))
}

// body is lead i's canonical event; every delivery of a lead sends the same bytes.
func (r *run) body(i int) []byte {
	id := r.leadID(i)
	b, _ := json.Marshal(map[string]any{
		"event_type":      event.TypeLeadCreated,
		"source_event_id": id,
		"occurred_at":     r.start.UTC().Format(time.RFC3339),
		"identity":        map[string]string{"contact_external_id": id, "email": id + "@example.com"},
		"attributes": map[string]string{
			"first_name": "Load", "last_name": fmt.Sprintf("Lead %d", i), "company": "Example Co",
			"utm_source": "loadgen", "utm_campaign": "run-" + r.id,
		},
	})
	return b
}

// send dispatches the plan: one goroutine releases deliveries when due, Concurrency workers
// post them. A released delivery waits for a free worker, so an overloaded target shows as
// lag, not as unbounded goroutines.
func (r *run) send(ctx context.Context) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for i := range jobs {
				r.deliver(ctx, i)
			}
		})
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
dispatch:
	for i, d := range r.plan {
		if wait := time.Until(r.start.Add(d.Due)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break dispatch
			case <-timer.C:
			}
		}
		select {
		case <-ctx.Done():
			break dispatch
		case jobs <- i:
		}
	}
	close(jobs)
	wg.Wait()
}

func (r *run) deliver(ctx context.Context, i int) {
	d := r.plan[i]
	body := r.body(d.Lead)
	url := strings.TrimRight(r.t.IngestURL, "/") + "/v1/webhooks/" + r.t.Source
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	for k, v := range r.signer.Headers("msg_"+r.leadID(d.Lead), now, body) {
		req.Header.Set(k, v)
	}
	res := result{sent: true, at: now, lag: now.Sub(r.start.Add(d.Due))}
	resp, err := r.hc.Do(req)
	res.latency = time.Since(now)
	if err == nil {
		var a struct {
			Status string `json:"status"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&a)
		drain(resp)
		res.code, res.status = resp.StatusCode, a.Status
	} else if ctx.Err() != nil {
		return // cut short by the run's end: not a delivery
	}
	r.results[i] = res
}

// chaos applies the fault steps on time; it returns when the last step is applied.
func (r *run) chaos(ctx context.Context) error {
	for _, s := range r.cfg.Chaos.Steps() {
		if wait := time.Until(r.start.Add(s.At)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := r.crm.setFaults(ctx, s.Faults); err != nil {
			return fmt.Errorf("chaos %s: %w", s.What, err)
		}
		r.logf("chaos: %s at %v", s.What, s.At)
	}
	return nil
}

// accepted reports, per lead, whether any delivery got a 2xx (ingest stored it).
func (r *run) accepted() []bool {
	acc := make([]bool, r.cfg.Plan.Leads)
	for i, res := range r.results {
		if res.code >= 200 && res.code < 300 {
			acc[r.plan[i].Lead] = true
		}
	}
	return acc
}

// settle waits until the chaos plan is done and every accepted lead is in the CRM or at rest in
// the DLQ (a record not being replayed), polling every Poll. It reports whether that happened
// before ctx ended.
func (r *run) settle(ctx context.Context, chaosDone <-chan error) bool {
	select {
	case err := <-chaosDone:
		if err != nil && ctx.Err() == nil {
			r.logf("%v", err)
		}
	case <-ctx.Done():
		return false
	}
	acc := r.accepted()
	pending := map[int]bool{}
	for i, ok := range acc {
		if ok {
			pending[i] = true
		}
	}
	var lastDLQ time.Time
	tick := time.NewTicker(r.cfg.Poll)
	defer tick.Stop()
	for {
		if creates, err := r.crm.creates(ctx); err == nil {
			for i := range pending {
				if creates[r.leadID(i)] > 0 {
					delete(pending, i)
				}
			}
		}
		if len(pending) > 0 && time.Since(lastDLQ) >= 4*r.cfg.Poll {
			lastDLQ = time.Now()
			if recs, err := r.dlq.list(ctx); err == nil {
				for i := range pending {
					if rec, ok := recs[r.idempotencyKey(i)]; ok && rec.Status != "replayed" {
						delete(pending, i)
					}
				}
			}
		}
		if len(pending) == 0 {
			r.settledAt = time.Now()
			t := time.NewTimer(r.cfg.Settle)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// progress prints a line every 2 s until the returned stop is called.
func (r *run) progress(ctx context.Context) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
			}
			n := 0
			creates, _ := r.crm.creates(ctx)
			for i := range r.cfg.Plan.Leads {
				if creates[r.leadID(i)] > 0 {
					n++
				}
			}
			r.logf("%5.1fs: %d/%d leads in the CRM", time.Since(r.start).Seconds(), n, r.cfg.Plan.Leads)
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "loadgen: "+format+"\n", args...)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
