package firestoreemu_test

import (
	"context"
	"testing"

	"cloud.google.com/go/firestore"
)

// BenchmarkCommit measures single-document Set round trips (one Commit RPC)
// through the official client, in parallel.
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	c := newClient(b)
	col := coll(b, c)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		d := col.NewDoc()
		i := 0
		for pb.Next() {
			i++
			if _, err := d.Set(ctx, map[string]any{"n": i}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkTransaction measures read-modify-write transactions
// (BeginTransaction, BatchGetDocuments, Commit), each on its own document so
// they do not contend.
func BenchmarkTransaction(b *testing.B) {
	ctx := context.Background()
	c := newClient(b)
	col := coll(b, c)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		d := col.NewDoc()
		for pb.Next() {
			err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
				s, err := tx.Get(d)
				n := int64(0)
				if err == nil {
					v, _ := s.DataAt("n")
					n = v.(int64)
				}
				return tx.Set(d, map[string]any{"n": n + 1})
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
}

// BenchmarkGet measures single-document reads (BatchGetDocuments).
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	c := newClient(b)
	d := coll(b, c).Doc("d")
	mustSet(b, ctx, d, map[string]any{"n": 1})
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.Get(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}
