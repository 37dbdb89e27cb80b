package store

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
)

// CountOpenDLQ returns how many DLQ records have status open, with an aggregation query: no
// document is transferred and Firestore bills one read per 1000 records counted.
func (s *Store) CountOpenDLQ(ctx context.Context) (int64, error) {
	q := s.ops.Collection(collDLQ).Where("status", "==", DLQOpen)
	res, err := q.NewAggregationQuery().WithCount("open").Get(ctx)
	if err != nil {
		return 0, fmt.Errorf("count open dlq records: %w", classify(err))
	}
	v, ok := res["open"].(*firestorepb.Value)
	if !ok {
		return 0, fmt.Errorf("count open dlq records: no count in %v", res)
	}
	return v.GetIntegerValue(), nil
}
