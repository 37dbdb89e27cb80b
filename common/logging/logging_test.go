package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/leadpipe/leadpipe/common/logging"
)

// lines decodes every JSON line written to buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if ln == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", ln, err)
		}
		out = append(out, m)
	}
	return out
}

func oneLine(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	ls := lines(t, buf)
	if len(ls) != 1 {
		t.Fatalf("got %d log lines, want 1: %s", len(ls), buf.String())
	}
	return ls[0]
}

func TestSeverityMessageTimeService(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug, "DEBUG"},
		{slog.LevelInfo, "INFO"},
		{slog.LevelWarn, "WARNING"},
		{slog.LevelError, "ERROR"},
		{slog.LevelError + 4, "ERROR"},
		{slog.LevelDebug - 4, "DEBUG"},
	}
	for _, tt := range tests {
		t.Run(tt.want+"/"+tt.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			l := logging.New(&buf, logging.Options{Level: slog.LevelDebug - 8, Service: "ingest"})
			before := time.Now().Add(-time.Second)
			l.Log(context.Background(), tt.level, "hello world", "k", "v")
			m := oneLine(t, &buf)

			if got := m["severity"]; got != tt.want {
				t.Errorf("severity: got %v, want %q", got, tt.want)
			}
			if got := m["message"]; got != "hello world" {
				t.Errorf("message: got %v, want %q", got, "hello world")
			}
			if got := m["service"]; got != "ingest" {
				t.Errorf("service: got %v, want %q", got, "ingest")
			}
			if got := m["k"]; got != "v" {
				t.Errorf("k: got %v, want %q", got, "v")
			}
			for _, slogKey := range []string{"level", "msg"} {
				if _, ok := m[slogKey]; ok {
					t.Errorf("line has slog's %q key; want it renamed for Cloud Logging", slogKey)
				}
			}
			ts, ok := m["time"].(string)
			if !ok {
				t.Fatalf("time: got %v, want an RFC 3339 string", m["time"])
			}
			tm, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				t.Fatalf("time %q: %v", ts, err)
			}
			if tm.Before(before) {
				t.Errorf("time: got %v, want at or after %v", tm, before)
			}
			if _, ok := m["logging.googleapis.com/trace"]; ok {
				t.Errorf("trace field present without a span in the context")
			}
		})
	}
}

func TestNoServiceField(t *testing.T) {
	var buf bytes.Buffer
	logging.New(&buf, logging.Options{}).Info("x")
	if _, ok := oneLine(t, &buf)["service"]; ok {
		t.Errorf("service field present though Options.Service is empty")
	}
}

func TestLevelFilter(t *testing.T) {
	tests := []struct {
		opt       slog.Leveler
		wantCount int // of debug, info, warn, error
	}{
		{nil, 3}, // default info
		{slog.LevelDebug, 4},
		{slog.LevelWarn, 2},
		{slog.LevelError, 1},
	}
	for _, tt := range tests {
		name := "default"
		if tt.opt != nil {
			name = tt.opt.Level().String()
		}
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			l := logging.New(&buf, logging.Options{Level: tt.opt})
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			if got := len(lines(t, &buf)); got != tt.wantCount {
				t.Errorf("got %d lines, want %d", got, tt.wantCount)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"DEBUG", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"warning", slog.LevelWarn},
		{"Error", slog.LevelError},
		{"", slog.LevelInfo},
		{"verbose", slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := logging.ParseLevel(tt.in); got != tt.want {
				t.Errorf("ParseLevel(%q): got %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTraceFields(t *testing.T) {
	tests := []struct {
		name        string
		sampler     sdktrace.Sampler
		project     string
		wantSampled bool
	}{
		{"sampled with project", sdktrace.AlwaysSample(), "proj-7", true},
		{"not sampled", sdktrace.NeverSample(), "proj-7", false},
		{"no project", sdktrace.AlwaysSample(), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tt.sampler))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			ctx, span := tp.Tracer("test").Start(context.Background(), "op")
			defer span.End()
			sc := span.SpanContext()
			if !sc.IsValid() {
				t.Fatal("sdk span has no valid span context")
			}

			wantTrace := sc.TraceID().String()
			if tt.project != "" {
				wantTrace = "projects/" + tt.project + "/traces/" + wantTrace
			}
			// Derived loggers (With, WithGroup) must keep the trace fields at the top level,
			// where Cloud Logging looks for them.
			derive := map[string]func(*slog.Logger) *slog.Logger{
				"plain":   func(l *slog.Logger) *slog.Logger { return l },
				"with":    func(l *slog.Logger) *slog.Logger { return l.With("a", 1) },
				"grouped": func(l *slog.Logger) *slog.Logger { return l.With("a", 1).WithGroup("g").With("c", 3) },
			}
			for dname, d := range derive {
				t.Run(dname, func(t *testing.T) {
					var buf bytes.Buffer
					l := d(logging.New(&buf, logging.Options{ProjectID: tt.project, Service: "processor"}))
					l.InfoContext(ctx, "traced", "b", 2)
					m := oneLine(t, &buf)
					checkTrace(t, m, wantTrace, sc.SpanID().String(), tt.wantSampled)
					if dname == "grouped" {
						g, _ := m["g"].(map[string]any)
						if g["b"] != 2.0 || g["c"] != 3.0 {
							t.Errorf("group g: got %v, want b=2 and c=3 inside it", m["g"])
						}
						if _, ok := g["logging.googleapis.com/trace"]; ok {
							t.Errorf("trace field nested in group g; want it at the top level only")
						}
					}
				})
			}
			// A logger with groups must still log a line without trace fields when there is no span.
			var buf bytes.Buffer
			logging.New(&buf, logging.Options{}).WithGroup("g").Info("untraced", "b", 2)
			if m := oneLine(t, &buf); m["logging.googleapis.com/trace"] != nil {
				t.Errorf("untraced grouped line has a trace field: %v", m)
			}
		})
	}
}

func checkTrace(t *testing.T, m map[string]any, wantTrace, wantSpan string, wantSampled bool) {
	t.Helper()
	if got := m["logging.googleapis.com/trace"]; got != wantTrace {
		t.Errorf("trace: got %v, want %q", got, wantTrace)
	}
	if got := m["logging.googleapis.com/spanId"]; got != wantSpan {
		t.Errorf("spanId: got %v, want %q", got, wantSpan)
	}
	if got := m["logging.googleapis.com/trace_sampled"]; got != wantSampled {
		t.Errorf("trace_sampled: got %v, want %v", got, wantSampled)
	}
	if got := m["severity"]; got != "INFO" {
		t.Errorf("severity: got %v, want INFO", got)
	}
	if got := m["service"]; got != "processor" {
		t.Errorf("service: got %v, want processor", got)
	}
}

func TestContextLogger(t *testing.T) {
	t.Run("absent gives slog.Default", func(t *testing.T) {
		if got := logging.FromContext(context.Background()); got != slog.Default() {
			t.Errorf("FromContext(empty): got %p, want slog.Default() %p", got, slog.Default())
		}
	})
	t.Run("nil logger gives slog.Default", func(t *testing.T) {
		ctx := logging.WithLogger(context.Background(), nil)
		if got := logging.FromContext(ctx); got != slog.Default() {
			t.Errorf("FromContext(nil logger): got %p, want slog.Default()", got)
		}
	})
	t.Run("round trip", func(t *testing.T) {
		var buf bytes.Buffer
		l := logging.New(&buf, logging.Options{Service: "replayer"})
		ctx := logging.WithLogger(context.Background(), l)
		got := logging.FromContext(ctx)
		if got != l {
			t.Fatalf("FromContext: got %p, want %p", got, l)
		}
		got.InfoContext(ctx, "via context")
		if m := oneLine(t, &buf); m["message"] != "via context" || m["service"] != "replayer" {
			t.Errorf("line: got %v, want message %q service %q", m, "via context", "replayer")
		}
	})
	t.Run("inner overrides outer", func(t *testing.T) {
		var a, b bytes.Buffer
		ctx := logging.WithLogger(context.Background(), logging.New(&a, logging.Options{}))
		ctx = logging.WithLogger(ctx, logging.New(&b, logging.Options{}))
		logging.FromContext(ctx).Info("x")
		if a.Len() != 0 || b.Len() == 0 {
			t.Errorf("got outer=%d bytes inner=%d bytes, want only the inner logger written", a.Len(), b.Len())
		}
	})
}
