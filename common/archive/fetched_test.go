package archive_test

import (
	"context"
	"errors"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/leadpipe/leadpipe/common/archive"
)

// TestFetchedWriteOnce: the first fetched copy of a lead wins; a later put (another fetch, a
// reconcile) keeps it and answers the same reference.
func TestFetchedWriteOnce(t *testing.T) {
	ctx := context.Background()
	a := archive.New(client, env.Bucket)
	if _, err := a.GetFetched(ctx, "meta", "meta_graph", "900100000000777"); !errors.Is(err, storage.ErrObjectNotExist) {
		t.Fatalf("before put: got %v, want not exist", err)
	}
	first := &archive.Fetched{Source: "meta", Provider: "meta_graph", ID: "900100000000777", FetchedAt: t0, Body: []byte(`{"id":"900100000000777","v":1}`)}
	ref, err := a.PutFetched(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if want := "gs://" + env.Bucket + "/raw/meta/meta_graph/900100000000777.json"; ref != want {
		t.Errorf("ref: got %s, want %s", ref, want)
	}
	second := *first
	second.Body = []byte(`{"id":"900100000000777","v":2}`)
	if ref2, err := a.PutFetched(ctx, &second); err != nil || ref2 != ref {
		t.Fatalf("second put: got %s %v, want %s", ref2, err, ref)
	}
	got, err := a.GetFetched(ctx, "meta", "meta_graph", "900100000000777")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(first.Body) || !got.FetchedAt.Equal(t0) {
		t.Errorf("got %s at %v, want the first copy %s", got.Body, got.FetchedAt, first.Body)
	}
}
