package deploytest

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/opencontainers/go-digest"
)

// offlineImages answers BuildKit's image config lookups (FROM) without a registry: an image
// config with the platform and the environment the base images declare (the registries
// cannot be reached here; the lint rules need the config, not the layers).
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOPATH=/go", "GOLANG_VERSION=1.26.8"}},
	})
	return ref, digest.FromBytes(cfg), cfg, nil
}

// lint runs BuildKit's Dockerfile checks (what `docker build --check` runs) on dt with the
// build arguments args, and returns the rule names of the warnings (with their details) and
// the build error, if any.
func lint(t *testing.T, dt []byte, args map[string]string) (warnings []string, buildErr string) {
	t.Helper()
	sm := llb.NewSourceMap(nil, "Dockerfile", "Dockerfile", dt)
	sm.Definition = &llb.Definition{}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		Config:       dockerui.Config{BuildArgs: args},
		SourceMap:    sm,
		MetaResolver: offlineImages{},
	})
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, w := range res.Warnings {
		warnings = append(warnings, w.RuleName+": "+w.Detail)
	}
	if res.Error != nil {
		buildErr = res.Error.Message
	}
	return warnings, buildErr
}

func dockerfile(t *testing.T) []byte {
	t.Helper()
	dt, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return dt
}

// TestDockerfileLint: the Dockerfile passes every BuildKit lint rule for each service.
func TestDockerfileLint(t *testing.T) {
	dt := dockerfile(t)
	for _, svc := range services {
		w, buildErr := lint(t, dt, map[string]string{"SERVICE": svc})
		if buildErr != "" {
			t.Errorf("SERVICE=%s: %s", svc, buildErr)
		}
		if len(w) > 0 {
			t.Errorf("SERVICE=%s: %d lint findings:\n%s", svc, len(w), strings.Join(w, "\n"))
		}
	}
}

// TestDockerfileLintCatches: the linter reports the defects it is for.
func TestDockerfileLintCatches(t *testing.T) {
	for rule, dt := range map[string]string{
		"StageNameCasing":      "FROM busybox AS Build\nRUN true\n",
		"JSONArgsRecommended":  "FROM busybox\nENTRYPOINT /app\n",
		"UndefinedVar":         "FROM busybox\nENV X=$ALSO_UNDEFINED\n",
		"MaintainerDeprecated": "FROM busybox\nMAINTAINER someone\n",
		"UndefinedArgInFrom":   "FROM golang:${NO_SUCH_ARG}\n",
	} {
		w, buildErr := lint(t, []byte(dt), nil)
		found := false
		for _, x := range w {
			found = found || strings.HasPrefix(x, rule+":")
		}
		if !found {
			t.Errorf("%s not reported for %q: %v %s", rule, dt, w, buildErr)
		}
	}
}

// buildRecipe returns the build stage's ENV assignments and its `go build` command, parsed
// from the Dockerfile with BuildKit's parser.
func buildRecipe(t *testing.T) (env []string, goBuild string) {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(string(dockerfile(t))))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stages {
		if st.Name != "build" {
			continue
		}
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					env = append(env, kv.Key+"="+kv.Value)
				}
			case *instructions.RunCommand:
				line := strings.Join(c.CmdLine, " ")
				if i := strings.Index(line, "go build"); i >= 0 {
					goBuild = line[i:]
				}
			}
		}
	}
	if goBuild == "" {
		t.Fatal("no `go build` in the Dockerfile's build stage")
	}
	return env, goBuild
}

// TestServicesBuildStatic builds each service with the Dockerfile's own environment and go
// build command (output redirected to a temporary file) and checks that the binary is static:
// distroless/static has no C library, so an ELF interpreter or any dynamic library would not
// start.
func TestServicesBuildStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	env, goBuild := buildRecipe(t)
	if !strings.Contains(strings.Join(env, " "), "CGO_ENABLED=0") || !strings.Contains(goBuild, "-trimpath") {
		t.Fatalf("the Dockerfile must build with CGO_ENABLED=0 and -trimpath: ENV %v, %q", env, goBuild)
	}
	if !strings.Contains(goBuild, "-o /out/app") {
		t.Fatalf("unexpected output path in %q", goBuild)
	}
	root, _ := filepath.Abs("../..")
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "app")
			cmd := exec.Command("sh", "-c", strings.Replace(goBuild, "-o /out/app", "-o "+bin, 1))
			cmd.Dir = root
			cmd.Env = append(append(os.Environ(), env...), "SERVICE="+svc)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd.Args[2], err, out)
			}
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("%s has a %v program header: not static", svc, p.Type)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("%s needs shared libraries %v", svc, libs)
			}
		})
	}
}

// TestStaticCheckCatches: the ELF check tells a dynamic binary (cgo) from a static one.
func TestStaticCheckCatches(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler for a cgo build")
	}
	dir := t.TempDir()
	src := "package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() { C.free(nil) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module cgo\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "app", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cgo build: %v\n%s", err, out)
	}
	f, err := elf.Open(filepath.Join(dir, "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	interp := false
	for _, p := range f.Progs {
		interp = interp || p.Type == elf.PT_INTERP
	}
	if libs, _ := f.ImportedLibraries(); !interp || len(libs) == 0 {
		t.Errorf("a cgo binary looks static: interpreter %v, libraries %v", interp, libs)
	}
}
