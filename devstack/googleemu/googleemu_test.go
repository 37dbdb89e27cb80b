package googleemu

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartClose starts Google's two emulators, checks both answer Ok, closes them and checks
// that no process of either group (the gcloud wrapper or its Java child) is left running.
func TestStartClose(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two Java emulators")
	}
	if err := Check(""); err != nil {
		t.Skipf("Google's emulators are not installed here: %v", err)
	}
	e, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	pgids := e.PIDs()
	for _, addr := range []string{e.FirestoreAddr(), e.PubSubAddr()} {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			e.Close()
			t.Fatalf("GET %s: %v", addr, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(b)) != "Ok" {
			t.Errorf("GET %s/ = %q, want Ok", addr, b)
		}
	}
	if len(pgids) != 2 {
		t.Fatalf("PIDs = %v, want two process groups", pgids)
	}
	for _, g := range pgids {
		if !groupAlive(g) {
			t.Errorf("process group %d not alive while running", g)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for _, g := range pgids {
		if groupAlive(g) {
			t.Errorf("process group %d still has a live process after Close", g)
		}
	}
	for _, addr := range []string{e.FirestoreAddr(), e.PubSubAddr()} {
		if _, err := http.Get("http://" + addr + "/"); err == nil {
			t.Errorf("%s still answers after Close", addr)
		}
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCheckNamesMissingComponent: without gcloud, without Java, or without an emulator
// component, Check says which.
func TestCheckNamesMissingComponent(t *testing.T) {
	dir := t.TempDir()
	var me *MissingError
	if err := Check(filepath.Join(dir, "no-such-gcloud")); !errors.As(err, &me) || me.Component != "gcloud" {
		t.Fatalf("no gcloud: got %v, want MissingError{gcloud}", err)
	}

	// A gcloud that names an install directory without the emulator components.
	root := filepath.Join(dir, "sdk")
	if err := os.MkdirAll(filepath.Join(root, "platform", "cloud-firestore-emulator"), 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "bin", "gcloud")
	if err := os.MkdirAll(filepath.Dir(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho "+root+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("java"); err == nil {
		err := Check(fake)
		if !errors.As(err, &me) || me.Component != "pubsub-emulator" {
			t.Fatalf("no pubsub component: got %v, want MissingError{pubsub-emulator}", err)
		}
		if !strings.Contains(err.Error(), "gcloud components install pubsub-emulator") {
			t.Errorf("error %q does not say how to install it", err)
		}
	}

	// No java on PATH.
	t.Setenv("PATH", filepath.Dir(fake))
	if err := Check(fake); !errors.As(err, &me) || me.Component != "java" {
		t.Fatalf("no java: got %v, want MissingError{java}", err)
	}
	if _, err := Start(context.Background(), Options{Gcloud: fake}); !errors.As(err, &me) || me.Component != "java" {
		t.Fatalf("Start without java: got %v, want MissingError{java}", err)
	}
}
