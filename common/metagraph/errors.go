package metagraph

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/leadpipe/leadpipe/common/failure"
)

// ErrNotFound: the lead or form does not exist, is no longer readable (Meta keeps leads for 90
// days) or the token may not see it (Graph error code 100, subcode 33; or HTTP 404). It reads
// as failure.Permanent too.
var ErrNotFound = errors.New("graph object not found or expired")

// APIError is a Graph API error answer. It carries codes only: Graph's message text can quote
// ids and parameters, so it is not kept (operators look a code up in Meta's reference).
type APIError struct {
	Status    int    // HTTP status
	Code      int    // error.code
	Subcode   int    // error.error_subcode
	Type      string // error.type, e.g. OAuthException
	Transient bool   // error.is_transient
	FBTraceID string // error.fbtrace_id, for Meta support
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("graph api %d: code %d", e.Status, e.Code)
	if e.Subcode != 0 {
		s += fmt.Sprintf(" subcode %d", e.Subcode)
	}
	if e.Type != "" {
		s += " (" + e.Type + ")"
	}
	if e.FBTraceID != "" {
		s += " fbtrace_id " + e.FBTraceID
	}
	return s
}

// Is makes errors.Is(err, ErrNotFound) true for not-found answers.
func (e *APIError) Is(target error) bool { return target == ErrNotFound && e.notFound() }

func (e *APIError) notFound() bool {
	return e.Status == http.StatusNotFound || (e.Code == 100 && e.Subcode == 33)
}

// Graph error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling).
const (
	codeUnknown            = 1
	codeServiceUnavailable = 2
	codeAppRateLimit       = 4
	codePermission         = 10
	codeUserRateLimit      = 17
	codePageRateLimit      = 32
	codeSessionKeyInvalid  = 102
	codeAccessTokenMissing = 104
	codeAccessToken        = 190
	codeCustomRateLimit    = 613
)

// rateLimited reports the throttling codes: app (4), user (17), page (32), custom (613) and the
// Business Use Case limits 80000..80014 (80005 is lead generation).
func rateLimited(code int) bool {
	switch code {
	case codeAppRateLimit, codeUserRateLimit, codePageRateLimit, codeCustomRateLimit:
		return true
	}
	return code >= 80000 && code <= 80014
}

// authFailure reports the token and permission codes: an operator must fix the token or the
// app's permissions; retrying does not help.
func authFailure(code int) bool {
	switch code {
	case codeAccessToken, codeSessionKeyInvalid, codeAccessTokenMissing, codePermission:
		return true
	}
	return code >= 200 && code <= 299 // permission errors
}

// Classify turns a non-2xx Graph answer into a classified error (a *failure.Error wrapping
// the *APIError):
//
//	auth       code 190 (expired/invalid token), 102, 104, 10, 200-299, or 401/403 without a code
//	retryable  codes 4, 17, 32, 613, 80000-80014 and 429, After from the usage headers;
//	           codes 1, 2, is_transient, 5xx
//	permanent  code 100 subcode 33 or 404 (ErrNotFound), every other 4xx
//
// The answer's body is read (bounded) but not closed.
func Classify(resp *http.Response) error {
	var body struct {
		Error struct {
			Type      string `json:"type"`
			Code      int    `json:"code"`
			Subcode   int    `json:"error_subcode"`
			Transient bool   `json:"is_transient"`
			FBTraceID string `json:"fbtrace_id"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = json.Unmarshal(b, &body) // an undecodable body is classified by status alone
	ae := &APIError{Status: resp.StatusCode, Code: body.Error.Code, Subcode: body.Error.Subcode,
		Type: body.Error.Type, Transient: body.Error.Transient, FBTraceID: body.Error.FBTraceID}
	fe := &failure.Error{Class: failure.Permanent, Code: resp.StatusCode, Message: "meta graph", Err: ae}
	switch {
	case rateLimited(ae.Code) || resp.StatusCode == http.StatusTooManyRequests:
		fe.Class, fe.Message, fe.After = failure.Retryable, "meta graph rate limit", RegainAccess(resp.Header)
	case authFailure(ae.Code) || (ae.Code == 0 && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden)):
		fe.Class, fe.Message = failure.Auth, "meta graph token or permission"
	case ae.notFound():
		fe.Message = "meta graph lead not found or expired"
	case ae.Code == codeUnknown || ae.Code == codeServiceUnavailable || ae.Transient || resp.StatusCode >= 500:
		fe.Class, fe.Message, fe.After = failure.Retryable, "meta graph unavailable", retryAfter(resp.Header)
	}
	return fe
}

// RegainAccess is how long Meta says to wait before calling again: the largest
// estimated_time_to_regain_access (minutes) of X-Business-Use-Case-Usage and X-App-Usage, or
// else Retry-After; 0 when none says.
func RegainAccess(h http.Header) time.Duration {
	var minutes int
	if v := h.Get("X-Business-Use-Case-Usage"); v != "" {
		var buc map[string][]usage
		if json.Unmarshal([]byte(v), &buc) == nil {
			for _, entries := range buc {
				for _, u := range entries {
					minutes = max(minutes, u.EstimatedTimeToRegainAccess)
				}
			}
		}
	}
	if v := h.Get("X-App-Usage"); v != "" {
		var u usage
		if json.Unmarshal([]byte(v), &u) == nil {
			minutes = max(minutes, u.EstimatedTimeToRegainAccess)
		}
	}
	if minutes > 0 {
		return time.Duration(minutes) * time.Minute
	}
	return retryAfter(h)
}

// usage is one entry of Meta's usage headers: percentages of the limit used, and the wait.
type usage struct {
	Type                        string `json:"type"`
	CallCount                   int    `json:"call_count"`
	TotalCPUTime                int    `json:"total_cputime"`
	TotalTime                   int    `json:"total_time"`
	EstimatedTimeToRegainAccess int    `json:"estimated_time_to_regain_access"`
}

func retryAfter(h http.Header) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
