package failure_test

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
)

func TestClassOf(t *testing.T) {
	base := &failure.Error{Class: failure.Conflict, Code: 409, Message: "row lock"}
	tests := []struct {
		name      string
		err       error
		wantClass failure.Class
		wantOK    bool
	}{
		{"nil", nil, "", false},
		{"plain", errors.New("boom"), "", false},
		{"sentinel", io.EOF, "", false},
		{"direct", base, failure.Conflict, true},
		{"wrapped once", fmt.Errorf("upsert: %w", base), failure.Conflict, true},
		{"wrapped thrice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", fmt.Errorf("c: %w", base))), failure.Conflict, true},
		{"joined", errors.Join(errors.New("other"), fmt.Errorf("x: %w", base)), failure.Conflict, true},
		{"multi %w", fmt.Errorf("%w and %w", io.EOF, failure.New(failure.Auth, 401, "token")), failure.Auth, true},
		// %v breaks the chain: the class is lost, as it should be.
		{"formatted with %v", fmt.Errorf("upsert: %v", base), "", false},
		{"New", failure.New(failure.Permanent, 400, "bad field"), failure.Permanent, true},
		{"Wrap", failure.Wrap(failure.Retryable, io.ErrUnexpectedEOF, "read"), failure.Retryable, true},
		// The outermost classification wins: an edge may reclassify an inner error.
		{"outer wins", failure.Wrap(failure.Outage, fmt.Errorf("crm: %w", base), "circuit open"), failure.Outage, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := failure.ClassOf(tt.err)
			if got != tt.wantClass || ok != tt.wantOK {
				t.Errorf("ClassOf: got (%q, %v), want (%q, %v)", got, ok, tt.wantClass, tt.wantOK)
			}
			for _, c := range []failure.Class{failure.Retryable, failure.Conflict, failure.Permanent, failure.Auth, failure.Outage} {
				want := tt.wantOK && c == tt.wantClass
				if got := failure.Is(tt.err, c); got != want {
					t.Errorf("Is(%s): got %v, want %v", c, got, want)
				}
			}
		})
	}
}

func TestIsEmptyClass(t *testing.T) {
	// An unclassified error must not count as "class empty".
	if failure.Is(errors.New("x"), "") {
		t.Error(`Is(plain, ""): got true, want false`)
	}
}

func TestUnwrapKeepsCause(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	err := fmt.Errorf("op: %w", failure.Wrap(failure.Retryable, cause, "gcs"))
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(err, cause): got false, want true")
	}
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Err != cause {
		t.Errorf("errors.As: got %+v, want the *failure.Error around the cause", fe)
	}
	if (&failure.Error{Class: failure.Auth}).Unwrap() != nil {
		t.Error("Unwrap of an error without cause: want nil")
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"nil", nil, 0},
		{"plain", errors.New("x"), 0},
		{"no delay", failure.New(failure.Retryable, 503, "busy"), 0},
		{"delay", &failure.Error{Class: failure.Retryable, Code: 429, After: 7 * time.Second}, 7 * time.Second},
		{"wrapped delay", fmt.Errorf("crm: %w", fmt.Errorf("call: %w", &failure.Error{Class: failure.Retryable, Code: 429, After: 1500 * time.Millisecond})), 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failure.RetryAfter(tt.err); got != tt.want {
				t.Errorf("RetryAfter: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *failure.Error
		want string
	}{
		{"class only", &failure.Error{Class: failure.Outage}, "outage"},
		{"code", &failure.Error{Class: failure.Retryable, Code: 503}, "retryable (503)"},
		{"message", &failure.Error{Class: failure.Permanent, Message: "missing identity"}, "permanent: missing identity"},
		{"all", &failure.Error{Class: failure.Auth, Code: 401, Message: "salesforce", Err: errors.New("invalid_grant")}, "auth (401): salesforce: invalid_grant"},
		{"cause only", &failure.Error{Class: failure.Conflict, Err: errors.New("lock")}, "conflict: lock"},
		{"New", failure.New(failure.Permanent, 400, "bad request"), "permanent (400): bad request"},
		{"Wrap", failure.Wrap(failure.Retryable, errors.New("dial tcp: refused"), "crm"), "retryable: crm: dial tcp: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error(): got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClassValid(t *testing.T) {
	tests := []struct {
		c    failure.Class
		want bool
	}{
		{failure.Retryable, true},
		{failure.Conflict, true},
		{failure.Permanent, true},
		{failure.Auth, true},
		{failure.Outage, true},
		{"", false},
		{"Retryable", false},
		{"fatal", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.c), func(t *testing.T) {
			if got := tt.c.Valid(); got != tt.want {
				t.Errorf("%q.Valid(): got %v, want %v", tt.c, got, tt.want)
			}
		})
	}
	// The wire names are fixed (they appear in DLQ records and message attributes).
	for c, want := range map[failure.Class]string{
		failure.Retryable: "retryable", failure.Conflict: "conflict", failure.Permanent: "permanent",
		failure.Auth: "auth", failure.Outage: "outage",
	} {
		if string(c) != want {
			t.Errorf("class name: got %q, want %q", c, want)
		}
	}
}
