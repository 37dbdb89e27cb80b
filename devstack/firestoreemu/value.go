package firestoreemu

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
)

// Type ranks in Firestore's cross-type order. NaN sorts between booleans
// and the other numbers, so it gets its own rank.
const (
	rankNull = iota
	rankBool
	rankNaN
	rankNumber
	rankTimestamp
	rankString
	rankBytes
	rankReference
	rankGeoPoint
	rankArray
	rankMap
	rankOther // pipeline-only kinds; never stored
)

func typeRank(v *pb.Value) int {
	switch x := v.GetValueType().(type) {
	case *pb.Value_NullValue:
		return rankNull
	case *pb.Value_BooleanValue:
		return rankBool
	case *pb.Value_IntegerValue:
		return rankNumber
	case *pb.Value_DoubleValue:
		if math.IsNaN(x.DoubleValue) {
			return rankNaN
		}
		return rankNumber
	case *pb.Value_TimestampValue:
		return rankTimestamp
	case *pb.Value_StringValue:
		return rankString
	case *pb.Value_BytesValue:
		return rankBytes
	case *pb.Value_ReferenceValue:
		return rankReference
	case *pb.Value_GeoPointValue:
		return rankGeoPoint
	case *pb.Value_ArrayValue:
		return rankArray
	case *pb.Value_MapValue:
		return rankMap
	case nil:
		return rankNull
	}
	return rankOther
}

// compareValues orders two values the way Firestore's indexes do.
func compareValues(a, b *pb.Value) int {
	ra, rb := typeRank(a), typeRank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch ra {
	case rankNull, rankNaN, rankOther:
		return 0
	case rankBool:
		return compareBool(a.GetBooleanValue(), b.GetBooleanValue())
	case rankNumber:
		return compareNumbers(a, b)
	case rankTimestamp:
		ta, tb := a.GetTimestampValue(), b.GetTimestampValue()
		if c := cmp.Compare(ta.GetSeconds(), tb.GetSeconds()); c != 0 {
			return c
		}
		return cmp.Compare(ta.GetNanos(), tb.GetNanos())
	case rankString:
		return strings.Compare(a.GetStringValue(), b.GetStringValue())
	case rankBytes:
		return bytes.Compare(a.GetBytesValue(), b.GetBytesValue())
	case rankReference:
		return compareReferences(a.GetReferenceValue(), b.GetReferenceValue())
	case rankGeoPoint:
		ga, gb := a.GetGeoPointValue(), b.GetGeoPointValue()
		if c := cmp.Compare(ga.GetLatitude(), gb.GetLatitude()); c != 0 {
			return c
		}
		return cmp.Compare(ga.GetLongitude(), gb.GetLongitude())
	case rankArray:
		return compareArrays(a.GetArrayValue().GetValues(), b.GetArrayValue().GetValues())
	case rankMap:
		return compareMaps(a.GetMapValue().GetFields(), b.GetMapValue().GetFields())
	}
	return 0
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// compareNumbers compares integers and doubles by value, exactly, so that
// 1 == 1.0 and large int64s are not rounded through float64.
func compareNumbers(a, b *pb.Value) int {
	ai, aInt := a.GetValueType().(*pb.Value_IntegerValue)
	bi, bInt := b.GetValueType().(*pb.Value_IntegerValue)
	switch {
	case aInt && bInt:
		return cmp.Compare(ai.IntegerValue, bi.IntegerValue)
	case !aInt && !bInt:
		return cmp.Compare(a.GetDoubleValue(), b.GetDoubleValue())
	case aInt:
		return compareIntDouble(ai.IntegerValue, b.GetDoubleValue())
	}
	return -compareIntDouble(bi.IntegerValue, a.GetDoubleValue())
}

func compareIntDouble(i int64, d float64) int {
	if d < -9.223372036854775808e18 {
		return 1
	}
	if d >= 9.223372036854775808e18 {
		return -1
	}
	t := math.Trunc(d)
	if c := cmp.Compare(i, int64(t)); c != 0 {
		return c
	}
	// Same integral part: the fraction decides.
	return cmp.Compare(0, d-t)
}

// compareReferences compares document names segment by segment, so that
// "a/b" sorts before "a/b/c/d" and "a" < "a-b" behaves per segment.
func compareReferences(a, b string) int {
	sa, sb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(sa) && i < len(sb); i++ {
		if c := strings.Compare(sa[i], sb[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(sa), len(sb))
}

func compareArrays(a, b []*pb.Value) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareValues(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func sortedKeys(m map[string]*pb.Value) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func compareMaps(a, b map[string]*pb.Value) int {
	ka, kb := sortedKeys(a), sortedKeys(b)
	for i := 0; i < len(ka) && i < len(kb); i++ {
		if c := strings.Compare(ka[i], kb[i]); c != 0 {
			return c
		}
		if c := compareValues(a[ka[i]], b[kb[i]]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(ka), len(kb))
}

// valuesEqual is Firestore's equality for filters and array transforms:
// numbers compare by value and NaN equals NaN.
func valuesEqual(a, b *pb.Value) bool { return compareValues(a, b) == 0 }

func isNumber(v *pb.Value) bool {
	switch v.GetValueType().(type) {
	case *pb.Value_IntegerValue, *pb.Value_DoubleValue:
		return true
	}
	return false
}

func isNaN(v *pb.Value) bool {
	d, ok := v.GetValueType().(*pb.Value_DoubleValue)
	return ok && math.IsNaN(d.DoubleValue)
}

func nullValue() *pb.Value { return &pb.Value{ValueType: &pb.Value_NullValue{}} }

func intValue(i int64) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_IntegerValue{IntegerValue: i}}
}

func doubleValue(d float64) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_DoubleValue{DoubleValue: d}}
}

// validateValue rejects values that cannot be stored in a document.
func validateValue(v *pb.Value, depth int) error {
	if depth > 20 {
		return invalidArg("value nested too deeply")
	}
	switch x := v.GetValueType().(type) {
	case nil:
		return invalidArg("value has no type")
	case *pb.Value_ReferenceValue:
		if _, err := parseDocName(x.ReferenceValue); err != nil {
			return invalidArg("invalid reference value %q", x.ReferenceValue)
		}
	case *pb.Value_GeoPointValue:
		g := x.GeoPointValue
		if g.GetLatitude() < -90 || g.GetLatitude() > 90 || g.GetLongitude() < -180 || g.GetLongitude() > 180 {
			return invalidArg("invalid geo point")
		}
	case *pb.Value_TimestampValue:
		if err := x.TimestampValue.CheckValid(); err != nil {
			return invalidArg("invalid timestamp: %v", err)
		}
		// Firestore keeps timestamps to the microsecond ("any additional precision is rounded
		// down"), so a nanosecond read back differs from the time written; store them as it does.
		x.TimestampValue.Nanos -= x.TimestampValue.Nanos % 1000
	case *pb.Value_ArrayValue:
		for _, e := range x.ArrayValue.GetValues() {
			if _, nested := e.GetValueType().(*pb.Value_ArrayValue); nested {
				return invalidArg("Cannot convert an array value in an array value.")
			}
			if err := validateValue(e, depth+1); err != nil {
				return err
			}
		}
	case *pb.Value_MapValue:
		return validateFields(x.MapValue.GetFields(), depth+1)
	case *pb.Value_FieldReferenceValue, *pb.Value_FunctionValue, *pb.Value_PipelineValue, *pb.Value_VariableReferenceValue:
		return invalidArg("value type is only valid in pipelines")
	}
	return nil
}

func validateFields(fields map[string]*pb.Value, depth int) error {
	for k, v := range fields {
		if k == "" {
			return invalidArg("empty field name")
		}
		if depth == 0 && strings.HasPrefix(k, "__") && strings.HasSuffix(k, "__") && len(k) > 4 {
			return invalidArg("field name %q is reserved", k)
		}
		if err := validateValue(v, depth); err != nil {
			return err
		}
	}
	return nil
}
