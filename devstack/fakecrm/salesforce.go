package fakecrm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// sfToken is the OAuth2 client-credentials token endpoint (/services/oauth2/token).
func (s *Server) sfToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenHits++
	reject := s.faults.RejectCredentials
	s.mu.Unlock()
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "grant type not supported"})
		return
	}
	if reject || r.PostForm.Get("client_id") == "" || r.PostForm.Get("client_secret") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": "invalid client credentials"})
		return
	}
	s.mu.Lock()
	s.tokenSeq++
	tok := fmt.Sprintf("00Dfake!%d.%d", s.tokenSeq, time.Now().UnixNano())
	s.tokens[tok] = true
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token": tok, "instance_url": "http://" + r.Host, "token_type": "Bearer",
		"issued_at": fmt.Sprint(time.Now().UnixMilli()), "id": "http://" + r.Host + "/id/00Dfake/005fake",
	})
}

// sfUpsert is PATCH /services/data/vXX.X/sobjects/{object}/{field}/{value}[?updateOnly=true].
func (s *Server) sfUpsert(w http.ResponseWriter, r *http.Request) {
	object, field, value := r.PathValue("object"), r.PathValue("field"), r.PathValue("value")
	var fields map[string]any
	if err := json.NewDecoder(r.Body).Decode(&fields); err != nil {
		sfError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "The request body is not valid JSON")
		return
	}
	if e, ok := fields["Email"].(string); ok && !validEmail(e) {
		sfError(w, http.StatusBadRequest, "INVALID_EMAIL_ADDRESS", "Email: invalid email address")
		return
	}
	updateOnly := r.URL.Query().Get("updateOnly") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	matches := s.find(SystemSalesforce, object, field, value)
	switch {
	case len(matches) > 1:
		urls := make([]string, 0, len(matches))
		for _, m := range matches {
			urls = append(urls, fmt.Sprintf("/services/data/%s/sobjects/%s/%s", r.PathValue("version"), object, m.ID))
		}
		writeJSON(w, http.StatusMultipleChoices, urls)
		return
	case len(matches) == 0 && updateOnly:
		sfError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	case len(matches) == 0 && strings.EqualFold(object, "Lead"):
		for _, req := range []string{"LastName", "Company"} {
			if v, _ := fields[req].(string); v == "" {
				sfError(w, http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "Required fields are missing: ["+req+"]")
				return
			}
		}
	}
	rec, created := s.upsert(SystemSalesforce, object, field, value, fields)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"id": rec.ID, "success": true, "errors": []any{}, "created": created})
}

// sfGet is GET /services/data/vXX.X/sobjects/{object}/{field}/{value}.
func (s *Server) sfGet(w http.ResponseWriter, r *http.Request) {
	object, field, value := r.PathValue("object"), r.PathValue("field"), r.PathValue("value")
	s.mu.Lock()
	defer s.mu.Unlock()
	matches := s.find(SystemSalesforce, object, field, value)
	switch len(matches) {
	case 0:
		sfError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	case 1:
		out := map[string]any{"Id": matches[0].ID, field: value, "attributes": map[string]string{"type": object}}
		for k, v := range matches[0].Fields {
			out[k] = v
		}
		writeJSON(w, http.StatusOK, out)
	default:
		writeJSON(w, http.StatusMultipleChoices, []string{})
	}
}

func sfError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, []map[string]any{{"message": msg, "errorCode": code, "fields": []string{}}})
}

func validEmail(e string) bool {
	at := strings.LastIndex(e, "@")
	return at > 0 && strings.Contains(e[at:], ".") && !strings.ContainsAny(e, " \t")
}
