package service

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// BenchmarkIngest measures accepted deliveries end to end in-process (HTTP, signature,
// normalization, GCS + Firestore writes, publish) on the emulators, next to a bare gin handler
// in the same run. It reports throughput, p50/p99 latency and the Firestore, GCS and Pub/Sub
// calls per accepted event (counted on the clients).
func BenchmarkIngest(b *testing.B) {
	b.Run("bare_gin", func(b *testing.B) {
		gin.SetMode(gin.ReleaseMode)
		e := gin.New()
		e.POST("/v1/webhooks/:source", func(c *gin.Context) {
			_, _ = c.GetRawData()
			c.JSON(http.StatusAccepted, gin.H{"status": "accepted"})
		})
		srv := httptest.NewServer(e)
		defer srv.Close()
		f := &fixture{t: b, url: srv.URL}
		leads := make([]lead, b.N)
		for i := range leads {
			leads[i] = newLead(b)
		}
		measure(b, f, leads, nil)
	})
	b.Run("ingest", func(b *testing.B) {
		f := newFixture(b, nil)
		leads := make([]lead, b.N)
		for i := range leads {
			leads[i] = newLead(b)
		}
		fs0, gcs0, ps0 := f.calls.snapshot()
		measure(b, f, leads, func(a answer) bool { return a.code == http.StatusAccepted })
		fs1, gcs1, ps1 := f.calls.snapshot()
		n := float64(b.N)
		b.ReportMetric(float64(fs1-fs0)/n, "firestore_calls/event")
		b.ReportMetric(float64(gcs1-gcs0)/n, "gcs_calls/event")
		b.ReportMetric(float64(ps1-ps0)/n, "pubsub_calls/event")
	})
}

// measure posts every lead with 8 concurrent senders and reports events/s, p50 and p99.
func measure(b *testing.B, f *fixture, leads []lead, ok func(answer) bool) {
	const senders = 8
	reqs := make([]*http.Request, len(leads))
	for i, l := range leads {
		reqs[i] = f.request(l)
	}
	lat := make([]time.Duration, len(leads))
	next := make(chan int, len(leads))
	for i := range leads {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	var failed sync.Once
	b.ResetTimer()
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				a := f.do(reqs[i])
				lat[i] = time.Since(t0)
				if ok != nil && !ok(a) {
					failed.Do(func() { b.Errorf("answer %d %v", a.code, a.body) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(leads))/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
