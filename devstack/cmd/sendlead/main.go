// Command sendlead sends one signed sample lead (a canonical event, Standard Webhooks
// signature) to a running ingest service, optionally several times to show deduplication.
//
//	INGEST_URL, DEMO_SOURCE, DEMO_WEBHOOK_SECRET   exported by `devstack up` (.devstack/env)
//	sendlead [-n 3] [-id lead-123] [-email someone@example.com]
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sendlead:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sendlead", flag.ContinueOnError)
	n := fs.Int("n", 1, "send the same delivery n times (same webhook-id: one lead, then duplicates)")
	id := fs.String("id", "", "contact external id (default: random)")
	email := fs.String("email", "", "lead email (default: derived from the id)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	url, source, secret := os.Getenv("INGEST_URL"), os.Getenv("DEMO_SOURCE"), os.Getenv("DEMO_WEBHOOK_SECRET")
	if url == "" || secret == "" {
		return errors.New("INGEST_URL and DEMO_WEBHOOK_SECRET must be set: run `make dev` and use its exports (.devstack/env)")
	}
	if source == "" {
		source = "demo"
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("DEMO_WEBHOOK_SECRET is not whsec_<base64>: %w", err)
	}
	suffix := randomHex(6)
	if *id == "" {
		*id = "demo-" + suffix
	}
	if *email == "" {
		*email = *id + "@example.com"
	}
	body, err := json.Marshal(map[string]any{
		"event_type":  "lead.created",
		"occurred_at": time.Now().UTC().Format(time.RFC3339),
		"identity":    map[string]string{"contact_external_id": *id, "email": *email},
		"attributes": map[string]string{
			"first_name": "Sam", "last_name": "Sample", "company": "Example Co",
			"utm_source": "sendlead", "utm_campaign": "local-demo",
		},
	})
	if err != nil {
		return err
	}
	msgID := "msg_" + suffix
	target := strings.TrimRight(url, "/") + "/v1/webhooks/" + source
	for i := 1; i <= *n; i++ {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", msgID)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", sign(key, msgID, ts, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		fmt.Fprintf(out, "%d/%d %s %s\n", i, *n, resp.Status, bytes.TrimSpace(answer))
	}
	return nil
}

// sign is the Standard Webhooks signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>.
func sign(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
