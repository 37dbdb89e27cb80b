package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/devstack/loadgen"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse_Defaults(t *testing.T) {
	o, err := parse(nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p := o.cfg.Plan
	if !o.embedded || p.Leads != 2000 || p.Dups != 2 || p.Rate != 200 || p.Profile != loadgen.ProfileSteady || o.cfg.Concurrency != 64 {
		t.Errorf("defaults = embedded %v, %+v, concurrency %d; want embedded, 2000 leads, 2 dups, 200/s steady, 64", o.embedded, p, o.cfg.Concurrency)
	}
	if !o.cfg.Chaos.Zero() {
		t.Errorf("default chaos = %+v, want none", o.cfg.Chaos)
	}
}

func TestParse_ProfilesAndChaos(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, o *options)
	}{
		{"campaign defaults to a 25/s base", []string{"--profile=campaign"}, func(t *testing.T, o *options) {
			if p := o.cfg.Plan; p.Profile != loadgen.ProfileCampaign || p.Rate != 25 || p.CampaignFactor != 20 {
				t.Errorf("plan = %+v, want campaign at 25/s, factor 20", p)
			}
		}},
		{"campaign with an explicit rate", []string{"--profile=campaign", "--rate=40"}, func(t *testing.T, o *options) {
			if o.cfg.Plan.Rate != 40 {
				t.Errorf("rate = %v, want 40", o.cfg.Plan.Rate)
			}
		}},
		{"burst", []string{"--burst", "--concurrency=8"}, func(t *testing.T, o *options) {
			if o.cfg.Plan.Profile != loadgen.ProfileBurst || o.cfg.Concurrency != 8 {
				t.Errorf("profile %q concurrency %d, want burst 8", o.cfg.Plan.Profile, o.cfg.Concurrency)
			}
		}},
		{"chaos", []string{"--crm-error-rate=0.1", "--crm-outage=5s@10s", "--crm-rate-limit=50", "--crm-latency=20ms"}, func(t *testing.T, o *options) {
			want := loadgen.Chaos{ErrorRate: 0.1, RateLimit: 50, Latency: 20 * time.Millisecond,
				Outage: loadgen.Window{At: 10 * time.Second, For: 5 * time.Second}}
			if o.cfg.Chaos != want {
				t.Errorf("chaos = %+v, want %+v", o.cfg.Chaos, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parse(tt.args, envOf(nil), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestParse_Rejects(t *testing.T) {
	for _, args := range [][]string{
		{"--burst", "--profile=campaign"},
		{"--crm-outage=5s"},
		{"--crm-error-rate=2"},
		{"--leads=0"},
		{"--profile=sawtooth"},
		{"--target=http://127.0.0.1:1", "--embedded"},
		{"extra"},
	} {
		if _, err := parse(args, envOf(nil), io.Discard); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
}

// With --target, flags win over the environment, which wins over .devstack/env.
func TestParse_TargetSettingsPrecedence(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "env")
	content := "export INGEST_URL=http://127.0.0.1:8081\nexport CRM_URL=http://127.0.0.1:8084\n" +
		"export REPLAYER_URL=http://127.0.0.1:8083\nexport REPLAYER_TOKEN=lp_file\n" +
		"export DEMO_SOURCE=demo\nexport DEMO_WEBHOOK_SECRET=" + secret + "\n"
	if err := os.WriteFile(envFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parse([]string{"--target=http://127.0.0.1:9999", "--env-file=" + envFile, "--source=partnerx"},
		envOf(map[string]string{"REPLAYER_TOKEN": "lp_env"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := loadgen.Targets{
		IngestURL: "http://127.0.0.1:9999", CRMURL: "http://127.0.0.1:8084", ReplayerURL: "http://127.0.0.1:8083",
		ReplayerToken: "lp_env", Source: "partnerx", Secret: secret,
	}
	if o.embedded || o.targets != want {
		t.Errorf("targets = %+v (embedded %v), want %+v", o.targets, o.embedded, want)
	}
}

// A non-loopback target is refused before anything is sent.
func TestRealMain_RefusesNonLoopbackTargets(t *testing.T) {
	env := envOf(map[string]string{
		"CRM_URL": "http://127.0.0.1:8084", "REPLAYER_URL": "http://127.0.0.1:8083",
		"REPLAYER_TOKEN": "lp", "DEMO_WEBHOOK_SECRET": secret,
	})
	err := realMain(context.Background(), []string{"--target=http://10.1.2.3:8081", "--env-file=", "--quiet"}, env, io.Discard, io.Discard)
	if !errors.Is(err, loadgen.ErrNotLoopback) {
		t.Fatalf("realMain error = %v, want ErrNotLoopback", err)
	}
}

func TestReadEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte("# comment\nexport A=1\nB='two'\n\nexport C=\"x=y\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two", "C": "x=y"}
	if len(got) != len(want) {
		t.Fatalf("readEnvFile = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if m, err := readEnvFile(filepath.Join(t.TempDir(), "missing")); err != nil || len(m) != 0 {
		t.Errorf("missing file: %v, %v; want empty, nil", m, err)
	}
}
