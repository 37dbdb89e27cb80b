package firestoreemu_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
)

func TestTransactionIncrementContention(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	counter := coll(t, c).Doc("counter")
	mustSet(t, ctx, counter, map[string]any{"n": 0})

	const workers = 50
	var ok atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
				s, err := tx.Get(counter)
				if err != nil {
					return err
				}
				n, _ := s.DataAt("n")
				return tx.Set(counter, map[string]any{"n": n.(int64) + 1})
			}, firestore.MaxAttempts(100))
			if err != nil {
				errs <- err
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("transaction failed: %v", err)
	}
	n, _ := mustGet(t, ctx, counter).DataAt("n")
	if n != ok.Load() {
		t.Errorf("counter: got %v, want %d (successful transactions)", n, ok.Load())
	}
	if ok.Load() != workers {
		t.Errorf("successful transactions: got %d, want %d", ok.Load(), workers)
	}
}

func TestTransactionClaimOnce(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	claim := coll(t, c).Doc("claim")

	const workers = 20
	var winners, losers atomic.Int64
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			won := false
			err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
				won = false
				_, err := tx.Get(claim)
				if status.Code(err) != codes.NotFound {
					return err // exists (nil) or a real error
				}
				won = true
				return tx.Create(claim, map[string]any{"owner": i})
			}, firestore.MaxAttempts(100))
			switch {
			case err != nil:
				t.Errorf("worker %d: %v", i, err)
			case won:
				winners.Add(1)
			default:
				losers.Add(1)
			}
		}()
	}
	wg.Wait()
	if winners.Load() != 1 || losers.Load() != workers-1 {
		t.Errorf("got %d winners and %d losers, want 1 and %d", winners.Load(), losers.Load(), workers-1)
	}
}

func TestTransactionSemantics(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	col := coll(t, c)

	// Each case runs a transaction whose first attempt reads, then lets an
	// outside write land before it commits; the transaction must retry.
	conflicts := []struct {
		name    string
		read    func(ctx context.Context, tx *firestore.Transaction) error
		outside func(ctx context.Context) error
	}{
		{
			name: "outside write to a read document",
			read: func(ctx context.Context, tx *firestore.Transaction) error {
				_, err := tx.Get(col.Doc("x1"))
				return err
			},
			outside: func(ctx context.Context) error { _, err := col.Doc("x1").Set(ctx, map[string]any{"n": 99}); return err },
		},
		{
			name: "absent document appears",
			read: func(ctx context.Context, tx *firestore.Transaction) error {
				_, err := tx.Get(col.Doc("x2"))
				if status.Code(err) == codes.NotFound {
					return nil
				}
				return err
			},
			outside: func(ctx context.Context) error {
				_, err := col.Doc("x2").Create(ctx, map[string]any{"n": 1})
				return err
			},
		},
		{
			name: "query result set changes",
			read: func(ctx context.Context, tx *firestore.Transaction) error {
				_, err := tx.Documents(col.Where("kind", "==", "q")).GetAll()
				return err
			},
			outside: func(ctx context.Context) error {
				_, err := col.Doc("x3").Set(ctx, map[string]any{"kind": "q"})
				return err
			},
		},
		{
			name: "aggregation input changes",
			read: func(ctx context.Context, tx *firestore.Transaction) error {
				q := col.Where("kind", "==", "agg")
				_, err := q.NewAggregationQuery().WithCount("n").Transaction(tx).Get(ctx)
				return err
			},
			outside: func(ctx context.Context) error {
				_, err := col.Doc("x4").Set(ctx, map[string]any{"kind": "agg"})
				return err
			},
		},
	}
	mustSet(t, ctx, col.Doc("x1"), map[string]any{"n": 1})
	for _, tc := range conflicts {
		t.Run(tc.name, func(t *testing.T) {
			attempts := 0
			err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
				attempts++
				if err := tc.read(ctx, tx); err != nil {
					return err
				}
				if attempts == 1 {
					if err := tc.outside(context.Background()); err != nil {
						return err
					}
				}
				return tx.Set(col.Doc("out-"+tc.name), map[string]any{"attempt": attempts})
			}, firestore.MaxAttempts(5))
			if err != nil {
				t.Fatal(err)
			}
			if attempts != 2 {
				t.Errorf("attempts: got %d, want 2 (first one aborted)", attempts)
			}
		})
	}

	t.Run("reads are a consistent snapshot", func(t *testing.T) {
		a, b := col.Doc("snapA"), col.Doc("snapB")
		mustSet(t, ctx, a, map[string]any{"v": 1})
		mustSet(t, ctx, b, map[string]any{"v": 1})
		err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			if _, err := tx.Get(a); err != nil {
				return err
			}
			if _, err := b.Set(context.Background(), map[string]any{"v": 2}); err != nil {
				return err
			}
			s, err := tx.Get(b)
			if err != nil {
				return err
			}
			if v, _ := s.DataAt("v"); v != int64(1) {
				t.Errorf("read of b inside transaction: got %v, want 1 (snapshot before the outside write)", v)
			}
			return nil
		}, firestore.ReadOnly)
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("read-only transaction never aborts and rejects writes", func(t *testing.T) {
		d := col.Doc("ro")
		mustSet(t, ctx, d, map[string]any{"v": 1})
		attempts := 0
		err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			attempts++
			if _, err := tx.Get(d); err != nil {
				return err
			}
			_, err := d.Set(context.Background(), map[string]any{"v": 2})
			return err
		}, firestore.ReadOnly)
		if err != nil || attempts != 1 {
			t.Errorf("got err=%v attempts=%d, want nil and 1", err, attempts)
		}
		err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			return tx.Set(d, map[string]any{"v": 3})
		}, firestore.ReadOnly)
		if err == nil {
			t.Errorf("write in read-only transaction: got nil error, want one")
		}
	})
	t.Run("read-only transaction at a read time", func(t *testing.T) {
		d := col.Doc("rt")
		wr := mustSet(t, ctx, d, map[string]any{"v": "old"})
		mustSet(t, ctx, d, map[string]any{"v": "new"})
		err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			s, err := tx.Get(d)
			if err != nil {
				return err
			}
			if v, _ := s.DataAt("v"); v != "old" {
				t.Errorf("got %v, want old", v)
			}
			return nil
		}, firestore.ReadOnly, firestore.TransactionReadTime(wr.UpdateTime))
		if err != nil {
			t.Fatal(err)
		}
		s, err := d.WithReadOptions(firestore.ReadTime(wr.UpdateTime)).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := s.DataAt("v"); v != "old" {
			t.Errorf("Get at read time: got %v, want old", v)
		}
	})
	t.Run("failed function rolls back", func(t *testing.T) {
		d := col.Doc("rb")
		boom := errors.New("boom")
		err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			if err := tx.Set(d, map[string]any{"v": 1}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("got %v, want boom", err)
		}
		_, err = d.Get(ctx)
		wantCode(t, "Get after rollback", err, codes.NotFound)
	})
	t.Run("transactional query with new documents read in tx", func(t *testing.T) {
		mustSet(t, ctx, col.Doc("tq1"), map[string]any{"grp": "tq", "n": 1})
		mustSet(t, ctx, col.Doc("tq2"), map[string]any{"grp": "tq", "n": 2})
		err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			docs, err := tx.Documents(col.Where("grp", "==", "tq").OrderBy("n", firestore.Asc)).GetAll()
			if err != nil {
				return err
			}
			if len(docs) != 2 {
				t.Errorf("got %d docs, want 2", len(docs))
			}
			for _, d := range docs {
				if err := tx.Update(d.Ref, []firestore.Update{{Path: "n", Value: firestore.Increment(10)}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := mustGet(t, ctx, col.Doc("tq2")).DataAt("n"); n != int64(12) {
			t.Errorf("got %v, want 12", n)
		}
	})
}

func TestTransactionIdleExpiry(t *testing.T) {
	needEmu(t, "needs an emulator started with a short TxnIdleTimeout")
	s, err := firestoreemu.Start(firestoreemu.Options{TxnIdleTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := ctxT(t)
	c := newClientFor(t, s.Addr())
	d := c.Collection("idle").Doc("d")
	attempts := 0
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		attempts++
		if _, err := tx.Get(d); status.Code(err) != codes.NotFound {
			return err
		}
		time.Sleep(400 * time.Millisecond)
		return tx.Set(d, map[string]any{"v": 1})
	})
	wantCode(t, "commit after idle timeout", err, codes.InvalidArgument)
	if attempts != 1 {
		t.Errorf("attempts: got %d, want 1 (INVALID_ARGUMENT is not retried)", attempts)
	}
	if _, err := d.Get(ctx); status.Code(err) != codes.NotFound {
		t.Errorf("Get after expired commit: got %v, want NotFound", err)
	}
}
