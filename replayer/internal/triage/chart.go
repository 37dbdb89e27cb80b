package triage

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/leadpipe/leadpipe/replayer/internal/views"
)

// Chart geometry (SVG user units; the SVG scales to its container's width).
const (
	chartW, chartH = 600.0, 120.0
	chartPadL      = 30.0
	chartPadB      = 18.0
)

// chart draws throughput per minute as an inline SVG: accepted (outline) and succeeded
// (filled) bars per minute, a y-axis maximum and the first and last minute. Server-rendered,
// no script, no external assets.
func chart(ms []views.Minute) template.HTML {
	if len(ms) == 0 {
		return ""
	}
	peak := 1
	total := 0
	for _, m := range ms {
		peak = max(peak, m.Accepted, m.Succeeded)
		total += m.Accepted + m.Succeeded
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="throughput" viewBox="0 0 %.0f %.0f" width="100%%" role="img" aria-label="Leads per minute: accepted and written to the CRM">`, chartW, chartH)
	plotW, plotH := chartW-chartPadL, chartH-chartPadB
	fmt.Fprintf(&b, `<line x1="%.0f" y1="0" x2="%.0f" y2="%.0f" stroke="#c4cad1"/>`, chartPadL, chartPadL, plotH)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#c4cad1"/>`, chartPadL, plotH, chartW, plotH)
	fmt.Fprintf(&b, `<text x="%.0f" y="10" font-size="10" text-anchor="end" fill="#4a5561">%d</text>`, chartPadL-4, peak)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" text-anchor="end" fill="#4a5561">0</text>`, chartPadL-4, plotH)
	slot := plotW / float64(len(ms))
	bar := max(slot*0.8, 1)
	for i, m := range ms {
		x := chartPadL + float64(i)*slot + (slot-bar)/2
		for _, s := range []struct {
			n     int
			style string
			what  string
		}{{m.Accepted, `fill="#bfdbfe"`, "accepted"}, {m.Succeeded, `fill="#16a34a"`, "written"}} {
			if s.n == 0 {
				continue
			}
			h := plotH * float64(s.n) / float64(peak)
			w := bar
			dx := 0.0
			if s.what == "written" {
				w, dx = bar/2, bar/4
			}
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" %s><title>%s UTC: %d %s</title></rect>`,
				x+dx, plotH-h, w, h, s.style, m.At.UTC().Format("15:04"), s.n, s.what)
		}
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" fill="#4a5561">%s</text>`, chartPadL, chartH-4, ms[0].At.UTC().Format("15:04Z"))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" text-anchor="end" fill="#4a5561">%s</text>`, chartW, chartH-4, ms[len(ms)-1].At.UTC().Format("15:04Z"))
	if total == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="12" text-anchor="middle" fill="#6b7280">no leads in this period</text>`, chartPadL+plotW/2, plotH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and fixed strings only
}
