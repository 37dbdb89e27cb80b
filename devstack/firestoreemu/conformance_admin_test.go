package firestoreemu_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestAggregations(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	col := coll(t, c)
	for i, v := range []any{1, 2, 3.5, "not a number", nil} {
		mustSet(t, ctx, col.Doc(string(rune('a'+i))), map[string]any{"v": v, "k": "all"})
	}
	all := col.Where("k", "==", "all")
	res, err := all.NewAggregationQuery().
		WithCount("count").WithSum("v", "sum").WithAvg("v", "avg").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		alias string
		want  *firestorepb.Value
	}{
		{"count", &firestorepb.Value{ValueType: &firestorepb.Value_IntegerValue{IntegerValue: 5}}},
		{"sum", &firestorepb.Value{ValueType: &firestorepb.Value_DoubleValue{DoubleValue: 6.5}}},
		{"avg", &firestorepb.Value{ValueType: &firestorepb.Value_DoubleValue{DoubleValue: 6.5 / 3}}},
	}
	for _, tc := range cases {
		t.Run(tc.alias, func(t *testing.T) {
			if got, _ := res[tc.alias].(*firestorepb.Value); got.String() != tc.want.String() {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("integer sum stays integer", func(t *testing.T) {
		q := col.Where("v", "in", []any{1, 2})
		r, err := q.NewAggregationQuery().WithSum("v", "s").Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := r["s"].(*firestorepb.Value).GetIntegerValue(); got != 3 {
			t.Errorf("got %v, want 3", r["s"])
		}
	})
	t.Run("count up_to", func(t *testing.T) {
		raw := newRawClient(t)
		stream, err := raw.RunAggregationQuery(ctx, &firestorepb.RunAggregationQueryRequest{
			Parent: dbPath() + "/documents",
			QueryType: &firestorepb.RunAggregationQueryRequest_StructuredAggregationQuery{StructuredAggregationQuery: &firestorepb.StructuredAggregationQuery{
				QueryType: &firestorepb.StructuredAggregationQuery_StructuredQuery{StructuredQuery: &firestorepb.StructuredQuery{
					From: []*firestorepb.StructuredQuery_CollectionSelector{{CollectionId: col.ID}},
				}},
				Aggregations: []*firestorepb.StructuredAggregationQuery_Aggregation{{
					Alias:    "c",
					Operator: &firestorepb.StructuredAggregationQuery_Aggregation_Count_{Count: &firestorepb.StructuredAggregationQuery_Aggregation_Count{UpTo: wrapperspb.Int64(3)}},
				}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetResult().GetAggregateFields()["c"].GetIntegerValue(); got != 3 {
			t.Errorf("got %d, want 3", got)
		}
	})
}

func TestRawDocumentRPCs(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	raw := newRawClient(t)
	col := coll(t, c)
	parent := dbPath() + "/documents"
	str := func(s string) *firestorepb.Value {
		return &firestorepb.Value{ValueType: &firestorepb.Value_StringValue{StringValue: s}}
	}

	created, err := raw.CreateDocument(ctx, &firestorepb.CreateDocumentRequest{
		Parent: parent, CollectionId: col.ID, DocumentId: "d1",
		Document: &firestorepb.Document{Fields: map[string]*firestorepb.Value{"a": str("1"), "b": str("2")}},
	})
	if err != nil {
		t.Fatalf("CreateDocument: %v", err)
	}
	t.Run("CreateDocument twice is AlreadyExists", func(t *testing.T) {
		_, err := raw.CreateDocument(ctx, &firestorepb.CreateDocumentRequest{Parent: parent, CollectionId: col.ID, DocumentId: "d1", Document: &firestorepb.Document{}})
		wantCode(t, "CreateDocument", err, codes.AlreadyExists)
	})
	t.Run("CreateDocument auto id", func(t *testing.T) {
		d, err := raw.CreateDocument(ctx, &firestorepb.CreateDocumentRequest{Parent: parent, CollectionId: col.ID, Document: &firestorepb.Document{}})
		if err != nil || !strings.HasPrefix(d.GetName(), parent+"/"+col.ID+"/") || len(d.GetName()) != len(parent+"/"+col.ID+"/")+20 {
			t.Errorf("got %q (err %v), want a 20-character auto id", d.GetName(), err)
		}
	})
	t.Run("GetDocument with mask", func(t *testing.T) {
		d, err := raw.GetDocument(ctx, &firestorepb.GetDocumentRequest{Name: created.Name, Mask: &firestorepb.DocumentMask{FieldPaths: []string{"a"}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Fields) != 1 || d.Fields["a"].GetStringValue() != "1" {
			t.Errorf("got %v, want only a=1", d.Fields)
		}
	})
	t.Run("GetDocument missing is NotFound", func(t *testing.T) {
		_, err := raw.GetDocument(ctx, &firestorepb.GetDocumentRequest{Name: parent + "/" + col.ID + "/none"})
		wantCode(t, "GetDocument", err, codes.NotFound)
	})
	t.Run("UpdateDocument with update mask", func(t *testing.T) {
		d, err := raw.UpdateDocument(ctx, &firestorepb.UpdateDocumentRequest{
			Document:   &firestorepb.Document{Name: created.Name, Fields: map[string]*firestorepb.Value{"a": str("9")}},
			UpdateMask: &firestorepb.DocumentMask{FieldPaths: []string{"a"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if d.Fields["a"].GetStringValue() != "9" || d.Fields["b"].GetStringValue() != "2" {
			t.Errorf("got %v, want a=9 b=2", d.Fields)
		}
		_, err = raw.UpdateDocument(ctx, &firestorepb.UpdateDocumentRequest{
			Document:        &firestorepb.Document{Name: parent + "/" + col.ID + "/none"},
			CurrentDocument: &firestorepb.Precondition{ConditionType: &firestorepb.Precondition_Exists{Exists: true}},
		})
		wantCode(t, "UpdateDocument exists:true on missing", err, codes.NotFound)
	})
	t.Run("ListDocuments pages", func(t *testing.T) {
		for _, id := range []string{"p1", "p2", "p3"} {
			mustSet(t, ctx, col.Doc(id), map[string]any{"x": 1})
		}
		it := raw.ListDocuments(ctx, &firestorepb.ListDocumentsRequest{Parent: parent, CollectionId: col.ID, PageSize: 2})
		n := 0
		for {
			_, err := it.Next()
			if err == iterator.Done {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 5 {
			t.Errorf("got %d documents, want 5", n)
		}
	})
	t.Run("DeleteDocument", func(t *testing.T) {
		if err := raw.DeleteDocument(ctx, &firestorepb.DeleteDocumentRequest{Name: created.Name}); err != nil {
			t.Fatal(err)
		}
		_, err := raw.GetDocument(ctx, &firestorepb.GetDocumentRequest{Name: created.Name})
		wantCode(t, "GetDocument after delete", err, codes.NotFound)
	})
	t.Run("unimplemented RPC", func(t *testing.T) {
		needEmu(t, "Google's emulator implements PartitionQuery")
		it := raw.PartitionQuery(ctx, &firestorepb.PartitionQueryRequest{Parent: parent})
		_, err := it.Next()
		wantCode(t, "PartitionQuery", err, codes.Unimplemented)
	})
}

func TestBulkWriter(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	col := coll(t, c)
	mustSet(t, ctx, col.Doc("exists"), map[string]any{"n": 0})
	bw := c.BulkWriter(ctx)
	okJob, err := bw.Create(col.Doc("new"), map[string]any{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	badJob, err := bw.Create(col.Doc("exists"), map[string]any{"n": 2})
	if err != nil {
		t.Fatal(err)
	}
	bw.End()
	if _, err := okJob.Results(); err != nil {
		t.Errorf("create new: got %v, want success", err)
	}
	_, err = badJob.Results()
	wantCode(t, "create existing", err, codes.AlreadyExists)
	if n, _ := mustGet(t, ctx, col.Doc("new")).DataAt("n"); n != int64(1) {
		t.Errorf("new.n: got %v, want 1", n)
	}
}

func TestProjectsAreSeparate(t *testing.T) {
	ctx := ctxT(t)
	a := newClient(t)
	b, err := firestore.NewClient(ctx, projectID+"-other")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	col := coll(t, a)
	mustSet(t, ctx, col.Doc("d"), map[string]any{"n": 1})
	_, err = b.Collection(col.ID).Doc("d").Get(ctx)
	wantCode(t, "Get from another project", err, codes.NotFound)
}

func TestHTTPEndpoints(t *testing.T) {
	ctx := ctxT(t)
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+emuAddr+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	t.Run("health", func(t *testing.T) {
		if code, body := do("GET", "/", ""); code != 200 || strings.TrimSpace(body) != "Ok" {
			t.Errorf("got %d %q, want 200 Ok", code, body)
		}
	})
	t.Run("reset drops the project's data", func(t *testing.T) {
		const proj = "reset-project"
		c, err := firestore.NewClient(ctx, proj)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mustSet(t, ctx, c.Collection("x").Doc("y"), map[string]any{"n": 1})
		if code, body := do("DELETE", "/emulator/v1/projects/"+proj+"/databases/(default)/documents", ""); code != 200 {
			t.Fatalf("reset: got %d %q, want 200", code, body)
		}
		_, err = c.Collection("x").Doc("y").Get(ctx)
		wantCode(t, "Get after reset", err, codes.NotFound)
	})
	t.Run("fault endpoint", func(t *testing.T) {
		needEmu(t, "fault injection is this emulator's extension")
		c := newClient(t)
		d := coll(t, c).Doc("f")
		if code, body := do("POST", "/emulator/v1/faults", `{"rpc":"Commit","code":"UNAVAILABLE","next":1}`); code != 200 {
			t.Fatalf("POST faults: got %d %q", code, body)
		}
		// The client retries UNAVAILABLE commits; make it observable with a non-retried code too.
		do("POST", "/emulator/v1/faults", `{"rpc":"Commit","code":"PERMISSION_DENIED","next":1}`)
		_, err := d.Set(ctx, map[string]any{"n": 1})
		wantCode(t, "Set with injected fault", err, codes.PermissionDenied)
		if code, _ := do("DELETE", "/emulator/v1/faults", ""); code != 200 {
			t.Fatalf("DELETE faults: got %d", code)
		}
		if _, err := d.Set(ctx, map[string]any{"n": 1}); err != nil {
			t.Errorf("Set after clear: %v", err)
		}
		if code, _ := do("POST", "/emulator/v1/faults", `{"bogus":1}`); code != 400 {
			t.Errorf("malformed rule: got %d, want 400", code)
		}
	})
}

func TestFaultInjection(t *testing.T) {
	needEmu(t, "fault injection is this emulator's extension")
	ctx := ctxT(t)
	c := newClient(t)
	d := coll(t, c).Doc("f")
	f := emu.Faults()
	t.Cleanup(f.Clear)
	cases := []struct {
		name  string
		setup func()
		call  func() error
		want  codes.Code
	}{
		{"FailNext on Commit", func() { f.FailNext("Commit", 1, codes.DataLoss) },
			func() error { _, err := d.Set(ctx, map[string]any{"n": 1}); return err }, codes.DataLoss},
		{"FailNext on every rpc", func() { f.FailNext("*", 1, codes.PermissionDenied) },
			func() error { _, err := d.Get(ctx); return err }, codes.PermissionDenied},
		{"FailFraction 1 on BeginTransaction", func() { f.FailFraction("BeginTransaction", 1, codes.FailedPrecondition) },
			func() error {
				return c.RunTransaction(ctx, func(context.Context, *firestore.Transaction) error { return nil })
			}, codes.FailedPrecondition},
		{"Latency vs deadline", func() { f.Latency("BatchGetDocuments", time.Second) },
			func() error {
				ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				start := time.Now()
				_, err := d.Get(ctx)
				if time.Since(start) > 500*time.Millisecond {
					t.Errorf("Get took %v; the injected latency should yield to the deadline", time.Since(start))
				}
				return status.FromContextError(err).Err()
			}, codes.DeadlineExceeded},
		{"Clear restores", func() {}, func() error { _, err := d.Set(ctx, map[string]any{"n": 2}); return err }, codes.OK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.Clear()
			tc.setup()
			wantCode(t, tc.name, tc.call(), tc.want)
		})
	}
	t.Run("failed commit writes nothing", func(t *testing.T) {
		f.Clear()
		nd := coll(t, c).Doc("nothing")
		f.FailNext("Commit", 1, codes.PermissionDenied)
		_, err := nd.Create(ctx, map[string]any{"n": 1})
		wantCode(t, "Create", err, codes.PermissionDenied)
		_, err = nd.Get(ctx)
		wantCode(t, "Get", err, codes.NotFound)
	})
}

func TestNewTransactionOnReads(t *testing.T) {
	ctx := ctxT(t)
	c := newClient(t)
	raw := newRawClient(t)
	col := coll(t, c)
	mustSet(t, ctx, col.Doc("a"), map[string]any{"n": 1})
	name := dbPath() + "/documents/" + col.ID + "/a"
	rw := &firestorepb.TransactionOptions{Mode: &firestorepb.TransactionOptions_ReadWrite_{ReadWrite: &firestorepb.TransactionOptions_ReadWrite{}}}

	t.Run("BatchGetDocuments new_transaction then conflicting write aborts commit", func(t *testing.T) {
		stream, err := raw.BatchGetDocuments(ctx, &firestorepb.BatchGetDocumentsRequest{
			Database: dbPath(), Documents: []string{name, name + "-missing"},
			ConsistencySelector: &firestorepb.BatchGetDocumentsRequest_NewTransaction{NewTransaction: rw},
		})
		if err != nil {
			t.Fatal(err)
		}
		var tid []byte
		found, missing := 0, 0
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Transaction != nil {
				tid = resp.Transaction
			}
			if resp.GetFound() != nil {
				found++
			}
			if resp.GetMissing() != "" {
				missing++
			}
		}
		if tid == nil || found != 1 || missing != 1 {
			t.Fatalf("got transaction %x, %d found, %d missing; want an id, 1 and 1", tid, found, missing)
		}
		mustSet(t, ctx, col.Doc("a"), map[string]any{"n": 2})
		_, err = raw.Commit(ctx, &firestorepb.CommitRequest{Database: dbPath(), Transaction: tid})
		wantCode(t, "Commit after conflicting write", err, codes.Aborted)
	})
	t.Run("RunQuery new_transaction then commit", func(t *testing.T) {
		stream, err := raw.RunQuery(ctx, &firestorepb.RunQueryRequest{
			Parent: dbPath() + "/documents",
			QueryType: &firestorepb.RunQueryRequest_StructuredQuery{StructuredQuery: &firestorepb.StructuredQuery{
				From: []*firestorepb.StructuredQuery_CollectionSelector{{CollectionId: col.ID}},
			}},
			ConsistencySelector: &firestorepb.RunQueryRequest_NewTransaction{NewTransaction: rw},
		})
		if err != nil {
			t.Fatal(err)
		}
		var tid []byte
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Transaction != nil {
				tid = resp.Transaction
			}
		}
		if tid == nil {
			t.Fatal("got no transaction id, want one in the first response")
		}
		if _, err := raw.Commit(ctx, &firestorepb.CommitRequest{Database: dbPath(), Transaction: tid}); err != nil {
			t.Errorf("Commit: got %v, want success", err)
		}
		_, err = raw.Commit(ctx, &firestorepb.CommitRequest{Database: dbPath(), Transaction: tid})
		wantCode(t, "second Commit of the same transaction", err, codes.InvalidArgument)
	})
}
