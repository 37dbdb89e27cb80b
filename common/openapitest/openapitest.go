// Package openapitest checks HTTP exchanges against a service's OpenAPI document in tests, so
// that spec and code cannot drift: every request a handler test sends and every answer the
// service gives is validated with kin-openapi's openapi3filter.
//
// The rules of one exchange (Spec.Check):
//
//   - The route must be in the document, unless the service refused it with 404 or 405 (a test
//     probing an unknown path) or it is one of the paths declared Outside (HTML pages).
//   - A request the document says is invalid (missing security header, wrong content type,
//     bad parameter, body not matching its schema) must be refused with a documented 4xx:
//     accepting it means the document is stricter than the code.
//   - The answer's status must be documented for the operation, and its headers and body must
//     match the documented response.
//
// Servers are not matched: tests run on loopback ports, so routes are found by path alone.
//
// Use Spec.Handler to wrap an in-process http.Handler (violations fail the test), or
// Spec.Proxy in TestMain to put a validating reverse proxy in front of a running service
// (violations are collected and fail the run through Proxy.Verdict).
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Spec is a loaded and validated OpenAPI document with a router over its paths.
type Spec struct {
	Doc     *openapi3.T
	path    string
	router  routers.Router
	outside []string
}

// Option configures a Spec.
type Option func(*Spec)

// Outside declares paths that are deliberately not in the document (HTML pages, static
// files). A pattern ending in "*" is a prefix ("/ui/*"); any other is exact ("/").
func Outside(patterns ...string) Option {
	return func(s *Spec) { s.outside = append(s.outside, patterns...) }
}

// Load reads the document at path, validates it (kin-openapi's full document validation) and
// builds a router over its paths.
func Load(path string, opts ...Option) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("openapitest: load %s: %w", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapitest: %s is not valid OpenAPI: %w", path, err)
	}
	// Route by path only: a shallow copy without servers (tests listen on loopback ports).
	routed := *doc
	routed.Servers = nil
	router, err := gorillamux.NewRouter(&routed)
	if err != nil {
		return nil, fmt.Errorf("openapitest: router for %s: %w", path, err)
	}
	s := &Spec{Doc: doc, path: path, router: router}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// MustLoad is Load that panics on error, for package-level variables and TestMain.
func MustLoad(path string, opts ...Option) *Spec {
	s, err := Load(path, opts...)
	if err != nil {
		panic(err)
	}
	return s
}

func (s *Spec) isOutside(p string) bool {
	for _, o := range s.outside {
		if prefix, ok := strings.CutSuffix(o, "*"); ok {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		} else if p == o {
			return true
		}
	}
	return false
}

// Violation is an exchange that does not match the document.
type Violation struct {
	Method, Path string
	Status       int
	Err          error
}

func (v *Violation) Error() string {
	return fmt.Sprintf("openapi: %s %s answered %d: %v", v.Method, v.Path, v.Status, v.Err)
}

func (v *Violation) Unwrap() error { return v.Err }

// ErrUndocumentedRoute is a route that the document lacks but the service answered.
var ErrUndocumentedRoute = errors.New("route not in the OpenAPI document")

// ErrAcceptedInvalid is a request the document calls invalid that the service did not
// refuse with a 4xx.
var ErrAcceptedInvalid = errors.New("request invalid by the OpenAPI document, but the service did not refuse it with a 4xx")

var options = &openapi3filter.Options{
	IncludeResponseStatus: true,
	SkipSettingDefaults:   true,
	AuthenticationFunc:    authenticate,
}

// authenticate checks the shape the security scheme asks for (a bearer token, an API key
// header or query parameter); whether the credential is good is the service's business.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	ss := in.SecurityScheme
	switch {
	case ss.Type == "http" && strings.EqualFold(ss.Scheme, "bearer"):
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return in.NewError(errors.New("no bearer token"))
		}
	case ss.Type == "apiKey" && ss.In == "header":
		if r.Header.Get(ss.Name) == "" {
			return in.NewError(fmt.Errorf("no %s header", ss.Name))
		}
	case ss.Type == "apiKey" && ss.In == "query":
		if r.URL.Query().Get(ss.Name) == "" {
			return in.NewError(fmt.Errorf("no %s query parameter", ss.Name))
		}
	default:
		return in.NewError(fmt.Errorf("openapitest cannot check security scheme type %q", ss.Type))
	}
	return nil
}

// Check validates one exchange: the request r (its body is reqBody; r.Body is ignored) and
// the answer status, header and body. It returns a *Violation, or nil.
func (s *Spec) Check(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	if r.Method == http.MethodHead || s.isOutside(r.URL.Path) {
		return nil
	}
	fail := func(err error) error {
		return &Violation{Method: r.Method, Path: r.URL.Path, Status: status, Err: err}
	}
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	req.ContentLength = int64(len(reqBody))
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil
		}
		return fail(fmt.Errorf("%w (%v)", ErrUndocumentedRoute, err))
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: options}
	if reqErr := openapi3filter.ValidateRequest(req.Context(), in); reqErr != nil && (status < 400 || status > 499) {
		return fail(fmt.Errorf("%w: %v", ErrAcceptedInvalid, reqErr))
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: options}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		return fail(err)
	}
	return nil
}

// Handler wraps h so that every exchange is checked; a violation fails t (t.Errorf). The
// answer is buffered, then passed on unchanged.
func (s *Spec) Handler(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, err := readBody(r)
		if err != nil {
			t.Errorf("openapitest: read request body: %v", err)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		if err := s.Check(r, reqBody, res.StatusCode, res.Header, rec.Body.Bytes()); err != nil {
			t.Errorf("%v", err)
		}
		copyHeader(w.Header(), res.Header)
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// readBody reads r's body and puts an unread copy back.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}

// Proxy is a validating reverse proxy in front of a running service.
type Proxy struct {
	// URL is the proxy's base URL: use it wherever the service's URL was used.
	URL string
	// Log receives each violation as it happens and Verdict's summary. Default os.Stderr.
	Log io.Writer

	srv        *httptest.Server
	mu         sync.Mutex
	violations []error
}

// Proxy starts a reverse proxy to target (a base URL such as http://127.0.0.1:1234) that
// checks every exchange and records violations. Redirects are passed to the client, not
// followed. Close it when done.
func (s *Spec) Proxy(target string) *Proxy {
	p := &Proxy{Log: os.Stderr}
	tr := &http.Transport{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, err := readBody(r)
		if err != nil {
			http.Error(w, "openapitest: read request body: "+err.Error(), http.StatusBadGateway)
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), bytes.NewReader(reqBody))
		if err != nil {
			http.Error(w, "openapitest: "+err.Error(), http.StatusBadGateway)
			return
		}
		copyHeader(out.Header, r.Header)
		res, err := tr.RoundTrip(out)
		if err != nil {
			http.Error(w, "openapitest: upstream: "+err.Error(), http.StatusBadGateway)
			return
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			http.Error(w, "openapitest: upstream body: "+err.Error(), http.StatusBadGateway)
			return
		}
		if err := s.Check(r, reqBody, res.StatusCode, res.Header, body); err != nil {
			p.mu.Lock()
			p.violations = append(p.violations, err)
			p.mu.Unlock()
			fmt.Fprintln(p.Log, err)
		}
		copyHeader(w.Header(), res.Header)
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(body)
	}))
	p.URL = p.srv.URL
	return p
}

// Violations returns the violations recorded so far.
func (p *Proxy) Violations() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.violations...)
}

// Verdict is for TestMain: it returns code, or 1 when the proxy recorded a violation (each is
// printed to stderr), so `code := proxy.Verdict(m.Run())` fails the package's run.
func (p *Proxy) Verdict(code int) int {
	v := p.Violations()
	if len(v) == 0 {
		return code
	}
	fmt.Fprintf(p.Log, "FAIL: %d exchange(s) did not match the OpenAPI document:\n", len(v))
	for _, err := range v {
		fmt.Fprintln(p.Log, "  ", err)
	}
	return 1
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// ProxyFor is Proxy for one test: it returns the proxy's URL and, when the test ends, closes
// the proxy and fails t with every violation it recorded.
func (s *Spec) ProxyFor(t testing.TB, target string) string {
	t.Helper()
	p := s.Proxy(target)
	t.Cleanup(func() {
		p.Close()
		for _, err := range p.Violations() {
			t.Errorf("%v", err)
		}
	})
	return p.URL
}
