package triage

import (
	_ "embed"
	"net/http"
)

// appJS is the page's one script: local times and the overview's refresh.
//
//go:embed app.js
var appJS []byte

// serveScript serves GET /ui/app.js (no session needed: it holds no data).
func serveScript(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(appJS)
}
