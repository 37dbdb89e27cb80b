package archive_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/devstack/devstacktest"
)

var (
	env    *devstacktest.Env
	client *storage.Client
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	if env, err = devstacktest.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "start emulators:", err)
		return 1
	}
	defer env.Close()
	if client, err = env.StorageClient(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "storage client:", err)
		return 1
	}
	defer client.Close()
	return m.Run()
}

const email = "jane.doe@example.com"

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 123456789, time.UTC)

func incoming() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Typeform Webhooks")
	h.Set("Typeform-Signature", "sha256=abc=")
	h.Set("Authorization", "Bearer secret-token")
	h.Set("Cookie", "session=s3cr3t")
	h.Set("X-Api-Key", "k-123")
	h.Add("X-Forwarded-For", "10.0.0.1")
	h.Add("X-Forwarded-For", "10.0.0.2")
	return h
}

func TestSafeHeaders(t *testing.T) {
	h := incoming()
	h["x-api-key"] = []string{"lowercase-raw-key"} // non-canonical key, as a map literal could hold
	h.Set("Proxy-Authorization", "Basic x")
	h.Set("Set-Cookie", "a=b")
	h.Set("X-Goog-Iap-Jwt-Assertion", "jwt")
	h.Set("X-Serverless-Authorization", "Bearer y")
	h.Set("X-Auth-Token", "t")
	h.Set("X-Hub-Signature-256", "sha256=ff")

	got := archive.SafeHeaders(h)
	want := map[string][]string{
		"Content-Type":        {"application/json"},
		"User-Agent":          {"Typeform Webhooks"},
		"Typeform-Signature":  {"sha256=abc="},
		"X-Forwarded-For":     {"10.0.0.1", "10.0.0.2"},
		"X-Hub-Signature-256": {"sha256=ff"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SafeHeaders:\n got %v\nwant %v", got, want)
	}
	// The copy is deep: changing the result leaves the request alone.
	got["X-Forwarded-For"][0] = "changed"
	if h.Values("X-Forwarded-For")[0] != "10.0.0.1" {
		t.Error("SafeHeaders shares value slices with its input")
	}
	if len(archive.SafeHeaders(nil)) != 0 {
		t.Error("SafeHeaders(nil): want empty")
	}
}

var nameRE = regexp.MustCompile(`^raw/typeform/[0-9a-f]{64}\.json$`)

func TestObjectName(t *testing.T) {
	body := []byte(`{"email":"` + email + `","phone":"+15551234567","name":"Jane Doe"}`)
	n := archive.ObjectName("typeform", body)
	if !nameRE.MatchString(n) {
		t.Errorf("ObjectName: got %q, want raw/typeform/<sha256>.json", n)
	}
	if again := archive.ObjectName("typeform", append([]byte(nil), body...)); again != n {
		t.Errorf("not deterministic: %q then %q", n, again)
	}
	for _, pii := range []string{email, "jane", "example", "5551234567", "doe"} {
		if strings.Contains(strings.ToLower(n), pii) {
			t.Errorf("ObjectName %q contains %q", n, pii)
		}
	}
	if other := archive.ObjectName("typeform", append(body, ' ')); other == n {
		t.Error("different bodies share a name")
	}
	if other := archive.ObjectName("webflow", body); other == n || !strings.HasPrefix(other, "raw/webflow/") {
		t.Errorf("other source: got %q, want a raw/webflow/ name", other)
	}
	// Known vector: SHA-256 of the empty body.
	if got, want := archive.ObjectName("s", nil), "raw/s/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.json"; got != want {
		t.Errorf("ObjectName(empty): got %q, want %q", got, want)
	}
}

func newRaw(body []byte) *archive.Raw {
	return &archive.Raw{
		Source:      "typeform",
		ReceivedAt:  t0,
		ContentType: "application/json",
		Headers:     archive.SafeHeaders(incoming()),
		Signature:   archive.SignatureResult{Scheme: "typeform", Verified: true, KeyIndex: 1},
		Body:        body,
	}
}

func TestPutGetRoundTrip(t *testing.T) {
	ctx := context.Background()
	a := archive.New(client, env.Bucket)
	if a.Bucket() != env.Bucket {
		t.Errorf("Bucket(): got %q, want %q", a.Bucket(), env.Bucket)
	}
	// Not valid UTF-8 and not JSON: the body must come back byte for byte.
	body := append([]byte(`{"email":"`+email+`"} `), 0xff, 0x00, 0xfe, '\n')
	raw := newRaw(body)

	ref, err := a.Put(ctx, raw)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if want := "gs://" + env.Bucket + "/" + archive.ObjectName("typeform", body); ref != want {
		t.Errorf("ref: got %q, want %q", ref, want)
	}
	if a.Ref(archive.ObjectName("typeform", body)) != ref {
		t.Errorf("Ref(name): got %q, want %q", a.Ref(archive.ObjectName("typeform", body)), ref)
	}

	got, err := a.Get(ctx, ref)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(got.Body) != string(body) {
		t.Errorf("Body: got %q, want %q", got.Body, body)
	}
	if got.Source != "typeform" || got.ContentType != "application/json" || !got.ReceivedAt.Equal(t0) {
		t.Errorf("got source %q content type %q received %v, want typeform application/json %v",
			got.Source, got.ContentType, got.ReceivedAt, t0)
	}
	if got.Signature != raw.Signature {
		t.Errorf("Signature: got %+v, want %+v", got.Signature, raw.Signature)
	}
	if !reflect.DeepEqual(got.Headers, raw.Headers) {
		t.Errorf("Headers:\n got %v\nwant %v", got.Headers, raw.Headers)
	}
	for _, k := range []string{"Authorization", "Cookie", "X-Api-Key"} {
		if _, ok := got.Headers[k]; ok {
			t.Errorf("stored headers hold credential header %s", k)
		}
	}
	if got.Headers["Typeform-Signature"][0] != "sha256=abc=" {
		t.Errorf("signature header: got %v, want kept for re-verification", got.Headers["Typeform-Signature"])
	}

	// The object carries its metadata for operators browsing the bucket.
	name := strings.TrimPrefix(ref, "gs://"+env.Bucket+"/")
	attrs, err := client.Bucket(env.Bucket).Object(name).Attrs(ctx)
	if err != nil {
		t.Fatalf("Attrs: %v", err)
	}
	if attrs.ContentType != "application/json" || attrs.Metadata["source"] != "typeform" ||
		attrs.Metadata["received_at"] != t0.Format(time.RFC3339Nano) {
		t.Errorf("object attrs: got content type %q metadata %v", attrs.ContentType, attrs.Metadata)
	}
}

// TestPutWriteOnce: a retried delivery of the same body is not an error and does not replace
// the first copy.
func TestPutWriteOnce(t *testing.T) {
	ctx := context.Background()
	a := archive.New(client, env.Bucket)
	body := []byte(`{"id":"write-once"}`)
	first := newRaw(body)
	ref1, err := a.Put(ctx, first)
	if err != nil {
		t.Fatalf("first Put: %v", err)
	}
	name := strings.TrimPrefix(ref1, "gs://"+env.Bucket+"/")
	attrs1, err := client.Bucket(env.Bucket).Object(name).Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}

	second := newRaw(body)
	second.ReceivedAt = t0.Add(time.Hour)
	second.Signature.Verified = false
	ref2, err := a.Put(ctx, second)
	if err != nil {
		t.Fatalf("second Put: got %v, want nil", err)
	}
	if ref2 != ref1 {
		t.Errorf("second ref: got %q, want %q", ref2, ref1)
	}
	got, err := a.Get(ctx, ref1)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ReceivedAt.Equal(t0) || !got.Signature.Verified {
		t.Errorf("after second Put: got received_at %v verified %v, want the first copy (%v, true)",
			got.ReceivedAt, got.Signature.Verified, t0)
	}
	attrs2, err := client.Bucket(env.Bucket).Object(name).Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if attrs2.Generation != attrs1.Generation {
		t.Errorf("generation: got %d, want unchanged %d", attrs2.Generation, attrs1.Generation)
	}
}

// TestPutConcurrent: a burst of the same delivery all succeed with the same reference.
func TestPutConcurrent(t *testing.T) {
	ctx := context.Background()
	a := archive.New(client, env.Bucket)
	body := []byte(`{"id":"burst"}`)
	const n = 10
	refs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRaw(body)
			r.ReceivedAt = t0.Add(time.Duration(i) * time.Second)
			refs[i], errs[i] = a.Put(ctx, r)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Put %d: %v", i, errs[i])
		}
		if refs[i] != refs[0] {
			t.Errorf("Put %d ref: got %q, want %q", i, refs[i], refs[0])
		}
	}
	got, err := a.Get(ctx, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(body) {
		t.Errorf("Body: got %q, want %q", got.Body, body)
	}
}

func TestGetErrors(t *testing.T) {
	ctx := context.Background()
	a := archive.New(client, env.Bucket)
	tests := []struct {
		name      string
		ref       string
		wantClass failure.Class // "" means unclassified
	}{
		{"missing object", "gs://" + env.Bucket + "/raw/typeform/" + strings.Repeat("0", 64) + ".json", failure.Permanent},
		{"missing bucket", "gs://no-such-bucket-xyz/raw/a.json", failure.Permanent},
		{"not a gs ref", "https://storage.googleapis.com/b/o", ""},
		{"no object name", "gs://" + env.Bucket, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Get(ctx, tt.ref)
			if err == nil {
				t.Fatalf("Get(%q): got %+v, want an error", tt.ref, got)
			}
			c, ok := failure.ClassOf(err)
			if tt.wantClass == "" {
				if ok {
					t.Errorf("Get(%q): got class %q, want unclassified", tt.ref, c)
				}
				return
			}
			if c != tt.wantClass {
				t.Errorf("Get(%q): got %v (class %q), want class %q", tt.ref, err, c, tt.wantClass)
			}
			if tt.name == "missing object" && !errors.Is(err, storage.ErrObjectNotExist) {
				t.Errorf("Get(%q): got %v, want storage.ErrObjectNotExist in the chain", tt.ref, err)
			}
		})
	}
}

func TestPutMissingBucket(t *testing.T) {
	a := archive.New(client, "no-such-bucket-put")
	ref, err := a.Put(context.Background(), newRaw([]byte(`{}`)))
	if err == nil {
		t.Fatalf("Put to a missing bucket: got ref %q, want an error", ref)
	}
	if _, ok := failure.ClassOf(err); !ok {
		t.Errorf("Put to a missing bucket: got %v, want a classified failure", err)
	}
}

func TestGetCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := archive.New(client, env.Bucket)
	_, err := a.Get(ctx, "gs://"+env.Bucket+"/raw/x.json")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with canceled context: got %v, want context.Canceled", err)
	}
	if _, ok := failure.ClassOf(err); ok {
		t.Errorf("canceled read was classified: %v", err)
	}
}
