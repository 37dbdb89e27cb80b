// Command replayctl is the operators' CLI over the replayer's API: list, show, replay,
// bulk-replay (with a progress bar), discard and reconcile. REPLAYER_URL and REPLAYER_TOKEN (or --url,
// --token) say where and as whom.
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
	"strings"
	"text/tabwriter"
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

const usage = `replayctl: operate the leadpipe dead-letter queue.

Usage: replayctl [--url URL] [--token TOKEN] COMMAND [flags]

Commands:
  list          list DLQ records (filters, pages)
  show ID       one record with its event, attempts and (with permission) raw payload
  replay ID     replay one record (needs --reason)
  bulk-replay   replay every record matching a filter as a background job, with progress
  discard ID    discard one record (needs --reason)
  reconcile     take in the leads of a Meta form the pipeline never received (needs --reason)

Environment: REPLAYER_URL (default http://127.0.0.1:8083), REPLAYER_TOKEN.
Run "replayctl COMMAND --help" for a command's flags.
`

type client struct {
	base, token string
	http        *http.Client
	out         io.Writer
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
	c := &client{base: strings.TrimSuffix(*base, "/"), token: *token, http: &http.Client{Timeout: 60 * time.Second}, out: stdout}
	cmd, rest := g.Arg(0), g.Args()[1:]
	switch cmd {
	case "list":
		return c.list(ctx, rest, stderr)
	case "show":
		return c.show(ctx, rest, stderr)
	case "replay", "discard":
		return c.action(ctx, cmd, rest, stderr)
	case "bulk-replay":
		return c.bulk(ctx, rest, stderr)
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

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
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
		return err
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
	Source          string    `json:"source"`
	EventType       string    `json:"event_type"`
	FailureClass    string    `json:"failure_class"`
	ErrorMessage    string    `json:"error_message"`
	AttemptCount    int       `json:"attempt_count"`
	DeadLetterCount int       `json:"dead_letter_count"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
}

func (c *client) list(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("list", "replayctl list [flags]: DLQ records, newest first.", stderr)
	source := fs.String("source", "", "only this source")
	class := fs.String("class", "", "only this failure class (retryable, conflict, permanent, auth, outage)")
	status := fs.String("status", "open", "open, replayed, discarded, resolved, or empty for all")
	since := fs.String("since", "", "created at or after (RFC 3339)")
	until := fs.String("until", "", "created before (RFC 3339)")
	size := fs.Int("page-size", 50, "records per page")
	page := fs.String("page-token", "", "continue from a previous page")
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	if err := fs.Parse(args); err != nil {
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
	var res struct {
		Records       []record `json:"records"`
		NextPageToken string   `json:"next_page_token"`
	}
	if *asJSON {
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/v1/dlq?"+q.Encode(), nil, &raw); err != nil {
			return err
		}
		_, err := fmt.Fprintln(c.out, string(raw))
		return err
	}
	if err := c.do(ctx, "GET", "/v1/dlq?"+q.Encode(), nil, &res); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tTYPE\tCLASS\tSTATUS\tATTEMPTS\tDEAD-LETTERED\tREASON")
	for _, r := range res.Records {
		msg := r.ErrorMessage
		if len(msg) > 60 {
			msg = msg[:60] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, r.Source, r.EventType, r.FailureClass, r.Status, r.AttemptCount, r.DeadLetterCount, msg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.NextPageToken != "" {
		fmt.Fprintf(c.out, "next page: --page-token %s\n", res.NextPageToken)
	}
	return nil
}

func (c *client) show(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("show", "replayctl show ID [--raw]: one record, its event state, attempts (JSON).", stderr)
	raw := fs.Bool("raw", false, "include the normalized event and raw payload (needs the permission)")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	path := "/v1/dlq/" + url.PathEscape(id)
	if *raw {
		path += "?include=raw"
	}
	var out json.RawMessage
	if err := c.do(ctx, "GET", path, nil, &out); err != nil {
		return err
	}
	return printJSON(c.out, out)
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
	fs := newFlags("bulk-replay", "replayctl bulk-replay --reason TEXT [filters] [--dry-run] [--max N]: replay every open record\nmatching the filters as a background job and follow its progress.", stderr)
	reason := fs.String("reason", "", "why (required; recorded in the audit log)")
	source := fs.String("source", "", "only this source")
	class := fs.String("class", "", "only this failure class")
	since := fs.String("since", "", "created at or after (RFC 3339)")
	until := fs.String("until", "", "created before (RFC 3339)")
	dry := fs.Bool("dry-run", false, "report what would be replayed; change nothing")
	max := fs.Int("max", 0, "stop after this many records (0: the service's limit)")
	renorm := fs.Bool("renormalize", false, "rebuild each event with the current mapping")
	detach := fs.Bool("detach", false, "print the job id and return without following it")
	interval := fs.Duration("poll", 500*time.Millisecond, "progress poll interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		fs.Usage()
		return errors.New("--reason is required")
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
		fmt.Fprint(c.out, "\r"+progress(&j, 30))
	}
	fmt.Fprintf(c.out, "\r%s\n", progress(&j, 30))
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
