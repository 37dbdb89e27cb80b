package telemetry

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Client describes one outbound HTTP client for ClientTransport.
type Client struct {
	// Name starts every span name ("crm salesforce", "meta graph").
	Name string
	// Routes are the request patterns the client sends, in http.ServeMux syntax
	// ("PATCH /services/data/{version}/sobjects/{object}/{field}/{value}"). A request that
	// matches one is traced with the pattern's path as its route template; a request that
	// matches none is traced with no path at all.
	Routes []string
	// Attributes are added to every span.
	Attributes []attribute.KeyValue
}

// ClientTransport wraps base (nil: http.DefaultTransport) so that every request is an
// OpenTelemetry client span, child of the span in the request's context, with W3C trace
// headers sent along, that records the scheme, host, method, status and a route template, and
// never the request's path or query: whatever a caller put there (an email in a path, a
// token in a query) stays out of span names, attributes (url.full included) and otelhttp's
// metrics. It is the one construction of outbound HTTP tracing in the services; redaction is
// a property of it, not of call sites.
//
// The span is named "<Name> <METHOD> <template>" ("<Name> <METHOD>" when no route matched) and
// carries url.template. Credentials belong in headers, which are never recorded.
func ClientTransport(base http.RoundTripper, c Client) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	routes := http.NewServeMux()
	for _, p := range c.Routes {
		routes.Handle(p, http.NotFoundHandler())
	}
	traced := otelhttp.NewTransport(restoreURL{base},
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if t := templateOf(r.Context()); t != "" {
				return c.Name + " " + r.Method + " " + t
			}
			return c.Name + " " + r.Method
		}),
		otelhttp.WithSpanOptions(trace.WithAttributes(c.Attributes...)),
		otelhttp.WithPropagators(Propagator()),
	)
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		tmpl := ""
		if len(c.Routes) > 0 {
			if _, p := routes.Handler(r); p != "" {
				tmpl = routeOf(p)
			}
		}
		ctx := context.WithValue(r.Context(), realURLKey{}, r.URL)
		ctx = context.WithValue(ctx, templateKey{}, tmpl)
		shown := r.Clone(ctx)
		// What otelhttp sees, and so what it records as url.full: scheme, host and the template.
		shown.URL = &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: tmpl}
		if shown.Host == "" {
			shown.Host = r.URL.Host
		}
		return traced.RoundTrip(shown)
	})
}

// restoreURL is the transport under otelhttp: it puts the real URL back before sending, and
// labels the client span (now in the context) with the route template.
type restoreURL struct{ base http.RoundTripper }

func (t restoreURL) RoundTrip(r *http.Request) (*http.Response, error) {
	real, ok := r.Context().Value(realURLKey{}).(*url.URL)
	if !ok {
		return t.base.RoundTrip(r)
	}
	if tmpl := templateOf(r.Context()); tmpl != "" {
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("url.template", tmpl))
	}
	sent := r.Clone(r.Context())
	sent.URL = real
	return t.base.RoundTrip(sent)
}

type realURLKey struct{}
type templateKey struct{}

func templateOf(ctx context.Context) string {
	s, _ := ctx.Value(templateKey{}).(string)
	return s
}

// RedactURL is u as it may appear in logs and error messages: scheme and host only.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

// StripURLError replaces a *url.Error in err (what http.Client.Do returns) by its operation
// and cause, so that the request URL (which may carry ids taken from lead data) never reaches
// a log line, a span status or a stored failure reason. Other errors are returned as is.
func StripURLError(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	return &url.Error{Op: ue.Op, URL: RedactURL(mustParse(ue.URL)), Err: ue.Err}
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	if !strings.Contains(s, "://") {
		return &url.URL{}
	}
	return u
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
