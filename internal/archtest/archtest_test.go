// Package archtest checks the import boundaries of the one module: what each service's binary
// links comes only from its own directory and common (never another service, never devstack's
// emulators or fake CRM), and common depends on no service.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const modulePath = "github.com/leadpipe/leadpipe"

var services = []string{"ingest", "processor", "replayer"}

// deps lists the non-test packages the given package patterns import, transitively.
func deps(t *testing.T, patterns ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, patterns...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

func TestServicesImportOnlyCommon(t *testing.T) {
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			// The binaries are what production runs; test-support packages (crmtest) may use devstack.
			for _, p := range deps(t, modulePath+"/"+svc+"/cmd/...") {
				rel, ok := strings.CutPrefix(p, modulePath+"/")
				if !ok {
					continue
				}
				top, _, _ := strings.Cut(rel, "/")
				if top != svc && top != "common" {
					t.Errorf("%s imports %s: services import only their own packages and common", svc, p)
				}
			}
		})
	}
}

func TestCommonImportsNoService(t *testing.T) {
	for _, p := range deps(t, modulePath+"/common/...") {
		rel, ok := strings.CutPrefix(p, modulePath+"/")
		if !ok {
			continue
		}
		if top, _, _ := strings.Cut(rel, "/"); top != "common" {
			t.Errorf("common imports %s", p)
		}
	}
}
