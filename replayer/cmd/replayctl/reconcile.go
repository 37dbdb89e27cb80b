package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

const reconcileHelp = `replayctl reconcile --source S --form F --since T [--until T] [--page P] [--dry-run] --reason TEXT:
list the form's leads created in [since, until) through the Graph API and take in every lead the
pipeline never received (same idempotency keys as Meta's webhook, so each lead reaches the CRM
once). --since and --until take RFC 3339 times or a duration before now (e.g. 24h). A dry run
reports the missing leads and writes nothing. Prints counts and event ids, never lead data.`

type reconcileReport struct {
	RunID           string   `json:"run_id"`
	Found           int      `json:"found"`
	Existing        int      `json:"existing"`
	Missing         int      `json:"missing"`
	Added           int      `json:"added"`
	Skipped         int      `json:"skipped"`
	DryRun          bool     `json:"dry_run"`
	MissingEventIDs []string `json:"missing_event_ids"`
	AddedEventIDs   []string `json:"added_event_ids"`
	Truncated       bool     `json:"truncated"`
	Stopped         string   `json:"stopped"`
	Error           string   `json:"error"`
	AuditID         string   `json:"audit_id"`
}

func (c *client) reconcile(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("reconcile", reconcileHelp, stderr)
	source := fs.String("source", "", "a facebook_leads source, e.g. meta (required)")
	form := fs.String("form", "", "the Lead Ads form id (required)")
	page := fs.String("page", "", "the page id, recorded in the events' refs (optional)")
	since := fs.String("since", "", "leads created at or after: RFC 3339 or a duration before now (required)")
	until := fs.String("until", "", "leads created before: RFC 3339 or a duration before now (default now)")
	dry := fs.Bool("dry-run", false, "report what is missing; change nothing")
	reason := fs.String("reason", "", "why (required; recorded in the audit log)")
	asJSON := fs.Bool("json", false, "print the raw JSON report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *source == "" || *form == "" || *since == "" || strings.TrimSpace(*reason) == "" {
		fs.Usage()
		return errors.New("--source, --form, --since and --reason are required")
	}
	now := time.Now().UTC()
	body := map[string]any{"source": *source, "form_id": *form, "dry_run": *dry, "reason": *reason}
	for name, v := range map[string]string{"since": *since, "until": *until} {
		if v == "" {
			continue
		}
		t, err := parseWhen(v, now)
		if err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
		body[name] = t.Format(time.RFC3339)
	}
	if *page != "" {
		body["page_id"] = *page
	}
	var raw json.RawMessage
	err := c.do(ctx, "POST", "/v1/reconcile", body, &raw)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := fmt.Fprintln(c.out, string(raw))
		return err
	}
	var r reconcileReport
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	verb, n, ids := "added", r.Added, r.AddedEventIDs
	if r.DryRun {
		verb, n, ids = "would add", r.Missing, r.MissingEventIDs
	}
	fmt.Fprintf(c.out, "run %s: found %d, existing %d, missing %d, %s %d, skipped %d (audit %s)\n",
		r.RunID, r.Found, r.Existing, r.Missing, verb, n, r.Skipped, r.AuditID)
	for _, id := range ids {
		fmt.Fprintf(c.out, "  %s\n", id)
	}
	if r.Truncated {
		fmt.Fprintln(c.out, "  … (list truncated; see the audit entry)")
	}
	if r.Stopped != "" {
		fmt.Fprintln(c.out, r.Stopped)
	}
	return nil
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return now.Add(-d), nil
}
