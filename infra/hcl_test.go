// Package infra holds the Go tests of the Terraform in this directory: the environment
// contract between the services' configs and what Terraform and Cloud Build deploy, the metric
// names the alerts use, and (build tag infra, run by `make test-infra`) the broken copies that
// `terraform test` must reject.
package infra

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// module is infra/'s .tf files, parsed with HashiCorp's HCL parser, whose locals can be
// evaluated the way Terraform evaluates them: input variables take their defaults (or the
// test's overrides), and every resource and data source attribute is unknown (as in a plan
// before apply). Map keys built from literals and variables are therefore known.
type module struct {
	t      testing.TB
	files  map[string]*hclsyntax.Body
	locals map[string]hcl.Expression
	vars   map[string]cty.Value
	cache  map[string]cty.Value
}

// loadModule parses dir/*.tf. overrides are input variables in HCL syntax (a tfvars file).
func loadModule(t testing.TB, dir, overrides string) *module {
	t.Helper()
	m := &module{t: t, files: map[string]*hclsyntax.Body{}, locals: map[string]hcl.Expression{}, vars: map[string]cty.Value{}, cache: map[string]cty.Value{}}
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %v", p, diags)
		}
		body := f.Body.(*hclsyntax.Body)
		m.files[filepath.Base(p)] = body
		for _, b := range body.Blocks {
			switch b.Type {
			case "locals":
				for name, a := range b.Body.Attributes {
					m.locals[name] = a.Expr
				}
			case "variable":
				v := cty.NullVal(cty.DynamicPseudoType)
				if a, ok := b.Body.Attributes["default"]; ok {
					if v, diags = a.Expr.Value(nil); diags.HasErrors() {
						t.Fatalf("default of variable %s: %v", b.Labels[0], diags)
					}
				}
				m.vars[b.Labels[0]] = v
			}
		}
	}
	if overrides != "" {
		f, diags := hclsyntax.ParseConfig([]byte(overrides), "overrides.tfvars", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("parse overrides: %v", diags)
		}
		attrs, _ := f.Body.JustAttributes()
		for name, a := range attrs {
			if _, ok := m.vars[name]; !ok {
				t.Fatalf("override of undeclared variable %s", name)
			}
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("override %s: %v", name, diags)
			}
			m.vars[name] = v
		}
	}
	return m
}

var functions = map[string]function.Function{
	"coalesce": stdlib.CoalesceFunc, "concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc,
	"distinct": stdlib.DistinctFunc, "format": stdlib.FormatFunc, "join": stdlib.JoinFunc,
	"keys": stdlib.KeysFunc, "length": stdlib.LengthFunc, "lower": stdlib.LowerFunc,
	"merge": stdlib.MergeFunc, "replace": stdlib.ReplaceFunc, "setproduct": stdlib.SetProductFunc,
	"upper": stdlib.UpperFunc, "values": stdlib.ValuesFunc, "flatten": stdlib.FlattenFunc,
	"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
	"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"basename": function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}}, Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(filepath.Base(args[0].AsString())), nil
		},
	}),
	"dirname": function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}}, Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(filepath.Dir(args[0].AsString())), nil
		},
	}),
}

// local evaluates local.name (and the locals it uses). A local that cannot be evaluated
// fails the test.
func (m *module) local(name string) cty.Value {
	m.t.Helper()
	if v, ok := m.cache[name]; ok {
		return v
	}
	expr, ok := m.locals[name]
	if !ok {
		m.t.Fatalf("no local %q", name)
	}
	v, diags := expr.Value(m.evalContext(expr))
	if diags.HasErrors() {
		m.t.Fatalf("local.%s: %v", name, diags)
	}
	m.cache[name] = v
	return v
}

// evalContext gives expr the locals it refers to, the variables, and unknown values for
// everything else (resources, data sources).
func (m *module) evalContext(expr hcl.Expression) *hcl.EvalContext {
	locals := map[string]cty.Value{}
	vars := map[string]cty.Value{
		"var":  cty.ObjectVal(m.vars),
		"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(".")}),
	}
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		switch root {
		case "local":
			if attr, ok := tr[1].(hcl.TraverseAttr); ok {
				locals[attr.Name] = m.local(attr.Name)
			}
		case "var", "path":
		default:
			vars[root] = cty.DynamicVal
		}
	}
	vars["local"] = cty.ObjectVal(locals)
	return &hcl.EvalContext{Variables: vars, Functions: functions}
}

// resource returns the body of resource typ.name.
func (m *module) resource(typ, name string) *hclsyntax.Body {
	m.t.Helper()
	for _, f := range m.files {
		for _, b := range f.Blocks {
			if b.Type == "resource" && len(b.Labels) == 2 && b.Labels[0] == typ && b.Labels[1] == name {
				return b.Body
			}
		}
	}
	m.t.Fatalf("no resource %s.%s", typ, name)
	return nil
}

// resources returns every resource block of type typ, by name.
func (m *module) resources(typ string) map[string]*hclsyntax.Body {
	out := map[string]*hclsyntax.Body{}
	for _, f := range m.files {
		for _, b := range f.Blocks {
			if b.Type == "resource" && len(b.Labels) == 2 && b.Labels[0] == typ {
				out[b.Labels[1]] = b.Body
			}
		}
	}
	return out
}

// keysOf returns the sorted keys of an object or map value.
func keysOf(t testing.TB, v cty.Value) []string {
	t.Helper()
	if !v.IsKnown() || v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
		t.Fatalf("want a known object or map, got %#v", v)
	}
	var out []string
	for k := range v.AsValueMap() {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// traversalString renders a traversal expression such as each.value.env.
func traversalString(expr hcl.Expression) string {
	st, ok := expr.(*hclsyntax.ScopeTraversalExpr)
	if !ok {
		return ""
	}
	parts := []string{st.Traversal.RootName()}
	for _, s := range st.Traversal[1:] {
		if a, ok := s.(hcl.TraverseAttr); ok {
			parts = append(parts, a.Name)
		}
	}
	return strings.Join(parts, ".")
}
