package fakecrm

import (
	"math"
	"net/http"
	"time"
)

// The account-wide limit: one CRM account's request rate, shared by every caller (every
// processor instance), as Salesforce's and HubSpot's per-account limits are. Each system
// (salesforce, hubspot, webhook) is one account with a limit of its own: a token bucket refilled
// at the limit with a burst of one second's worth, so any 1 s window admits at
// most 2x the rate and any long window the rate plus one second's worth. Above it HubSpot (and
// the webhook) answer 429 with Retry-After and HubSpot's rate-limit headers, Salesforce 403
// [{"errorCode":"REQUEST_LIMIT_EXCEEDED"}] with Sforce-Limit-Info (its daily usage, which
// throttled requests do not consume). Meta Graph requests are not counted.

// AccountStats counts the CRM requests the account limit saw since it was last set.
type AccountStats struct {
	// LimitPerSec is the account's limit; 0 means none (requests are still counted).
	LimitPerSec float64 `json:"limit_per_sec"`
	// Since is when the limit was set (or the stats reset); Now is when the stats were read.
	Since time.Time `json:"since"`
	Now   time.Time `json:"now"`
	// Accepted passed the limit; Throttled were answered 429 (403 for Salesforce).
	Accepted  int64 `json:"accepted"`
	Throttled int64 `json:"throttled"`
	// BySystem splits the counts per system (salesforce, hubspot, webhook).
	BySystem map[string]SystemStats `json:"by_system"`
}

// SystemStats are one system's account-limit counts.
type SystemStats struct {
	Accepted  int64 `json:"accepted"`
	Throttled int64 `json:"throttled"`
}

// ThrottledShare is Throttled / (Accepted + Throttled); 0 without requests.
func (a AccountStats) ThrottledShare() float64 {
	if n := a.Accepted + a.Throttled; n > 0 {
		return float64(a.Throttled) / float64(n)
	}
	return 0
}

// AcceptedPerSec is Accepted over the time from Since to Now.
func (a AccountStats) AcceptedPerSec() float64 {
	if d := a.Now.Sub(a.Since).Seconds(); d > 0 {
		return float64(a.Accepted) / d
	}
	return 0
}

// account is the limit's state; guarded by Server.mu.
type account struct {
	perSec  float64
	buckets map[string]*bucket
	since   time.Time
	systems map[string]*SystemStats
}

// AccountLimit sets each system's account-wide limit to perSec requests per second over all
// callers (0 removes it) and restarts the counts.
func (s *Server) AccountLimit(perSec float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acct = account{perSec: max(perSec, 0), since: time.Now().UTC(), systems: map[string]*SystemStats{}, buckets: map[string]*bucket{}}
}

// AccountStats returns the counts since the limit was last set.
func (s *Server) AccountStats() AccountStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := AccountStats{LimitPerSec: s.acct.perSec, Since: s.acct.since, Now: time.Now().UTC(), BySystem: map[string]SystemStats{}}
	for name, st := range s.acct.systems {
		a.BySystem[name] = *st
		a.Accepted += st.Accepted
		a.Throttled += st.Throttled
	}
	return a
}

// accountVerdict takes one token of the account's bucket for a request of system, or returns
// the system's throttling answer; callers hold mu.
func (s *Server) accountVerdict(system string, now time.Time) *verdict {
	if system == SystemMeta {
		return nil
	}
	if s.acct.systems == nil {
		s.acct.systems = map[string]*SystemStats{}
		s.acct.since = now.UTC()
	}
	st := s.acct.systems[system]
	if st == nil {
		st = &SystemStats{}
		s.acct.systems[system] = st
	}
	if s.acct.buckets == nil {
		s.acct.buckets = map[string]*bucket{}
	}
	b := s.acct.buckets[system]
	if b == nil {
		b = &bucket{}
		s.acct.buckets[system] = b
	}
	if s.acct.perSec <= 0 || b.take(s.acct.perSec, now) {
		st.Accepted++
		return nil
	}
	st.Throttled++
	// Retry-After is whole seconds: the time until the next token, rounded up.
	wait := int(math.Ceil((1 - b.tokens) / s.acct.perSec))
	if system == SystemSalesforce {
		return &verdict{status: http.StatusForbidden, code: "REQUEST_LIMIT_EXCEEDED", msg: "ConcurrentPerOrgLongTxn Limit exceeded.", rateLimit: true}
	}
	return &verdict{status: http.StatusTooManyRequests, code: "REQUEST_LIMIT_EXCEEDED", msg: "account rate limit exceeded", retryAfter: max(wait, 1), rateLimit: true}
}

// accountRoutes serve the account limit over the control API (see control.go).
func (s *Server) accountRoutes() {
	s.mux.HandleFunc("GET /_control/account-limit", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.AccountStats())
	})
	s.mux.HandleFunc("PUT /_control/account-limit", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			PerSec float64 `json:"per_sec"`
		}
		if !decode(w, r, &body) {
			return
		}
		if body.PerSec < 0 || math.IsNaN(body.PerSec) || math.IsInf(body.PerSec, 0) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "per_sec must be a non-negative number"})
			return
		}
		s.AccountLimit(body.PerSec)
		writeJSON(w, http.StatusOK, s.AccountStats())
	})
}
