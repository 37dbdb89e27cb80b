// Package fakecrm is an in-memory CRM for local runs and tests. It speaks the parts of the
// Salesforce REST API (OAuth2 client-credentials token, upsert and get by external id), the
// HubSpot CRM v3 API (contacts batch upsert, batch update, create, update by unique property) and
// a generic idempotent webhook that the processor's adapters use, plus the Meta Graph lead
// endpoints (GET /{version}/{leadgen_id} to enrich thin Meta Lead Ads events,
// GET /{version}/{form_id}/leads for reconcile; see meta.go).
//
// Like pstest, it has inspection helpers (Records, CreateCount, Calls) and fault injection
// (outage, error rate, 429 with Retry-After, latency, a per-second rate limit, an account-wide
// limit with accepted/throttled counts (account.go), auth failures and token expiry), reachable both from Go and over an HTTP control API under /_control/
// (see control.go). A Server is safe for concurrent use.
package fakecrm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Systems the fake speaks; Record.System and Call.System take these values.
const (
	SystemSalesforce = "salesforce"
	SystemHubSpot    = "hubspot"
	SystemWebhook    = "webhook"
	SystemMeta       = "meta"
)

// Options configure Start.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0" (any free port).
	Addr string
}

// Record is one CRM record.
type Record struct {
	System string `json:"system"`
	Object string `json:"object"`
	// Field is the external id field (Salesforce) or unique property (HubSpot) the record is
	// keyed by; Key is its value.
	Field     string         `json:"field"`
	Key       string         `json:"key"`
	ID        string         `json:"id"`
	Fields    map[string]any `json:"fields"`
	Version   int            `json:"version"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// Call is one request to a CRM endpoint (control requests are not recorded).
type Call struct {
	System string    `json:"system"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
	At     time.Time `json:"at"`
}

// Server is a running fake CRM.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	mux  *http.ServeMux
	done chan struct{}

	mu        sync.Mutex
	records   []*Record
	creates   map[string]int
	calls     []Call
	faults    Faults
	failNext  []Failure
	tokens    map[string]bool
	tokenSeq  int
	tokenHits int
	apiUsed   int
	bucket    bucket
	acct      account
	metaLeads map[string]metaLead
	idem      map[string]idemEntry
	idSeq     int

	metaGone   map[string]bool
	metaFaults MetaFaults

	// inFlight counts CRM requests being handled (latency included); see InFlight.
	inFlight atomic.Int64
}

// Start listens on o.Addr and serves until Close.
func Start(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("fakecrm: listen %s: %w", o.Addr, err)
	}
	s := New()
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener closed under us; Close reports nothing more useful
		}
	}()
	return s, nil
}

// New returns a Server that is not listening: use it as an http.Handler (httptest).
func New() *Server {
	s := &Server{
		mux:       http.NewServeMux(),
		done:      make(chan struct{}),
		creates:   map[string]int{},
		tokens:    map[string]bool{},
		metaLeads: map[string]metaLead{},
		metaGone:  map[string]bool{},
		idem:      map[string]idemEntry{},
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.controlRoutes()
	s.mux.HandleFunc("POST /services/oauth2/token", s.sfToken)
	s.mux.HandleFunc("PATCH /services/data/{version}/sobjects/{object}/{field}/{value}", s.crm(SystemSalesforce, s.sfUpsert))
	s.mux.HandleFunc("GET /services/data/{version}/sobjects/{object}/{field}/{value}", s.crm(SystemSalesforce, s.sfGet))
	s.mux.HandleFunc("POST /crm/v3/objects/{object}/batch/upsert", s.crm(SystemHubSpot, s.hsBatchUpsert))
	s.mux.HandleFunc("POST /crm/v3/objects/{object}/batch/update", s.crm(SystemHubSpot, s.hsBatchUpdate))
	s.mux.HandleFunc("POST /crm/v3/objects/{object}", s.crm(SystemHubSpot, s.hsCreate))
	s.mux.HandleFunc("PATCH /crm/v3/objects/{object}/{id}", s.crm(SystemHubSpot, s.hsUpdate))
	s.mux.HandleFunc("GET /crm/v3/objects/{object}/{id}", s.crm(SystemHubSpot, s.hsGet))
	s.mux.HandleFunc("POST /webhook", s.crm(SystemWebhook, s.webhook))
	s.mux.HandleFunc("GET /{version}/{leadgen_id}", s.crm(SystemMeta, s.metaLead))
	s.mux.HandleFunc("GET /{version}/{form_id}/leads", s.crm(SystemMeta, s.metaFormLeads))
}

// ServeHTTP serves the CRM and control endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Addr is the listener address ("127.0.0.1:PORT"); empty for a Server made with New.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is "http://" + Addr().
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops the listener and waits for the serve loop to end.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// Records returns a copy of every record, ordered by system, object and key.
func (s *Server) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		c := *r
		c.Fields = make(map[string]any, len(r.Fields))
		for k, v := range r.Fields {
			c.Fields[k] = v
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.System != b.System {
			return a.System < b.System
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Key < b.Key
	})
	return out
}

// CreateCount is how many records were ever created with external id (or unique property)
// value key, across systems. More than 1 means a duplicate.
func (s *Server) CreateCount(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates[strings.ToLower(key)]
}

// CreateCounts returns every key's create count.
func (s *Server) CreateCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.creates))
	for k, v := range s.creates {
		out[k] = v
	}
	return out
}

// Calls returns every CRM request answered so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// StatusCount counts answered CRM requests with the given status.
func (s *Server) StatusCount(status int) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Status == status {
			n++
		}
	}
	return n
}

// TokenRequests counts successful and failed calls to the OAuth2 token endpoint.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenHits
}

// Reset forgets records, counts, calls, tokens, seeded Meta leads and faults (Meta's too).
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = nil
	s.creates = map[string]int{}
	s.calls = nil
	s.faults = Faults{}
	s.failNext = nil
	s.tokens = map[string]bool{}
	s.tokenHits = 0
	s.apiUsed = 0
	s.bucket = bucket{}
	s.acct = account{}
	s.metaLeads = map[string]metaLead{}
	s.metaGone = map[string]bool{}
	s.metaFaults = MetaFaults{}
	s.idem = map[string]idemEntry{}
}

// Seed inserts a record as is, without uniqueness checks: seeding two records with the same
// key makes a Salesforce upsert on that key answer 300 (multiple matches). It does not count
// as a create.
func (s *Server) Seed(r Record) Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	if r.ID == "" {
		r.ID = s.newID(r.System)
	}
	if r.Fields == nil {
		r.Fields = map[string]any{}
	}
	r.CreatedAt, r.UpdatedAt, r.Version = now, now, 1
	c := r
	s.records = append(s.records, &c)
	return r
}

// find returns the records matching; callers hold mu.
func (s *Server) find(system, object, field, key string) []*Record {
	var out []*Record
	for _, r := range s.records {
		if r.System == system && strings.EqualFold(r.Object, object) && strings.EqualFold(r.Field, field) &&
			strings.EqualFold(r.Key, key) {
			out = append(out, r)
		}
	}
	return out
}

// upsert creates or updates the one record at (system, object, field, key); callers hold mu
// and have checked there is at most one match.
func (s *Server) upsert(system, object, field, key string, fields map[string]any) (*Record, bool) {
	now := time.Now().UTC()
	if m := s.find(system, object, field, key); len(m) > 0 {
		r := m[0]
		for k, v := range fields {
			r.Fields[k] = v
		}
		r.Version++
		r.UpdatedAt = now
		return r, false
	}
	r := &Record{System: system, Object: object, Field: field, Key: key, ID: s.newID(system),
		Fields: map[string]any{}, Version: 1, CreatedAt: now, UpdatedAt: now}
	for k, v := range fields {
		r.Fields[k] = v
	}
	s.records = append(s.records, r)
	s.creates[strings.ToLower(key)]++
	return r, true
}

func (s *Server) newID(system string) string {
	s.idSeq++
	switch system {
	case SystemSalesforce:
		return fmt.Sprintf("00Q%015d", s.idSeq)
	case SystemHubSpot:
		return fmt.Sprintf("%d", 100000+s.idSeq)
	default:
		return fmt.Sprintf("rec_%06d", s.idSeq)
	}
}
