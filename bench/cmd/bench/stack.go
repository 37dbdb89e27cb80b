package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/devstack/loadgen"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

// boot starts a process-mode stack named name (its logs under log-dir/name) with n processor
// processes and env over devstack's defaults.
func (b *runner) boot(ctx context.Context, name string, n int, env map[string]string) (*stack.Stack, error) {
	e := map[string]string{"LOG_LEVEL": "warn", "AUTO_REPLAY_INTERVAL": "0s"}
	for k, v := range env {
		e[k] = v
	}
	var kv []string
	for k, v := range e {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	// What the scenario changed from devstack's defaults (the rest, e.g. BREAKER_COOLDOWN=15s,
	// is the services' own default).
	b.res.Settings["env_"+name] = strings.Join(kv, " ")
	b.logf("booting stack %q (%d processor process(es))", name, n)
	st, err := stack.Up(ctx, stack.Options{
		ProjectID:  "leadpipe-bench-" + name,
		Logs:       io.Discard,
		Processes:  true,
		Processors: n,
		LogDir:     filepath.Join(b.cfg.logDir, name),
		Env:        e,
		// Free ports: a developer's `make dev` may hold the defaults.
		Ports: stack.Ports{},
		// Lookup: none of the user's environment, so the run measures devstack's defaults.
		Lookup: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", name, err)
	}
	return st, nil
}

// sender posts signed canonical leads to ingest.
type sender struct {
	url    string
	signer *loadgen.Signer
	hc     *http.Client
}

func newSender(st *stack.Stack) (*sender, error) {
	sg, err := loadgen.NewSigner(st.DemoSecret)
	if err != nil {
		return nil, err
	}
	return &sender{
		url: st.IngestURL + "/v1/webhooks/" + st.DemoSource, signer: sg,
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxIdleConns: 512}},
	}, nil
}

// sent is one delivery: when it left, when it was answered, and the status (0: transport
// error).
type sent struct {
	id           string
	at, answered time.Time
	code         int
}

func (r sent) ok() bool { return r.code >= 200 && r.code < 300 }

// leadBody is lead id's canonical event (the CRM record's external id is id).
func leadBody(id string) []byte {
	b, _ := json.Marshal(map[string]any{
		"event_type":      "lead.created",
		"source_event_id": id,
		"occurred_at":     time.Now().UTC().Format(time.RFC3339),
		"identity":        map[string]string{"contact_external_id": id, "email": id + "@example.com"},
		"attributes":      map[string]string{"first_name": "Bench", "last_name": id, "company": "Example Co", "utm_source": "bench"},
	})
	return b
}

func (s *sender) post(ctx context.Context, url, id string) sent {
	body := leadBody(id)
	r := sent{id: id, at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range s.signer.Headers("msg_"+id, r.at, body) {
		req.Header.Set(k, v)
	}
	resp, err := s.hc.Do(req)
	r.answered = time.Now()
	if err != nil {
		return r
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.code = resp.StatusCode
	return r
}

// send posts one lead to ingest.
func (s *sender) send(ctx context.Context, id string) sent { return s.post(ctx, s.url, id) }

// paced sends leads named prefix-NNNNNN at rate per second for d (each in its own goroutine,
// at most 512 in flight) and returns every delivery once answered.
func (s *sender) paced(ctx context.Context, prefix string, rate float64, d time.Duration, first int) []sent {
	n := int(rate * d.Seconds())
	out := make([]sent, n)
	sem := make(chan struct{}, 512)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if w := time.Until(due); w > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return out[:i]
			case <-time.After(w):
			}
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = s.send(ctx, fmt.Sprintf("%s-%06d", prefix, first+i))
		})
	}
	wg.Wait()
	return out
}

// crmTimes maps each CRM record's key to its creation time.
func crmTimes(st *stack.Stack) map[string]time.Time {
	m := map[string]time.Time{}
	for _, r := range st.CRM.Records() {
		if t, ok := m[r.Key]; !ok || r.CreatedAt.Before(t) {
			m[r.Key] = r.CreatedAt
		}
	}
	return m
}

// waitInCRM polls until every accepted delivery's lead has a CRM record or timeout passes;
// it returns the creation times.
func waitInCRM(ctx context.Context, st *stack.Stack, ds []sent, timeout time.Duration) map[string]time.Time {
	deadline := time.Now().Add(timeout)
	for {
		m := crmTimes(st)
		missing := 0
		for _, d := range ds {
			if _, ok := m[d.id]; d.ok() && !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
}
