package store

import (
	"github.com/leadpipe/leadpipe/common/failure"

	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	firestorepb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/iterator"
)

// UnfinishedStates are the states of events still on their way to the CRM.
var UnfinishedStates = []State{StateReceived, StateProcessing, StateFailed, StateParked}

// CountEvents counts the events in state created at or after since (zero: all), with one
// aggregation query (no documents are read).
func (s *Store) CountEvents(ctx context.Context, state State, since time.Time) (int64, error) {
	q := s.fs.Collection(collEvents).Where("state", "==", string(state))
	if !since.IsZero() {
		q = q.Where("created_at", ">=", since)
	}
	return count(ctx, q, "count events "+string(state))
}

// CountDLQStatus counts the DLQ records of one status and failure class ("" for every class)
// with an aggregation query.
func (s *Store) CountDLQStatus(ctx context.Context, status DLQStatus, class failure.Class) (int64, error) {
	q := s.ops.Collection(collDLQ).Where("status", "==", status)
	if class != "" {
		q = q.Where("failure_class", "==", class)
	}
	return count(ctx, q, "count dlq "+string(status))
}

// CountDLQFilter counts the records a DLQ filter matches (the preview of a bulk action).
func (s *Store) CountDLQFilter(ctx context.Context, f DLQFilter) (int64, error) {
	return count(ctx, s.dlqQuery(f), "count dlq")
}

func count(ctx context.Context, q firestore.Query, op string) (int64, error) {
	res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, classify(err))
	}
	switch v := res["n"].(type) {
	case *firestorepb.Value:
		return v.GetIntegerValue(), nil
	case int64:
		return v, nil
	}
	return 0, fmt.Errorf("%s: unexpected count %T", op, res["n"])
}

// OldestUnfinished returns the unfinished events (UnfinishedStates), oldest first, at most
// limit: the leads an operator should see during an outage, retrying or parked, not only those
// in the DLQ.
func (s *Store) OldestUnfinished(ctx context.Context, limit int) ([]*EventDoc, error) {
	states := make([]string, len(UnfinishedStates))
	for i, st := range UnfinishedStates {
		states[i] = string(st)
	}
	q := s.fs.Collection(collEvents).Where("state", "in", states).OrderBy("created_at", firestore.Asc).Limit(limit)
	return s.queryEvents(ctx, q, "oldest unfinished")
}

// EventTimes is the timing of one event, for throughput buckets.
type EventTimes struct {
	CreatedAt   time.Time
	CompletedAt time.Time
	CRM         string
}

// RecentEvents returns the timing of events created (field "created_at") or completed
// ("completed_at") at or after since, reading only those fields, at most limit; truncated
// reports whether more exist.
func (s *Store) RecentEvents(ctx context.Context, field string, since time.Time, limit int) ([]EventTimes, bool, error) {
	q := s.fs.Collection(collEvents).Select("created_at", "completed_at", "event.routing.crm").
		Where(field, ">=", since).OrderBy(field, firestore.Desc).Limit(limit + 1)
	it := q.Documents(ctx)
	defer it.Stop()
	var out []EventTimes
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("recent events: %w", classify(err))
		}
		if len(out) == limit {
			return out, true, nil
		}
		var d struct {
			CreatedAt   time.Time `firestore:"created_at"`
			CompletedAt time.Time `firestore:"completed_at"`
			Event       struct {
				Routing struct {
					CRM string `firestore:"crm"`
				} `firestore:"routing"`
			} `firestore:"event"`
		}
		if err := snap.DataTo(&d); err != nil {
			return nil, false, fmt.Errorf("decode event %s: %w", snap.Ref.ID, err)
		}
		out = append(out, EventTimes{CreatedAt: d.CreatedAt, CompletedAt: d.CompletedAt, CRM: d.Event.Routing.CRM})
	}
}

// AllCRMHealth reads every CRM's breaker state.
func (s *Store) AllCRMHealth(ctx context.Context) ([]CRMHealth, error) {
	it := s.fs.Collection(collCRMHealth).Documents(ctx)
	defer it.Stop()
	var out []CRMHealth
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("crm health: %w", classify(err))
		}
		var h CRMHealth
		if err := snap.DataTo(&h); err != nil {
			return nil, fmt.Errorf("decode crm health %s: %w", snap.Ref.ID, err)
		}
		out = append(out, h)
	}
}
