package fakecrm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

type hsInput struct {
	IDProperty string         `json:"idProperty"`
	ID         string         `json:"id"`
	Properties map[string]any `json:"properties"`
}

func hsRecord(r *Record, isNew bool) map[string]any {
	props := map[string]any{"hs_object_id": r.ID}
	for k, v := range r.Fields {
		props[k] = v
	}
	return map[string]any{"id": r.ID, "properties": props, "new": isNew,
		"createdAt": r.CreatedAt.Format(time.RFC3339Nano), "updatedAt": r.UpdatedAt.Format(time.RFC3339Nano), "archived": false}
}

func hsError(w http.ResponseWriter, status int, msg string) {
	body := map[string]any{"status": "error", "message": msg, "category": hubspotCategory(status),
		"correlationId": fmt.Sprintf("corr-%d", time.Now().UnixNano())}
	if strings.Contains(msg, "INVALID_EMAIL") {
		// As HubSpot: the invalid property is named in errors[].context.propertyName.
		body["errors"] = []map[string]any{{"message": "Email address is invalid", "code": "INVALID_EMAIL",
			"context": map[string]any{"propertyName": []string{"email"}}}}
	}
	writeJSON(w, status, body)
}

func hsValidate(props map[string]any) string {
	if e, ok := props["email"].(string); ok && !validEmail(e) {
		return "Property values were not valid: [{\"isValid\":false,\"message\":\"Email address is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}]"
	}
	return ""
}

// hsBatchUpsert is POST /crm/v3/objects/{object}/batch/upsert.
func (s *Server) hsBatchUpsert(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Inputs []hsInput `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Inputs) == 0 {
		hsError(w, http.StatusBadRequest, "Invalid input JSON")
		return
	}
	for _, in := range body.Inputs {
		if in.IDProperty == "" || in.ID == "" {
			hsError(w, http.StatusBadRequest, "idProperty and id are required")
			return
		}
		if msg := hsValidate(in.Properties); msg != "" {
			hsError(w, http.StatusBadRequest, msg)
			return
		}
	}
	object := r.PathValue("object")
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make([]map[string]any, 0, len(body.Inputs))
	for _, in := range body.Inputs {
		if in.IDProperty != "email" && in.Properties != nil {
			in.Properties[in.IDProperty] = in.ID
		}
		rec, created := s.upsert(SystemHubSpot, object, in.IDProperty, in.ID, in.Properties)
		results = append(results, hsRecord(rec, created))
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	writeJSON(w, http.StatusOK, map[string]any{"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now})
}

// hsCreate is POST /crm/v3/objects/{object}: a create-only path; 409 when a record with the
// same email exists.
func (s *Server) hsCreate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Properties == nil {
		hsError(w, http.StatusBadRequest, "Invalid input JSON")
		return
	}
	if msg := hsValidate(body.Properties); msg != "" {
		hsError(w, http.StatusBadRequest, msg)
		return
	}
	object := r.PathValue("object")
	email, _ := body.Properties["email"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if email != "" {
		if m := s.find(SystemHubSpot, object, "email", email); len(m) > 0 {
			hsError(w, http.StatusConflict, "Contact already exists. Existing ID: "+m[0].ID)
			return
		}
	}
	field, key := "email", email
	if key == "" {
		field, key = "hs_object_id", fmt.Sprintf("obj-%d", time.Now().UnixNano())
	}
	rec, _ := s.upsert(SystemHubSpot, object, field, key, body.Properties)
	writeJSON(w, http.StatusCreated, hsRecord(rec, true))
}

// hsUpdate is PATCH /crm/v3/objects/{object}/{id}?idProperty=X: 404 when no record matches.
func (s *Server) hsUpdate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		hsError(w, http.StatusBadRequest, "Invalid input JSON")
		return
	}
	if msg := hsValidate(body.Properties); msg != "" {
		hsError(w, http.StatusBadRequest, msg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.hsLookup(r)
	if len(m) == 0 {
		hsError(w, http.StatusNotFound, "Object not found")
		return
	}
	for k, v := range body.Properties {
		m[0].Fields[k] = v
	}
	m[0].Version++
	m[0].UpdatedAt = time.Now().UTC()
	writeJSON(w, http.StatusOK, hsRecord(m[0], false))
}

// hsGet is GET /crm/v3/objects/{object}/{id}?idProperty=X.
func (s *Server) hsGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.hsLookup(r)
	if len(m) == 0 {
		hsError(w, http.StatusNotFound, "Object not found")
		return
	}
	writeJSON(w, http.StatusOK, hsRecord(m[0], false))
}

// hsLookup finds by idProperty (or by record id when absent); callers hold mu.
func (s *Server) hsLookup(r *http.Request) []*Record {
	object, id := r.PathValue("object"), r.PathValue("id")
	if p := r.URL.Query().Get("idProperty"); p != "" {
		return s.find(SystemHubSpot, object, p, id)
	}
	for _, rec := range s.records {
		if rec.System == SystemHubSpot && rec.ID == id {
			return []*Record{rec}
		}
	}
	return nil
}
