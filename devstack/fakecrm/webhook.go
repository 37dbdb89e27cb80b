package fakecrm

import (
	"encoding/json"
	"net/http"
	"strings"
)

// idemEntry is the stored answer to one Idempotency-Key.
type idemEntry struct {
	status int
	body   map[string]any
}

// webhook is POST /webhook: a generic CRM that accepts the normalized event and upserts a
// record keyed by identity.contact_external_id (or the lowercased email, or the phone). The
// Idempotency-Key header is required; a repeated key gets the first answer again with
// Idempotent-Replayed: true.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Idempotency-Key header is required", "code": "MISSING_IDEMPOTENCY_KEY"})
		return
	}
	var ev struct {
		Identity struct {
			ContactExternalID string `json:"contact_external_id"`
			Email             string `json:"email"`
			PhoneE164         string `json:"phone_e164"`
		} `json:"identity"`
		Attributes map[string]string `json:"attributes"`
		Routing    struct {
			Object string `json:"object"`
			Mode   string `json:"mode"`
		} `json:"routing"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid JSON", "code": "INVALID_JSON"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.idem[key]; ok {
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, e.status, e.body)
		return
	}
	id := ev.Identity
	field, value := "external_id", id.ContactExternalID
	switch {
	case value != "":
	case id.Email != "":
		field, value = "email", strings.ToLower(id.Email)
	case id.PhoneE164 != "":
		field, value = "phone", id.PhoneE164
	}
	answer := func(status int, body map[string]any) {
		if status < 500 && status != http.StatusTooManyRequests {
			s.idem[key] = idemEntry{status: status, body: body}
		}
		writeJSON(w, status, body)
	}
	if value == "" {
		answer(http.StatusUnprocessableEntity, map[string]any{"error": "no identity", "code": "NO_IDENTITY"})
		return
	}
	if id.Email != "" && !validEmail(id.Email) {
		answer(http.StatusUnprocessableEntity, map[string]any{"error": "invalid email", "code": "INVALID_EMAIL"})
		return
	}
	object := ev.Routing.Object
	if object == "" {
		object = "lead"
	}
	if ev.Routing.Mode == "update_only" && len(s.find(SystemWebhook, object, field, value)) == 0 {
		answer(http.StatusNotFound, map[string]any{"error": "no such record", "code": "NOT_FOUND"})
		return
	}
	fields := map[string]any{}
	for k, v := range ev.Attributes {
		fields[k] = v
	}
	if id.Email != "" {
		fields["email"] = id.Email
	}
	if id.PhoneE164 != "" {
		fields["phone"] = id.PhoneE164
	}
	rec, created := s.upsert(SystemWebhook, object, field, value, fields)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	answer(status, map[string]any{"id": rec.ID, "created": created})
}
