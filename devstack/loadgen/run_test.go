package loadgen

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/devstack/provision"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

// TestRun_Embedded is a short real run: the whole pipeline in this process, 100 leads each
// delivered three times while the CRM fails a tenth of its requests and goes down for a
// second. The report must say every lead is in the CRM exactly once.
func TestRun_Embedded(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole stack")
	}
	ctx := context.Background()
	mode, err := devstacktest.Mode()
	if err != nil {
		t.Fatal(err)
	}
	o := stack.Options{
		Emulators: mode,
		ProjectID: devstacktest.Project("leadpipe-loadgen"),
		Topology:  provision.Topology{MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second},
		// Short backoffs and sweeps, as in the stack's end-to-end tests, keep the test brief.
		MaxPushBackoff: time.Second,
		Env: map[string]string{
			"SWEEP_INTERVAL": "500ms", "OUTBOX_DELAY": "1s", "AUTO_REPLAY_INTERVAL": "0s",
			"CRM_RATE_PER_SEC": "500",
		},
	}
	if os.Getenv("E2E_LOGS") != "" {
		o.Logs = os.Stderr
	}
	targets, stop, err := Embedded(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	const leads = 100
	cfg := Config{
		Plan: Plan{Leads: leads, Dups: 2, Profile: ProfileSteady, Rate: 100, DupDelay: 200 * time.Millisecond, Seed: 1},
		Chaos: Chaos{
			ErrorRate: 0.1,
			Outage:    Window{At: 300 * time.Millisecond, For: time.Second},
		},
		Concurrency: 16,
		Timeout:     2 * time.Minute,
	}
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	rep, err := Run(ctx, cfg, targets)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		_ = rep.WriteText(os.Stderr)
	}
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"deliveries sent", rep.Deliveries, 3 * leads},
		{"202 accepted answers", rep.Accepted, leads},
		{"200 duplicate answers", rep.Duplicate, 2 * leads},
		{"error answers", rep.Errors, 0},
		{"accepted leads", rep.AcceptedLeads, leads},
		{"leads in the CRM", rep.InCRM, leads},
		{"leads in the DLQ", rep.InDLQ, 0},
		{"duplicate CRM creates", rep.DuplicateCreates, 0},
		{"lost leads", rep.Lost, 0},
		{"end-to-end samples", rep.EndToEnd.Count, leads},
		{"ingest latency samples", rep.IngestLatency.Count, 3 * leads},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !rep.Settled || !rep.OK() {
		t.Errorf("settled %v, OK %v; notes %v", rep.Settled, rep.OK(), rep.Notes)
	}
	// The faults really happened: the outage answers 503 and the error rate 500.
	if rep.CRM5xx == 0 {
		t.Errorf("CRM 5xx = 0, want the injected 500s and 503s to show")
	}
	if rep.CRMCalls < leads {
		t.Errorf("CRM calls = %d, want at least one per lead (%d)", rep.CRMCalls, leads)
	}
	// Run leaves the CRM's faults as it found them.
	crm := &crmControl{base: targets.CRMURL, hc: http.DefaultClient}
	f, err := crm.faults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Outage || f.ErrorRate != 0 {
		t.Errorf("faults after the run = %+v, want none", f)
	}

	// Permanent CRM rejections quarantine their leads: the second run must find them in the
	// replayer's DLQ, not count them lost.
	t.Run("permanent failures end in the DLQ", func(t *testing.T) {
		const rejected = 3
		body := strings.NewReader(`{"system":"salesforce","count":3,"status":400,"error_code":"INVALID_FIELD"}`)
		resp, err := http.Post(targets.CRMURL+"/_control/fail", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		rep, err := Run(ctx, Config{
			Plan:    Plan{Leads: 20, Dups: 1, Profile: ProfileSteady, Rate: 50, Seed: 2},
			Timeout: time.Minute,
		}, targets)
		if err != nil {
			t.Fatal(err)
		}
		if rep.InDLQ != rejected || rep.InCRM != 20-rejected || rep.Lost != 0 || rep.DuplicateCreates != 0 || !rep.Settled {
			t.Errorf("in DLQ %d, in CRM %d, lost %d, duplicates %d, settled %v; want %d, %d, 0, 0, true",
				rep.InDLQ, rep.InCRM, rep.Lost, rep.DuplicateCreates, rep.Settled, rejected, 20-rejected)
		}
	})
}
