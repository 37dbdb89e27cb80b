package firestoreemu_test

import (
	"math"
	"reflect"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/genproto/googleapis/type/latlng"
)

func TestValueOrdering(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	col := coll(t, c)
	ts := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	// In Firestore's cross-type order, lowest first.
	ordered := []struct {
		id string
		v  any
	}{
		{"00null", nil},
		{"01false", false},
		{"02true", true},
		{"03nan", math.NaN()},
		{"04neginf", math.Inf(-1)},
		{"05int-1", -1},
		{"06half", 0.5},
		{"07int1", 1},
		{"08dbl1.5", 1.5},
		{"09int2", 2},
		{"10ts", ts},
		{"11ts2", ts.Add(time.Microsecond)},
		{"12strA", "A"},
		{"13strB", "B"},
		{"14stra", "a"},
		{"15strEacute", "é"},
		{"16bytes", []byte{0x00}},
		{"17bytes2", []byte{0x01}},
		{"18ref", c.Doc("a/b")},
		{"19refLong", c.Doc("a/b/c/d")},
		{"20ref2", c.Doc("a/c")},
		{"21geo", &latlng.LatLng{Latitude: 1, Longitude: 2}},
		{"22geo2", &latlng.LatLng{Latitude: 1, Longitude: 3}},
		{"23arr", []any{1}},
		{"24arr2", []any{1, 2}},
		{"25arr3", []any{2}},
		{"26map", map[string]any{"a": 1}},
		{"27map2", map[string]any{"a": 2}},
		{"28map3", map[string]any{"b": 0}},
	}
	for _, o := range ordered {
		mustSet(t, ctx, col.Doc(o.id), map[string]any{"v": o.v})
	}
	want := []string{}
	for _, o := range ordered {
		want = append(want, o.id)
	}
	t.Run("ascending", func(t *testing.T) {
		if got := ids(t, ctx, col.OrderBy("v", firestore.Asc)); join(got) != join(want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
	})
	t.Run("descending", func(t *testing.T) {
		rev := []string{}
		for i := len(want) - 1; i >= 0; i-- {
			rev = append(rev, want[i])
		}
		if got := ids(t, ctx, col.OrderBy("v", firestore.Desc)); join(got) != join(rev) {
			t.Errorf("got  %v\nwant %v", got, rev)
		}
	})
	eq := []struct {
		name string
		q    firestore.Query
		want []string
	}{
		{"int equals double", col.Where("v", "==", 1.0), []string{"07int1"}},
		{"double equals int", col.Where("v", "in", []any{2.0, 0.5}), []string{"06half", "09int2"}},
		{"range stays within numbers", col.Where("v", ">", 1).OrderBy("v", firestore.Asc), []string{"08dbl1.5", "09int2"}},
		{"range stays within strings", col.Where("v", ">=", "B").Where("v", "<", "b"), []string{"13strB", "14stra"}},
		{"NaN equality becomes IS_NAN", col.Where("v", "==", math.NaN()), []string{"03nan"}},
		{"null equality becomes IS_NULL", col.Where("v", "==", nil), []string{"00null"}},
		{"reference equality", col.Where("v", "==", c.Doc("a/c")), []string{"20ref2"}},
		{"map equality", col.Where("v", "==", map[string]any{"a": 2.0}), []string{"27map2"}},
		{"array equality", col.Where("v", "==", []any{1, 2}), []string{"24arr2"}},
	}
	for _, tc := range eq {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(t, ctx, tc.q); join(got) != join(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueries(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	col := coll(t, c)
	docs := map[string]map[string]any{
		"a": {"n": 1, "s": "x", "tags": []any{"red", "blue"}, "m": map[string]any{"k": 3, "odd.key": "p"}, "g": "g1"},
		"b": {"n": 2, "s": "y", "tags": []any{"green"}, "m": map[string]any{"k": 1, "odd.key": "q"}, "g": "g1"},
		"c": {"n": 3, "s": "x", "tags": []any{}, "m": map[string]any{"k": 2}, "g": "g2", "z": nil},
		"d": {"n": 4, "s": "z", "g": "g2", "f": math.NaN()},
		"e": {"s": "x", "g": "g3", "f": 1.0},
		"f": {"n": 2, "s": "w", "g": "g3"},
	}
	for id, d := range docs {
		mustSet(t, ctx, col.Doc(id), d)
	}
	oddKey := firestore.FieldPath{"m", "odd.key"}
	cases := []struct {
		name string
		q    firestore.Query
		want []string
	}{
		{"whole collection by name", col.Query, []string{"a", "b", "c", "d", "e", "f"}},
		{"==", col.Where("s", "==", "x"), []string{"a", "c", "e"}},
		{"!= excludes missing field", col.Where("n", "!=", 2), []string{"a", "c", "d"}},
		{"<", col.Where("n", "<", 2), []string{"a"}},
		{"<=", col.Where("n", "<=", 2), []string{"a", "b", "f"}},
		{">", col.Where("n", ">", 2), []string{"c", "d"}},
		{">=", col.Where("n", ">=", 3), []string{"c", "d"}},
		{"in", col.Where("s", "in", []string{"y", "z"}), []string{"b", "d"}},
		{"not-in", col.Where("s", "not-in", []string{"x", "z"}), []string{"f", "b"}},
		{"array-contains", col.Where("tags", "array-contains", "green"), []string{"b"}},
		{"array-contains-any", col.Where("tags", "array-contains-any", []string{"red", "green"}), []string{"a", "b"}},
		{"is null", col.Where("z", "==", nil), []string{"c"}},
		{"is not null", col.Where("s", "!=", nil), []string{"f", "a", "c", "e", "b", "d"}},
		{"is nan", col.Where("f", "==", math.NaN()), []string{"d"}},
		{"is not nan", col.Where("f", "!=", math.NaN()), []string{"e"}},
		{"nested field", col.Where("m.k", ">=", 2), []string{"c", "a"}},
		{"backquoted segment", col.WherePath(oddKey, "==", "q"), []string{"b"}},
		{"AND", col.WhereEntity(firestore.AndFilter{Filters: []firestore.EntityFilter{
			firestore.PropertyFilter{Path: "s", Operator: "==", Value: "x"},
			firestore.PropertyFilter{Path: "n", Operator: ">=", Value: 2}}}), []string{"c"}},
		{"OR", col.WhereEntity(firestore.OrFilter{Filters: []firestore.EntityFilter{
			firestore.PropertyFilter{Path: "s", Operator: "==", Value: "z"},
			firestore.PropertyFilter{Path: "g", Operator: "==", Value: "g1"}}}), []string{"a", "b", "d"}},
		{"OR of ANDs", col.WhereEntity(firestore.OrFilter{Filters: []firestore.EntityFilter{
			firestore.AndFilter{Filters: []firestore.EntityFilter{
				firestore.PropertyFilter{Path: "g", Operator: "==", Value: "g3"},
				firestore.PropertyFilter{Path: "n", Operator: "==", Value: 2}}},
			firestore.PropertyFilter{Path: "n", Operator: "==", Value: 1}}}), []string{"a", "f"}},
		{"order by excludes missing", col.OrderBy("n", firestore.Asc), []string{"a", "b", "f", "c", "d"}},
		{"order desc then name desc", col.OrderBy("n", firestore.Desc), []string{"d", "c", "f", "b", "a"}},
		{"two order-bys", col.OrderBy("s", firestore.Asc).OrderBy("n", firestore.Desc), []string{"f", "c", "a", "b", "d"}},
		{"inequality implicitly ordered", col.Where("n", ">", 1), []string{"b", "f", "c", "d"}},
		{"two inequalities ordered by field name", col.Where("s", ">", "w").Where("n", "<", 4), []string{"a", "b", "c"}},
		{"limit", col.OrderBy("n", firestore.Asc).Limit(2), []string{"a", "b"}},
		{"offset", col.OrderBy("n", firestore.Asc).Offset(3), []string{"c", "d"}},
		{"limit to last", col.OrderBy("n", firestore.Asc).LimitToLast(2), []string{"c", "d"}},
		{"start at", col.OrderBy("n", firestore.Asc).StartAt(2), []string{"b", "f", "c", "d"}},
		{"start after", col.OrderBy("n", firestore.Asc).StartAfter(2), []string{"c", "d"}},
		{"end at", col.OrderBy("n", firestore.Asc).EndAt(2), []string{"a", "b", "f"}},
		{"end before", col.OrderBy("n", firestore.Asc).EndBefore(2), []string{"a"}},
		{"cursor prefix of two orders", col.OrderBy("s", firestore.Asc).OrderBy("n", firestore.Asc).StartAfter("x", 1), []string{"c", "b", "d"}},
		{"desc cursors", col.OrderBy("n", firestore.Desc).StartAt(3).EndAt(2), []string{"c", "f", "b"}},
		{"document id order and cursor", col.OrderBy(firestore.DocumentID, firestore.Asc).StartAfter("c"), []string{"d", "e", "f"}},
		{"document id in", col.Where(firestore.DocumentID, "in", []any{col.Doc("b"), col.Doc("e")}), []string{"b", "e"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(t, ctx, tc.q); join(got) != join(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("snapshot cursor carries order values and name", func(t *testing.T) {
		q := col.OrderBy("n", firestore.Asc)
		b := mustGet(t, ctx, col.Doc("b"))
		if got, want := ids(t, ctx, q.StartAfter(b)), []string{"f", "c", "d"}; join(got) != join(want) {
			t.Errorf("StartAfter(b): got %v, want %v", got, want)
		}
		if got, want := ids(t, ctx, q.EndBefore(b)), []string{"a"}; join(got) != join(want) {
			t.Errorf("EndBefore(b): got %v, want %v", got, want)
		}
	})
	t.Run("projection", func(t *testing.T) {
		snaps, err := col.Select("n", "m.k").Where("n", "==", 1).Documents(ctx).GetAll()
		if err != nil || len(snaps) != 1 {
			t.Fatalf("got %d docs, err %v; want 1", len(snaps), err)
		}
		want := map[string]any{"n": int64(1), "m": map[string]any{"k": int64(3)}}
		if got := snaps[0].Data(); !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		snaps, err = col.Select().Where("n", "==", 1).Documents(ctx).GetAll()
		if err != nil || len(snaps) != 1 || len(snaps[0].Data()) != 0 {
			t.Errorf("Select(): got %v (err %v), want one doc with no fields", snaps, err)
		}
	})
}

func TestCollectionGroupsAndSubcollections(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	root := coll(t, c)
	group := root.ID + "_items" // unique collection id for the group query
	mustSet(t, ctx, root.Doc("u1").Collection(group).Doc("i1"), map[string]any{"n": 1})
	mustSet(t, ctx, root.Doc("u1").Collection(group).Doc("i2"), map[string]any{"n": 2})
	mustSet(t, ctx, root.Doc("u2").Collection(group).Doc("i3"), map[string]any{"n": 3})
	mustSet(t, ctx, root.Doc("u2").Collection("other").Doc("o1"), map[string]any{"n": 4})
	mustSet(t, ctx, root.Doc("u2").Collection("other").Doc("o1").Collection(group).Doc("deep"), map[string]any{"n": 5})
	mustSet(t, ctx, c.Collection(group).Doc("top"), map[string]any{"n": 6})
	t.Cleanup(func() { c.Collection(group).Doc("top").Delete(ctx) })

	cases := []struct {
		name string
		q    firestore.Query
		want []string
	}{
		{"subcollection", root.Doc("u1").Collection(group).Query, []string{"i1", "i2"}},
		{"collection group", c.CollectionGroup(group).OrderBy("n", firestore.Asc), []string{"i1", "i2", "i3", "deep", "top"}},
		{"collection group filtered", c.CollectionGroup(group).Where("n", ">", 2), []string{"i3", "deep", "top"}},
		{"parent has no docs of its own", root.Query, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(t, ctx, tc.q); join(got) != join(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("DocumentRefs lists missing parents", func(t *testing.T) {
		refs, err := root.DocumentRefs(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, r := range refs {
			got = append(got, r.ID)
		}
		if want := []string{"u1", "u2"}; join(got) != join(want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("Collections of a document", func(t *testing.T) {
		cols, err := root.Doc("u2").Collections(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, c := range cols {
			got = append(got, c.ID)
		}
		want := []string{group, "other"}
		if group > "other" {
			want = []string{"other", group}
		}
		if join(got) != join(want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}
