package fakecrm

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// The HTTP control API, for tests in other processes and for operators of a local stack:
//
//	GET  /_control/records              every record (JSON array of Record)
//	POST /_control/records              seed a Record as is (see Seed)
//	GET  /_control/creates[?key=K]      create counts: {"key":K,"count":N} or {K:N,...}
//	GET  /_control/calls                every CRM request answered (JSON array of Call)
//	GET  /_control/faults               the standing Faults
//	PUT  /_control/faults               replace the standing Faults (JSON Faults)
//	POST /_control/fail                 queue a one-shot Failure (JSON Failure)
//	POST /_control/expire-tokens        invalidate issued Salesforce tokens
//	PUT  /_control/meta/leads/{id}      set the Graph API lead body for a leadgen id
//	DELETE /_control/meta/leads/{id}    make the lead gone (code 100 subcode 33)
//	GET  /_control/meta/faults          the Graph API faults
//	PUT  /_control/meta/faults          replace the Graph API faults (JSON MetaFaults)
//	GET  /_control/account-limit        the account limit and its counts (JSON AccountStats)
//	PUT  /_control/account-limit        set each system's: {"per_sec":R} (0 removes it); restarts the counts
//	POST /_control/reset                forget everything (Reset)
func (s *Server) controlRoutes() {
	s.accountRoutes()
	s.mux.HandleFunc("GET /_control/records", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Records())
	})
	s.mux.HandleFunc("POST /_control/records", func(w http.ResponseWriter, r *http.Request) {
		var rec Record
		if !decode(w, r, &rec) {
			return
		}
		writeJSON(w, http.StatusCreated, s.Seed(rec))
	})
	s.mux.HandleFunc("GET /_control/creates", func(w http.ResponseWriter, r *http.Request) {
		if k := r.URL.Query().Get("key"); k != "" {
			writeJSON(w, http.StatusOK, map[string]any{"key": k, "count": s.CreateCount(k)})
			return
		}
		writeJSON(w, http.StatusOK, s.CreateCounts())
	})
	s.mux.HandleFunc("GET /_control/calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Calls())
	})
	s.mux.HandleFunc("GET /_control/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	s.mux.HandleFunc("PUT /_control/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if !decode(w, r, &f) {
			return
		}
		s.SetFaults(f)
		writeJSON(w, http.StatusOK, s.Faults())
	})
	s.mux.HandleFunc("POST /_control/fail", func(w http.ResponseWriter, r *http.Request) {
		var f Failure
		if !decode(w, r, &f) {
			return
		}
		if f.Status < 100 || f.Status > 599 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "status must be an HTTP status"})
			return
		}
		s.FailNext(f)
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("POST /_control/expire-tokens", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("PUT /_control/meta/leads/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !json.Valid(b) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON"})
			return
		}
		s.SetMetaLead(r.PathValue("id"), b)
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("DELETE /_control/meta/leads/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.DeleteMetaLead(r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("GET /_control/meta/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.MetaFaults())
	})
	s.mux.HandleFunc("PUT /_control/meta/faults", func(w http.ResponseWriter, r *http.Request) {
		var f MetaFaults
		if !decode(w, r, &f) {
			return
		}
		s.SetMetaFaults(f)
		writeJSON(w, http.StatusOK, s.MetaFaults())
	})
	s.mux.HandleFunc("POST /_control/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + strings.TrimSpace(err.Error())})
		return false
	}
	return true
}
