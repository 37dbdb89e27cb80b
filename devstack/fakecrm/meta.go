package fakecrm

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The fake Graph API (Meta Lead Ads):
//
//	GET /{version}/{leadgen_id}        one lead (seeded, or generated for any unseeded numeric id)
//	GET /{version}/{form_id}/leads     the seeded leads of a form, newest first, filtered on
//	                                   time_created (GREATER_THAN, LESS_THAN) and cursor-paged
//	                                   (limit, after; paging.cursors and paging.next)
//
// The token is taken from Authorization: Bearer (or, as Graph also accepts, access_token).
// MetaFaults inject Graph's own failures with Graph's bodies and headers.

// graphTime is the Graph API's created_time layout.
const graphTime = "2006-01-02T15:04:05-0700"

// MetaFaults are the Graph API's failures, separate from the CRM faults so that a test can
// break Graph and not the CRM. The zero value injects nothing.
type MetaFaults struct {
	// ExpiredToken answers every Graph request 400, OAuthException code 190 subcode 463.
	ExpiredToken bool `json:"expired_token"`
	// RateLimit answers the next N Graph requests 400, code 80005 (leadgen Business Use Case
	// limit), with X-Business-Use-Case-Usage and X-App-Usage at 100%.
	RateLimit int `json:"rate_limit"`
	// RegainAccessMin is the estimated_time_to_regain_access (minutes) in those headers.
	RegainAccessMin int `json:"regain_access_min"`
	// Outage answers every Graph request 503, code 2 (service temporarily unavailable).
	Outage bool `json:"outage"`
}

// metaLead is a seeded lead: the body as given and what the listing needs from it.
type metaLead struct {
	body    []byte
	formID  string
	created time.Time
}

// SetMetaLead makes GET /{version}/{leadgen_id} answer body (the Graph API lead object, shaped
// like shared/fixtures/meta_graph_lead.json). A body with form_id and created_time is also
// listed by GET /{version}/{form_id}/leads.
func (s *Server) SetMetaLead(leadgenID string, body []byte) {
	var head struct {
		FormID      string `json:"form_id"`
		CreatedTime string `json:"created_time"`
	}
	_ = json.Unmarshal(body, &head) // a body without them is served but not listed
	created, _ := time.Parse(graphTime, head.CreatedTime)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.metaGone, leadgenID)
	s.metaLeads[leadgenID] = metaLead{body: append([]byte(nil), body...), formID: head.FormID, created: created}
}

// DeleteMetaLead makes the lead gone, as Meta does after 90 days or when the lead is deleted:
// reads answer code 100 subcode 33 and listings leave it out.
func (s *Server) DeleteMetaLead(leadgenID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.metaLeads, leadgenID)
	s.metaGone[leadgenID] = true
}

// SetMetaFaults replaces the Graph API faults.
func (s *Server) SetMetaFaults(f MetaFaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metaFaults = f
}

// MetaFaults returns the Graph API faults (with RateLimit as consumed so far).
func (s *Server) MetaFaults() MetaFaults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metaFaults
}

func graphError(w http.ResponseWriter, status int, typ string, code, subcode int, msg string) {
	e := map[string]any{"message": msg, "type": typ, "code": code, "fbtrace_id": fmt.Sprintf("Fk%d", time.Now().UnixNano()%1e9)}
	if subcode != 0 {
		e["error_subcode"] = subcode
	}
	writeJSON(w, status, map[string]any{"error": e})
}

// metaFault answers a Graph fault and reports whether it did.
func (s *Server) metaFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := &s.metaFaults
	outage, expired, limited, regain := f.Outage, f.ExpiredToken, f.RateLimit > 0, f.RegainAccessMin
	if limited && !outage && !expired {
		f.RateLimit--
	}
	s.mu.Unlock()
	switch {
	case metaToken(r) == "":
		graphError(w, http.StatusBadRequest, "OAuthException", 104, 0, "An access token is required to request this resource.")
	case outage:
		graphError(w, http.StatusServiceUnavailable, "OAuthException", 2, 0, "Service temporarily unavailable")
	case expired:
		graphError(w, http.StatusBadRequest, "OAuthException", 190, 463,
			"Error validating access token: Session has expired on "+time.Now().Add(-time.Hour).UTC().Format(time.RFC1123)+".")
	case limited:
		w.Header().Set("X-App-Usage", fmt.Sprintf(`{"call_count":100,"total_time":40,"total_cputime":31,"estimated_time_to_regain_access":%d}`, regain))
		w.Header().Set("X-Business-Use-Case-Usage", fmt.Sprintf(
			`{"104200000000001":[{"type":"leadgen","call_count":100,"total_cputime":31,"total_time":40,"estimated_time_to_regain_access":%d}]}`, regain))
		graphError(w, http.StatusBadRequest, "OAuthException", 80005, 0, "(#80005) There have been too many leadgen api calls to this Page.")
	default:
		return false
	}
	return true
}

// metaToken is the request's access token: the bearer header, or Graph's access_token parameter.
func metaToken(r *http.Request) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t
	}
	return r.URL.Query().Get("access_token")
}

func unsupportedGet(w http.ResponseWriter, id string) {
	graphError(w, http.StatusBadRequest, "GraphMethodException", 100, 33,
		"Unsupported get request. Object with ID '"+id+"' does not exist, cannot be loaded due to missing permissions, or does not support this operation.")
}

// metaLead is the Graph API lead read. A seeded lead is returned as is; any other numeric id
// gets a generated lead so a local stack works without seeding; a deleted or non-numeric id is
// the Graph API's "unsupported get request" (400, code 100, subcode 33).
func (s *Server) metaLead(w http.ResponseWriter, r *http.Request) {
	if s.metaFault(w, r) {
		return
	}
	id := r.PathValue("leadgen_id")
	s.mu.Lock()
	l, ok := s.metaLeads[id]
	gone := s.metaGone[id]
	s.mu.Unlock()
	if !strings.HasPrefix(r.PathValue("version"), "v") || strings.Trim(id, "0123456789") != "" || gone {
		unsupportedGet(w, id)
		return
	}
	if ok {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(l.body)
		return
	}
	type field struct {
		Name   string   `json:"name"`
		Values []string `json:"values"`
	}
	lead := map[string]any{
		"id": id, "created_time": time.Now().UTC().Format(graphTime),
		"ad_id": "238400000000001", "form_id": "555100000000001",
		"field_data": []field{
			{Name: "full_name", Values: []string{"Lead " + id}},
			{Name: "email", Values: []string{fmt.Sprintf("lead-%s@example.com", id)}},
			{Name: "company_name", Values: []string{"Company " + id}},
		},
	}
	writeJSON(w, http.StatusOK, lead)
}

// metaFormLeads is GET /{version}/{form_id}/leads: the seeded leads of the form, newest first,
// filtered and paged like Graph (limit default 25, max 100; the cursor is opaque).
func (s *Server) metaFormLeads(w http.ResponseWriter, r *http.Request) {
	if s.metaFault(w, r) {
		return
	}
	form := r.PathValue("form_id")
	q := r.URL.Query()
	after, before, err := timeFilter(q.Get("filtering"))
	if err != nil {
		graphError(w, http.StatusBadRequest, "OAuthException", 100, 0, "(#100) "+err.Error())
		return
	}
	limit := 25
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			graphError(w, http.StatusBadRequest, "OAuthException", 100, 0, "(#100) limit must be a positive integer")
			return
		}
		limit = min(limit, 100)
	}
	offset := 0
	if c := q.Get("after"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if _, serr := fmt.Sscanf(string(b), "offset:%d", &offset); err != nil || serr != nil {
			graphError(w, http.StatusBadRequest, "OAuthException", 100, 0, "(#100) invalid cursor")
			return
		}
	}
	type entry struct {
		id string
		l  metaLead
	}
	var all []entry
	s.mu.Lock()
	for id, l := range s.metaLeads {
		if l.formID == form && !l.created.IsZero() && l.created.Unix() > after && (before == 0 || l.created.Unix() < before) {
			all = append(all, entry{id, l})
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if !all[i].l.created.Equal(all[j].l.created) {
			return all[i].l.created.After(all[j].l.created)
		}
		return all[i].id > all[j].id
	})
	offset = min(offset, len(all))
	end := min(offset+limit, len(all))
	data := make([]json.RawMessage, 0, end-offset)
	for _, e := range all[offset:end] {
		data = append(data, e.l.body)
	}
	cursor := func(n int) string { return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "offset:%d", n)) }
	paging := map[string]any{"cursors": map[string]string{"before": cursor(offset), "after": cursor(end)}}
	if end < len(all) {
		nq := url.Values{}
		for k, v := range q {
			if k != "access_token" {
				nq[k] = v
			}
		}
		nq.Set("after", cursor(end))
		paging["next"] = "http://" + r.Host + r.URL.Path + "?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "paging": paging})
}

// timeFilter reads Graph's filtering parameter: time_created GREATER_THAN and LESS_THAN (unix
// seconds; 0 when absent). Other fields are refused, as Graph refuses unknown filters.
func timeFilter(s string) (after, before int64, err error) {
	if s == "" {
		return 0, 0, nil
	}
	var conds []struct {
		Field    string          `json:"field"`
		Operator string          `json:"operator"`
		Value    json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(s), &conds); err != nil {
		return 0, 0, fmt.Errorf("filtering must be a JSON array")
	}
	for _, c := range conds {
		v, err := strconv.ParseInt(strings.Trim(string(c.Value), `"`), 10, 64)
		if c.Field != "time_created" || err != nil {
			return 0, 0, fmt.Errorf("filtering supports time_created with a unix time")
		}
		switch c.Operator {
		case "GREATER_THAN":
			after = v
		case "LESS_THAN":
			before = v
		default:
			return 0, 0, fmt.Errorf("operator %s not supported", c.Operator)
		}
	}
	return after, before, nil
}
