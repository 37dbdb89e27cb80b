package triage

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"trunc": func(n int, s string) string {
		if len(s) > n {
			return s[:n] + "…"
		}
		return s
	},
	// when is a time as <time>: UTC in the page, the viewer's zone once app.js ran (UTC then
	// on hover).
	"when": func(t time.Time) template.HTML {
		if t.IsZero() {
			return "—"
		}
		u := t.UTC()
		return template.HTML(`<time datetime="` + u.Format(time.RFC3339) + `">` + u.Format("2006-01-02 15:04:05Z") + `</time>`) //nolint:gosec // a formatted time
	},
	// age is a duration in seconds as "3d 4h", "2h 5m", "40s".
	"age": func(sec int64) string {
		d := time.Duration(sec) * time.Second
		switch {
		case d >= 24*time.Hour:
			return fmt.Sprintf("%dd %dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
		case d >= time.Hour:
			return fmt.Sprintf("%dh %dm", d/time.Hour, (d%time.Hour)/time.Minute)
		case d >= time.Minute:
			return fmt.Sprintf("%dm %ds", d/time.Minute, (d%time.Minute)/time.Second)
		}
		return fmt.Sprintf("%ds", d/time.Second)
	},
	"label": func(s string) string {
		switch s {
		case "failed":
			return "failed, awaiting retry"
		case "half_open":
			return "half-open"
		}
		return strings.ReplaceAll(s, "_", " ")
	},
	"lower": strings.ToLower,
	"has":   func(ss []string, s string) bool { return slices.Contains(ss, s) },
	"int64": func(n int) int64 { return int64(n) },
}

const layout = `{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · leadpipe triage</title>
<script src="/ui/app.js" defer></script>
{{if .Refresh}}<noscript><meta http-equiv="refresh" content="{{.Refresh}}"></noscript>{{end}}
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;background:#f5f6f8}
header{background:#1f2a37;color:#fff;padding:10px 24px;display:flex;align-items:center;gap:10px 16px;flex-wrap:wrap}
header a{color:#fff;text-decoration:none;font-weight:600}
header .who{margin-left:auto;font-size:13px;opacity:.85}
header form{margin:0}
main{padding:20px 24px;max-width:1200px;box-sizing:border-box}
.scroll{overflow-x:auto;max-width:100%}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(132px,1fr));gap:10px;margin:0 0 8px}
.tile{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px 10px}
.tile b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.tile span{font-size:12px;color:#4a5561}
.tile.hot{border-color:#f59e0b;background:#fffbeb}
.pill.k-open,.pill.k-half_open{background:#fecaca;color:#991b1b}.pill.k-closed{background:#bbf7d0}
.chart{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px}
.legend{font-size:12px;color:#4a5561}.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
nav.windows a{margin-right:8px}nav.windows a.on{font-weight:700;text-decoration:none;color:#1d2329}
.bulk{display:flex;gap:8px;flex-wrap:wrap;margin:8px 0}
a.button{display:inline-block;padding:6px 14px;border-radius:4px;border:1px solid #c4cad1;background:#fff;color:#1f2a37;text-decoration:none;font-weight:600}

h1{font-size:20px;margin:0 0 14px}
h2{font-size:16px;margin:22px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e6}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e7eaee;vertical-align:top}
th{background:#eef1f4;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#4a5561}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e5e7eb}
.s-open{background:#fde68a}.s-replayed{background:#bfdbfe}.s-discarded{background:#e5e7eb;color:#555}.s-resolved{background:#bbf7d0}
.c-permanent{background:#fecaca}.c-retryable{background:#fed7aa}.c-outage{background:#fbcfe8}.c-auth{background:#ddd6fe}.c-conflict{background:#fef08a}
form.filters{display:flex;gap:10px;flex-wrap:wrap;align-items:end;margin:0 0 12px}
label{display:flex;flex-direction:column;font-size:12px;color:#4a5561;gap:3px}
input,select,textarea,button{font:inherit}
input[type=text],input[type=password],select,textarea{padding:5px 7px;border:1px solid #c4cad1;border-radius:4px;background:#fff}
textarea{width:100%;min-height:60px;box-sizing:border-box}
button{padding:6px 14px;border-radius:4px;border:1px solid #1f6feb;background:#1f6feb;color:#fff;cursor:pointer;font-weight:600}
button.secondary{background:#fff;color:#1f2a37;border-color:#c4cad1}
button.danger{background:#c62828;border-color:#c62828}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(340px,100%),1fr));gap:16px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px}
dl{display:grid;grid-template-columns:170px 1fr;gap:4px 12px;margin:0}
dt{color:#4a5561}dd{margin:0;overflow-wrap:anywhere;min-width:0}
.flash{padding:10px 14px;border-radius:6px;margin:0 0 14px;background:#dcfce7;border:1px solid #86efac}
.error{background:#fee2e2;border-color:#fca5a5}
.note{padding:10px 14px;border-radius:6px;margin:14px 0 0;background:#eef1f4;border:1px solid #dde1e6}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:6px;overflow:auto;max-height:420px}
.muted{color:#6b7280}
header form.find{display:flex;gap:6px;flex:0 1 520px}
header form.find input{flex:1;min-width:0;padding:5px 8px;border:1px solid #4b5563;border-radius:4px;background:#fff}
.e-received,.e-processing{background:#bfdbfe}.e-parked{background:#fde68a}.e-succeeded{background:#bbf7d0}.e-failed{background:#fed7aa}.e-quarantined{background:#fecaca}.e-discarded{background:#e5e7eb;color:#555}
.flash.warn{background:#fef3c7;border:1px solid #f59e0b}
@media (max-width:640px){header{padding:8px 12px}main{padding:12px}header form.find{flex:1 1 100%;order:3}
dl{grid-template-columns:1fr}dt{font-weight:600;margin-top:4px}.wide{display:none}th,td{padding:5px 6px}}
</style></head><body{{if .Refresh}} data-refresh="{{.Refresh}}"{{end}}>
<header><a href="/">leadpipe · operator console</a>{{if .Actor}}
<form method="get" action="/ui/events" class="find" role="search"><input type="search" name="q" id="q" value="{{.Query}}" placeholder="Find a lead: email, phone, CRM id, event id, key, short id" aria-label="Find a lead" required maxlength="1500"><button class="secondary" type="submit" id="find">Find</button></form>
<span class="who">signed in as <b>{{.Actor}}</b></span>
<form method="post" action="/ui/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button class="secondary" type="submit">Sign out</button></form>{{end}}</header>
<main>{{if .Flash}}<div class="flash" id="flash">{{.Flash}}</div>{{end}}{{if .Error}}<div class="flash error" id="error">{{.Error}}</div>{{end}}{{if .Warning}}<div class="flash warn" id="warning">{{.Warning}}</div>{{end}}
{{end}}
{{define "bottom"}}</main></body></html>{{end}}
{{define "attempts"}}<div class="scroll"><table id="attempts"><tr><th>#</th><th>Outcome</th><th>Class</th><th>Code</th><th>Message</th><th class="wide">Replay</th><th>Started</th><th class="wide">Finished</th></tr>
{{range .}}<tr><td class="num">{{.Number}}</td><td>{{.Outcome}}</td><td>{{.Class}}</td><td>{{if .Code}}{{.Code}}{{end}}</td><td>{{.Message}}</td><td class="mono wide">{{short .ReplayID}}</td><td>{{when .StartedAt}}</td><td class="wide">{{when .FinishedAt}}</td></tr>
{{else}}<tr><td colspan="8" class="muted">No attempts recorded.</td></tr>{{end}}</table></div>{{end}}`

const loginPage = `{{template "top" .}}
<h1>Sign in</h1>
<form method="post" action="/ui/login" class="card" style="max-width:420px">
<label>Replayer token (or Google ID token)<input type="password" name="token" id="token" autocomplete="off" required></label>
<input type="hidden" name="next" value="{{.Next}}">
<p><button type="submit" id="signin">Sign in</button></p>
</form>
{{template "bottom" .}}`

const indexPage = `{{template "top" .}}
{{with .O}}<h1>Pipeline overview</h1>
<nav class="windows" aria-label="Window">Finished leads over the last {{range $.Windows}}<a href="/?window={{.}}"{{if eq . $.O.Window}} class="on"{{end}}>{{.}}</a>{{end}}
<span class="muted" id="tz">Times in UTC.</span> <span class="muted">Refreshes every {{$.Refresh}} s; updated {{when .GeneratedAt}}.</span></nav>
<div class="tiles" id="states">
<div class="tile{{if .InFlight}} hot{{end}}" id="in-flight"><span>in flight</span><b>{{.InFlight}}</b><span>{{if .InFlight}}oldest {{age .OldestUnfinishedAgeSec}}{{else}}nothing waiting{{end}}</span></div>
{{range .States}}<div class="tile" id="state-{{.State}}"><span>{{label .State}}</span><b>{{.Count}}</b><span>{{if .Unfinished}}now{{else}}last {{$.O.Window}}{{end}}</span></div>{{end}}
<div class="tile{{if .DLQOpenTotal}} hot{{end}}" id="dlq-open"><span>DLQ open</span><b>{{.DLQOpenTotal}}</b><span>{{range .DLQOpen}}{{if .Count}}{{.Class}} {{.Count}} {{end}}{{end}}</span></div>
</div>
<h2>CRMs</h2>
<div class="scroll"><table id="crms"><tr><th>CRM</th><th>Circuit</th><th>Since</th><th class="num">Sent last min</th><th class="wide">Last success</th><th class="wide">Last failure</th></tr>
{{range .CRMs}}<tr data-crm="{{.CRM}}"><td>{{.CRM}}</td><td><span class="pill k-{{.Circuit}} circuit" id="circuit-{{.CRM}}">{{label .Circuit}}</span></td><td>{{when .ChangedAt}}</td><td class="num">{{.SentLastMinute}}</td><td class="wide">{{when .LastSuccessAt}}</td><td class="wide">{{when .LastFailureAt}}</td></tr>
{{else}}<tr><td colspan="6" class="muted">No CRM has reported yet.</td></tr>{{end}}</table></div>
<h2>Throughput per minute</h2>
<div class="chart">{{$.Chart}}<div class="legend"><i style="background:#bfdbfe"></i>accepted<i style="background:#16a34a"></i>written to the CRM{{if .ThroughputTruncated}} · busier than the chart reads (first 5000 events){{end}}</div></div>
<h2>Waiting leads</h2>
<div class="scroll"><table id="waiting"><tr><th>Lead</th><th>State</th><th>Source</th><th class="wide">CRM</th><th class="num">Attempts</th><th>Last failure</th><th>Received</th></tr>
{{range .Waiting}}<tr data-id="{{.ID}}"><td><a class="mono" href="/ui/events?q={{.ID}}">{{short .ID}}</a></td><td><span class="pill e-{{.State}}">{{label .State}}</span></td><td>{{.Source}}</td><td class="wide">{{.Routing.CRM}}</td><td class="num">{{.Attempts}}</td><td>{{if .FailureClass}}<span class="pill c-{{.FailureClass}}">{{.FailureClass}}</span> {{trunc 60 .ErrorMessage}}{{end}}</td><td>{{when .CreatedAt}}</td></tr>
{{else}}<tr><td colspan="7" class="muted" id="none-waiting">No lead is waiting: everything received has finished.</td></tr>{{end}}</table></div>{{end}}
<h1 style="margin-top:26px">Dead-letter queue</h1>
<h2>By failure class and source{{if .Filter.Status}} ({{.Filter.Status}}){{end}}</h2>
{{if .Counts}}<div class="scroll"><table id="counts"><tr><th>Failure class</th><th>Source</th><th class="num">Records</th></tr>
{{range .Counts}}<tr><td><a href="/?failure_class={{.FailureClass}}&status={{$.Filter.Status}}"><span class="pill c-{{.FailureClass}}">{{.FailureClass}}</span></a></td>
<td><a href="/?source={{.Source}}&status={{$.Filter.Status}}">{{.Source}}</a></td><td class="num">{{.Count}}</td></tr>{{end}}
</table></div>{{if .CountsTruncated}}<p class="muted">Counts cover the first {{.CountLimit}} records.</p>{{end}}
{{else}}<p class="muted">No {{if .Filter.Status}}{{.Filter.Status}} {{end}}records.</p>{{end}}
<h2>Records</h2>
<form class="filters" method="get" action="/">
<label>Status<select name="status" id="f-status"><option value="">any</option>
{{range .Statuses}}<option{{if eq . $.Filter.Status}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Failure class<select name="failure_class" id="f-class"><option value="">any</option>
{{range .Classes}}<option{{if eq . $.Filter.FailureClass}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Source<select name="source" id="f-source"><option value="">any</option>
{{range .Sources}}<option{{if eq . $.Filter.Source}} selected{{end}}>{{.}}</option>{{end}}{{if .Filter.Source}}{{if not (has .Sources .Filter.Source)}}<option selected>{{.Filter.Source}}</option>{{end}}{{end}}</select></label>
<label>From <span class="tz">(UTC)</span><input type="datetime-local" name="since" id="f-since" data-utc value="{{.Since}}"></label>
<label>To <span class="tz">(UTC)</span><input type="datetime-local" name="until" id="f-until" data-utc value="{{.Until}}"></label>
<button type="submit" class="secondary" id="filter">Filter</button>
</form>
{{if .Records}}{{if eq .Filter.Status "open"}}<div class="bulk" id="bulk-actions"><a class="button" id="bulk-replay" href="{{.BulkReplay}}">Replay all matching…</a><a class="button" id="bulk-discard" href="{{.BulkDiscard}}">Discard all matching…</a></div>{{end}}{{end}}
<div class="scroll"><table id="records"><tr><th>Record</th><th>Source</th><th class="wide">Type</th><th>Class</th><th>Reason</th><th class="num wide">Attempts</th><th class="num wide">Dead-lettered</th><th>Status</th><th>First received</th></tr>
{{range .Records}}<tr data-id="{{.ID}}"><td><a class="mono" href="/ui/dlq/{{.ID}}">{{short .ID}}</a></td><td>{{.Source}}</td><td class="wide">{{.EventType}}</td>
<td><span class="pill c-{{.FailureClass}}">{{.FailureClass}}</span></td><td>{{trunc 90 .ErrorMessage}}</td>
<td class="num wide">{{.AttemptCount}}</td><td class="num wide">{{.DeadLetterCount}}×</td><td><span class="pill s-{{.Status}} status">{{.Status}}</span></td><td>{{when .FirstReceivedAt}}</td></tr>
{{else}}<tr><td colspan="9" class="muted" id="empty">{{if .Filtered}}No records match these filters. <a href="/">Back to the open records</a>{{else}}The dead-letter queue is empty: no open records{{if .O}}{{if .O.InFlight}}, but {{.O.InFlight}} leads are still in flight (see Waiting leads above){{end}}{{end}}. <a href="/?status=">Show records of every status</a>{{end}}</td></tr>{{end}}
</table></div>
{{if .Next}}<p><a href="{{.Next}}">Next page →</a></p>{{end}}
{{template "bottom" .}}`

const bulkPage = `{{template "top" .}}
<h1>Bulk {{.Action}}: preview</h1>
<p class="card" id="preview"><b id="preview-count">{{.Count}}</b> {{if eq .Count 1}}record matches{{else}}records match{{end}}:
status <b>{{.Filter.Status}}</b>{{if .Filter.FailureClass}}, class <b>{{.Filter.FailureClass}}</b>{{end}}{{if .Filter.Source}}, source <b>{{.Filter.Source}}</b>{{end}}{{if not .Filter.Since.IsZero}}, from {{when .Filter.Since}}{{end}}{{if not .Filter.Until.IsZero}}, to {{when .Filter.Until}}{{end}}.
{{if eq .Action "replay"}}Each is replayed with its idempotency key (never a second CRM record), as a background job at the service's replay rate.{{else}}Each is discarded for good{{if gt .Count (int64 .Limit)}} (the first {{.Limit}} now; run it again for the rest){{end}}.{{end}}</p>
{{range .Open}}<p class="flash warn circuit-warning">The <b>{{.CRM}}</b> circuit is {{label .State}} since {{when .ChangedAt}}: replays into it would fail again now.</p>{{end}}
<div class="scroll"><table id="preview-records"><tr><th>Record</th><th>Source</th><th>Class</th><th>Reason</th><th>First received</th></tr>
{{range .Records}}<tr><td><a class="mono" href="/ui/dlq/{{.ID}}">{{short .ID}}</a></td><td>{{.Source}}</td><td><span class="pill c-{{.FailureClass}}">{{.FailureClass}}</span></td><td>{{trunc 90 .ErrorMessage}}</td><td>{{when .FirstReceivedAt}}</td></tr>
{{else}}<tr><td colspan="5" class="muted">No records match.</td></tr>{{end}}</table></div>
{{if gt .Count (int64 (len .Records))}}<p class="muted">The first {{len .Records}} of {{.Count}} are shown.</p>{{end}}
{{if .Count}}<form method="post" action="/ui/bulk" id="bulk-form" class="card" style="margin-top:14px">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="action" value="{{.Action}}"><input type="hidden" name="expected" value="{{.Count}}">
{{range $k, $v := .Hidden}}{{range $v}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<label>Reason (required, audited)<textarea name="reason" id="bulk-reason" required maxlength="2000" placeholder="what was fixed, ticket id"></textarea></label>
{{if .Open}}<p><label style="flex-direction:row;gap:6px;align-items:center"><input type="checkbox" name="despite_circuit" value="1" id="despite-circuit"> replay even though the circuit is open</label></p>{{end}}
<p><button type="submit" id="bulk-confirm"{{if eq .Action "discard"}} class="danger"{{end}}>{{if eq .Action "replay"}}Replay {{.Count}} records{{else}}Discard {{.Count}} records{{end}}</button> <a href="/">Cancel</a></p>
</form>{{end}}
{{template "bottom" .}}`

const jobPage = `{{template "top" .}}
{{with .J}}<h1>Bulk replay <span class="pill" id="job-status">{{.Status}}</span></h1>
<div class="card"><dl>
<dt>Job</dt><dd class="mono">{{.ID}}</dd>
<dt>By</dt><dd>{{.Actor}}: {{.Reason}}</dd>
<dt>Filter</dt><dd>status {{.Filter.Status}}{{if .Filter.FailureClass}}, class {{.Filter.FailureClass}}{{end}}{{if .Filter.Source}}, source {{.Filter.Source}}{{end}}</dd>
<dt>Matched</dt><dd id="job-matched">{{.Matched}} (at most {{.Max}})</dd>
<dt>Replayed</dt><dd id="job-replayed">{{.Replayed}}</dd>
<dt>Skipped</dt><dd>{{.Skipped}}</dd>
<dt>Failed</dt><dd>{{.Failed}}</dd>
{{if .Error}}<dt>Error</dt><dd>{{.Error}}</dd>{{end}}
<dt>Started</dt><dd>{{when .CreatedAt}}</dd>
<dt>Finished</dt><dd>{{when .FinishedAt}}</dd>
</dl></div>{{end}}
<p><a href="/">Back to the overview</a></p>
{{template "bottom" .}}`

const detailPage = `{{template "top" .}}
{{with .D.Record}}<h1>Record <span class="mono">{{short .ID}}</span> <span class="pill s-{{.Status}}" id="status">{{.Status}}</span></h1>
<div class="grid"><div class="card"><dl>
<dt>Record id</dt><dd class="mono">{{.ID}}</dd>
<dt>Idempotency key</dt><dd class="mono">{{.IdempotencyKey}}</dd>
<dt>Event id</dt><dd class="mono">{{.EventID}}</dd>
<dt>Source / type</dt><dd>{{.Source}} · {{.EventType}}</dd>
<dt>Failure class</dt><dd><span class="pill c-{{.FailureClass}}">{{.FailureClass}}</span> <span class="muted">(from {{.ReasonSource}})</span></dd>
<dt>Reason</dt><dd id="reason">{{.ErrorMessage}}</dd>
<dt>Attempts</dt><dd>{{.AttemptCount}}</dd>
<dt>Dead-lettered</dt><dd>{{.DeadLetterCount}}× (last {{when .LastDeadLetteredAt}})</dd>
<dt>First received</dt><dd>{{when .FirstReceivedAt}}</dd>
<dt>Last attempt</dt><dd>{{when .LastAttemptAt}}</dd>
<dt>Status changed</dt><dd>{{when .StatusChangedAt}}{{if .StatusChangedBy}} by {{.StatusChangedBy}}{{end}}</dd>
<dt>Normalized event</dt><dd class="mono">{{.NormalizedEventRef}}</dd>
<dt>Raw payload</dt><dd class="mono">{{.RawEventRef}}</dd>
</dl></div>{{end}}
<div class="card">{{with .D.Event}}<dl>
<dt>Event state</dt><dd><b id="event-state">{{.State}}</b></dd>
<dt>CRM</dt><dd>{{.Routing.CRM}} · {{.Routing.Object}} · {{.Routing.Mode}}</dd>
<dt>Mapping version</dt><dd>{{.MappingVersion}}</dd>
<dt>Replays</dt><dd>{{.ReplayCount}}{{if .LastReplayID}} (last <span class="mono">{{.LastReplayID}}</span>){{end}}</dd>
<dt>CRM record id</dt><dd class="mono">{{.CRMRecordID}}</dd>
</dl>{{else}}<p class="muted">No event document (the payload never became an event).</p>{{end}}
{{if .CanAct}}
{{with .Circuit}}<p class="flash warn" id="circuit-warning">The <b>{{.CRM}}</b> circuit is {{label .State}} since {{when .ChangedAt}}: a replay now would fail again, so it is held unless you tick the box below.</p>{{end}}
<h2>Replay</h2>
<form method="post" action="/ui/dlq/{{.D.Record.ID}}/replay" id="replay-form">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label>Reason (required)<textarea name="reason" id="replay-reason" required maxlength="2000" placeholder="what was fixed, ticket id"></textarea></label>
<p><label style="flex-direction:row;gap:6px;align-items:center"><input type="checkbox" name="renormalize" value="1"> re-normalize from the raw payload with the current mapping</label></p>
{{if .Circuit}}<p><label style="flex-direction:row;gap:6px;align-items:center"><input type="checkbox" name="despite_circuit" value="1" id="despite-circuit"> replay even though the circuit is open</label></p>{{end}}
<button type="submit" id="replay-button">Replay</button>
</form>
<h2>Discard</h2>
<form method="post" action="/ui/dlq/{{.D.Record.ID}}/discard" id="discard-form">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label>Reason (required)<textarea name="reason" required maxlength="2000"></textarea></label>
<p><button type="submit" class="danger">Discard</button></p>
</form>{{else}}{{with .D.Record}}
<p class="note" id="action-note">{{if eq .Status "replayed"}}Replayed{{else if eq .Status "discarded"}}Discarded{{else}}Resolved{{end}} at {{when .StatusChangedAt}}{{if .StatusChangedBy}} by {{.StatusChangedBy}}{{end}}.
{{if eq .Status "replayed"}}The event is back in the pipeline; if that delivery fails, the record reopens here.{{else if eq .Status "discarded"}}A discarded event cannot be replayed.{{else}}The event reached the CRM.{{end}}</p>{{end}}{{end}}
</div></div>
<h2>Attempt history</h2>
{{template "attempts" .D.Attempts}}
<h2>Audit</h2>
<table id="audit"><tr><th>When</th><th>Actor</th><th>Action</th><th>Outcome</th><th>Reason</th></tr>
{{range .Audit}}<tr><td>{{when .At}}</td><td>{{.Actor}}</td><td>{{.Action}}</td><td>{{.Outcome}}</td><td>{{.Reason}}</td></tr>
{{else}}<tr><td colspan="5" class="muted">No actions yet.</td></tr>{{end}}</table>
{{if .CanReadRaw}}<h2>Payload</h2>{{if .RawJSON}}<pre>{{.RawJSON}}</pre>{{else}}<p><a href="/ui/dlq/{{.D.Record.ID}}?include=raw">Show normalized event and raw payload</a></p>{{end}}{{end}}
{{template "bottom" .}}`

const findPage = `{{template "top" .}}
{{if .W}}{{with .W.Event}}<h1>Lead <span class="mono">{{short .ID}}</span> <span class="pill e-{{.State}}" id="lead-state">{{.State}}</span></h1>
<div class="grid"><div class="card"><dl>
<dt>State</dt><dd><span class="pill e-{{.State}}">{{.State}}</span> <span class="muted">{{$.StateText}}</span></dd>
<dt>Source / type</dt><dd>{{.Source}} · {{.EventType}}</dd>
<dt>Idempotency key</dt><dd class="mono">{{.IdempotencyKey}}</dd>
<dt>Event id</dt><dd class="mono">{{.EventID}}</dd>
<dt>Event doc id</dt><dd class="mono">{{.ID}}</dd>
<dt>Created</dt><dd>{{when .CreatedAt}}</dd>
<dt>Completed</dt><dd>{{when .CompletedAt}}</dd>
{{if not .QuarantinedAt.IsZero}}<dt>Quarantined</dt><dd>{{when .QuarantinedAt}}{{if .QuarantinedBy}} by {{.QuarantinedBy}}{{end}}</dd>{{end}}
</dl></div>
<div class="card"><dl>
<dt>CRM</dt><dd>{{.Routing.CRM}} · {{.Routing.Object}} · {{.Routing.Mode}}</dd>
{{if .CRMRecordID}}<dt>CRM record id</dt><dd class="mono" id="crm-record">{{.CRMRecordID}}</dd>
<dt>CRM status</dt><dd>{{if .CRMStatusCode}}{{.CRMStatusCode}}{{else}}—{{end}}</dd>{{end}}
<dt>Attempts</dt><dd>{{.Attempts}}</dd>
{{if $.FailureLabel}}<dt>{{$.FailureLabel}}</dt><dd id="failure"><span class="pill c-{{.FailureClass}}">{{.FailureClass}}</span> {{.ErrorMessage}}</dd>{{end}}
<dt>Replays</dt><dd>{{.ReplayCount}}{{if .LastReplayID}} (last <span class="mono">{{short .LastReplayID}}</span>){{end}}</dd>
<dt>DLQ record</dt><dd>{{with $.W.DLQ}}<a class="mono" id="dlq-link" href="/ui/dlq/{{.ID}}">{{short .ID}}</a> <span class="pill s-{{.Status}}">{{.Status}}</span>{{else}}<span class="muted">none</span>{{end}}</dd>
</dl></div></div>{{end}}
<p class="muted" id="matched-by">Matched by {{label .By}}.</p>
<h2>Attempt history</h2>
{{template "attempts" .W.Attempts}}
{{else if .Matches}}<h1>{{len .Matches}} leads match</h1>
<div class="scroll"><table id="matches"><tr><th>Lead</th><th>State</th><th>Source</th><th>Matched by</th><th class="wide">CRM record</th><th>DLQ</th><th>Received</th></tr>
{{range .Matches}}<tr data-id="{{.Event.ID}}"><td><a class="mono" href="/ui/events?q={{.Event.ID}}">{{short .Event.ID}}</a></td><td><span class="pill e-{{.Event.State}}">{{label .Event.State}}</span></td><td>{{.Event.Source}}</td><td>{{label .By}}</td><td class="mono wide">{{.Event.CRMRecordID}}</td><td>{{with .DLQ}}<a href="/ui/dlq/{{.ID}}"><span class="pill s-{{.Status}}">{{.Status}}</span></a>{{end}}</td><td>{{when .Event.CreatedAt}}</td></tr>{{end}}
</table></div>
{{else}}<h1>Find a lead</h1>
{{if .NotFound}}<p class="flash error" id="not-found">No lead with that key or id: <code>{{.Query}}</code></p>{{end}}
<p class="muted">Search by email, phone (any format), CRM external id or record id, source event id, idempotency key, event id, event document id or the short id lists show. Emails and phones are matched through keyed hashes; they are not stored in clear for this. A payload that never became an event has no event document; look for it in the <a href="/?status=">dead-letter queue</a>.</p>{{end}}
{{if .Note}}<p class="note" id="find-note">{{.Note}}</p>{{end}}
{{template "bottom" .}}`

const errorPage = `{{template "top" .}}<p><a href="/">Back to the list</a></p>{{template "bottom" .}}`

var (
	tmplError  = template.Must(template.New("error").Funcs(funcs).Parse(layout + errorPage))
	tmplLogin  = template.Must(template.New("login").Funcs(funcs).Parse(layout + loginPage))
	tmplIndex  = template.Must(template.New("index").Funcs(funcs).Parse(layout + indexPage))
	tmplDetail = template.Must(template.New("detail").Funcs(funcs).Parse(layout + detailPage))
	tmplFind   = template.Must(template.New("find").Funcs(funcs).Parse(layout + findPage))
	tmplBulk   = template.Must(template.New("bulk").Funcs(funcs).Parse(layout + bulkPage))
	tmplJob    = template.Must(template.New("job").Funcs(funcs).Parse(layout + jobPage))
)
