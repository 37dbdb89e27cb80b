package firestoreemu

import (
	"slices"
	"strings"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/proto"
)

const nameField = "__name__"

// compiledQuery is a validated StructuredQuery with parsed paths and the
// implicit orderings Firestore adds.
type compiledQuery struct {
	db             string
	parent         string // database root ".../documents" or a document name
	collectionID   string
	allDescendants bool
	where          *filter
	orders         []order
	start, end     *pb.Cursor
	offset         int
	limit          int // -1: none
	projection     [][]string
	project        bool
}

type order struct {
	path []string // nil: __name__
	desc bool
}

type filter struct {
	op       string // "and", "or", "field", "unary"
	children []*filter
	path     []string // nil: __name__
	fop      pb.StructuredQuery_FieldFilter_Operator
	uop      pb.StructuredQuery_UnaryFilter_Operator
	value    *pb.Value
}

func compileQuery(parent string, sq *pb.StructuredQuery) (*compiledQuery, error) {
	db, parentPath, err := parseParent(parent)
	if err != nil {
		return nil, err
	}
	q := &compiledQuery{db: db, parent: parentPath, limit: -1}
	if len(sq.GetFrom()) != 1 {
		return nil, invalidArg("query must have exactly one collection selector")
	}
	q.collectionID = sq.From[0].GetCollectionId()
	q.allDescendants = sq.From[0].GetAllDescendants()
	if q.collectionID == "" && !q.allDescendants {
		return nil, invalidArg("collection id is required")
	}
	if sq.GetFindNearest() != nil {
		return nil, invalidArg("find_nearest is not supported by this emulator")
	}
	if w := sq.GetWhere(); w != nil {
		if q.where, err = compileFilter(w); err != nil {
			return nil, err
		}
	}
	if err := q.compileOrders(sq.GetOrderBy()); err != nil {
		return nil, err
	}
	q.start, q.end = sq.GetStartAt(), sq.GetEndAt()
	for _, c := range []*pb.Cursor{q.start, q.end} {
		if c != nil && len(c.GetValues()) > len(q.orders) {
			return nil, invalidArg("Too many cursor values specified. The specified order by clause has %d fields.", len(q.orders))
		}
	}
	if sq.GetOffset() < 0 {
		return nil, invalidArg("offset must be non-negative")
	}
	q.offset = int(sq.GetOffset())
	if l := sq.GetLimit(); l != nil {
		if l.GetValue() < 0 {
			return nil, invalidArg("limit must be non-negative")
		}
		q.limit = int(l.GetValue())
	}
	if sel := sq.GetSelect(); sel != nil {
		q.project = true
		for _, f := range sel.GetFields() {
			p, err := fieldRef(f)
			if err != nil {
				return nil, err
			}
			if p != nil {
				q.projection = append(q.projection, p)
			}
		}
	}
	return q, nil
}

func fieldRef(f *pb.StructuredQuery_FieldReference) ([]string, error) {
	if f.GetFieldPath() == nameField {
		return nil, nil
	}
	return parseFieldPath(f.GetFieldPath())
}

func compileFilter(f *pb.StructuredQuery_Filter) (*filter, error) {
	switch x := f.GetFilterType().(type) {
	case *pb.StructuredQuery_Filter_CompositeFilter:
		out := &filter{op: "and"}
		switch x.CompositeFilter.GetOp() {
		case pb.StructuredQuery_CompositeFilter_AND:
		case pb.StructuredQuery_CompositeFilter_OR:
			out.op = "or"
		default:
			return nil, invalidArg("unknown composite filter operator")
		}
		for _, c := range x.CompositeFilter.GetFilters() {
			cf, err := compileFilter(c)
			if err != nil {
				return nil, err
			}
			out.children = append(out.children, cf)
		}
		return out, nil
	case *pb.StructuredQuery_Filter_FieldFilter:
		ff := x.FieldFilter
		p, err := fieldRef(ff.GetField())
		if err != nil {
			return nil, err
		}
		out := &filter{op: "field", path: p, fop: ff.GetOp(), value: ff.GetValue()}
		if err := validateValue(out.value, 0); err != nil {
			return nil, err
		}
		switch out.fop {
		case pb.StructuredQuery_FieldFilter_IN, pb.StructuredQuery_FieldFilter_NOT_IN, pb.StructuredQuery_FieldFilter_ARRAY_CONTAINS_ANY:
			arr, ok := out.value.GetValueType().(*pb.Value_ArrayValue)
			if !ok || len(arr.ArrayValue.GetValues()) == 0 {
				return nil, invalidArg("'%s' requires a non-empty ArrayValue", out.fop)
			}
			if len(arr.ArrayValue.GetValues()) > 30 {
				return nil, invalidArg("'%s' supports up to 30 comparison values", out.fop)
			}
		case pb.StructuredQuery_FieldFilter_OPERATOR_UNSPECIFIED:
			return nil, invalidArg("field filter has no operator")
		}
		return out, nil
	case *pb.StructuredQuery_Filter_UnaryFilter:
		p, err := fieldRef(x.UnaryFilter.GetField())
		if err != nil {
			return nil, err
		}
		if x.UnaryFilter.GetOp() == pb.StructuredQuery_UnaryFilter_OPERATOR_UNSPECIFIED {
			return nil, invalidArg("unary filter has no operator")
		}
		return &filter{op: "unary", path: p, uop: x.UnaryFilter.GetOp()}, nil
	}
	return nil, invalidArg("empty filter")
}

// inequalityPaths collects fields filtered by inequalities, which Firestore
// orders implicitly.
func (f *filter) inequalityPaths(out map[string][]string) {
	if f == nil {
		return
	}
	for _, c := range f.children {
		c.inequalityPaths(out)
	}
	ineq := false
	switch f.op {
	case "field":
		switch f.fop {
		case pb.StructuredQuery_FieldFilter_LESS_THAN, pb.StructuredQuery_FieldFilter_LESS_THAN_OR_EQUAL,
			pb.StructuredQuery_FieldFilter_GREATER_THAN, pb.StructuredQuery_FieldFilter_GREATER_THAN_OR_EQUAL,
			pb.StructuredQuery_FieldFilter_NOT_EQUAL, pb.StructuredQuery_FieldFilter_NOT_IN:
			ineq = true
		}
	case "unary":
		ineq = f.uop == pb.StructuredQuery_UnaryFilter_IS_NOT_NULL || f.uop == pb.StructuredQuery_UnaryFilter_IS_NOT_NAN
	}
	if ineq && f.path != nil {
		out[pathKey(f.path)] = f.path
	}
}

func pathKey(p []string) string { return strings.Join(p, "\x00") }

func (q *compiledQuery) compileOrders(obs []*pb.StructuredQuery_Order) error {
	seen := map[string]bool{}
	hasName := false
	for _, o := range obs {
		p, err := fieldRef(o.GetField())
		if err != nil {
			return err
		}
		if p == nil {
			hasName = true
		} else {
			seen[pathKey(p)] = true
		}
		q.orders = append(q.orders, order{path: p, desc: o.GetDirection() == pb.StructuredQuery_DESCENDING})
	}
	lastDesc := len(q.orders) > 0 && q.orders[len(q.orders)-1].desc
	ineq := map[string][]string{}
	q.where.inequalityPaths(ineq)
	keys := make([]string, 0, len(ineq))
	for k := range ineq {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return compareFieldPaths(ineq[a], ineq[b]) })
	for _, k := range keys {
		q.orders = append(q.orders, order{path: ineq[k], desc: lastDesc})
	}
	if !hasName {
		q.orders = append(q.orders, order{desc: lastDesc})
	}
	return nil
}

func compareFieldPaths(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// fieldValue reads path from doc; a nil path is the document's name.
func fieldValue(doc *pb.Document, path []string) (*pb.Value, bool) {
	if path == nil {
		return &pb.Value{ValueType: &pb.Value_ReferenceValue{ReferenceValue: doc.Name}}, true
	}
	return getField(doc.GetFields(), path)
}

func (f *filter) matches(doc *pb.Document) bool {
	switch f.op {
	case "and":
		for _, c := range f.children {
			if !c.matches(doc) {
				return false
			}
		}
		return true
	case "or":
		for _, c := range f.children {
			if c.matches(doc) {
				return true
			}
		}
		return len(f.children) == 0
	case "unary":
		v, ok := fieldValue(doc, f.path)
		if !ok {
			return false
		}
		switch f.uop {
		case pb.StructuredQuery_UnaryFilter_IS_NULL:
			return typeRank(v) == rankNull
		case pb.StructuredQuery_UnaryFilter_IS_NOT_NULL:
			return typeRank(v) != rankNull
		case pb.StructuredQuery_UnaryFilter_IS_NAN:
			return isNaN(v)
		case pb.StructuredQuery_UnaryFilter_IS_NOT_NAN:
			return !isNaN(v)
		}
		return false
	}
	v, ok := fieldValue(doc, f.path)
	if !ok {
		return false
	}
	want := f.value
	switch f.fop {
	case pb.StructuredQuery_FieldFilter_EQUAL:
		return valuesEqual(v, want)
	case pb.StructuredQuery_FieldFilter_NOT_EQUAL:
		return !valuesEqual(v, want)
	case pb.StructuredQuery_FieldFilter_LESS_THAN:
		return typeRank(v) == typeRank(want) && compareValues(v, want) < 0
	case pb.StructuredQuery_FieldFilter_LESS_THAN_OR_EQUAL:
		return typeRank(v) == typeRank(want) && compareValues(v, want) <= 0
	case pb.StructuredQuery_FieldFilter_GREATER_THAN:
		return typeRank(v) == typeRank(want) && compareValues(v, want) > 0
	case pb.StructuredQuery_FieldFilter_GREATER_THAN_OR_EQUAL:
		return typeRank(v) == typeRank(want) && compareValues(v, want) >= 0
	case pb.StructuredQuery_FieldFilter_IN:
		return containsValue(want.GetArrayValue().GetValues(), v)
	case pb.StructuredQuery_FieldFilter_NOT_IN:
		return !containsValue(want.GetArrayValue().GetValues(), v)
	case pb.StructuredQuery_FieldFilter_ARRAY_CONTAINS:
		return containsValue(v.GetArrayValue().GetValues(), want)
	case pb.StructuredQuery_FieldFilter_ARRAY_CONTAINS_ANY:
		for _, w := range want.GetArrayValue().GetValues() {
			if containsValue(v.GetArrayValue().GetValues(), w) {
				return true
			}
		}
		return false
	}
	return false
}

// compareDocs orders two documents by the query's orderings.
func (q *compiledQuery) compareDocs(a, b *pb.Document) int {
	for _, o := range q.orders {
		var c int
		if o.path == nil {
			c = compareReferences(a.Name, b.Name)
		} else {
			va, _ := getField(a.Fields, o.path)
			vb, _ := getField(b.Fields, o.path)
			c = compareValues(va, vb)
		}
		if o.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// compareCursor compares doc to a cursor position over the cursor's prefix
// of the orderings.
func (q *compiledQuery) compareCursor(doc *pb.Document, c *pb.Cursor) int {
	for i, cv := range c.GetValues() {
		o := q.orders[i]
		var r int
		if o.path == nil {
			ref := cv.GetReferenceValue()
			if !strings.Contains(ref, "/documents/") {
				ref = q.parent + "/" + q.collectionID + "/" + ref
			}
			r = compareReferences(doc.Name, ref)
		} else {
			v, _ := getField(doc.Fields, o.path)
			r = compareValues(v, cv)
		}
		if o.desc {
			r = -r
		}
		if r != 0 {
			return r
		}
	}
	return 0
}

func (q *compiledQuery) inRange(doc *pb.Document) bool {
	if q.start != nil {
		c := q.compareCursor(doc, q.start)
		if c < 0 || (c == 0 && !q.start.GetBefore()) {
			return false
		}
	}
	if q.end != nil {
		c := q.compareCursor(doc, q.end)
		if c > 0 || (c == 0 && q.end.GetBefore()) {
			return false
		}
	}
	return true
}

func (q *compiledQuery) matches(doc *pb.Document) bool {
	for _, o := range q.orders {
		if o.path != nil {
			if _, ok := getField(doc.Fields, o.path); !ok {
				return false
			}
		}
	}
	return (q.where == nil || q.where.matches(doc)) && q.inRange(doc)
}

func (q *compiledQuery) candidates(d *database) []*docEntry {
	if !q.allDescendants {
		m := d.byColl[q.parent+"/"+q.collectionID]
		out := make([]*docEntry, 0, len(m))
		for _, e := range m {
			out = append(out, e)
		}
		return out
	}
	prefix := q.parent + "/"
	var out []*docEntry
	for full, e := range d.docs {
		if strings.HasPrefix(full, prefix) && (q.collectionID == "" || e.name.collectionID() == q.collectionID) {
			out = append(out, e)
		}
	}
	return out
}

// runLocked evaluates the query at snap. Callers hold s.mu.
func (q *compiledQuery) runLocked(s *store, snap time.Time) []*pb.Document {
	d := s.dbLocked(q.db)
	if d == nil {
		return nil
	}
	var docs []*pb.Document
	for _, e := range q.candidates(d) {
		if doc := e.at(snap); doc != nil && q.matches(doc) {
			docs = append(docs, doc)
		}
	}
	slices.SortFunc(docs, q.compareDocs)
	if q.offset >= len(docs) {
		return nil
	}
	docs = docs[q.offset:]
	if q.limit >= 0 && q.limit < len(docs) {
		docs = docs[:q.limit]
	}
	return docs
}

// projectDoc applies the query's select clause.
func (q *compiledQuery) projectDoc(doc *pb.Document) *pb.Document {
	if !q.project {
		return doc
	}
	out := &pb.Document{Name: doc.Name, CreateTime: doc.CreateTime, UpdateTime: doc.UpdateTime, Fields: map[string]*pb.Value{}}
	for _, p := range q.projection {
		if v, ok := getField(doc.Fields, p); ok {
			setField(out.Fields, p, proto.Clone(v).(*pb.Value))
		}
	}
	return out
}
