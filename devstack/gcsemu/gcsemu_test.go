package gcsemu_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/leadpipe/leadpipe/devstack/gcsemu"
)

// newClient starts an emulator with one bucket and returns a storage client
// configured the way production code is: through STORAGE_EMULATOR_HOST.
func newClient(t *testing.T, bucket string) *storage.Client {
	t.Helper()
	srv, err := gcsemu.Start(gcsemu.Options{Buckets: []string{bucket}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("STORAGE_EMULATOR_HOST", srv.Addr())
	client, err := storage.NewClient(context.Background())
	if err != nil {
		t.Fatalf("storage.NewClient: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func write(ctx context.Context, w *storage.Writer, data string) error {
	if _, err := io.WriteString(w, data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func TestWriteReadXML(t *testing.T) {
	ctx := context.Background()
	obj := newClient(t, "raw").Bucket("raw").Object("a/b/payload.json")

	w := obj.NewWriter(ctx)
	w.ContentType = "application/json"
	w.Metadata = map[string]string{"source": "hubspot", "event_id": "e1"}
	if err := write(ctx, w, `{"x":1}`); err != nil {
		t.Fatalf("write: %v", err)
	}

	r, err := obj.NewReader(ctx) // XML API by default
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != `{"x":1}` {
		t.Errorf("read = %q, want %q", got, `{"x":1}`)
	}

	attrs, err := obj.Attrs(ctx)
	if err != nil {
		t.Fatalf("Attrs: %v", err)
	}
	if attrs.ContentType != "application/json" {
		t.Errorf("ContentType = %q, want application/json", attrs.ContentType)
	}
	if attrs.Metadata["source"] != "hubspot" || attrs.Metadata["event_id"] != "e1" {
		t.Errorf("Metadata = %v, want source=hubspot event_id=e1", attrs.Metadata)
	}
	if attrs.Size != int64(len(`{"x":1}`)) {
		t.Errorf("Size = %d, want %d", attrs.Size, len(`{"x":1}`))
	}
}

func TestReadMissingObject(t *testing.T) {
	ctx := context.Background()
	obj := newClient(t, "raw").Bucket("raw").Object("missing")
	if _, err := obj.NewReader(ctx); !errors.Is(err, storage.ErrObjectNotExist) {
		t.Errorf("NewReader(missing) error = %v, want storage.ErrObjectNotExist", err)
	}
}

func TestWriteOnce(t *testing.T) {
	ctx := context.Background()
	obj := newClient(t, "raw").Bucket("raw").Object("once")
	cond := obj.If(storage.Conditions{DoesNotExist: true})

	if err := write(ctx, cond.NewWriter(ctx), "first"); err != nil {
		t.Fatalf("first write: %v", err)
	}
	err := write(ctx, cond.NewWriter(ctx), "second")
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != 412 {
		t.Fatalf("second write error = %v, want *googleapi.Error with code 412", err)
	}

	r, err := obj.NewReader(ctx)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	got, _ := io.ReadAll(r)
	if string(got) != "first" {
		t.Errorf("content = %q, want %q (the first write must survive)", got, "first")
	}
}

func TestListenOnRequestedPort(t *testing.T) {
	srv, err := gcsemu.Start(gcsemu.Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	addr := srv.Addr()
	srv.Close()
	srv2, err := gcsemu.Start(gcsemu.Options{Addr: addr})
	if err != nil {
		t.Fatalf("Start(%s): %v", addr, err)
	}
	defer srv2.Close()
	if srv2.Addr() != addr || srv2.URL() != "http://"+addr {
		t.Errorf("Addr, URL = %s, %s; want %s, http://%s", srv2.Addr(), srv2.URL(), addr, addr)
	}
}
