package telemetry

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Handler wraps a service's *http.ServeMux so that every request is a server span, named
// after the route pattern that served it (otelhttp reads the pattern ServeMux records on the
// request) with the pattern as http.route, or after the method alone when no route matched,
// so unknown paths cannot make span names unbounded. The request context inside mux carries
// the span, so loggers built from it, and publishes made with it, join the trace. opts are
// passed to otelhttp (for example otelhttp.WithPublicEndpoint for endpoints strangers call).
func Handler(mux *http.ServeMux, opts ...otelhttp.Option) http.Handler {
	routed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		// ServeMux records the matched pattern on the request it was given.
		if r.Pattern != "" {
			trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", routeOf(r.Pattern)))
		}
	})
	return otelhttp.NewHandler(routed, "http", opts...)
}

// routeOf is the path part of a ServeMux pattern ("POST example.com/x/{id}" -> "/x/{id}").
func routeOf(pattern string) string {
	if hasMethod(pattern) {
		_, pattern, _ = strings.Cut(pattern, " ")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:]
	}
	return pattern
}

// NameServerSpan names the server span in r's context "METHOD route" and records route as
// http.route, for routers other than ServeMux (gin's c.FullPath()). An empty route (nothing
// matched) leaves the span named after the method alone.
func NameServerSpan(r *http.Request, route string) {
	if route == "" {
		return
	}
	span := trace.SpanFromContext(r.Context())
	span.SetName(r.Method + " " + route)
	span.SetAttributes(attribute.String("http.route", route))
}

// hasMethod reports whether a ServeMux pattern starts with a method ("GET /x").
func hasMethod(pattern string) bool {
	sp := strings.IndexByte(pattern, ' ')
	return sp > 0 && sp < strings.IndexByte(pattern, '/')
}
