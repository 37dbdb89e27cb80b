package fakecrm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// SetMetaLead makes GET /{version}/{leadgen_id} answer body (the Graph API lead object, shaped
// like shared/fixtures/meta_graph_lead.json).
func (s *Server) SetMetaLead(leadgenID string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metaLeads[leadgenID] = append([]byte(nil), body...)
}

// metaLead is the Graph API lead read. A seeded lead is returned as is; any other numeric id
// gets a generated lead so a local stack works without seeding; a non-numeric id is the
// Graph API's "unsupported get request" (400, code 100).
func (s *Server) metaLead(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("leadgen_id")
	if !strings.HasPrefix(r.PathValue("version"), "v") || strings.Trim(id, "0123456789") != "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
			"message": "Unsupported get request.", "type": "GraphMethodException", "code": 100}})
		return
	}
	s.mu.Lock()
	body, ok := s.metaLeads[id]
	s.mu.Unlock()
	if ok {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	}
	type field struct {
		Name   string   `json:"name"`
		Values []string `json:"values"`
	}
	lead := map[string]any{
		"id": id, "created_time": time.Now().UTC().Format("2006-01-02T15:04:05-0700"),
		"ad_id": "238400000000001", "form_id": "555100000000001",
		"field_data": []field{
			{Name: "full_name", Values: []string{"Lead " + id}},
			{Name: "email", Values: []string{fmt.Sprintf("lead-%s@example.com", id)}},
			{Name: "company_name", Values: []string{"Company " + id}},
		},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(lead)
}
