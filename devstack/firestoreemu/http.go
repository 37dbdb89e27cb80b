package firestoreemu

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// faultRequest is the body of POST /emulator/v1/faults. Each present field
// sets one rule for RPC ("*" for all): {"rpc":"Commit","code":"UNAVAILABLE",
// "next":3}, {"rpc":"*","fraction":0.1,"code":"UNAVAILABLE"},
// {"rpc":"Commit","latency_ms":200}.
type faultRequest struct {
	RPC       string      `json:"rpc"`
	Code      *codes.Code `json:"code"`
	Next      int         `json:"next"`
	Fraction  float64     `json:"fraction"`
	LatencyMS *int64      `json:"latency_ms"`
}

// httpHandler serves the control endpoints:
//
//	GET    /                       200 "Ok" (health check, as Google's emulator)
//	DELETE /emulator/v1/projects/{p}/databases/{d}/documents
//	                               200, drops that database's documents
//	POST   /emulator/v1/faults     200 on success; 400 on a malformed rule
//	DELETE /emulator/v1/faults     200, clears every fault rule
//
// Anything else is 404 (or 405 for a known path with another method).
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Ok\n"))
	})
	mux.HandleFunc("DELETE /emulator/v1/projects/{project}/databases/{database}/documents", func(w http.ResponseWriter, r *http.Request) {
		db := "projects/" + r.PathValue("project") + "/databases/" + r.PathValue("database")
		s.resetDatabase(db)
		s.log.Debug("firestoreemu: reset", "database", db)
		_, _ = w.Write([]byte("{}\n"))
	})
	mux.HandleFunc("POST /emulator/v1/faults", func(w http.ResponseWriter, r *http.Request) {
		var fr faultRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fr); err != nil || fr.RPC == "" || strings.Contains(fr.RPC, "/") {
			http.Error(w, `want {"rpc":"Commit"|"*", "code":"UNAVAILABLE", "next":N | "fraction":F} or {"rpc":..., "latency_ms":MS}`, http.StatusBadRequest)
			return
		}
		if (fr.Next > 0 || fr.Fraction > 0) && fr.Code == nil {
			http.Error(w, "code is required with next or fraction", http.StatusBadRequest)
			return
		}
		if fr.Next > 0 {
			s.faults.FailNext(fr.RPC, fr.Next, *fr.Code)
		}
		if fr.Fraction > 0 {
			s.faults.FailFraction(fr.RPC, fr.Fraction, *fr.Code)
		}
		if fr.LatencyMS != nil {
			s.faults.Latency(fr.RPC, time.Duration(*fr.LatencyMS)*time.Millisecond)
		}
		s.log.Debug("firestoreemu: fault rule", "rpc", fr.RPC)
		_, _ = w.Write([]byte("{}\n"))
	})
	mux.HandleFunc("DELETE /emulator/v1/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.faults.Clear()
		_, _ = w.Write([]byte("{}\n"))
	})
	return mux
}

// resetDatabase drops one database's documents; its open transactions will
// fail validation or find their reads gone, as after a real data wipe.
func (s *Server) resetDatabase(db string) {
	s.store.mu.Lock()
	delete(s.store.dbs, db)
	s.store.mu.Unlock()
}
