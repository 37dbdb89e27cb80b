package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const userSources = `
# Secrets are references (env:NAME), never values.
sources:
  mysrc:
    kind: canonical
    mapping_version: mine-1
    secrets: [env:MY_SRC_SECRET]
    routing: {crm: salesforce, object: Lead, upsert_key: External_Lead_Id__c}
`

// TestUpTakesServiceVariablesAndSources runs `devstack up --sources FILE` with service
// variables in its environment: ingest must enforce the user's MAX_BODY_BYTES, the processor
// the user's MAX_ATTEMPTS=1 (the default is 8), so a lead whose CRM call fails is quarantined
// on its first attempt; the user's source must accept a lead signed with the user's secret,
// and GOOGLE_CLOUD_PROJECT must not override --project.
func TestUpTakesServiceVariablesAndSources(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole stack")
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("my-own-source-secret-0123"))
	t.Setenv("MY_SRC_SECRET", secret)
	t.Setenv("MAX_BODY_BYTES", "600")
	t.Setenv("MAX_ATTEMPTS", "1")
	t.Setenv("BREAKER_THRESHOLD", "1000")
	t.Setenv("RETRY_SPACING", "10ms")
	t.Setenv("GOOGLE_CLOUD_PROJECT", "someone-elses-project")
	dir := t.TempDir()
	sources := filepath.Join(dir, "sources.yaml")
	if err := os.WriteFile(sources, []byte(userSources), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- realMain(ctx, []string{"up", "--firestore-port=0", "--pubsub-port=0", "--gcs-port=0", "--ingest-port=0",
			"--processor-port=0", "--replayer-port=0", "--crm-port=0", "--project=up-env-test", "--sources=" + sources,
			"--env-file=" + filepath.Join(dir, "env"), "--log-level=error"}, pw, io.Discard)
		pw.Close()
	}()
	exports := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() && sc.Text() != "devstack: ready" {
		k, v, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		exports[k] = v
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if exports["INGEST_URL"] == "" {
		t.Fatalf("no ready line; exports %v (run error: %v)", exports, func() error {
			select {
			case err := <-done:
				return err
			case <-time.After(time.Second):
				return nil
			}
		}())
	}
	if exports["GOOGLE_CLOUD_PROJECT"] != "up-env-test" {
		t.Errorf("GOOGLE_CLOUD_PROJECT export = %q, want --project's up-env-test", exports["GOOGLE_CLOUD_PROJECT"])
	}
	if v, ok := exports["NAME"]; ok {
		t.Errorf("exported NAME=%s from a comment of the sources file", v)
	}
	if exports["MY_SRC_SECRET"] != secret {
		t.Errorf("MY_SRC_SECRET export = %q, want the user's secret", exports["MY_SRC_SECRET"])
	}

	post := func(body []byte, id string) int {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
		req, _ := http.NewRequest(http.MethodPost, exports["INGEST_URL"]+"/v1/webhooks/mysrc", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	lead := func(pad int) []byte {
		b, _ := json.Marshal(map[string]any{
			"event_type": "lead.created", "occurred_at": "2026-11-28T10:00:00Z", "source_event_id": "evt-up-env",
			"identity":   map[string]string{"contact_external_id": "c-up-env", "email": "up@example.com"},
			"attributes": map[string]string{"first_name": "Ada", "company": strings.Repeat("x", pad)},
		})
		return b
	}
	if code := post(lead(700), "msg_big"); code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the user's MAX_BODY_BYTES=600: %d, want 413", code)
	}
	req, _ := http.NewRequest(http.MethodPut, exports["CRM_URL"]+"/_control/faults", strings.NewReader(`{"error_rate":1}`))
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if code := post(lead(0), "msg_small"); code != http.StatusAccepted {
		t.Fatalf("lead to the user's source: %d, want 202", code)
	}
	// Every CRM call fails (retryable); with the user's MAX_ATTEMPTS=1 the lead is quarantined
	// after its first attempt.
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, exports["REPLAYER_URL"]+"/v1/dlq?status=open", nil)
		req.Header.Set("Authorization", "Bearer "+exports["REPLAYER_TOKEN"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Records []struct {
				Source       string `json:"source"`
				FailureClass string `json:"failure_class"`
				ErrorMessage string `json:"error_message"`
			} `json:"records"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if len(body.Records) > 0 {
			if r := body.Records[0]; r.Source != "mysrc" || !strings.Contains(r.ErrorMessage, "gave up after 1 attempts") {
				t.Errorf("DLQ record source %s, class %s, error %q; want mysrc, gave up after 1 attempts", r.Source, r.FailureClass, r.ErrorMessage)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lead did not reach the DLQ: was MAX_ATTEMPTS passed to the processor?")
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("devstack up: %v", err)
	}
}

// TestServiceVarsCoverTheServices: the pass-through list comes from the services' Config types.
func TestServiceVarsCoverTheServices(t *testing.T) {
	got := map[string]bool{}
	for _, k := range stackServiceVars() {
		got[k] = true
	}
	for _, k := range []string{"CRM_RATE_PER_SEC", "META_ACCESS_TOKEN", "OTEL_EXPORTER", "LOG_LEVEL", "MAX_BODY_BYTES", "REPLAY_RATE_PER_SEC", "SALESFORCE_CLIENT_SECRET"} {
		if !got[k] {
			t.Errorf("ServiceVars lacks %s", k)
		}
	}
}
