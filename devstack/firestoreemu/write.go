package firestoreemu

import (
	"math"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// preparedWrite is a validated pb.Write with its paths parsed.
type preparedWrite struct {
	w          *pb.Write
	name       docName
	full       string
	mask       [][]string // nil: replace the whole document
	transforms []fieldTransform
	del        bool
	transform  bool // legacy transform-only write
}

type fieldTransform struct {
	path []string
	t    *pb.DocumentTransform_FieldTransform
}

func prepareWrites(db string, ws []*pb.Write) ([]*preparedWrite, error) {
	out := make([]*preparedWrite, 0, len(ws))
	for _, w := range ws {
		pw, err := prepareWrite(w)
		if err != nil {
			return nil, err
		}
		if pw.name.db != db {
			return nil, invalidArg("write to %q is outside database %q", pw.full, db)
		}
		out = append(out, pw)
	}
	return out, nil
}

func prepareWrite(w *pb.Write) (*preparedWrite, error) {
	pw := &preparedWrite{w: w}
	var name string
	var transforms []*pb.DocumentTransform_FieldTransform
	switch op := w.GetOperation().(type) {
	case *pb.Write_Update:
		name = op.Update.GetName()
		if err := validateFields(op.Update.GetFields(), 0); err != nil {
			return nil, err
		}
		if m := w.GetUpdateMask(); m != nil {
			pw.mask = [][]string{}
			for _, p := range m.GetFieldPaths() {
				segs, err := parseFieldPath(p)
				if err != nil {
					return nil, err
				}
				pw.mask = append(pw.mask, segs)
			}
		}
		transforms = w.GetUpdateTransforms()
	case *pb.Write_Delete:
		name = op.Delete
		pw.del = true
		if w.GetUpdateMask() != nil || len(w.GetUpdateTransforms()) > 0 {
			return nil, invalidArg("a delete cannot have an update mask or transforms")
		}
	case *pb.Write_Transform:
		name = op.Transform.GetDocument()
		pw.transform = true
		transforms = op.Transform.GetFieldTransforms()
	default:
		return nil, invalidArg("write has no operation")
	}
	n, err := parseDocName(name)
	if err != nil {
		return nil, err
	}
	pw.name, pw.full = n, n.full()
	for _, t := range transforms {
		segs, err := parseFieldPath(t.GetFieldPath())
		if err != nil {
			return nil, err
		}
		if err := validateTransform(t); err != nil {
			return nil, err
		}
		pw.transforms = append(pw.transforms, fieldTransform{path: segs, t: t})
	}
	return pw, nil
}

func validateTransform(t *pb.DocumentTransform_FieldTransform) error {
	switch x := t.GetTransformType().(type) {
	case *pb.DocumentTransform_FieldTransform_SetToServerValue:
		if x.SetToServerValue != pb.DocumentTransform_FieldTransform_REQUEST_TIME {
			return invalidArg("unknown server value")
		}
	case *pb.DocumentTransform_FieldTransform_Increment:
		if !isNumber(x.Increment) {
			return invalidArg("increment must be a number")
		}
	case *pb.DocumentTransform_FieldTransform_Maximum:
		if !isNumber(x.Maximum) {
			return invalidArg("maximum must be a number")
		}
	case *pb.DocumentTransform_FieldTransform_Minimum:
		if !isNumber(x.Minimum) {
			return invalidArg("minimum must be a number")
		}
	case *pb.DocumentTransform_FieldTransform_AppendMissingElements:
		return validateValue(&pb.Value{ValueType: &pb.Value_ArrayValue{ArrayValue: x.AppendMissingElements}}, 0)
	case *pb.DocumentTransform_FieldTransform_RemoveAllFromArray:
		return validateValue(&pb.Value{ValueType: &pb.Value_ArrayValue{ArrayValue: x.RemoveAllFromArray}}, 0)
	default:
		return invalidArg("field transform has no type")
	}
	return nil
}

// apply computes the document after this write. cur is never modified.
func (pw *preparedWrite) apply(cur *pb.Document, ts *timestamppb.Timestamp) (*pb.Document, *pb.WriteResult, error) {
	if err := checkPrecondition(pw, cur); err != nil {
		return nil, nil, err
	}
	wr := &pb.WriteResult{UpdateTime: ts}
	if pw.del {
		return nil, wr, nil
	}
	next := &pb.Document{Name: pw.full, CreateTime: ts}
	if cur != nil {
		next.CreateTime = cur.CreateTime
	}
	switch {
	case pw.transform || pw.mask != nil:
		next.Fields = cloneFields(cur.GetFields())
		upd := pw.w.GetUpdate().GetFields()
		for _, p := range pw.mask {
			if v, ok := getField(upd, p); ok {
				setField(next.Fields, p, proto.Clone(v).(*pb.Value))
			} else {
				deleteField(next.Fields, p)
			}
		}
	default:
		next.Fields = cloneFields(pw.w.GetUpdate().GetFields())
	}
	for _, ft := range pw.transforms {
		old, _ := getField(next.Fields, ft.path)
		nv, result := applyTransform(ft.t, old, ts)
		setField(next.Fields, ft.path, nv)
		wr.TransformResults = append(wr.TransformResults, result)
	}
	return next, wr, nil
}

func checkPrecondition(pw *preparedWrite, cur *pb.Document) error {
	pc := pw.w.GetCurrentDocument()
	if pc == nil {
		return nil
	}
	switch c := pc.GetConditionType().(type) {
	case *pb.Precondition_Exists:
		if c.Exists && cur == nil {
			return notFound("No document to update: %s", pw.full)
		}
		if !c.Exists && cur != nil {
			return alreadyExists("Document already exists: %s", pw.full)
		}
	case *pb.Precondition_UpdateTime:
		if cur == nil {
			return notFound("No document to update: %s", pw.full)
		}
		if !proto.Equal(cur.UpdateTime, c.UpdateTime) {
			return failedPrecondition("the stored version (%s) does not match the required base version (%s)",
				cur.UpdateTime.AsTime().Format("2006-01-02T15:04:05.000000Z"), c.UpdateTime.AsTime().Format("2006-01-02T15:04:05.000000Z"))
		}
	}
	return nil
}

func cloneFields(f map[string]*pb.Value) map[string]*pb.Value {
	out := make(map[string]*pb.Value, len(f))
	for k, v := range f {
		out[k] = proto.Clone(v).(*pb.Value)
	}
	return out
}

// applyTransform returns the new field value and the transform result.
func applyTransform(t *pb.DocumentTransform_FieldTransform, old *pb.Value, ts *timestamppb.Timestamp) (*pb.Value, *pb.Value) {
	switch x := t.GetTransformType().(type) {
	case *pb.DocumentTransform_FieldTransform_SetToServerValue:
		v := &pb.Value{ValueType: &pb.Value_TimestampValue{TimestampValue: ts}}
		return v, v
	case *pb.DocumentTransform_FieldTransform_Increment:
		v := increment(old, x.Increment)
		return v, v
	case *pb.DocumentTransform_FieldTransform_Maximum:
		v := extremum(old, x.Maximum, 1)
		return v, v
	case *pb.DocumentTransform_FieldTransform_Minimum:
		v := extremum(old, x.Minimum, -1)
		return v, v
	case *pb.DocumentTransform_FieldTransform_AppendMissingElements:
		elems := arrayOf(old)
		for _, e := range x.AppendMissingElements.GetValues() {
			if !containsValue(elems, e) {
				elems = append(elems, proto.Clone(e).(*pb.Value))
			}
		}
		return arrayValue(elems), nullValue()
	case *pb.DocumentTransform_FieldTransform_RemoveAllFromArray:
		var kept []*pb.Value
		for _, e := range arrayOf(old) {
			if !containsValue(x.RemoveAllFromArray.GetValues(), e) {
				kept = append(kept, e)
			}
		}
		return arrayValue(kept), nullValue()
	}
	return old, nullValue()
}

func arrayOf(v *pb.Value) []*pb.Value {
	if a, ok := v.GetValueType().(*pb.Value_ArrayValue); ok {
		return append([]*pb.Value(nil), a.ArrayValue.GetValues()...)
	}
	return nil
}

func arrayValue(vs []*pb.Value) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_ArrayValue{ArrayValue: &pb.ArrayValue{Values: vs}}}
}

func containsValue(vs []*pb.Value, v *pb.Value) bool {
	for _, e := range vs {
		if valuesEqual(e, v) {
			return true
		}
	}
	return false
}

func increment(old, by *pb.Value) *pb.Value {
	if !isNumber(old) {
		return proto.Clone(by).(*pb.Value)
	}
	oi, oInt := old.GetValueType().(*pb.Value_IntegerValue)
	bi, bInt := by.GetValueType().(*pb.Value_IntegerValue)
	if oInt && bInt {
		a, b := oi.IntegerValue, bi.IntegerValue
		sum := a + b
		switch {
		case a > 0 && b > 0 && sum < 0:
			sum = math.MaxInt64
		case a < 0 && b < 0 && sum >= 0:
			sum = math.MinInt64
		}
		return intValue(sum)
	}
	return doubleValue(asFloat(old) + asFloat(by))
}

func asFloat(v *pb.Value) float64 {
	if i, ok := v.GetValueType().(*pb.Value_IntegerValue); ok {
		return float64(i.IntegerValue)
	}
	return v.GetDoubleValue()
}

// extremum implements maximum (sign 1) and minimum (sign -1): equal operands
// keep the stored value; NaN wins.
func extremum(old, in *pb.Value, sign int) *pb.Value {
	if !isNumber(old) {
		return proto.Clone(in).(*pb.Value)
	}
	if isNaN(old) {
		return old
	}
	if isNaN(in) {
		return proto.Clone(in).(*pb.Value)
	}
	if compareNumbers(in, old)*sign > 0 {
		return proto.Clone(in).(*pb.Value)
	}
	return old
}
