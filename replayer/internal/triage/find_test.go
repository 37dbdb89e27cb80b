package triage

import (
	"testing"

	"github.com/leadpipe/leadpipe/common/store"
)

func TestDescribeFailureLabel(t *testing.T) {
	tests := []struct {
		state      store.State
		hasFailure bool
		want       string
	}{
		{store.StateQuarantined, true, "Failure"},
		{store.StateFailed, true, "Failure"},
		{store.StateDiscarded, true, "Failure"},
		{store.StateReceived, true, "Last failure"},
		{store.StateProcessing, true, "Last failure"},
		{store.StateSucceeded, true, ""},
		{store.StateReceived, false, ""},
		{store.StateQuarantined, false, ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.state), func(t *testing.T) {
			text, got := describe(tc.state, tc.hasFailure)
			if got != tc.want {
				t.Errorf("describe(%s, %t) label = %q, want %q", tc.state, tc.hasFailure, got, tc.want)
			}
			if text == "" {
				t.Errorf("describe(%s) has no text", tc.state)
			}
		})
	}
}
