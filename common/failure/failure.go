// Package failure defines the failure classes of the pipeline as typed errors. A class is
// decided once, at the edge that sees the response (a CRM adapter, the store), and read
// everywhere else with errors.As through ClassOf. Never classify by matching error strings.
package failure

import (
	"errors"
	"fmt"
	"time"
)

// Class is a failure class from the design brief.
type Class string

// The failure classes and what the processor does with each.
const (
	// Retryable: timeout, network error, 429, 5xx. Retried in-request, then nacked.
	Retryable Class = "retryable"
	// Conflict: 409, row lock, duplicate external id race, multiple matches. A few retries, then quarantine.
	Conflict Class = "conflict"
	// Permanent: 400, schema mismatch, missing identity, update-only with no match. Quarantine at once.
	Permanent Class = "permanent"
	// Auth: 401/403 after one token refresh. Quarantine and alert.
	Auth Class = "auth"
	// Outage: circuit open after repeated retryable failures. Fail fast; not counted against attempts.
	Outage Class = "outage"
)

// Unknown is the class recorded when nobody gave a reason (a dead-letter message without
// failure attributes, of an event that recorded none). It is never decided, so Valid is false.
const Unknown Class = "unknown"

// Valid reports whether c is one of the known classes.
func (c Class) Valid() bool {
	switch c {
	case Retryable, Conflict, Permanent, Auth, Outage:
		return true
	}
	return false
}

// ErrNoMatch is the cause of a permanent failure of an update-only event that matched no
// record (the CRM answered 404): update-only events never create. The store records it as
// reason no_match (store.ReasonNoMatch). Test with errors.Is.
var ErrNoMatch = errors.New("update-only event and no record matches")

// Error is a classified failure.
type Error struct {
	Class Class
	// Code is the upstream status (HTTP status or gRPC code number) when there is one.
	Code int
	// After is how long the upstream asked us to wait (Retry-After), if it said.
	After time.Duration
	// Message is a short operator-facing description without personal data.
	Message string
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	s := string(e.Class)
	if e.Code != 0 {
		s += fmt.Sprintf(" (%d)", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a classified error.
func New(c Class, code int, msg string) *Error { return &Error{Class: c, Code: code, Message: msg} }

// Wrap classifies err.
func Wrap(c Class, err error, msg string) *Error { return &Error{Class: c, Message: msg, Err: err} }

// ClassOf returns the class of the first *Error in err's chain, and ok=false when err carries
// no class (the caller decides its default; unclassified errors are usually retryable).
func ClassOf(err error) (Class, bool) {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Class, true
	}
	return "", false
}

// Is reports whether err is classified as c.
func Is(err error, c Class) bool {
	got, ok := ClassOf(err)
	return ok && got == c
}

// RetryAfter returns the upstream's requested delay, if err carries one.
func RetryAfter(err error) time.Duration {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.After
	}
	return 0
}
