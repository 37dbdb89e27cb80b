// Package crm is the processor's contract with a CRM: one small interface, Upserter, that every
// adapter (salesforce, hubspot, webhook) implements, and the composable middlewares (rate
// limit, circuit breaker, retry, enrichment) that wrap it as func(Upserter) Upserter.
//
// Adapters classify every response at the edge into the failure classes of common/failure:
// callers read the class with errors.As (failure.ClassOf), never from error strings.
package crm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/telemetry"
)

// Result is what a successful upsert returns.
type Result struct {
	// RecordID is the CRM's id of the record written (may be empty when the CRM does not say).
	RecordID string
	// RequestID is the CRM's request or correlation id, for support tickets.
	RequestID string
	// StatusCode is the HTTP status of the successful response.
	StatusCode int
	// Created is true when the CRM says the record is new.
	Created bool
}

// Upserter writes one event to a CRM as an upsert by external id, so that repeating a call
// (after a timeout, a crash or a duplicate delivery) never creates a second record. It returns
// a *failure.Error for every failure it can classify; ctx cancellation returns ctx's error.
// Implementations are safe for concurrent use.
type Upserter interface {
	Upsert(ctx context.Context, ev *event.Event) (Result, error)
}

// Func adapts a function to Upserter.
type Func func(ctx context.Context, ev *event.Event) (Result, error)

// Upsert calls f.
func (f Func) Upsert(ctx context.Context, ev *event.Event) (Result, error) { return f(ctx, ev) }

var _ Upserter = Func(nil)

// Middleware wraps an Upserter with one concern.
type Middleware func(Upserter) Upserter

// Chain wraps u with mws; the first middleware is the outermost.
func Chain(u Upserter, mws ...Middleware) Upserter {
	for i := len(mws) - 1; i >= 0; i-- {
		u = mws[i](u)
	}
	return u
}

// ExternalID is the value an event is upserted by: identity.contact_external_id when the
// source gave one, else the event's contact key under the deployment's hasher h (stable, and
// free of personal data).
func ExternalID(ev *event.Event, h *pii.Hasher) string {
	if ev.Identity.ContactExternalID != "" {
		return ev.Identity.ContactExternalID
	}
	return ev.ContactKey(h)
}

// ErrThrottled is the cause of every CRM answer that says the account's rate limit is spent
// (any 429; Salesforce's 403 REQUEST_LIMIT_EXCEEDED): a retryable failure whose cause is
// ErrThrottled makes the rate limiter slow down and pause for its After. Test with errors.Is.
var ErrThrottled = errors.New("crm rate limit exceeded")

// Throttled reports whether err is a CRM's rate-limit answer (its cause is ErrThrottled).
func Throttled(err error) bool { return errors.Is(err, ErrThrottled) }

// ClassifyStatus classifies an HTTP error status that an adapter did not handle specially:
// 408, 429 and 5xx retryable (with Retry-After; 429's cause is ErrThrottled), 401/403 auth,
// 409 conflict, every other status permanent. msg must not contain personal data.
func ClassifyStatus(status int, h http.Header, msg string) *failure.Error {
	if status == http.StatusTooManyRequests {
		return &failure.Error{Class: failure.Retryable, Code: status, After: RetryAfter(h), Message: msg, Err: ErrThrottled}
	}
	c := failure.Permanent
	switch {
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		c = failure.Retryable
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		c = failure.Auth
	case status == http.StatusConflict:
		c = failure.Conflict
	}
	return &failure.Error{Class: c, Code: status, After: RetryAfter(h), Message: msg}
}

// ClassifyTransport classifies an error from http.Client.Do: ctx's own cancellation is
// returned as is; everything else (timeouts, resets, refused connections) is retryable, and
// ambiguous, which is safe because every write is an upsert.
func ClassifyTransport(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w", op, err)
	}
	// http.Client's *url.Error quotes the request URL; the path can carry ids.
	err = telemetry.StripURLError(err)
	msg := op + ": transport error"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = op + ": timeout"
	}
	return &failure.Error{Class: failure.Retryable, Message: msg, Err: err}
}

// RetryAfter parses a Retry-After header (seconds or HTTP date); 0 when absent or invalid.
func RetryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// FieldNames joins the names of the fields a CRM's validation error names, for the failure
// message ("Phone, Email"): at most three, each cut to 64 characters, and only names (letters,
// digits, _ . -), so a CRM that echoes a value in that slot cannot put it in a message.
func FieldNames(names []string) string {
	var out []string
	for _, n := range names {
		if len(out) == 3 {
			break
		}
		n = strings.TrimSpace(n)
		if n == "" || len(n) > 64 || strings.IndexFunc(n, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
		}) >= 0 {
			continue
		}
		out = append(out, n)
	}
	return strings.Join(out, ", ")
}
