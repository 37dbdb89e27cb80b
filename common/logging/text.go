package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Log formats (LOG_FORMAT).
const (
	// FormatJSON is Cloud Logging's structured JSON, one object a line: the default, and what
	// Cloud Run must get.
	FormatJSON = "json"
	// FormatText is one readable line per record for a person at a terminal:
	// "15:04:05.000 INFO  processor  lead written to CRM  doc_id=… crm=salesforce record_id=…".
	FormatText = "text"
)

// ParseFormat maps LOG_FORMAT to a format: "text" gives FormatText, anything else FormatJSON
// (an unknown value must not make Cloud Run lose its structured logs).
func ParseFormat(s string) string {
	if strings.EqualFold(strings.TrimSpace(s), FormatText) {
		return FormatText
	}
	return FormatJSON
}

// textHandler writes one line per record: time, level, service, message, then key=value
// attributes (values with spaces quoted). Personal data must not reach it any more than the
// JSON handler: callers log ids and classes.
type textHandler struct {
	mu      *sync.Mutex
	w       io.Writer
	level   slog.Leveler
	service string
	attrs   string // pre-rendered " k=v" pairs from WithAttrs
	group   string // key prefix from WithGroup ("g.")
}

func newTextHandler(w io.Writer, level slog.Leveler) *textHandler {
	return &textHandler{mu: &sync.Mutex{}, w: w, level: level}
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("15:04:05.000"))
	b.WriteByte(' ')
	fmt.Fprintf(&b, "%-5s ", levelWord(r.Level))
	if h.service != "" {
		fmt.Fprintf(&b, "%-10s ", h.service)
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	nh := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		if a.Key == "service" && h.group == "" {
			nh.service = a.Value.String()
			continue
		}
		writeAttr(&b, h.group, a)
	}
	nh.attrs = b.String()
	return &nh
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	nh := *h
	nh.group = h.group + name + "."
	return &nh
}

func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			writeAttr(b, prefix+a.Key+".", g)
		}
		return
	}
	v := a.Value.String()
	if a.Value.Kind() == slog.KindTime {
		v = a.Value.Time().UTC().Format(time.RFC3339Nano)
	}
	if v == "" {
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix + a.Key)
	b.WriteByte('=')
	if strings.ContainsAny(v, " \t\n\"=") {
		fmt.Fprintf(b, "%q", v)
	} else {
		b.WriteString(v)
	}
}

func levelWord(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}
