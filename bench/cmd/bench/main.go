// Command bench is `make bench`: it boots `devstack up --processes` stacks (each service its own
// OS process, the emulators and the fake CRM in this process), runs the scenarios of issue 12
// against them and writes bench/results.md and bench/results.json. Every figure is measured in
// this run; a feature that has not landed shows as its honest figure and "goal not met".
//
//	go run ./bench/cmd/bench [--steady=60s] [--only=a,b,c,d,e,f] [--out=bench]
//
// Scenarios: a) sequential Firestore round trips and RPCs per event under an injected per-RPC
// latency; b) ingest CPU per accepted event next to a bare gin handler; c) CRM throughput under
// an account limit R with 1 and 3 processors; d) drain time after a CRM outage; e) end-to-end
// latency and peak RSS under a 10x burst; f) crash: SIGKILLs of the processor and ingest, then
// 0 lost and 0 duplicates.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/leadpipe/leadpipe/bench"
)

type config struct {
	steady     time.Duration
	fsLatency  time.Duration
	rate       float64 // R, the CRM account limit of c and d
	arrival    float64 // A of d
	only       map[string]bool
	out        string
	logDir     string
	verbose    bool
	seqLeads   int
	cpuEvents  int
	burstBase  float64
	outageFor  time.Duration
	crashLeads int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare-gin" {
		if err := bareGin(); err != nil {
			fmt.Fprintln(os.Stderr, "bare-gin:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	fs.DurationVar(&c.steady, "steady", 60*time.Second, "steady-state window of scenario c (the committed results use 60s)")
	fs.DurationVar(&c.fsLatency, "firestore-latency", 40*time.Millisecond, "latency injected into every Firestore RPC in scenario a")
	fs.Float64Var(&c.rate, "rate", 40, "R: the fake CRM's account limit (requests/s) in scenarios c and d")
	fs.Float64Var(&c.arrival, "arrival", 10, "A: the arrival rate (leads/s) of scenario d and the base of scenario e's burst")
	fs.IntVar(&c.seqLeads, "seq-leads", 20, "leads sent one at a time per phase of scenario a")
	fs.IntVar(&c.cpuEvents, "cpu-events", 2000, "requests per server in scenario b")
	fs.DurationVar(&c.outageFor, "outage", 10*time.Second, "the CRM outage of scenario d")
	fs.IntVar(&c.crashLeads, "crash-leads", 300, "leads of the crash scenario (10/s)")
	only := fs.String("only", "a,b,c,d,e,f", "scenarios to run")
	fs.StringVar(&c.out, "out", "bench", "directory of results.md and results.json")
	fs.StringVar(&c.logDir, "log-dir", filepath.Join(".devstack", "logs", "bench"), "the service processes' logs (one directory per stack)")
	fs.BoolVar(&c.verbose, "v", false, "progress lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.burstBase = c.arrival
	c.only = map[string]bool{}
	for s := range strings.SplitSeq(*only, ",") {
		c.only[strings.TrimSpace(s)] = true
	}
	start := time.Now()
	load0 := loadAvg()
	b := &runner{cfg: c, log: log, res: &bench.Results{
		Date: start.UTC(), Machine: machine(),
		Settings: map[string]string{
			"firestore_latency": c.fsLatency.String(), "R": fmt.Sprintf("%g/s", c.rate),
			"arrival_A": fmt.Sprintf("%g/s", c.arrival), "steady_window": c.steady.String(),
			"outage": c.outageFor.String(),
		},
	}}
	steps := []struct {
		key string
		fn  func(context.Context) error
	}{
		{"a", b.stackOne}, // a, e and b share one stack
		{"c", b.throughput},
		{"d", b.drain},
		{"f", b.crash},
	}
	for _, s := range steps {
		if s.key == "a" && !(c.only["a"] || c.only["b"] || c.only["e"]) {
			continue
		}
		if s.key != "a" && !c.only[s.key] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.fn(ctx); err != nil {
			b.note("scenario %s failed to run: %v", s.key, err)
			b.logf("scenario %s: %v", s.key, err)
		}
	}
	b.res.Duration = time.Since(start).Seconds()
	b.res.Settings["load_average_start"] = load0
	b.res.Settings["load_average_end"] = loadAvg()
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	js, err := b.res.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.out, "results.json"), js, 0o644); err != nil {
		return err
	}
	md := b.res.Markdown()
	if err := os.WriteFile(filepath.Join(c.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprint(log, md)
	fmt.Fprintf(log, "\nbench: wrote %s and %s in %.0fs\n", filepath.Join(c.out, "results.md"), filepath.Join(c.out, "results.json"), b.res.Duration)
	return nil
}

type runner struct {
	cfg config
	log io.Writer
	res *bench.Results
}

func (b *runner) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func (b *runner) note(format string, args ...any) {
	b.res.Notes = append(b.res.Notes, fmt.Sprintf(format, args...))
}

func (b *runner) add(f bench.Figure) {
	b.res.Figures = append(b.res.Figures, f)
	v := f.Verdict()
	if v != "" {
		v = " (" + v + ")"
	}
	b.logf("%s: %s = %g %s%s", f.Scenario, f.Name, f.Value, f.Unit, v)
}

func goal(op string, limit float64) *bench.Goal { return &bench.Goal{Op: op, Limit: limit} }

func machine() bench.Machine {
	m := bench.Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
				m.RAMBytes = kb << 10
			}
		}
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages of /proc/loadavg: the machine is shared, and
// other work running during the bench shows in the figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
