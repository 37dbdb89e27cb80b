// Command loadgen benchmarks the whole local pipeline and injects CRM faults while it runs. It
// sends distinct signed leads to ingest (each delivered --dups extra times, as vendors retry),
// waits until every accepted lead is in the CRM exactly once or in the DLQ, prints a report and
// exits 1 if a lead was lost or created twice in the CRM. Traffic goes to loopback only.
//
//	loadgen [--embedded] [--leads 2000] [--rate 200 | --burst] [--profile steady|campaign]
//	        [--crm-error-rate 0.1] [--crm-outage 5s@10s] [--crm-rate-limit 50] [--crm-latency 20ms]
//	        [--json]
//	loadgen --target http://127.0.0.1:8081 ...   against a running `make dev`
//
// With --target, INGEST_URL (the flag's value), CRM_URL, REPLAYER_URL, REPLAYER_TOKEN,
// DEMO_SOURCE and DEMO_WEBHOOK_SECRET come from flags, else the environment, else
// .devstack/env (written by `devstack up`). Without it (the default) loadgen boots the stack
// in-process on free ports.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/leadpipe/leadpipe/devstack/loadgen"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

// errFailed is a run that lost or duplicated leads: the report is printed, the exit code is 1.
var errFailed = errors.New("leads lost or duplicated")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := realMain(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errFailed):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	cfg      loadgen.Config
	targets  loadgen.Targets
	embedded bool
	asJSON   bool
	quiet    bool
	logs     string
	envFile  string
	crmRate  float64
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	p := &o.cfg.Plan
	target := fs.String("target", "", "ingest URL of a running `make dev` (INGEST_URL); empty: boot the stack in-process")
	fs.BoolVar(&o.embedded, "embedded", false, "boot the stack in-process on free ports (the default without --target)")
	fs.StringVar(&o.targets.CRMURL, "crm-url", "", "fake CRM URL (CRM_URL)")
	fs.StringVar(&o.targets.ReplayerURL, "replayer-url", "", "replayer URL (REPLAYER_URL)")
	fs.StringVar(&o.targets.ReplayerToken, "replayer-token", "", "replayer API token (REPLAYER_TOKEN)")
	fs.StringVar(&o.targets.Source, "source", "", "canonical source to post to (DEMO_SOURCE, default demo)")
	fs.StringVar(&o.targets.Secret, "secret", "", "its Standard Webhooks secret whsec_... (DEMO_WEBHOOK_SECRET)")
	fs.StringVar(&o.envFile, "env-file", ".devstack/env", "exports of `devstack up` read for unset values with --target")
	fs.IntVar(&p.Leads, "leads", 2000, "distinct leads")
	fs.IntVar(&p.Dups, "dups", 2, "extra deliveries of each lead (same webhook-id), as a vendor retrying")
	fs.DurationVar(&p.DupDelay, "dup-delay", time.Second, "each retry goes out a random 0..dup-delay after the delivery before it")
	fs.Float64Var(&p.Rate, "rate", 200, "leads per second (campaign: the base rate, default 25)")
	burst := fs.Bool("burst", false, "send every lead at once, limited only by --concurrency")
	fs.StringVar(&p.Profile, "profile", loadgen.ProfileSteady, "steady or campaign (base rate, then 20x for --campaign-for from --campaign-at, then back)")
	fs.DurationVar(&p.CampaignAt, "campaign-at", 3*time.Second, "campaign: when the burst starts")
	fs.DurationVar(&p.CampaignFor, "campaign-for", 3*time.Second, "campaign: how long the burst lasts")
	fs.Float64Var(&p.CampaignFactor, "campaign-factor", 20, "campaign: burst rate over base rate")
	seed := fs.Uint64("seed", 0, "seed of the retry delays (0: from the clock)")
	fs.IntVar(&o.cfg.Concurrency, "concurrency", 64, "sending workers (deliveries in flight)")
	fs.Float64Var(&o.cfg.Chaos.ErrorRate, "crm-error-rate", 0, "fraction of CRM requests answered 500 during the run")
	outage := fs.String("crm-outage", "", "CRM outage DURATION@START, e.g. 5s@10s (503s for 5 s from 10 s into the run)")
	fs.Float64Var(&o.cfg.Chaos.RateLimit, "crm-rate-limit", 0, "CRM requests admitted per second, the rest get 429 (0: no limit)")
	fs.DurationVar(&o.cfg.Chaos.Latency, "crm-latency", 0, "added latency of every CRM answer")
	fs.DurationVar(&o.cfg.Timeout, "timeout", 5*time.Minute, "bound on the whole run (sending and settling)")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.Float64Var(&o.crmRate, "processor-crm-rate", 200, "embedded: the processor's own CRM send rate cap, CRM_RATE_PER_SEC (`make dev` keeps its default, 10)")
	fs.StringVar(&o.logs, "logs", "", "embedded: write the stack's JSON logs to this file (default: discarded)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *burst {
		if set["profile"] && p.Profile != loadgen.ProfileBurst {
			return nil, errors.New("--burst and --profile are exclusive")
		}
		p.Profile = loadgen.ProfileBurst
	}
	if p.Profile == loadgen.ProfileCampaign && !set["rate"] {
		p.Rate = 25
	}
	p.Seed = *seed
	if p.Seed == 0 {
		p.Seed = uint64(time.Now().UnixNano())
	}
	if *outage != "" {
		w, err := loadgen.ParseWindow(*outage)
		if err != nil {
			return nil, fmt.Errorf("--crm-outage: %w", err)
		}
		o.cfg.Chaos.Outage = w
	}
	if *target != "" && o.embedded {
		return nil, errors.New("--target and --embedded are exclusive")
	}
	o.embedded = *target == ""
	if !o.embedded {
		o.targets.IngestURL = *target
		if err := o.fillTargets(getenv); err != nil {
			return nil, err
		}
	}
	if err := o.cfg.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// fillTargets completes unset target values from the environment, then from the env file.
func (o *options) fillTargets(getenv func(string) string) error {
	file, err := readEnvFile(o.envFile)
	if err != nil {
		return err
	}
	lookup := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return file[name]
	}
	t := &o.targets
	for _, f := range []struct {
		dst  *string
		name string
	}{
		{&t.CRMURL, "CRM_URL"}, {&t.ReplayerURL, "REPLAYER_URL"}, {&t.ReplayerToken, "REPLAYER_TOKEN"},
		{&t.Source, "DEMO_SOURCE"}, {&t.Secret, "DEMO_WEBHOOK_SECRET"},
	} {
		if *f.dst == "" {
			*f.dst = lookup(f.name)
		}
	}
	return nil
}

// readEnvFile reads `export NAME=VALUE` lines; a missing file is empty.
func readEnvFile(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 0; sc.Scan() && n < 1000; n++ {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && k != "" && !strings.HasPrefix(k, "#") {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out, sc.Err()
}

func realMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	if !o.quiet {
		o.cfg.Progress = stderr
	}
	if o.embedded {
		if o.crmRate <= 0 {
			return errors.New("--processor-crm-rate must be > 0")
		}
		so := stack.Options{LogLevel: slog.LevelWarn, Env: map[string]string{"CRM_RATE_PER_SEC": fmt.Sprint(o.crmRate)}}
		if o.logs != "" {
			f, err := os.Create(o.logs)
			if err != nil {
				return fmt.Errorf("logs: %w", err)
			}
			defer f.Close()
			so.Logs, so.LogLevel = f, slog.LevelInfo
		}
		if !o.quiet {
			fmt.Fprintln(stderr, "loadgen: starting the stack in-process")
		}
		t, stop, err := loadgen.Embedded(ctx, so)
		if err != nil {
			return fmt.Errorf("embedded stack: %w", err)
		}
		defer stop()
		o.targets = t
	}
	rep, err := loadgen.Run(ctx, o.cfg, o.targets)
	if err != nil {
		return err
	}
	rep.Stack = "target " + o.targets.IngestURL
	if o.embedded {
		rep.Stack = fmt.Sprintf("embedded (processor CRM_RATE_PER_SEC=%g)", o.crmRate)
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return errFailed
	}
	return nil
}
