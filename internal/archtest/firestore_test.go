package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ingest's Firestore grant is conditioned on the pipeline's database, but IAM cannot name a
// collection (infra/iam.tf). That ingest never writes DLQ records, audit entries or replay jobs
// is therefore a property of its code: no non-test file under ingest/ calls a common/store
// method that touches those collections, or names the collections.
var ingestForbiddenCollections = []string{"CollDLQ", "CollAudit", "CollReplayJobs"}

// storeMethodsTouching returns the *Store methods of common/store whose bodies name one of the
// collection constants, directly or through other *Store methods they call.
func storeMethodsTouching(t *testing.T, colls []string) []string {
	t.Helper()
	fset := token.NewFileSet()
	paths, _ := filepath.Glob("../../common/store/*.go")
	bodies := map[string]*ast.BlockStmt{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			bodies[fd.Name.Name] = fd.Body
		}
	}
	if len(bodies) == 0 {
		t.Fatal("no functions found in common/store")
	}
	direct := map[string]bool{}
	calls := map[string][]string{}
	for name, body := range bodies {
		ast.Inspect(body, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Ident:
				if slices.Contains(colls, x.Name) {
					direct[name] = true
				}
				if _, ok := bodies[x.Name]; ok && x.Name != name {
					calls[name] = append(calls[name], x.Name)
				}
			case *ast.SelectorExpr:
				if _, ok := bodies[x.Sel.Name]; ok {
					calls[name] = append(calls[name], x.Sel.Name)
				}
			}
			return true
		})
	}
	// Propagate through calls until nothing changes.
	for changed := true; changed; {
		changed = false
		for name, callees := range calls {
			if direct[name] {
				continue
			}
			for _, c := range callees {
				if direct[c] {
					direct[name], changed = true, true
					break
				}
			}
		}
	}
	var out []string
	for name := range direct {
		if ast.IsExported(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func TestIngestWritesNoDLQAuditOrJobs(t *testing.T) {
	forbidden := storeMethodsTouching(t, ingestForbiddenCollections)
	for _, want := range []string{"ListDLQ", "ListAudit"} {
		if !slices.Contains(forbidden, want) {
			t.Fatalf("store methods touching dlq/audit/replay_jobs = %v: %s missing, the scan is broken", forbidden, want)
		}
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir("../../ingest", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if slices.Contains(forbidden, sel.Sel.Name) || slices.Contains(ingestForbiddenCollections, sel.Sel.Name) {
				t.Errorf("%s: ingest uses %s, which touches the dlq, audit or replay_jobs collections (ingest's Firestore role must not need them)", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
