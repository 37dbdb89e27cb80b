package config_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/config"
)

// svcConfig is a service-shaped config: shared sub-configs embedded plus a Validate hook.
type svcConfig struct {
	Server    config.Server
	GCP       config.GCP
	Telemetry config.Telemetry
	Logging   config.Logging
	Extra     string `env:"EXTRA_SETTING, default=fallback"`
}

func (c *svcConfig) Validate() error { return c.Telemetry.Validate() }

func TestLoadDefaults(t *testing.T) {
	var cfg svcConfig
	l := config.MapLookuper(map[string]string{"GOOGLE_CLOUD_PROJECT": "proj-1"})
	if err := config.Load(context.Background(), &cfg, l); err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Port", cfg.Server.Port, "8080"},
		{"ShutdownTimeout", cfg.Server.ShutdownTimeout, 8 * time.Second},
		{"ProjectID", cfg.GCP.ProjectID, "proj-1"},
		{"LeadsTopic", cfg.GCP.LeadsTopic, "leads"},
		{"DLQTopic", cfg.GCP.DLQTopic, "leads-dlq"},
		{"RawBucket", cfg.GCP.RawBucket, ""},
		{"Bucket()", cfg.GCP.Bucket(), "proj-1-leadpipe-raw"},
		{"FirestoreDatabase", cfg.GCP.FirestoreDatabase, "(default)"},
		{"Exporter", cfg.Telemetry.Exporter, "none"},
		{"ServiceName", cfg.Telemetry.ServiceName, ""},
		{"SampleRatio", cfg.Telemetry.SampleRatio, 1.0},
		{"LogLevel", cfg.Logging.Level, "info"},
		{"Extra", cfg.Extra, "fallback"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

func TestLoadOverrides(t *testing.T) {
	var cfg svcConfig
	l := config.MapLookuper(map[string]string{
		"GOOGLE_CLOUD_PROJECT": "proj-2",
		"PORT":                 "9999",
		"SHUTDOWN_TIMEOUT":     "3s",
		"LEADS_TOPIC":          "t-leads",
		"DLQ_TOPIC":            "t-dlq",
		"RAW_BUCKET":           "my-bucket",
		"FIRESTORE_DATABASE":   "db2",
		"OTEL_EXPORTER":        "stdout",
		"OTEL_SERVICE_NAME":    "svc",
		"OTEL_SAMPLE_RATIO":    "0.25",
		"LOG_LEVEL":            "debug",
		"EXTRA_SETTING":        "x",
	})
	if err := config.Load(context.Background(), &cfg, l); err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Port", cfg.Server.Port, "9999"},
		{"ShutdownTimeout", cfg.Server.ShutdownTimeout, 3 * time.Second},
		{"LeadsTopic", cfg.GCP.LeadsTopic, "t-leads"},
		{"DLQTopic", cfg.GCP.DLQTopic, "t-dlq"},
		{"Bucket()", cfg.GCP.Bucket(), "my-bucket"},
		{"FirestoreDatabase", cfg.GCP.FirestoreDatabase, "db2"},
		{"Exporter", cfg.Telemetry.Exporter, "stdout"},
		{"ServiceName", cfg.Telemetry.ServiceName, "svc"},
		{"SampleRatio", cfg.Telemetry.SampleRatio, 0.25},
		{"LogLevel", cfg.Logging.Level, "debug"},
		{"Extra", cfg.Extra, "x"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

func TestLoadRequired(t *testing.T) {
	var cfg svcConfig
	err := config.Load(context.Background(), &cfg, config.MapLookuper(map[string]string{}))
	if err == nil {
		t.Fatal("Load without GOOGLE_CLOUD_PROJECT: got nil error, want an error")
	}
	if !strings.Contains(err.Error(), "GOOGLE_CLOUD_PROJECT") {
		t.Errorf("error %q: want it to name GOOGLE_CLOUD_PROJECT", err)
	}
}

// TestLoadUsesOnlyLookuper proves an injected lookuper is the only source: a variable set in
// the process environment is invisible to Load.
func TestLoadUsesOnlyLookuper(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "from-process-env")
	t.Setenv("LEADS_TOPIC", "from-process-env")
	var cfg svcConfig
	l := config.MapLookuper(map[string]string{"GOOGLE_CLOUD_PROJECT": "from-map"})
	if err := config.Load(context.Background(), &cfg, l); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.GCP.ProjectID != "from-map" {
		t.Errorf("ProjectID: got %q, want %q", cfg.GCP.ProjectID, "from-map")
	}
	if cfg.GCP.LeadsTopic != "leads" {
		t.Errorf("LeadsTopic: got %q, want default %q (process env must not leak in)", cfg.GCP.LeadsTopic, "leads")
	}
}

func TestLoadNilLookuperReadsProcessEnv(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "proc-proj")
	var cfg svcConfig
	if err := config.Load(context.Background(), &cfg, nil); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.GCP.ProjectID != "proc-proj" {
		t.Errorf("ProjectID: got %q, want %q", cfg.GCP.ProjectID, "proc-proj")
	}
}

func TestLoadValidateErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // substring; "" means success
	}{
		{"none ok", map[string]string{"OTEL_EXPORTER": "none"}, ""},
		{"stdout ok", map[string]string{"OTEL_EXPORTER": "stdout"}, ""},
		{"otlp ok", map[string]string{"OTEL_EXPORTER": "otlp"}, ""},
		{"gcp ok", map[string]string{"OTEL_EXPORTER": "gcp"}, ""},
		{"unknown exporter", map[string]string{"OTEL_EXPORTER": "jaeger"}, `OTEL_EXPORTER="jaeger"`},
		{"exporter case matters", map[string]string{"OTEL_EXPORTER": "GCP"}, `OTEL_EXPORTER="GCP"`},
		{"ratio 0 ok", map[string]string{"OTEL_SAMPLE_RATIO": "0"}, ""},
		{"ratio 1 ok", map[string]string{"OTEL_SAMPLE_RATIO": "1"}, ""},
		{"ratio negative", map[string]string{"OTEL_SAMPLE_RATIO": "-0.1"}, "OTEL_SAMPLE_RATIO"},
		{"ratio above 1", map[string]string{"OTEL_SAMPLE_RATIO": "1.5"}, "OTEL_SAMPLE_RATIO"},
		{"ratio not a number", map[string]string{"OTEL_SAMPLE_RATIO": "half"}, "SampleRatio"},
		{"bad duration", map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, "ShutdownTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"GOOGLE_CLOUD_PROJECT": "p"}
			for k, v := range tt.env {
				env[k] = v
			}
			var cfg svcConfig
			err := config.Load(context.Background(), &cfg, config.MapLookuper(env))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("got nil error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("got error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestTelemetryValidate(t *testing.T) {
	tests := []struct {
		name    string
		tel     config.Telemetry
		wantErr bool
	}{
		{"none", config.Telemetry{Exporter: "none", SampleRatio: 1}, false},
		{"stdout half", config.Telemetry{Exporter: "stdout", SampleRatio: 0.5}, false},
		{"otlp zero", config.Telemetry{Exporter: "otlp", SampleRatio: 0}, false},
		{"gcp", config.Telemetry{Exporter: "gcp", SampleRatio: 1}, false},
		{"empty exporter", config.Telemetry{Exporter: "", SampleRatio: 1}, true},
		{"zipkin", config.Telemetry{Exporter: "zipkin", SampleRatio: 1}, true},
		{"ratio -1", config.Telemetry{Exporter: "none", SampleRatio: -1}, true},
		{"ratio 1.0001", config.Telemetry{Exporter: "none", SampleRatio: 1.0001}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tel.Validate()
			if got := err != nil; got != tt.wantErr {
				t.Errorf("Validate() error = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

var errCustom = errors.New("custom invalid")

type failing struct {
	Name string `env:"NAME, default=n"`
}

func (failing) Validate() error { return errCustom }

func TestLoadWrapsValidateError(t *testing.T) {
	var cfg failing
	err := config.Load(context.Background(), &cfg, config.MapLookuper(nil))
	if !errors.Is(err, errCustom) {
		t.Fatalf("got %v, want an error wrapping %v", err, errCustom)
	}
	if cfg.Name != "n" {
		t.Errorf("Name: got %q, want default %q (defaults apply before Validate)", cfg.Name, "n")
	}
}

// noValidate has no Validate method: Load must not require one.
type noValidate struct {
	Port string `env:"PORT, default=1"`
}

func TestLoadWithoutValidator(t *testing.T) {
	var cfg noValidate
	if err := config.Load(context.Background(), &cfg, config.MapLookuper(map[string]string{"PORT": "2"})); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Port != "2" {
		t.Errorf("Port: got %q, want %q", cfg.Port, "2")
	}
}

func TestOSLookuper(t *testing.T) {
	t.Setenv("LEADPIPE_CONFIG_TEST_VAR", "v1")
	got, ok := config.OSLookuper().Lookup("LEADPIPE_CONFIG_TEST_VAR")
	if !ok || got != "v1" {
		t.Errorf("Lookup: got (%q, %v), want (%q, true)", got, ok, "v1")
	}
}
