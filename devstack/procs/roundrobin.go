package procs

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

// RoundRobin is a reverse proxy that sends each request to the next of its backends in turn.
// `devstack up --processes --processors=N` puts one in front of the N processor processes,
// because a Pub/Sub push subscription targets one URL (Cloud Run's load balancer does this in
// the cloud). A backend that does not answer (killed) gets a 502, which Pub/Sub treats as a
// nack and redelivers, as it would a crashed instance's push.
type RoundRobin struct {
	backends []*url.URL
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
}

// NewRoundRobin proxies to the backends' base URLs.
func NewRoundRobin(backends []string) (*RoundRobin, error) {
	rr := &RoundRobin{}
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			return nil, err
		}
		rr.backends = append(rr.backends, u)
	}
	rr.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i := rr.next.Add(1) - 1
			r.SetURL(rr.backends[i%uint64(len(rr.backends))])
			r.Out.Host = r.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "backend unavailable", http.StatusBadGateway)
		},
	}
	return rr, nil
}

// ServeHTTP forwards the request to the next backend.
func (rr *RoundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) { rr.proxy.ServeHTTP(w, r) }
