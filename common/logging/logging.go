// Package logging builds slog loggers that write JSON in Cloud Logging's structured format
// (severity, message, logging.googleapis.com/trace, logging.googleapis.com/spanId), or with
// Format "text" (LOG_FORMAT=text; devstack's default on a terminal) one readable line per
// record, and carries the logger in the context.
//
// Personal data (emails, phone numbers, names) must never be passed to a logger; log ids and
// hashes instead.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

type ctxKey struct{}

// Options configure New.
type Options struct {
	Level     slog.Leveler
	ProjectID string // used to build the trace resource name
	Service   string // added as the "service" field on every line when set
	// Format is FormatJSON (default) or FormatText.
	Format string
}

// New returns a logger that writes Cloud Logging JSON lines to w.
func New(w io.Writer, o Options) *slog.Logger {
	if o.Level == nil {
		o.Level = slog.LevelInfo
	}
	if o.Format == FormatText {
		l := slog.New(newTextHandler(w, o.Level))
		if o.Service != "" {
			l = l.With("service", o.Service)
		}
		return l
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       o.Level,
		AddSource:   false,
		ReplaceAttr: replaceAttr,
	})
	l := slog.New(&traceHandler{Handler: h, root: h, project: o.ProjectID})
	if o.Service != "" {
		l = l.With("service", o.Service)
	}
	return l
}

// ParseLevel maps debug/info/warn/error to a slog level; unknown values give info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.MessageKey:
		a.Key = "message"
	case slog.LevelKey:
		a.Key = "severity"
		lvl, _ := a.Value.Any().(slog.Level)
		a.Value = slog.StringValue(severity(lvl))
	case slog.TimeKey:
		a.Key = "time"
	}
	return a
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// traceHandler adds the Cloud Logging trace fields from the OpenTelemetry span in the context.
// The fields must sit at the top level of the line for Cloud Logging to correlate it, so once
// the logger has a group (WithGroup), Handle rebuilds the handler chain from root with the
// trace fields first and replays ops on top.
type traceHandler struct {
	slog.Handler
	root    slog.Handler                      // the JSON handler before any WithAttrs/WithGroup
	ops     []func(slog.Handler) slog.Handler // WithAttrs/WithGroup calls, in order
	grouped bool
	project string
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		tr := sc.TraceID().String()
		if h.project != "" {
			tr = "projects/" + h.project + "/traces/" + tr
		}
		attrs := []slog.Attr{
			slog.String("logging.googleapis.com/trace", tr),
			slog.String("logging.googleapis.com/spanId", sc.SpanID().String()),
			slog.Bool("logging.googleapis.com/trace_sampled", sc.IsSampled()),
		}
		if !h.grouped {
			r.AddAttrs(attrs...)
			return h.Handler.Handle(ctx, r)
		}
		hh := h.root.WithAttrs(attrs)
		for _, op := range h.ops {
			hh = op(hh)
		}
		return hh.Handle(ctx, r)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) with(op func(slog.Handler) slog.Handler, group bool) *traceHandler {
	ops := make([]func(slog.Handler) slog.Handler, 0, len(h.ops)+1)
	ops = append(append(ops, h.ops...), op)
	return &traceHandler{Handler: op(h.Handler), root: h.root, ops: ops, grouped: h.grouped || group, project: h.project}
}

func (h *traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(func(x slog.Handler) slog.Handler { return x.WithAttrs(as) }, false)
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return h.with(func(x slog.Handler) slog.Handler { return x.WithGroup(name) }, true)
}

// WithLogger returns a context carrying l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// FromContext returns the logger in ctx, or slog.Default() when there is none.
func FromContext(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}
