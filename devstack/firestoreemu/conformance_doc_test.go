package firestoreemu_test

import (
	"reflect"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
)

func TestDocumentCRUD(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	col := coll(t, c)

	t.Run("get missing is NotFound", func(t *testing.T) {
		_, err := col.Doc("nope").Get(ctx)
		wantCode(t, "Get missing", err, codes.NotFound)
	})
	t.Run("set then get round-trips every type", func(t *testing.T) {
		ts := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
		data := map[string]any{
			"null": nil, "b": true, "i": int64(-7), "f": 2.5, "ts": ts, "s": "héllo",
			"bytes": []byte{0, 1, 2}, "ref": col.Doc("other"), "arr": []any{int64(1), "x"},
			"map": map[string]any{"nested": map[string]any{"deep": int64(1)}},
		}
		mustSet(t, ctx, col.Doc("all"), data)
		got := mustGet(t, ctx, col.Doc("all")).Data()
		for k, want := range data {
			g := got[k]
			if r, ok := want.(*firestore.DocumentRef); ok {
				if gr, ok := g.(*firestore.DocumentRef); !ok || gr.Path != r.Path {
					t.Errorf("field %s: got %v, want ref %s", k, g, r.Path)
				}
				continue
			}
			if !reflect.DeepEqual(g, want) {
				t.Errorf("field %s: got %#v, want %#v", k, g, want)
			}
		}
	})
	t.Run("create on existing is AlreadyExists", func(t *testing.T) {
		d := col.Doc("c1")
		if _, err := d.Create(ctx, map[string]any{"a": 1}); err != nil {
			t.Fatalf("first Create: %v", err)
		}
		_, err := d.Create(ctx, map[string]any{"a": 2})
		wantCode(t, "second Create", err, codes.AlreadyExists)
	})
	t.Run("update missing is NotFound", func(t *testing.T) {
		_, err := col.Doc("missing").Update(ctx, []firestore.Update{{Path: "a", Value: 1}})
		wantCode(t, "Update missing", err, codes.NotFound)
	})
	t.Run("delete with Exists on missing is NotFound", func(t *testing.T) {
		_, err := col.Doc("missing2").Delete(ctx, firestore.Exists)
		wantCode(t, "Delete(Exists)", err, codes.NotFound)
	})
	t.Run("delete removes", func(t *testing.T) {
		d := col.Doc("del")
		mustSet(t, ctx, d, map[string]any{"a": 1})
		if _, err := d.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := d.Get(ctx)
		wantCode(t, "Get after delete", err, codes.NotFound)
	})
	t.Run("update_time precondition", func(t *testing.T) {
		d := col.Doc("ut")
		wr := mustSet(t, ctx, d, map[string]any{"a": 1})
		if _, err := d.Update(ctx, []firestore.Update{{Path: "a", Value: 2}}, firestore.LastUpdateTime(wr.UpdateTime)); err != nil {
			t.Fatalf("update with current time: %v", err)
		}
		_, err := d.Update(ctx, []firestore.Update{{Path: "a", Value: 3}}, firestore.LastUpdateTime(wr.UpdateTime))
		wantCode(t, "update with stale time", err, codes.FailedPrecondition)
		_, err = d.Delete(ctx, firestore.LastUpdateTime(wr.UpdateTime))
		wantCode(t, "delete with stale time", err, codes.FailedPrecondition)
	})
	t.Run("update with mask: nested paths, delete field, backquoted segment", func(t *testing.T) {
		d := col.Doc("mask")
		mustSet(t, ctx, d, map[string]any{"a": map[string]any{"b": 1, "c": 2}, "x": 1, "dot.key": 1})
		_, err := d.Update(ctx, []firestore.Update{
			{Path: "a.b", Value: 10},
			{Path: "x", Value: firestore.Delete},
			{FieldPath: firestore.FieldPath{"dot.key"}, Value: 5},
		})
		if err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, ctx, d).Data()
		want := map[string]any{"a": map[string]any{"b": int64(10), "c": int64(2)}, "dot.key": int64(5)}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("set merge keeps other fields", func(t *testing.T) {
		d := col.Doc("merge")
		mustSet(t, ctx, d, map[string]any{"a": 1, "m": map[string]any{"x": 1, "y": 2}})
		if _, err := d.Set(ctx, map[string]any{"b": 2, "m": map[string]any{"y": 3}}, firestore.MergeAll); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, ctx, d).Data()
		want := map[string]any{"a": int64(1), "b": int64(2), "m": map[string]any{"x": int64(1), "y": int64(3)}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("unchanged write keeps update_time", func(t *testing.T) {
		d := col.Doc("same")
		mustSet(t, ctx, d, map[string]any{"a": 1})
		first := mustGet(t, ctx, d)
		wr := mustSet(t, ctx, d, map[string]any{"a": 1})
		second := mustGet(t, ctx, d)
		if !second.UpdateTime.Equal(first.UpdateTime) {
			t.Errorf("update_time moved: got %v, want %v", second.UpdateTime, first.UpdateTime)
		}
		if !wr.UpdateTime.Equal(first.UpdateTime) {
			t.Errorf("WriteResult.UpdateTime: got %v, want %v", wr.UpdateTime, first.UpdateTime)
		}
		if !second.CreateTime.Equal(first.CreateTime) {
			t.Errorf("create_time moved: got %v, want %v", second.CreateTime, first.CreateTime)
		}
	})
	t.Run("GetAll reports missing documents", func(t *testing.T) {
		mustSet(t, ctx, col.Doc("ga1"), map[string]any{"a": 1})
		snaps, err := c.GetAll(ctx, []*firestore.DocumentRef{col.Doc("ga1"), col.Doc("ga-missing")})
		if err != nil {
			t.Fatal(err)
		}
		if got := []bool{snaps[0].Exists(), snaps[1].Exists()}; !reflect.DeepEqual(got, []bool{true, false}) {
			t.Errorf("exists: got %v, want [true false]", got)
		}
	})
	t.Run("invalid values and paths are InvalidArgument", func(t *testing.T) {
		_, err := col.Doc("bad").Set(ctx, map[string]any{"__reserved__": 1})
		wantCode(t, "reserved field name", err, codes.InvalidArgument)
		raw := newRawClient(t)
		_, err = raw.GetDocument(ctx, &getReq{Name: dbPath() + "/documents/only-a-collection"})
		wantCode(t, "odd document path", err, codes.InvalidArgument)
	})
}

func TestTransforms(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	col := coll(t, c)
	cases := []struct {
		name    string
		initial map[string]any
		update  any
		want    any
	}{
		{"increment int", map[string]any{"v": 1}, firestore.Increment(2), int64(3)},
		{"increment int by double", map[string]any{"v": 1}, firestore.Increment(0.5), 1.5},
		{"increment missing", map[string]any{}, firestore.Increment(4), int64(4)},
		{"increment non-number", map[string]any{"v": "s"}, firestore.Increment(4), int64(4)},
		{"maximum", map[string]any{"v": 5}, firestore.FieldTransformMaximum(7), int64(7)},
		{"maximum keeps larger", map[string]any{"v": 5}, firestore.FieldTransformMaximum(3), int64(5)},
		{"minimum", map[string]any{"v": 5}, firestore.FieldTransformMinimum(2.5), 2.5},
		{"minimum equal keeps stored type", map[string]any{"v": 3}, firestore.FieldTransformMinimum(3.0), int64(3)},
		{"array union", map[string]any{"v": []any{1, "a"}}, firestore.ArrayUnion(1.0, "b", "b"), []any{int64(1), "a", "b"}},
		{"array union on missing", map[string]any{}, firestore.ArrayUnion("x"), []any{"x"}},
		{"array remove", map[string]any{"v": []any{1, 2, 1, 3}}, firestore.ArrayRemove(1.0, 3), []any{int64(2)}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := col.Doc("d" + string(rune('a'+i)))
			mustSet(t, ctx, d, tc.initial)
			if _, err := d.Set(ctx, map[string]any{"v": tc.update}, firestore.MergeAll); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, ctx, d).Data()["v"]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	t.Run("server timestamp equals the write's update time", func(t *testing.T) {
		d := col.Doc("ts")
		wr := mustSet(t, ctx, d, map[string]any{"at": firestore.ServerTimestamp, "n": 1})
		snap := mustGet(t, ctx, d)
		got, _ := snap.Data()["at"].(time.Time)
		if !got.Equal(wr.UpdateTime) || !snap.UpdateTime.Equal(wr.UpdateTime) {
			t.Errorf("got at=%v update_time=%v, want both %v", got, snap.UpdateTime, wr.UpdateTime)
		}
	})
	t.Run("update transforms through Update", func(t *testing.T) {
		d := col.Doc("upd")
		mustSet(t, ctx, d, map[string]any{"n": 1, "tags": []any{"a"}})
		_, err := d.Update(ctx, []firestore.Update{{Path: "n", Value: firestore.Increment(1)}, {Path: "tags", Value: firestore.ArrayUnion("b")}})
		if err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, ctx, d).Data()
		if got["n"] != int64(2) || !reflect.DeepEqual(got["tags"], []any{"a", "b"}) {
			t.Errorf("got %v, want n=2 tags=[a b]", got)
		}
	})
}

func TestCommitAtomicityAndTimes(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	col := coll(t, c)
	t.Run("batch shares one commit time", func(t *testing.T) {
		b := c.Batch()
		b.Set(col.Doc("a"), map[string]any{"n": 1})
		b.Set(col.Doc("b"), map[string]any{"n": 2})
		wrs, err := b.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !wrs[0].UpdateTime.Equal(wrs[1].UpdateTime) {
			t.Errorf("update times: got %v and %v, want equal", wrs[0].UpdateTime, wrs[1].UpdateTime)
		}
	})
	t.Run("failed precondition applies nothing", func(t *testing.T) {
		mustSet(t, ctx, col.Doc("exists"), map[string]any{"n": 1})
		b := c.Batch()
		b.Set(col.Doc("fresh"), map[string]any{"n": 1})
		b.Create(col.Doc("exists"), map[string]any{"n": 2})
		_, err := b.Commit(ctx)
		wantCode(t, "batch with bad create", err, codes.AlreadyExists)
		_, err = col.Doc("fresh").Get(ctx)
		wantCode(t, "Get of the batch's other write", err, codes.NotFound)
	})
	t.Run("timestamp values keep at most microseconds", func(t *testing.T) {
		// Firestore rounds stored timestamps down to the microsecond (Google's emulator to the
		// millisecond): a time compared after a round trip must not rely on nanoseconds.
		written := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
		mustSet(t, ctx, col.Doc("ts"), map[string]any{"at": written})
		snap, err := col.Doc("ts").Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := snap.Data()["at"].(time.Time)
		if got.Nanosecond()%1000 != 0 || got.After(written) || written.Sub(got) >= time.Millisecond {
			t.Errorf("read back %v for %v: want it rounded down to (at most) the millisecond, at microsecond precision", got.Format(time.RFC3339Nano), written.Format(time.RFC3339Nano))
		}
	})
	t.Run("commit times strictly increase", func(t *testing.T) {
		d := col.Doc("seq")
		var last time.Time
		for i := range 50 {
			wr := mustSet(t, ctx, d, map[string]any{"i": i})
			if !wr.UpdateTime.After(last) {
				t.Fatalf("write %d: update time %v not after %v", i, wr.UpdateTime, last)
			}
			if wr.UpdateTime.Nanosecond()%1000 != 0 {
				t.Fatalf("write %d: update time %v is not microsecond precision", i, wr.UpdateTime)
			}
			last = wr.UpdateTime
		}
	})
}
