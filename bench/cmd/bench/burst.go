package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadpipe/leadpipe/bench"
	"github.com/leadpipe/leadpipe/devstack/procs"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

// burst is scenario e: the base arrival rate for 6 s, ten times it for 3 s, the base again for
// 6 s; end-to-end latency from each ingest 2xx to its CRM record, and each service's peak RSS.
func (b *runner) burst(ctx context.Context, st *stack.Stack, s *sender) error {
	base := b.cfg.burstBase
	var all []sent
	for i, ph := range []struct {
		rate float64
		d    time.Duration
	}{{base, 6 * time.Second}, {10 * base, 3 * time.Second}, {base, 6 * time.Second}} {
		all = append(all, s.paced(ctx, fmt.Sprintf("e%d", i), ph.rate, ph.d, 0)...)
	}
	times := waitInCRM(ctx, st, all, 90*time.Second)
	var e2e []time.Duration
	accepted, missing := 0, 0
	for _, d := range all {
		if !d.ok() {
			continue
		}
		accepted++
		if t, ok := times[d.id]; ok {
			e2e = append(e2e, t.Sub(d.answered))
		} else {
			missing++
		}
	}
	detail := fmt.Sprintf("%d leads accepted (%g/s, 10x for 3 s, back to %g/s); %d in the CRM", accepted, base, base, len(e2e))
	if missing > 0 {
		detail += fmt.Sprintf(", %d not in the CRM after 90 s", missing)
	}
	b.add(bench.NewFigure("e", "end-to-end p50, ingest 2xx to CRM record, 10x burst", msRound(bench.Percentile(e2e, 50)), "ms", nil, detail))
	b.add(bench.NewFigure("e", "end-to-end p99, ingest 2xx to CRM record, 10x burst", msRound(bench.Percentile(e2e, 99)), "ms", nil, detail))
	for _, p := range st.Services() {
		_, total, err := p.Usage()
		if err != nil {
			return err
		}
		b.add(bench.NewFigure("e", "peak RSS, "+p.Name(), round2(float64(total.PeakRSS)/(1<<20)), "MiB", nil, "VmHWM of /proc/PID/status after the burst"))
	}
	return nil
}

func msRound(d time.Duration) float64 { return round2(float64(d) / float64(time.Millisecond)) }

// cpu is scenario b: CPU time of the ingest process per accepted event, next to a bare gin
// handler (a process of this binary answering 202 and nothing else) under the same requests:
// the same signed bodies and headers, the same concurrency.
func (b *runner) cpu(ctx context.Context, st *stack.Stack, s *sender) error {
	const workers = 8
	n := b.cfg.cpuEvents
	load := func(url, prefix string) (ok int, err error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		next := make(chan int)
		for range workers {
			wg.Go(func() {
				for i := range next {
					r := s.post(ctx, url, fmt.Sprintf("%s-%06d", prefix, i))
					if r.ok() {
						mu.Lock()
						ok++
						mu.Unlock()
					}
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		return ok, nil
	}
	measure := func(p *procs.Service, url, prefix string) (time.Duration, int, error) {
		before, _, err := p.Usage()
		if err != nil {
			return 0, 0, err
		}
		ok, _ := load(url, prefix)
		after, _, err := p.Usage()
		if err != nil {
			return 0, 0, err
		}
		return after.CPU - before.CPU, ok, nil
	}
	ingCPU, ingOK, err := measure(st.Ingest, s.url, "b")
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	gin, err := procs.Start(ctx, procs.Spec{Name: "bare-gin", Bin: exe, Args: []string{"bare-gin"}, Env: map[string]string{},
		LogPath: filepath.Join(b.cfg.logDir, "one", "bare-gin.log")})
	if err != nil {
		return err
	}
	defer gin.Stop(5 * time.Second)
	ginCPU, ginOK, err := measure(gin, gin.URL()+"/v1/webhooks/demo", "b-gin")
	if err != nil {
		return err
	}
	if ingOK == 0 || ginOK == 0 {
		return fmt.Errorf("no request accepted (ingest %d, gin %d)", ingOK, ginOK)
	}
	per := func(d time.Duration, k int) float64 {
		return round2(float64(d) / float64(time.Millisecond) / float64(k))
	}
	b.add(bench.NewFigure("b", "ingest CPU per accepted event", per(ingCPU, ingOK), "ms", nil,
		fmt.Sprintf("utime+stime of the ingest process over %d accepted of %d requests, %d in flight", ingOK, n, workers)))
	b.add(bench.NewFigure("b", "bare gin handler CPU per request", per(ginCPU, ginOK), "ms", nil,
		fmt.Sprintf("a gin process answering 202 with no work, same requests (%d answered); /proc ticks are 10 ms", ginOK)))
	if ginCPU > 0 {
		b.add(bench.NewFigure("b", "ingest CPU / bare gin CPU", round2(float64(ingCPU)/float64(ingOK)/(float64(ginCPU)/float64(ginOK))), "x", nil, ""))
	}
	return nil
}

// bareGin serves POST /v1/webhooks/:source with 202 and nothing else, on PORT.
func bareGin() error {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/readyz", func(c *gin.Context) { c.String(http.StatusOK, "ready") })
	r.POST("/v1/webhooks/:source", func(c *gin.Context) {
		_, _ = c.GetRawData()
		c.JSON(http.StatusAccepted, gin.H{"status": "accepted"})
	})
	srv := &http.Server{Addr: ":" + os.Getenv("PORT"), Handler: r, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
