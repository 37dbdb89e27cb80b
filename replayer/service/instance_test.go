package service_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/replayer/service"
)

// instance is a second replayer process on the same emulators, for tests that need their own
// configuration (a sources file, a slow rate) or that stop and restart the service.
type instance struct {
	URL  string
	stop func() error
}

// Stop cancels the instance's context and waits for service.Run to return (bulk jobs
// checkpoint on the way out). It is safe to call twice.
func (i *instance) Stop(t *testing.T) {
	t.Helper()
	if err := i.stop(); err != nil {
		t.Errorf("replayer instance: %v", err)
	}
}

// startReplayer runs service.Run with the shared test configuration plus overrides, waits
// until it is ready, and stops it at the end of the test.
func startReplayer(t *testing.T, overrides map[string]string) *instance {
	t.Helper()
	vars := map[string]string{
		"AUTH_MODE":            "static",
		"REPLAYER_TOKENS":      aliceToken + "=alice," + bobToken + "=bob",
		"REPLAYER_RAW_READERS": "alice",
		"PUSH_AUTH":            "none",
		"REPLAY_RATE_PER_SEC":  "50",
		"AUTO_REPLAY_COOLDOWN": "1h",
	}
	for k, v := range overrides {
		vars[k] = v
	}
	svc, err := env.Serve(service.Run, vars)
	if err != nil {
		t.Fatalf("replayer instance: %v", err)
	}
	inst := &instance{URL: svc.URL, stop: svc.Stop}
	t.Cleanup(func() { inst.Stop(t) })
	inst.URL = replayerSpec.ProxyFor(t, svc.URL)
	return inst
}

var nonceSeq atomic.Int64

// nonce makes test keys unique within the process, so a test run with -count=N does not see
// the leads messages of its earlier runs (the emulator keeps every published message).
func nonce() string {
	return strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.FormatInt(nonceSeq.Add(1), 36)
}
