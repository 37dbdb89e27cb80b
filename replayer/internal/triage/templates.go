package triage

import (
	"html/template"
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
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"lower": strings.ToLower,
}

const layout = `{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · leadpipe triage</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;background:#f5f6f8}
header{background:#1f2a37;color:#fff;padding:10px 24px;display:flex;align-items:center;gap:16px}
header a{color:#fff;text-decoration:none;font-weight:600}
header .who{margin-left:auto;font-size:13px;opacity:.85}
header form{margin:0}
main{padding:20px 24px;max-width:1200px}
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
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px}
dl{display:grid;grid-template-columns:170px 1fr;gap:4px 12px;margin:0}
dt{color:#4a5561}dd{margin:0;word-break:break-all}
.flash{padding:10px 14px;border-radius:6px;margin:0 0 14px;background:#dcfce7;border:1px solid #86efac}
.error{background:#fee2e2;border-color:#fca5a5}
.note{padding:10px 14px;border-radius:6px;margin:14px 0 0;background:#eef1f4;border:1px solid #dde1e6}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:6px;overflow:auto;max-height:420px}
.muted{color:#6b7280}
header form.find{display:flex;gap:6px;flex:0 1 520px}
header form.find input{flex:1;min-width:0;padding:5px 8px;border:1px solid #4b5563;border-radius:4px;background:#fff}
.e-received,.e-processing{background:#bfdbfe}.e-succeeded{background:#bbf7d0}.e-failed{background:#fed7aa}.e-quarantined{background:#fecaca}.e-discarded{background:#e5e7eb;color:#555}
</style></head><body>
<header><a href="/">leadpipe · DLQ triage</a>{{if .Actor}}
<form method="get" action="/ui/events" class="find" role="search"><input type="search" name="q" id="q" value="{{.Query}}" placeholder="Find a lead: idempotency key, event id or doc id" aria-label="Find a lead" required maxlength="1500"><button class="secondary" type="submit" id="find">Find</button></form>
<span class="who">signed in as <b>{{.Actor}}</b></span>
<form method="post" action="/ui/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button class="secondary" type="submit">Sign out</button></form>{{end}}</header>
<main>{{if .Flash}}<div class="flash" id="flash">{{.Flash}}</div>{{end}}{{if .Error}}<div class="flash error" id="error">{{.Error}}</div>{{end}}
{{end}}
{{define "bottom"}}</main></body></html>{{end}}
{{define "attempts"}}<table id="attempts"><tr><th>#</th><th>Outcome</th><th>Class</th><th>Code</th><th>Message</th><th>Replay</th><th>Started</th><th>Finished</th></tr>
{{range .}}<tr><td class="num">{{.Number}}</td><td>{{.Outcome}}</td><td>{{.Class}}</td><td>{{if .Code}}{{.Code}}{{end}}</td><td>{{.Message}}</td><td class="mono">{{short .ReplayID}}</td><td>{{when .StartedAt}}</td><td>{{when .FinishedAt}}</td></tr>
{{else}}<tr><td colspan="8" class="muted">No attempts recorded.</td></tr>{{end}}</table>{{end}}`

const loginPage = `{{template "top" .}}
<h1>Sign in</h1>
<form method="post" action="/ui/login" class="card" style="max-width:420px">
<label>Replayer token (or Google ID token)<input type="password" name="token" id="token" autocomplete="off" required></label>
<input type="hidden" name="next" value="{{.Next}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<p><button type="submit" id="signin">Sign in</button></p>
</form>
{{template "bottom" .}}`

const indexPage = `{{template "top" .}}
<h1>Dead-letter queue</h1>
<h2>By failure class and source{{if .Filter.Status}} ({{.Filter.Status}}){{end}}</h2>
{{if .Counts}}<table id="counts"><tr><th>Failure class</th><th>Source</th><th class="num">Records</th></tr>
{{range .Counts}}<tr><td><a href="/?failure_class={{.FailureClass}}&status={{$.Filter.Status}}"><span class="pill c-{{.FailureClass}}">{{.FailureClass}}</span></a></td>
<td><a href="/?source={{.Source}}&status={{$.Filter.Status}}">{{.Source}}</a></td><td class="num">{{.Count}}</td></tr>{{end}}
</table>{{if .CountsTruncated}}<p class="muted">Counts cover the first {{.CountLimit}} records.</p>{{end}}
{{else}}<p class="muted">No {{if .Filter.Status}}{{.Filter.Status}} {{end}}records.</p>{{end}}
<h2>Records</h2>
<form class="filters" method="get" action="/">
<label>Source<input type="text" name="source" value="{{.Filter.Source}}"></label>
<label>Failure class<select name="failure_class"><option value="">any</option>
{{range .Classes}}<option{{if eq . $.Filter.FailureClass}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Status<select name="status"><option value="">any</option>
{{range .Statuses}}<option{{if eq . $.Filter.Status}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<button type="submit" class="secondary">Filter</button>
</form>
<table id="records"><tr><th>Record</th><th>Source</th><th>Type</th><th>Class</th><th>Reason</th><th class="num">Attempts</th><th class="num">Dead-lettered</th><th>Status</th><th>First received</th></tr>
{{range .Records}}<tr data-id="{{.ID}}"><td><a class="mono" href="/ui/dlq/{{.ID}}">{{short .ID}}</a></td><td>{{.Source}}</td><td>{{.EventType}}</td>
<td><span class="pill c-{{.FailureClass}}">{{.FailureClass}}</span></td><td>{{trunc 90 .ErrorMessage}}</td>
<td class="num">{{.AttemptCount}}</td><td class="num">{{.DeadLetterCount}}×</td><td><span class="pill s-{{.Status}} status">{{.Status}}</span></td><td>{{when .FirstReceivedAt}}</td></tr>
{{else}}<tr><td colspan="9" class="muted" id="empty">{{if .Filtered}}No records match these filters. <a href="/">Back to the open records</a>{{else}}The dead-letter queue is empty: no open records. <a href="/?status=">Show records of every status</a>{{end}}</td></tr>{{end}}
</table>
{{if .Next}}<p><a href="{{.Next}}">Next page →</a></p>{{end}}
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
<h2>Replay</h2>
<form method="post" action="/ui/dlq/{{.D.Record.ID}}/replay" id="replay-form">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label>Reason (required)<textarea name="reason" id="replay-reason" required maxlength="2000" placeholder="what was fixed, ticket id"></textarea></label>
<p><label style="flex-direction:row;gap:6px;align-items:center"><input type="checkbox" name="renormalize" value="1"> re-normalize from the raw payload with the current mapping</label></p>
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
{{if .CanReadRaw}}<h2>Payload</h2>{{if .RawJSON}}<pre>{{.RawJSON}}</pre>{{else}}<form method="get" action="/ui/dlq/{{.D.Record.ID}}" id="show-raw"><input type="hidden" name="include" value="raw"><label>Why do you need the payload? (audited)<input type="text" name="reason" required maxlength="500"></label><button type="submit">Show normalized event and raw payload</button></form>{{end}}{{end}}
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
<h2>Attempt history</h2>
{{template "attempts" .W.Attempts}}
{{else}}<h1>Find a lead</h1>
{{if .NotFound}}<p class="flash error" id="not-found">No lead with that key or id: <code>{{.Query}}</code></p>{{end}}
<p class="muted">Search by idempotency key, event document id or event id (exact match). A payload that never became an event has no event document; look for it in the <a href="/?status=">dead-letter queue</a>.</p>{{end}}
{{template "bottom" .}}`

const errorPage = `{{template "top" .}}<p><a href="/">Back to the list</a></p>{{template "bottom" .}}`

var (
	tmplError  = template.Must(template.New("error").Funcs(funcs).Parse(layout + errorPage))
	tmplLogin  = template.Must(template.New("login").Funcs(funcs).Parse(layout + loginPage))
	tmplIndex  = template.Must(template.New("index").Funcs(funcs).Parse(layout + indexPage))
	tmplDetail = template.Must(template.New("detail").Funcs(funcs).Parse(layout + detailPage))
	tmplFind   = template.Must(template.New("find").Funcs(funcs).Parse(layout + findPage))
)
