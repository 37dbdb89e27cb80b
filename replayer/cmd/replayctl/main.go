// Command replayctl is the operators' CLI over the replayer's API: list, find, show, replay,
// bulk-replay (with a progress bar on a terminal), discard, audit and reconcile. REPLAYER_URL
// and REPLAYER_TOKEN (or --url, --token) say where and as whom. Record ids may be given in full
// or as the 12-character short ids the lists show.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// Help that was asked for succeeds; usage shown for missing arguments does not.
			if len(os.Args) > 1 {
				os.Exit(0)
			}
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "replayctl:", err)
		os.Exit(1)
	}
}

const usage = `replayctl: operate the leadpipe dead-letter queue and find any lead.

Usage: replayctl [--url URL] [--token TOKEN] COMMAND [flags]

Commands:
  list          list DLQ records, newest first (filters: --class, --source, --status, --since, --until)
  find QUERY    find leads by email, phone (any format), CRM external or record id, source event id,
                idempotency key, event id or short id
  show ID       one record: its reason, event state, CRM, attempts and audit (--json for the raw
                answer; --raw --reason TEXT adds the raw payload, with permission, audited)
  replay ID     replay one record (needs --reason)
  bulk-replay   replay every open record matching a filter as a background job, with progress
                (needs --reason, except with --dry-run)
  discard ID    discard one record (needs --reason)
  audit         who did what and why, newest first (filters: --actor, --action, --target ID)
  reconcile     take in the leads of a Meta form the pipeline never received (needs --reason)

IDs: the full 64-character id or its first 12 characters (what list, find and the page show).
Environment: REPLAYER_URL (default http://127.0.0.1:8083), REPLAYER_TOKEN (make dev prints
both; load them with ". ./.devstack/env"), COLUMNS (table width).
Run "replayctl COMMAND --help" for a command's flags.
`

type client struct {
	base, token string
	http        *http.Client
	out         io.Writer
	// tty: out is a terminal (progress redraws in place); width: its columns.
	tty   bool
	width int
}

// run parses global flags and dispatches; it is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	g := flag.NewFlagSet("replayctl", flag.ContinueOnError)
	g.SetOutput(stderr)
	g.Usage = func() { fmt.Fprint(stderr, usage) }
	base := g.String("url", envOr("REPLAYER_URL", "http://127.0.0.1:8083"), "replayer base URL")
	token := g.String("token", os.Getenv("REPLAYER_TOKEN"), "bearer token")
	if err := g.Parse(args); err != nil {
		return err
	}
	if g.NArg() == 0 {
		g.Usage()
		return flag.ErrHelp
	}
	tty, width := terminal(stdout)
	c := &client{base: strings.TrimSuffix(*base, "/"), token: *token, http: &http.Client{Timeout: 60 * time.Second},
		out: stdout, tty: tty, width: width}
	cmd, rest := g.Arg(0), g.Args()[1:]
	switch cmd {
	case "list":
		return c.list(ctx, rest, stderr)
	case "find":
		return c.find(ctx, rest, stderr)
	case "show":
		return c.show(ctx, rest, stderr)
	case "replay", "discard":
		return c.action(ctx, cmd, rest, stderr)
	case "bulk-replay":
		return c.bulk(ctx, rest, stderr)
	case "audit":
		return c.audit(ctx, rest, stderr)
	case "reconcile":
		return c.reconcile(ctx, rest, stderr)
	case "help", "-h", "--help":
		g.Usage()
		return nil
	}
	g.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// apiError is a non-2xx answer.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// errNoToken: REPLAYER_TOKEN is unset and no --token was given.
var errNoToken = errors.New("no token: set REPLAYER_TOKEN (make dev prints it; run \". ./.devstack/env\") or pass --token")

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	if c.token == "" {
		return errNoToken
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("cannot reach the replayer at %s: is the stack running? Start it with \"make dev\" (and load its settings with \". ./.devstack/env\"), or set REPLAYER_URL: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusUnauthorized {
			e.Error.Message = "the replayer refused the token; check REPLAYER_TOKEN belongs to the running stack (a new make dev makes a new one)"
		}
		return &apiError{Status: resp.StatusCode, Message: e.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func newFlags(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", help)
		fs.PrintDefaults()
	}
	return fs
}

type record struct {
	ID              string    `json:"id"`
	IdempotencyKey  string    `json:"idempotency_key"`
	EventID         string    `json:"event_id"`
	Source          string    `json:"source"`
	EventType       string    `json:"event_type"`
	FailureClass    string    `json:"failure_class"`
	ErrorMessage    string    `json:"error_message"`
	ReasonSource    string    `json:"reason_source"`
	AttemptCount    int       `json:"attempt_count"`
	DeadLetterCount int       `json:"dead_letter_count"`
	Status          string    `json:"status"`
	StatusChangedAt time.Time `json:"status_changed_at"`
	StatusChangedBy string    `json:"status_changed_by"`
	FirstReceivedAt time.Time `json:"first_received_at"`
	CreatedAt       time.Time `json:"created_at"`
}

// classes are the failure classes a filter may name.
var classes = []string{"retryable", "conflict", "permanent", "auth", "outage", "unknown"}

func checkClass(c string) error {
	if c == "" || slices.Contains(classes, c) {
		return nil
	}
	return fmt.Errorf("unknown --class %q: want one of %s", c, strings.Join(classes, ", "))
}

// shortID is the 12-character id lists show (the replayer accepts it everywhere).
func shortID(id string) string { return id[:min(12, len(id))] }

// when is a time in the local zone, "—" for zero.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func (c *client) id(id string, wide bool) string {
	if wide {
		return id
	}
	return shortID(id)
}

func (c *client) list(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("list", "replayctl list [flags]: DLQ records, newest first, as a table (short ids; --wide for full ones).", stderr)
	source := fs.String("source", "", "only this source")
	class := fs.String("class", "", "only this failure class ("+strings.Join(classes, ", ")+")")
	status := fs.String("status", "open", "open, replayed, discarded, resolved, or empty for all")
	since := fs.String("since", "", "created at or after (RFC 3339)")
	until := fs.String("until", "", "created before (RFC 3339)")
	size := fs.Int("page-size", 50, "records per page")
	page := fs.String("page-token", "", "continue from a previous page")
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	wide := fs.Bool("wide", false, "full 64-character ids")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkClass(*class); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"source": *source, "failure_class": *class, "status": *status,
		"since": *since, "until": *until, "page_token": *page} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("page_size", fmt.Sprint(*size))
	if *asJSON {
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/v1/dlq?"+q.Encode(), nil, &raw); err != nil {
			return err
		}
		_, err := fmt.Fprintln(c.out, string(raw))
		return err
	}
	var res struct {
		Records       []record `json:"records"`
		NextPageToken string   `json:"next_page_token"`
	}
	if err := c.do(ctx, "GET", "/v1/dlq?"+q.Encode(), nil, &res); err != nil {
		return err
	}
	if len(res.Records) == 0 {
		_, err := fmt.Fprintln(c.out, "no records")
		return err
	}
	rows := make([][]string, 0, len(res.Records))
	for _, r := range res.Records {
		rows = append(rows, []string{c.id(r.ID, *wide), r.Source, r.FailureClass, r.Status, strconv.Itoa(r.AttemptCount),
			r.CreatedAt.Local().Format("01-02 15:04"), r.ErrorMessage})
	}
	if err := table(c.out, c.width, []string{"ID", "SOURCE", "CLASS", "STATUS", "TRIES", "DEAD-LETTERED", "REASON"}, rows); err != nil {
		return err
	}
	if res.NextPageToken != "" {
		fmt.Fprintf(c.out, "next page: --page-token %s\n", res.NextPageToken)
	}
	return nil
}

// find serves "replayctl find QUERY".
func (c *client) find(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("find", "replayctl find QUERY: the leads an email, phone (any format), CRM external or record id,\nsource event id, idempotency key, event id or short id identifies.", stderr)
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	wide := fs.Bool("wide", false, "full 64-character ids")
	q, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	var res struct {
		Matches []struct {
			By    string `json:"matched_by"`
			Event struct {
				ID           string    `json:"id"`
				Source       string    `json:"source"`
				State        string    `json:"state"`
				CRMRecordID  string    `json:"crm_record_id"`
				FailureClass string    `json:"failure_class"`
				ErrorMessage string    `json:"error_message"`
				CreatedAt    time.Time `json:"created_at"`
			} `json:"event"`
			DLQ *record `json:"dlq"`
		} `json:"matches"`
		Note string `json:"note"`
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/v1/events?q="+url.QueryEscape(q), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(c.out, raw)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	if res.Note != "" {
		fmt.Fprintln(c.out, "note:", res.Note)
	}
	if len(res.Matches) == 0 {
		_, err := fmt.Fprintln(c.out, "no lead matches")
		return err
	}
	rows := make([][]string, 0, len(res.Matches))
	for _, m := range res.Matches {
		dlq := "—"
		if m.DLQ != nil {
			dlq = m.DLQ.Status
		}
		detail := m.Event.CRMRecordID
		if detail == "" && m.Event.FailureClass != "" {
			detail = m.Event.FailureClass + ": " + m.Event.ErrorMessage
		}
		rows = append(rows, []string{c.id(m.Event.ID, *wide), m.Event.State, m.Event.Source, m.By, dlq, when(m.Event.CreatedAt), detail})
	}
	return table(c.out, c.width, []string{"ID", "STATE", "SOURCE", "MATCHED BY", "DLQ", "RECEIVED", "CRM RECORD / FAILURE"}, rows)
}

// show serves "replayctl show ID": the record as a person reads it.
func (c *client) show(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("show", "replayctl show ID [--raw --reason TEXT] [--json]: one record, its reason, event state, CRM, attempts and audit.", stderr)
	raw := fs.Bool("raw", false, "include the normalized event and raw payload (needs the permission and --reason; implies --json)")
	reason := fs.String("reason", "", "why you read the raw payload (required with --raw; written to the audit log)")
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	path := "/v1/dlq/" + url.PathEscape(id)
	if *raw {
		if strings.TrimSpace(*reason) == "" {
			return errors.New("show --raw needs --reason (raw reads are audited)")
		}
		path += "?include=raw&reason=" + url.QueryEscape(*reason)
	}
	var body json.RawMessage
	if err := c.do(ctx, "GET", path, nil, &body); err != nil {
		return err
	}
	if *asJSON || *raw {
		return printJSON(c.out, body)
	}
	var d struct {
		Record record `json:"record"`
		Event  *struct {
			State   string `json:"state"`
			Routing struct {
				CRM    string `json:"crm"`
				Object string `json:"object"`
				Mode   string `json:"mode"`
			} `json:"routing"`
			Attempts    int    `json:"attempts"`
			ReplayCount int    `json:"replay_count"`
			CRMRecordID string `json:"crm_record_id"`
		} `json:"event"`
		Attempts []struct {
			Number    int       `json:"number"`
			Outcome   string    `json:"outcome"`
			Class     string    `json:"class"`
			Code      int       `json:"code"`
			Message   string    `json:"message"`
			StartedAt time.Time `json:"started_at"`
		} `json:"attempts"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return err
	}
	r := d.Record
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%-16s %s\n", k+":", v) }
	kv("Record", r.ID)
	kv("Status", r.Status+statusBy(r))
	kv("Source / type", r.Source+" · "+r.EventType)
	kv("Failure", r.FailureClass+" (from "+r.ReasonSource+")")
	kv("Reason", r.ErrorMessage)
	kv("Idempotency key", r.IdempotencyKey)
	kv("Event id", r.EventID)
	kv("Attempts", fmt.Sprintf("%d, dead-lettered %d×", r.AttemptCount, r.DeadLetterCount))
	kv("First received", when(r.FirstReceivedAt))
	if e := d.Event; e != nil {
		kv("Event state", e.State)
		kv("CRM", e.Routing.CRM+" · "+e.Routing.Object+" · "+e.Routing.Mode)
		if e.CRMRecordID != "" {
			kv("CRM record", e.CRMRecordID)
		}
		kv("Replays", strconv.Itoa(e.ReplayCount))
	} else {
		kv("Event", "none (the payload never became an event)")
	}
	b.WriteString("\nAttempts:\n")
	if _, err := io.WriteString(c.out, b.String()); err != nil {
		return err
	}
	if len(d.Attempts) == 0 {
		_, err := fmt.Fprintln(c.out, "  none recorded")
		return err
	}
	rows := make([][]string, 0, len(d.Attempts))
	for _, a := range d.Attempts {
		code := ""
		if a.Code != 0 {
			code = strconv.Itoa(a.Code)
		}
		rows = append(rows, []string{strconv.Itoa(a.Number), a.Outcome, a.Class, code, when(a.StartedAt), a.Message})
	}
	return table(c.out, c.width, []string{"#", "OUTCOME", "CLASS", "CODE", "STARTED", "MESSAGE"}, rows)
}

func statusBy(r record) string {
	if r.StatusChangedBy == "" {
		return ""
	}
	return " (by " + r.StatusChangedBy + ", " + when(r.StatusChangedAt) + ")"
}

// audit serves "replayctl audit".
func (c *client) audit(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("audit", "replayctl audit [flags]: replays and discards, who and why, newest first.", stderr)
	actor := fs.String("actor", "", "only this actor")
	action := fs.String("action", "", "only this action (replay, discard, bulk_replay)")
	target := fs.String("target", "", "only actions on this record (full or short id)")
	since := fs.String("since", "", "at or after (RFC 3339)")
	until := fs.String("until", "", "before (RFC 3339)")
	size := fs.Int("page-size", 50, "entries per page")
	page := fs.String("page-token", "", "continue from a previous page")
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"actor": *actor, "action": *action, "target": *target, "since": *since, "until": *until, "page_token": *page} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("page_size", fmt.Sprint(*size))
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/v1/audit?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(c.out, raw)
	}
	var res struct {
		Entries []struct {
			At      time.Time `json:"at"`
			Actor   string    `json:"actor"`
			Action  string    `json:"action"`
			Outcome string    `json:"outcome"`
			Reason  string    `json:"reason"`
			Targets []string  `json:"targets"`
		} `json:"entries"`
		NextPageToken string `json:"next_page_token"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	if len(res.Entries) == 0 {
		_, err := fmt.Fprintln(c.out, "no audit entries")
		return err
	}
	rows := make([][]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		targets := ""
		for i, t := range e.Targets {
			if i == 2 {
				targets += fmt.Sprintf(" +%d", len(e.Targets)-2)
				break
			}
			if i > 0 {
				targets += " "
			}
			targets += shortID(t)
		}
		rows = append(rows, []string{when(e.At), e.Actor, e.Action, e.Outcome, targets, e.Reason})
	}
	if err := table(c.out, c.width, []string{"AT", "ACTOR", "ACTION", "OUTCOME", "TARGETS", "REASON"}, rows); err != nil {
		return err
	}
	if res.NextPageToken != "" {
		fmt.Fprintf(c.out, "next page: --page-token %s\n", res.NextPageToken)
	}
	return nil
}

// parseWithID parses flags with the record id before or after them and returns the id.
func parseWithID(fs *flag.FlagSet, args []string) (string, error) {
	id := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() != 0 || id == "" {
		fs.Usage()
		return "", errors.New("want exactly one record id")
	}
	return id, nil
}

func (c *client) action(ctx context.Context, verb string, args []string, stderr io.Writer) error {
	help := "replayctl replay ID --reason TEXT [--renormalize] [--force]: republish one event with its idempotency key and a new replay id."
	if verb == "discard" {
		help = "replayctl discard ID --reason TEXT [--force]: discard one record and its event (terminal)."
	}
	fs := newFlags(verb, help, stderr)
	reason := fs.String("reason", "", "why (required; recorded in the audit log)")
	force := fs.Bool("force", false, "act on an event that is not quarantined but still in flight")
	var renorm *bool
	if verb == "replay" {
		renorm = fs.Bool("renormalize", false, "rebuild the event from the raw payload with the current mapping")
	}
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		fs.Usage()
		return errors.New("--reason is required")
	}
	body := map[string]any{"reason": *reason, "force": *force}
	if renorm != nil && *renorm {
		body["renormalize"] = true
	}
	var res map[string]any
	if err := c.do(ctx, "POST", "/v1/dlq/"+url.PathEscape(id)+":"+verb, body, &res); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s: %v", id, res["outcome"])
	if id, ok := res["replay_id"]; ok {
		fmt.Fprintf(c.out, " (replay_id %v)", id)
	}
	fmt.Fprintln(c.out)
	return nil
}

type job struct {
	ID          string   `json:"id"`
	Status      string   `json:"status"`
	DryRun      bool     `json:"dry_run"`
	Max         int      `json:"max"`
	Matched     int      `json:"matched"`
	Replayed    int      `json:"replayed"`
	Skipped     int      `json:"skipped"`
	Failed      int      `json:"failed"`
	WouldReplay []string `json:"would_replay"`
	Error       string   `json:"error"`
}

func (c *client) bulk(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("bulk-replay", "replayctl bulk-replay --reason TEXT [filters] [--dry-run] [--max N]: replay every open record\nmatching the filters as a background job and follow its progress. A dry run needs no reason.", stderr)
	reason := fs.String("reason", "", "why (required; recorded in the audit log)")
	source := fs.String("source", "", "only this source")
	class := fs.String("class", "", "only this failure class ("+strings.Join(classes, ", ")+")")
	since := fs.String("since", "", "created at or after (RFC 3339)")
	until := fs.String("until", "", "created before (RFC 3339)")
	dry := fs.Bool("dry-run", false, "report what would be replayed; change nothing (no --reason needed)")
	max := fs.Int("max", 0, "stop after this many records (0: the service's limit)")
	renorm := fs.Bool("renormalize", false, "rebuild each event with the current mapping")
	detach := fs.Bool("detach", false, "print the job id and return without following it")
	interval := fs.Duration("poll", 500*time.Millisecond, "progress poll interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkClass(*class); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		if !*dry {
			fs.Usage()
			return errors.New("--reason is required (except with --dry-run)")
		}
		// A dry run changes nothing; the API still wants a reason on every job.
		*reason = "dry run (replayctl)"
	}
	filter := map[string]string{"status": "open"}
	for k, v := range map[string]string{"source": *source, "failure_class": *class, "since": *since, "until": *until} {
		if v != "" {
			filter[k] = v
		}
	}
	var j job
	if err := c.do(ctx, "POST", "/v1/dlq:replay", map[string]any{
		"filter": filter, "reason": *reason, "dry_run": *dry, "max": *max, "renormalize": *renorm,
	}, &j); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "job %s started (dry_run=%t)\n", j.ID, j.DryRun)
	if *detach {
		return nil
	}
	// On a terminal the progress line redraws in place; elsewhere (a pipe, a CI log) each
	// change is a line of its own and no carriage return is written.
	last := ""
	for !(j.Status == "done" || j.Status == "failed") {
		select {
		case <-ctx.Done():
			fmt.Fprintf(c.out, "\nstopped following; the job goes on: GET /v1/replays/%s\n", j.ID)
			return ctx.Err()
		case <-time.After(*interval):
		}
		if err := c.do(ctx, "GET", "/v1/replays/"+url.PathEscape(j.ID), nil, &j); err != nil {
			return err
		}
		if p := progress(&j, 30); c.tty {
			fmt.Fprint(c.out, "\r"+p)
		} else if p != last && !(j.Status == "done" || j.Status == "failed") {
			fmt.Fprintln(c.out, p)
			last = p
		}
	}
	if c.tty {
		fmt.Fprint(c.out, "\r")
	}
	fmt.Fprintln(c.out, progress(&j, 30))
	if j.DryRun {
		fmt.Fprintf(c.out, "would replay %d record(s):\n", len(j.WouldReplay))
		for _, id := range j.WouldReplay {
			fmt.Fprintln(c.out, "  "+id)
		}
	}
	if j.Status == "failed" {
		return fmt.Errorf("job %s failed: %s", j.ID, j.Error)
	}
	return nil
}

// progress renders "[#####.....] matched 5/10 replayed 4 skipped 1 failed 0 (running)". The
// bar is against max when known, and full when the job is done.
func progress(j *job, width int) string {
	total := j.Max
	done := j.Matched
	if j.Status == "done" || total <= 0 {
		total = max(done, 1)
	}
	n := min(width, done*width/max(total, 1))
	bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
	return fmt.Sprintf("[%s] matched %d replayed %d skipped %d failed %d (%s)", bar, j.Matched, j.Replayed, j.Skipped, j.Failed, j.Status)
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
