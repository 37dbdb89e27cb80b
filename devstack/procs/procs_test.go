package procs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/devstack/devstacktest"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
	"github.com/leadpipe/leadpipe/devstack/loadgen"
	"github.com/leadpipe/leadpipe/devstack/procs"
	"github.com/leadpipe/leadpipe/devstack/provision"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	stat := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 1234 0 0"
	got, err := procs.ParseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("cpu = %v, want %v (utime 250 + stime 75 ticks of 10ms)", got, want)
	}
	if _, err := procs.ParseStatCPU("4242 (cmd) S 1"); err == nil {
		t.Error("short stat: want an error")
	}
}

func TestParseStatusHWM(t *testing.T) {
	status := "Name:\tingest\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"
	got, err := procs.ParseStatusHWM(status)
	if err != nil {
		t.Fatal(err)
	}
	if got != 20480<<10 {
		t.Errorf("hwm = %d, want %d", got, 20480<<10)
	}
	if _, err := procs.ParseStatusHWM("Name:\tx\n"); err == nil {
		t.Error("no VmHWM: want an error")
	}
}

func TestParseNetTCP(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 55501 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 55502 1 0000000000000000 20 4 30 10 -1
`
	got := procs.ParseNetTCP(table)
	if got[8080] != "55501" || got[50000] != "55502" || len(got) != 2 {
		t.Errorf("ports = %v, want 8080:55501 50000:55502", got)
	}
}

func TestLocalPortsOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("no /proc")
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	port := srv.Listener.Addr().(interface{ String() string }).String()
	ports, err := procs.LocalPorts(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var p int
	fmt.Sscanf(port[len("127.0.0.1:"):], "%d", &p)
	if !ports[p] {
		t.Errorf("listener port %d not among this process's ports %v", p, ports)
	}
}

func TestRoundRobin(t *testing.T) {
	var hits [2]int
	var backends []string
	for i := range 2 {
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits[i]++ }))
		defer b.Close()
		backends = append(backends, b.URL)
	}
	rr, err := procs.NewRoundRobin(append(backends, "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(rr)
	defer front.Close()
	codes := map[int]int{}
	for range 6 {
		resp, err := http.Post(front.URL+"/pubsub/push", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if hits != [2]int{2, 2} || codes[http.StatusBadGateway] != 2 {
		t.Errorf("hits %v, codes %v: want 2 each and two 502 from the dead backend", hits, codes)
	}
}

// TestProcessesKillRestart runs the stack with each service as its own process, sends a lead,
// SIGKILLs the processor while the fake CRM holds a second lead's call open, restarts it, and
// checks both leads reach the CRM exactly once.
func TestProcessesKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and boots the services as processes")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := stack.Up(ctx, stack.Options{
		ProjectID: devstacktest.Project("leadpipe-procs"),
		Logs:      io.Discard,
		Processes: true,
		LogDir:    t.TempDir(),
		Topology:  provision.Topology{MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second},
		Env: map[string]string{
			"LEASE_DURATION": "3s", "PROCESS_BUDGET": "2s", "AUTO_REPLAY_INTERVAL": "0s", "LOG_LEVEL": "warn",
		},
		MaxPushBackoff: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	proc := st.Processors[0]
	pid := proc.PID()
	if pid == 0 || pid == os.Getpid() {
		t.Fatalf("processor pid %d: want its own process", pid)
	}
	if cur, _, err := proc.Usage(); err != nil || cur.PeakRSS == 0 {
		t.Fatalf("usage %+v, %v: want a peak RSS", cur, err)
	}
	send := func(id string) {
		t.Helper()
		signer, err := loadgen.NewSigner(st.DemoSecret)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{
			"event_type": "lead.created", "source_event_id": id, "occurred_at": time.Now().UTC().Format(time.RFC3339),
			"identity":   map[string]string{"contact_external_id": id, "email": id + "@example.com"},
			"attributes": map[string]string{"first_name": "Proc", "last_name": "Test", "company": "Example Co"},
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, st.IngestURL+"/v1/webhooks/"+st.DemoSource, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range signer.Headers("msg_"+id, time.Now(), body) {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send %s: %s", id, resp.Status)
		}
	}
	inCRM := func(id string) func() (bool, string) {
		return func() (bool, string) {
			n := st.CRM.CreateCount(id)
			return n > 0, fmt.Sprintf("%s created %d times", id, n)
		}
	}
	send("procs-lead-1")
	devstacktest.Eventually(t, 20*time.Second, "first lead in the CRM", inCRM("procs-lead-1"))

	st.CRM.SetFaults(fakecrm.Faults{LatencyMS: 3000})
	send("procs-lead-2")
	devstacktest.Eventually(t, 10*time.Second, "second lead's CRM call open", func() (bool, string) {
		return st.CRM.InFlight() > 0, "no CRM call in flight"
	})
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	if proc.PID() != 0 {
		t.Fatal("killed processor still has a pid")
	}
	st.CRM.SetFaults(fakecrm.Faults{})
	if err := proc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if proc.PID() == pid || proc.Starts() != 2 {
		t.Fatalf("restart: pid %d (was %d), starts %d", proc.PID(), pid, proc.Starts())
	}
	devstacktest.Eventually(t, 30*time.Second, "second lead in the CRM after the restart", inCRM("procs-lead-2"))
	time.Sleep(time.Second) // a late duplicate would show now
	for _, id := range []string{"procs-lead-1", "procs-lead-2"} {
		if n := st.CRM.CreateCount(id); n != 1 {
			t.Errorf("%s created %d times, want exactly once", id, n)
		}
	}
}
