package dlq

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
)

// TestObserveOpen: leadpipe.dlq.open is the number of open records in Firestore (the
// emulator, through the real client's aggregation query), at each collection.
func TestObserveOpen(t *testing.T) {
	ctx := context.Background()
	env, err := devstacktest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	fs, err := env.FirestoreClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	st, closeOps, err := env.SplitStore(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOps()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	reg, err := ObserveOpen(mp.Meter("test"), st)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()

	gauge := func(name string) (int64, bool) {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != name {
					continue
				}
				g := m.Data.(metricdata.Gauge[int64])
				if len(g.DataPoints) != 1 {
					t.Fatalf("%s has %d points", name, len(g.DataPoints))
				}
				return g.DataPoints[0].Value, true
			}
		}
		return 0, false
	}
	open := func() (int64, bool) { t.Helper(); return gauge("leadpipe.dlq.open") }
	if n, ok := open(); !ok || n != 0 {
		t.Fatalf("empty DLQ: leadpipe.dlq.open = %d (reported %v), want 0", n, ok)
	}
	now := time.Now().UTC()
	// Records are written through the store's own intake operation, with a merge that sets
	// the status under test.
	put := func(id string, status store.DLQStatus) {
		t.Helper()
		if _, err := st.RecordDeadLetter(ctx, id, func(*store.DLQRecord, *store.EventDoc) (*store.DLQRecord, *store.Quarantine) {
			return &store.DLQRecord{Status: status, Source: "demo", CreatedAt: now}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for id, status := range map[string]store.DLQStatus{"r1": store.DLQOpen, "r2": store.DLQOpen, "r3": store.DLQDiscarded, "r4": store.DLQOpen, "r5": store.DLQReplayed} {
		put(id, status)
	}
	if n, _ := open(); n != 3 {
		t.Errorf("leadpipe.dlq.open = %d, want 3 (open records only)", n)
	}
	put("r4", store.DLQResolved)
	if n, _ := open(); n != 2 {
		t.Errorf("after resolving one: leadpipe.dlq.open = %d, want 2", n)
	}

	// leadpipe.events.parked: events parked behind an open circuit (acked, so invisible to
	// Pub/Sub's unacked age), written through the store's own lifecycle.
	if n, ok := gauge("leadpipe.events.parked"); !ok || n != 0 {
		t.Fatalf("nothing parked: leadpipe.events.parked = %d (reported %v), want 0", n, ok)
	}
	for _, id := range []string{"p1", "p2"} {
		ev := event.Event{SchemaVersion: event.SchemaVersion, EventID: "evt-" + id, EventType: event.TypeLeadCreated, Source: "demo",
			SourceEventID: id, OccurredAt: now, IdempotencyKey: event.IdempotencyKey("demo", event.TypeLeadCreated, id),
			Identity: event.Identity{Email: id + "@example.com"}, Routing: event.Routing{CRM: "salesforce", Mode: event.ModeUpsert}}
		l, err := st.Claim(ctx, &ev, store.LeasePolicy{Owner: "p", TTL: time.Minute, MaxAttempts: 5})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Park(ctx, l, store.Reason{Class: failure.Outage, Message: "circuit open"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := gauge("leadpipe.events.parked"); n != 2 {
		t.Errorf("leadpipe.events.parked = %d, want 2", n)
	}
}
