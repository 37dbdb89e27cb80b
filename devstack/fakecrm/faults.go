package fakecrm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Faults are the standing faults applied to every CRM request (Salesforce, HubSpot, webhook and
// Meta Graph; never to /_control/ or to the token endpoint, except RejectCredentials). The
// zero value injects nothing. Counters named "next N" count down as requests consume them.
type Faults struct {
	// Outage answers every CRM request 503.
	Outage bool `json:"outage"`
	// ErrorRate is the fraction (0..1) of CRM requests answered 500.
	ErrorRate float64 `json:"error_rate"`
	// Throttle answers the next N CRM requests 429 with Retry-After.
	Throttle int `json:"throttle"`
	// RetryAfterSec is the Retry-After of injected and rate-limit 429s. Default 1.
	RetryAfterSec int `json:"retry_after_sec"`
	// LatencyMS delays every CRM request before it is answered.
	LatencyMS int `json:"latency_ms"`
	// RateLimitPerSec admits this many CRM requests per second (burst of one second's worth)
	// and answers the rest 429. 0 means no limit.
	RateLimitPerSec float64 `json:"rate_limit_per_sec"`
	// AuthFailures answers the next N CRM requests 401 (Salesforce INVALID_SESSION_ID) whatever
	// their token.
	AuthFailures int `json:"auth_failures"`
	// RejectCredentials makes the token endpoint refuse every client (invalid_client) and HubSpot
	// and the webhook refuse every request 401: auth stays broken until cleared.
	RejectCredentials bool `json:"reject_credentials"`
	// ExpireSessions ends every issued Salesforce session when the faults are set, as an expired
	// or revoked session does: the next request with one gets 401 INVALID_SESSION_ID and the
	// client must fetch a new token. It acts once and is not kept (Faults reads it back false).
	// With RejectCredentials that new token is refused too, so a client that held a token
	// fails for good: the demo of an auth failure.
	ExpireSessions bool `json:"expire_sessions"`
	// DailyLimit is the Salesforce API request budget reported in Sforce-Limit-Info; past it
	// requests get 403 REQUEST_LIMIT_EXCEEDED. 0 means 100000 and never enforced.
	DailyLimit int `json:"daily_limit"`
}

// Failure answers the next Count CRM requests (of System, or any when empty) with Status and
// the system's error body for it, with ErrorCode when given (e.g. "INVALID_FIELD",
// "DUPLICATE_VALUE").
type Failure struct {
	System    string `json:"system,omitempty"`
	Count     int    `json:"count"`
	Status    int    `json:"status"`
	ErrorCode string `json:"error_code,omitempty"`
	// Field is the field a validation error (400) names: Salesforce's "fields", HubSpot's
	// errors[].context.propertyName.
	Field string `json:"field,omitempty"`
}

// SetFaults replaces the standing faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.RateLimitPerSec != s.faults.RateLimitPerSec {
		s.bucket = bucket{}
	}
	if f.ExpireSessions {
		s.tokens = map[string]bool{}
		f.ExpireSessions = false
	}
	s.faults = f
}

// Faults returns the standing faults (with counters as consumed so far).
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// FailNext queues a one-shot failure; queued failures are used in order.
func (s *Server) FailNext(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Count <= 0 {
		f.Count = 1
	}
	s.failNext = append(s.failNext, f)
}

// ExpireTokens invalidates every issued Salesforce access token: the next request with one gets
// 401 INVALID_SESSION_ID and the client must fetch a new token.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
}

// bucket is a token bucket refilled at the fault's rate.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(rate float64, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens, b.last = rate, now
	}
	b.tokens += now.Sub(b.last).Seconds() * rate
	if b.tokens > rate {
		b.tokens = rate
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// verdict is what the fault layer decided for one request.
type verdict struct {
	status     int
	code       string
	msg        string
	retryAfter int
	rateLimit  bool
	field      string
}

// crm wraps a CRM endpoint with latency, faults, auth checks and call recording.
func (s *Server) crm(system string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		defer func() {
			s.mu.Lock()
			s.calls = append(s.calls, Call{System: system, Method: r.Method, Path: r.URL.Path, Status: rec.status, At: time.Now().UTC()})
			s.mu.Unlock()
		}()
		s.mu.Lock()
		latency := time.Duration(s.faults.LatencyMS) * time.Millisecond
		s.mu.Unlock()
		if latency > 0 {
			t := time.NewTimer(latency)
			select {
			case <-r.Context().Done():
				t.Stop()
				rec.status = 499
				return
			case <-t.C:
			}
		}
		v := s.decide(system, r)
		if system == SystemSalesforce {
			s.mu.Lock()
			rec.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", s.apiUsed, s.dailyLimit()))
			s.mu.Unlock()
		}
		if v != nil {
			writeError(rec, system, *v)
			return
		}
		rec.Header().Set(requestIDHeader(system), fmt.Sprintf("req-%d", time.Now().UnixNano()))
		h(rec, r)
	}
}

func (s *Server) dailyLimit() int {
	if s.faults.DailyLimit > 0 {
		return s.faults.DailyLimit
	}
	return 100000
}

func requestIDHeader(system string) string {
	if system == SystemHubSpot {
		return "X-HubSpot-Correlation-Id"
	}
	return "X-Request-Id"
}

// decide applies the faults in a fixed order: outage, auth, queued failures, throttle, rate
// limit, account limit, error rate, daily limit. nil means serve the request.
func (s *Server) decide(system string, r *http.Request) *verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	retryAfter := f.RetryAfterSec
	if retryAfter <= 0 {
		retryAfter = 1
	}
	if f.Outage {
		return &verdict{status: http.StatusServiceUnavailable, code: "SERVER_UNAVAILABLE", msg: "service unavailable"}
	}
	if v := s.authVerdict(system, r); v != nil {
		return v
	}
	for i := range s.failNext {
		q := &s.failNext[i]
		if q.System != "" && q.System != system {
			continue
		}
		v := &verdict{status: q.Status, code: q.ErrorCode, msg: http.StatusText(q.Status), retryAfter: retryAfter, field: q.Field}
		if q.Count--; q.Count <= 0 {
			s.failNext = append(s.failNext[:i], s.failNext[i+1:]...)
		}
		return v
	}
	if f.Throttle > 0 {
		f.Throttle--
		return &verdict{status: http.StatusTooManyRequests, code: "REQUEST_LIMIT_EXCEEDED", msg: "too many requests", retryAfter: retryAfter, rateLimit: true}
	}
	if f.RateLimitPerSec > 0 && !s.bucket.take(f.RateLimitPerSec, time.Now()) {
		return &verdict{status: http.StatusTooManyRequests, code: "REQUEST_LIMIT_EXCEEDED", msg: "rate limit exceeded", retryAfter: retryAfter, rateLimit: true}
	}
	if v := s.accountVerdict(system, time.Now()); v != nil {
		return v
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		return &verdict{status: http.StatusInternalServerError, code: "UNKNOWN_EXCEPTION", msg: "internal error"}
	}
	if system == SystemSalesforce {
		s.apiUsed++
		if f.DailyLimit > 0 && s.apiUsed > f.DailyLimit {
			return &verdict{status: http.StatusForbidden, code: "REQUEST_LIMIT_EXCEEDED", msg: "TotalRequests Limit exceeded."}
		}
	}
	return nil
}

// authVerdict checks credentials; callers hold mu.
func (s *Server) authVerdict(system string, r *http.Request) *verdict {
	unauth := &verdict{status: http.StatusUnauthorized, code: "INVALID_SESSION_ID", msg: "Session expired or invalid"}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch system {
	case SystemSalesforce:
		if !s.tokens[token] {
			return unauth
		}
	case SystemHubSpot:
		if token == "" || s.faults.RejectCredentials {
			return unauth
		}
	case SystemWebhook:
		if s.faults.RejectCredentials {
			return unauth
		}
	case SystemMeta:
		// The Graph API takes the token in an Authorization: Bearer header or in the query.
		if token == "" && r.URL.Query().Get("access_token") == "" {
			return &verdict{status: http.StatusBadRequest, code: "190", msg: "An access token is required to request this resource."}
		}
	}
	if system != SystemMeta && s.faults.AuthFailures > 0 {
		s.faults.AuthFailures--
		return unauth
	}
	return nil
}

// writeError answers with the error body each system uses.
func writeError(w http.ResponseWriter, system string, v verdict) {
	h := w.Header()
	if v.status == http.StatusTooManyRequests || v.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(max(v.retryAfter, 1)))
	}
	code := v.code
	if code == "" {
		code = defaultCode(v.status)
	}
	var body any
	switch system {
	case SystemSalesforce:
		fields := []string{}
		if v.field != "" {
			fields = append(fields, v.field)
		}
		body = []map[string]any{{"message": v.msg, "errorCode": code, "fields": fields}}
	case SystemHubSpot:
		m := map[string]any{"status": "error", "message": v.msg, "correlationId": fmt.Sprintf("corr-%d", time.Now().UnixNano()), "category": hubspotCategory(v.status)}
		if v.field != "" {
			m["errors"] = []map[string]any{{"message": v.msg, "code": code, "context": map[string]any{"propertyName": []string{v.field}}}}
		}
		if v.status == http.StatusTooManyRequests {
			m["errorType"] = "RATE_LIMIT"
			m["policyName"] = "SECONDLY"
			h.Set("X-HubSpot-RateLimit-Max", "100")
			h.Set("X-HubSpot-RateLimit-Remaining", "0")
			h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
			h.Set("X-HubSpot-RateLimit-Secondly", "10")
			h.Set("X-HubSpot-RateLimit-Secondly-Remaining", "0")
		}
		body = m
	case SystemMeta:
		body = map[string]any{"error": map[string]any{"message": v.msg, "type": "OAuthException", "code": v.status}}
	default:
		body = map[string]any{"error": v.msg, "code": code}
	}
	writeJSON(w, v.status, body)
}

func defaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_FIELD"
	case http.StatusUnauthorized:
		return "INVALID_SESSION_ID"
	case http.StatusForbidden:
		return "INSUFFICIENT_ACCESS"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "DUPLICATE_VALUE"
	case http.StatusTooManyRequests:
		return "REQUEST_LIMIT_EXCEEDED"
	}
	return "UNKNOWN_EXCEPTION"
}

func hubspotCategory(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "VALIDATION_ERROR"
	case http.StatusUnauthorized:
		return "INVALID_AUTHENTICATION"
	case http.StatusNotFound:
		return "OBJECT_NOT_FOUND"
	case http.StatusConflict:
		return "CONFLICT"
	case http.StatusTooManyRequests:
		return "RATE_LIMITS"
	}
	return "INTERNAL_ERROR"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// InFlight is the number of CRM requests being handled right now (waiting out injected latency
// or being answered): a crash test kills a client while it is above zero.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }
