package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/fakecrm"
)

func TestCrashBetweenCRMCallAndResultWrite(t *testing.T) {
	env.NeedEmbedded(t, "Firestore fault injection fails the result write")
	reset(t)
	pushTo(t, startProcessor(t, map[string]string{"LEASE_DURATION": "2s"}))
	fake.SetFaults(fakecrm.Faults{LatencyMS: 700})
	ev := newEvent("crash")
	publish(t, ev)
	// Claimed and its contact resolved (the identity step's commit before the CRM call): the
	// CRM calls are in flight (700 ms each). The next two Commits are the contact's provenance
	// and the result write: both fail, as if the instance died right after the CRM answered.
	waitFor(t, 10*time.Second, "claim and contact", func() bool {
		d := doc(t, ev)
		return d != nil && d.State == store.StateProcessing && d.Contact != nil
	})
	env.Firestore.Faults().FailNext("Commit", 2, codes.Internal)
	t.Cleanup(env.ClearFaults)
	waitState(t, 30*time.Second, []*event.Event{ev}, store.StateSucceeded)
	d := doc(t, ev)
	if d.Attempts < 2 {
		t.Errorf("attempts: got %d, want at least 2 (the lost result forced a redelivery)", d.Attempts)
	}
	if n := fake.CreateCount("crash"); n != 1 {
		t.Errorf("CreateCount: got %d, want 1", n)
	}
	if recs := fake.Records(); len(recs) != 1 || recs[0].Version < 2 {
		t.Errorf("records: got %+v, want one record written twice (upsert, then update)", recs)
	}
}

func TestCRMOutageQuarantinesNothing(t *testing.T) {
	reset(t)
	pushTo(t, startProcessor(t, map[string]string{"MAX_ATTEMPTS": "2", "BREAKER_THRESHOLD": "3"}))
	fake.SetFaults(fakecrm.Faults{Outage: true})
	var evs []*event.Event
	for i := range 6 {
		evs = append(evs, newEvent(fmt.Sprintf("outage-%d", i)))
	}
	publish(t, evs...)
	waitFor(t, 20*time.Second, "circuit open in crm_health", func() bool {
		h, err := st.CRMHealth(context.Background(), "salesforce")
		return err == nil && h.State == store.CRMOpen
	})
	time.Sleep(5 * time.Second) // several cooldowns and probes while the CRM stays down
	for _, ev := range evs {
		if d := doc(t, ev); d != nil && d.State == store.StateQuarantined {
			t.Errorf("%s quarantined during the outage: %s %s", ev.Identity.ContactExternalID, d.FailureClass, d.ErrorMessage)
		}
	}
	fake.SetFaults(fakecrm.Faults{})
	waitState(t, 60*time.Second, evs, store.StateSucceeded)
	for _, ev := range evs {
		if n := fake.CreateCount(ev.Identity.ContactExternalID); n != 1 {
			t.Errorf("CreateCount(%s): got %d, want 1", ev.Identity.ContactExternalID, n)
		}
	}
	h, err := st.CRMHealth(context.Background(), "salesforce")
	if err != nil || h.State != store.CRMClosed {
		t.Errorf("crm_health after recovery: got %+v (%v), want closed", h, err)
	}
}

func TestPermanentFailuresQuarantinedWithReason(t *testing.T) {
	reset(t)
	pushTo(t, startProcessor(t, nil))
	drainDLQ(t)
	invalid := newEvent("perm-invalid")
	invalid.Identity.Email = "not-an-email"
	miss := newEvent("perm-miss")
	miss.Routing.Mode = event.ModeUpdateOnly
	conflict := newEvent("perm-conflict")
	conflict.Routing.CRM = "hubspot"
	conflict.Routing.Object, conflict.Routing.UpsertKey = "contacts", "email"
	fake.FailNext(fakecrm.Failure{System: fakecrm.SystemHubSpot, Status: 409, Count: 50})
	publish(t, invalid, miss, conflict)
	want := map[string]string{invalid.EventID: "permanent", miss.EventID: "permanent", conflict.EventID: "conflict"}
	evs := []*event.Event{invalid, miss, conflict}
	waitState(t, 30*time.Second, evs, store.StateQuarantined)
	waitFor(t, 10*time.Second, "dlq publishes recorded", func() bool {
		for _, ev := range evs {
			if d := doc(t, ev); d == nil || d.DLQPublishedAt.IsZero() {
				return false
			}
		}
		return true
	})
	for _, ev := range evs {
		d := doc(t, ev)
		if string(d.FailureClass) != want[ev.EventID] || d.ErrorMessage == "" || d.QuarantinedBy != "processor" || d.DLQPublishedAt.IsZero() {
			t.Errorf("%s: class %q message %q by %q dlq_published %v, want class %s with a message",
				ev.Identity.ContactExternalID, d.FailureClass, d.ErrorMessage, d.QuarantinedBy, d.DLQPublishedAt, want[ev.EventID])
		}
	}
	msgs := receiveDLQ(t, len(evs), 20*time.Second)
	for _, ev := range evs {
		m, ok := msgs[ev.EventID]
		if !ok {
			t.Errorf("%s: no leads-dlq message", ev.EventID)
			continue
		}
		a := m.Attributes
		if a[pushmsg.AttrFailureClass] != want[ev.EventID] || a[pushmsg.AttrErrorMessage] == "" || a[pushmsg.AttrAttemptCount] == "" ||
			a[pushmsg.AttrFirstReceivedAt] == "" || a[pushmsg.AttrLastAttemptAt] == "" || a[pushmsg.AttrQuarantinedBy] != "processor" ||
			a[pushmsg.AttrIdempotencyKey] != ev.IdempotencyKey {
			t.Errorf("%s dlq attributes: %v", ev.EventID, a)
		}
		for _, pii := range []string{"not-an-email", "@example.com"} {
			if strings.Contains(a[pushmsg.AttrErrorMessage], pii) {
				t.Errorf("%s error_message carries personal data: %q", ev.EventID, a[pushmsg.AttrErrorMessage])
			}
		}
	}
	for _, ext := range []string{"perm-invalid", "perm-miss", "perm-conflict@example.com"} {
		if n := fake.CreateCount(ext); n != 0 {
			t.Errorf("CreateCount(%s): got %d, want 0", ext, n)
		}
	}
}

// receiveDLQ pulls messages from the test's leads-dlq pull subscription until n distinct
// event ids arrived or d passed.
func receiveDLQ(t *testing.T, n int, d time.Duration) map[string]*pubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	out := map[string]*pubsub.Message{}
	err := ps.Subscriber(dlqPull).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		out[m.Attributes[pushmsg.AttrEventID]] = m
		if len(out) >= n {
			cancel()
		}
	})
	if err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	return out
}

func drainDLQ(t *testing.T) { receiveDLQ(t, 1<<30, 500*time.Millisecond) }
