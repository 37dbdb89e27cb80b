package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/leadpipe/leadpipe/common/contact"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
)

// rpcCounter counts the Firestore RPCs a client sends, by method, through the same gRPC
// connection production uses.
type rpcCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *rpcCounter) add(method string) {
	c.mu.Lock()
	c.n[method]++
	c.mu.Unlock()
}

// take returns the counts since the last take and resets them.
func (c *rpcCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = map[string]int{}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ownerCreds are the Firestore emulator's owner credentials, as the client sends them.
type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (ownerCreds) RequireTransportSecurity() bool { return false }

// countingStore is a fresh store (on the controllable clock) whose client counts its RPCs.
func countingStore(t *testing.T) (*store.Store, *rpcCounter) {
	t.Helper()
	newStore(t) // resets the emulator
	c := &rpcCounter{n: map[string]int{}}
	// In emulator mode the client dials its own connection and ignores dial options: give it
	// one with the counting interceptors (and the emulator's owner credentials).
	conn, err := grpc.NewClient(env.FirestoreAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ownerCreds{}),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			c.add(method)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			c.add(method)
			return streamer(ctx, desc, cc, method, opts...)
		}))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := firestore.NewClient(t.Context(), env.ProjectID, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	s := store.New(cl)
	clk := &clock{at: t0}
	s.SetClock(clk.now)
	return s, c
}

// TestFirstDeliveryIsThreeCommits: taking a lead in, claiming it (with a new contact indexed
// and held) and recording its success are one Commit RPC each, and leave the same documents
// the transactional paths leave.
func TestFirstDeliveryIsThreeCommits(t *testing.T) {
	s, rpcs := countingStore(t)
	ctx := t.Context()
	h, err := pii.NewHasher([]byte("test-key-test-key-test-key-12345"))
	if err != nil {
		t.Fatal(err)
	}
	doc := newDoc("fast-1")
	due := t0.Add(30 * time.Second)
	doc.OutboxDueAt = &due
	if err := s.CreateEvent(ctx, doc, store.LookupTokens(h, doc.Event.Identity)...); err != nil {
		t.Fatal(err)
	}
	if got := rpcs.take(); total(got) != 1 {
		t.Errorf("create: %v RPCs, want one commit", got)
	}
	if doc.UpdateTime.IsZero() {
		t.Fatal("CreateEvent returned no update time")
	}
	if ids, err := s.LookupEvents(ctx, []string{h.Email("jane@example.com")}, 10); err != nil || len(ids) != 1 || ids[0] != doc.DocID {
		t.Fatalf("lookup entry written with the event: %v %v", ids, err)
	}
	rpcs.take()

	req := contactRequest("key-fast", t0, contact.TrustStandard, map[string]string{"first_name": "Ada"})
	l, err := s.ClaimFirst(ctx, &doc.Event, policy("p", time.Minute, 5), store.FirstDelivery{Version: doc.UpdateTime, MessageID: "m1", Contact: &req})
	if err != nil {
		t.Fatal(err)
	}
	if got := rpcs.take(); total(got) != 1 {
		t.Errorf("claim: %v RPCs, want one commit", got)
	}
	if l.Fence != 1 || l.Attempt != 1 || l.Doc.State != store.StateProcessing {
		t.Fatalf("lease: %+v", l)
	}
	plan, err := s.ResolveContact(ctx, l, req)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Key != "key-fast" || !plan.New || len(plan.Sent) != 1 {
		t.Fatalf("plan: %+v", plan.ContactResult)
	}
	if err := s.CommitContact(ctx, l, plan); err != nil {
		t.Fatal(err)
	}
	if got := rpcs.take(); total(got) != 0 {
		t.Errorf("resolve and commit contact after the claim resolved it: %v RPCs, want none", got)
	}
	att := &store.Attempt{Number: l.Attempt, Fence: l.Fence, Owner: "p", StartedAt: l.StartedAt}
	if _, err := s.Complete(ctx, l, store.Result{RecordID: "rec-1", StatusCode: 201}, att); err != nil {
		t.Fatal(err)
	}
	if got := rpcs.take(); total(got) != 1 {
		t.Errorf("complete: %v RPCs, want one commit", got)
	}

	got, err := s.GetEvent(ctx, doc.DocID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateSucceeded || got.CRMRecordID != "rec-1" || got.Fence != 1 || got.Attempts != 1 {
		t.Errorf("event: state %s record %q fence %d attempts %d", got.State, got.CRMRecordID, got.Fence, got.Attempts)
	}
	if got.OutboxDueAt != nil || got.PublishMessageID != "m1" || got.Contact == nil || got.Contact.Key != "key-fast" {
		t.Errorf("event outbox %v message %q contact %+v: the claim consumes the outbox entry and records the contact", got.OutboxDueAt, got.PublishMessageID, got.Contact)
	}
	hist, err := s.Attempts(ctx, doc.DocID)
	if err != nil || len(hist) != 1 || hist[0].Outcome != store.AttemptSucceeded {
		t.Errorf("attempts: %+v %v", hist, err)
	}
	rec, err := s.GetRecordDoc(ctx, plan.RecordDoc)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Hold != nil || rec.Fields["first_name"].Source != "key-fast" {
		t.Errorf("record: hold %+v fields %+v; want the hold released and the stamp written", rec.Hold, rec.Fields)
	}
	// The publish mark deferred by the outbox comes after the claim: it changes nothing.
	if err := s.MarkPublishedIf(ctx, doc.DocID, "m-late", doc.UpdateTime); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.GetEvent(ctx, doc.DocID); again.PublishMessageID != "m1" || again.State != store.StateSucceeded {
		t.Errorf("late mark rewrote the event: message %q state %s", again.PublishMessageID, again.State)
	}
}

// TestClaimFirstFallsBack: a document written since its creator's version (here the publish
// mark), a known contact, and two deliveries of one message at once all stay correct.
func TestClaimFirstFallsBack(t *testing.T) {
	s, rpcs := countingStore(t)
	ctx := t.Context()

	t.Run("stale version", func(t *testing.T) {
		doc := newDoc("fb-stale")
		if err := s.CreateEvent(ctx, doc); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkPublishedIf(ctx, doc.DocID, "m0", doc.UpdateTime); err != nil {
			t.Fatal(err)
		}
		rpcs.take()
		l, err := s.ClaimFirst(ctx, &doc.Event, policy("p", time.Minute, 5), store.FirstDelivery{Version: doc.UpdateTime})
		if err != nil {
			t.Fatal(err)
		}
		if got := rpcs.take(); total(got) < 2 {
			t.Errorf("claim of a changed document: %v RPCs, want the lost commit and a transaction", got)
		}
		if l.Fence != 1 || l.Doc.PublishMessageID != "m0" {
			t.Errorf("lease fence %d message %q, want the transaction's view of the document", l.Fence, l.Doc.PublishMessageID)
		}
		if _, err := s.Complete(ctx, l, store.Result{RecordID: "r"}, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("known contact", func(t *testing.T) {
		first, second := newDoc("fb-known-1"), newDoc("fb-known-2")
		for _, d := range []*store.EventDoc{first, second} {
			if err := s.CreateEvent(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		req1 := contactRequest("key-one", t0, contact.TrustStandard, map[string]string{"first_name": "Ada"})
		l1, err := s.ClaimFirst(ctx, &first.Event, policy("p", time.Minute, 5), store.FirstDelivery{Version: first.UpdateTime, Contact: &req1})
		if err != nil {
			t.Fatal(err)
		}
		p1, _ := s.ResolveContact(ctx, l1, req1)
		_ = s.CommitContact(ctx, l1, p1)
		if _, err := s.Complete(ctx, l1, store.Result{RecordID: "r1"}, nil); err != nil {
			t.Fatal(err)
		}
		// Same email and phone, another proposed key: the index maps it to the first contact.
		req2 := contactRequest("key-two", t0.Add(time.Minute), contact.TrustStandard, map[string]string{"first_name": "Ada B."})
		l2, err := s.ClaimFirst(ctx, &second.Event, policy("p", time.Minute, 5), store.FirstDelivery{Version: second.UpdateTime, Contact: &req2})
		if err != nil {
			t.Fatal(err)
		}
		p2, err := s.ResolveContact(ctx, l2, req2)
		if err != nil {
			t.Fatal(err)
		}
		if p2.Key != "key-one" || p2.New || !p2.Known {
			t.Errorf("second event's contact: key %q new %v known %v, want the first contact", p2.Key, p2.New, p2.Known)
		}
		if err := s.CommitContact(ctx, l2, p2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Complete(ctx, l2, store.Result{RecordID: "r1"}, nil); err != nil {
			t.Fatal(err)
		}
		rec, _ := s.GetRecordDoc(ctx, p2.RecordDoc)
		if rec.Fields["first_name"].Source != "key-two" || rec.Hold != nil {
			t.Errorf("record after the second write: %+v hold %+v", rec.Fields, rec.Hold)
		}
	})

	t.Run("two deliveries at once", func(t *testing.T) {
		doc := newDoc("fb-dup")
		if err := s.CreateEvent(ctx, doc); err != nil {
			t.Fatal(err)
		}
		var won, held atomic.Int32
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				_, err := s.ClaimFirst(ctx, &doc.Event, policy("p", time.Minute, 5), store.FirstDelivery{Version: doc.UpdateTime})
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, store.ErrLeaseHeld):
					held.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 || held.Load() != 3 {
			t.Errorf("won %d held %d, want exactly one lease", won.Load(), held.Load())
		}
	})
}

// TestFastVerdictSuperseded: a verdict after ClaimFirst from a lease that was taken over
// changes nothing and reports the newer state.
func TestFastVerdictSuperseded(t *testing.T) {
	s, _ := countingStore(t)
	ctx := t.Context()
	clk := &clock{at: t0}
	s.SetClock(clk.now)
	doc := newDoc("fv-1")
	if err := s.CreateEvent(ctx, doc); err != nil {
		t.Fatal(err)
	}
	old, err := s.ClaimFirst(ctx, &doc.Event, policy("old", time.Minute, 5), store.FirstDelivery{Version: doc.UpdateTime})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Minute)
	newer, err := s.Claim(ctx, &doc.Event, policy("new", time.Minute, 5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Complete(ctx, newer, store.Result{RecordID: "r-new"}, nil); err != nil {
		t.Fatal(err)
	}
	state, err := s.Fail(ctx, old, errCRM, nil)
	if !errors.Is(err, store.ErrFenceSuperseded) || state != store.StateSucceeded {
		t.Fatalf("late verdict: state %s err %v, want ErrFenceSuperseded with succeeded", state, err)
	}
	got, _ := s.GetEvent(ctx, doc.DocID)
	if got.State != store.StateSucceeded || got.CRMRecordID != "r-new" || got.Fence != 2 {
		t.Errorf("event after the late verdict: %s %q fence %d", got.State, got.CRMRecordID, got.Fence)
	}
}
