package replay

import (
	"errors"
	"testing"

	"github.com/leadpipe/leadpipe/common/store"
)

func TestDecideReplay(t *testing.T) {
	open := &store.DLQRecord{Status: store.DLQOpen}
	tests := []struct {
		name    string
		rec     *store.DLQRecord
		state   store.State
		noDoc   bool
		force   bool
		want    string
		wantErr error
	}{
		{"quarantined", open, store.StateQuarantined, false, false, "", nil},
		{"succeeded", open, store.StateSucceeded, false, false, OutcomeAlreadySucceeded, nil},
		{"succeeded forced", open, store.StateSucceeded, false, true, OutcomeAlreadySucceeded, nil},
		{"in flight", open, store.StateReceived, false, false, OutcomeInFlight, nil},
		{"in flight forced", open, store.StateProcessing, false, true, "", nil},
		{"event discarded", open, store.StateDiscarded, false, false, "", ErrDiscarded},
		{"record discarded", &store.DLQRecord{Status: store.DLQDiscarded}, store.StateQuarantined, false, false, "", ErrDiscarded},
		{"no event", open, "", true, false, "", ErrNoEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc *store.EventDoc
			if !tc.noDoc {
				doc = &store.EventDoc{State: tc.state}
			}
			got, err := decideReplay(tc.rec, doc, tc.force)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("got %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestDecideDiscard(t *testing.T) {
	open := &store.DLQRecord{Status: store.DLQOpen}
	for _, tc := range []struct {
		state   store.State
		want    string
		wantErr error
	}{
		{store.StateQuarantined, "", nil},
		{store.StateFailed, "", nil},
		{store.StateSucceeded, "", ErrSucceeded},
		{store.StateReceived, "", ErrInFlight},
	} {
		got, err := decideDiscard(open, &store.EventDoc{State: tc.state}, false)
		if got != tc.want || !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.state, got, err, tc.want, tc.wantErr)
		}
	}
	if got, _ := decideDiscard(&store.DLQRecord{Status: store.DLQDiscarded}, nil, false); got != OutcomeAlreadyDiscarded {
		t.Errorf("already discarded: %q", got)
	}
}
