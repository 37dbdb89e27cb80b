package emulators

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// composeFile is docker-compose.emulators.yml at the repository root.
var composeFile = filepath.Join("..", "..", "docker-compose.emulators.yml")

// composeServices are the compose services `--emulators=external` needs: the variable each
// is reached by and the port devstack uses for it by default.
var composeServices = map[string]struct {
	variable string
	port     int
}{
	"firestore": {FirestoreVar, 8080},
	"pubsub":    {PubSubVar, 8085},
	"gcs":       {StorageVar, 4443},
}

// TestComposeFileMatchesExternalMode loads docker-compose.emulators.yml with compose-go (the
// loader Docker Compose uses; no Docker engine needed) and checks that it runs one service per
// emulator variable, publishes each on 127.0.0.1 at the port its export line in the header
// names, with a health check, that fake-gcs-server is pinned to go.mod's version and told the
// public host STORAGE_EMULATOR_HOST names, and that no image is unpinned.
func TestComposeFileMatchesExternalMode(t *testing.T) {
	ctx := context.Background()
	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithWorkingDirectory(filepath.Dir(composeFile)), cli.WithInterpolation(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("compose-go rejects %s: %v", composeFile, err)
	}
	exports := headerExports(t)
	if got := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	}); !slices.Equal(got, []string{"firestore", "gcs", "pubsub"}) {
		t.Errorf("services %v, want firestore, gcs, pubsub", got)
	}
	for name, want := range composeServices {
		svc, ok := p.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if len(svc.Ports) != 1 {
			t.Errorf("%s publishes %d ports, want 1", name, len(svc.Ports))
			continue
		}
		port := svc.Ports[0]
		if port.HostIP != "127.0.0.1" {
			t.Errorf("%s binds host IP %q, want 127.0.0.1 (not every interface)", name, port.HostIP)
		}
		if port.Published != strconv.Itoa(want.port) || port.Target != uint32(want.port) {
			t.Errorf("%s publishes %s -> %d, want %d -> %d (devstack's default)", name, port.Published, port.Target, want.port, want.port)
		}
		hostPort := "127.0.0.1:" + port.Published
		if got := exports[want.variable]; got != hostPort {
			t.Errorf("header exports %s=%q, want %q (the published port)", want.variable, got, hostPort)
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) < 2 || svc.HealthCheck.Disable {
			t.Errorf("%s has no health check", name)
		} else if hc := strings.Join(svc.HealthCheck.Test, " "); !strings.Contains(hc, strconv.Itoa(want.port)) {
			t.Errorf("%s health check %q does not probe port %d", name, hc, want.port)
		}
		image, tag, _ := strings.Cut(svc.Image, ":")
		if tag == "" || tag == "latest" || tag == "emulators" {
			t.Errorf("%s image %q is not pinned to a version", name, svc.Image)
		}
		cmd := strings.Join(svc.Command, " ")
		switch name {
		case "gcs":
			if want := "fsouza/fake-gcs-server:" + strings.TrimPrefix(moduleVersion(t, "github.com/fsouza/fake-gcs-server"), "v"); svc.Image != want {
				t.Errorf("gcs image %q, want %q (go.mod's fake-gcs-server)", svc.Image, want)
			}
			if !strings.Contains(cmd, "-public-host "+exports[StorageVar]) {
				t.Errorf("fake-gcs-server command %q: -public-host must be exactly STORAGE_EMULATOR_HOST (%s)", cmd, exports[StorageVar])
			}
		default:
			if image != "gcr.io/google.com/cloudsdktool/google-cloud-cli" {
				t.Errorf("%s image %q, want Google's google-cloud-cli", name, svc.Image)
			}
			if !strings.Contains(cmd, "--host-port=0.0.0.0:"+strconv.Itoa(want.port)) {
				t.Errorf("%s command %q does not listen on port %d", name, cmd, want.port)
			}
		}
	}
	// What the header tells users to export is what external mode reads, and nothing more.
	for k := range exports {
		if k != FirestoreVar && k != PubSubVar && k != StorageVar {
			t.Errorf("header exports %s, which --emulators=external does not read", k)
		}
	}
	if _, err := Start(ctx, Options{Mode: External, Lookup: func(k string) (string, bool) { v, ok := exports[k]; return v, ok && k != PubSubVar }}); err == nil || !strings.Contains(err.Error(), PubSubVar) {
		t.Errorf("external mode without %s: %v, want an error naming it", PubSubVar, err)
	}
}

// headerExports reads the `export NAME=VALUE` lines of the compose file's header comment.
func headerExports(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "#"))
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = strings.Fields(v)[0]
		}
	}
	return out
}

func moduleVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == path {
			return f[1]
		}
	}
	t.Fatalf("%s not in go.mod", path)
	return ""
}
