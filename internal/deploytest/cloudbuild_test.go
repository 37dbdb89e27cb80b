// Package deploytest checks the deployment artefacts at the root of the repository with the
// tools that consume them: cloudbuild.yaml with the Google Cloud CLI's own Cloud Build config
// loader, the Dockerfile with BuildKit's parser and linter, and each service built the way the
// Dockerfile builds it.
package deploytest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

var services = []string{"ingest", "processor", "replayer"}

// loader is run by the CLI's bundled Python: it loads a config with
// googlecloudsdk.api_lib.cloudbuild.config.LoadCloudbuildConfigFromPath (what `gcloud builds
// submit --config` does) and prints the Build message as JSON.
const loader = `
import sys
from googlecloudsdk.api_lib.cloudbuild import cloudbuild_util, config
from apitools.base.py import encoding
build = config.LoadCloudbuildConfigFromPath(sys.argv[1], cloudbuild_util.GetMessagesModule(), params={"SHORT_SHA": "abc1234"})
print(encoding.MessageToJson(build))
`

type build struct {
	Steps []struct {
		ID         string   `json:"id"`
		Name       string   `json:"name"`
		Entrypoint string   `json:"entrypoint"`
		Args       []string `json:"args"`
		WaitFor    []string `json:"waitFor"`
	} `json:"steps"`
	Images        []string          `json:"images"`
	Substitutions map[string]string `json:"substitutions"`
	Options       struct {
		SubstitutionOption string `json:"substitutionOption"`
	} `json:"options"`
}

// requireTool finds a tool; without it the test is skipped, unless LEADPIPE_REQUIRE_TOOLS is
// set (make test-infra sets it), where a missing tool fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("LEADPIPE_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s not found: %v", name, err)
		}
		t.Skipf("%s not found (LEADPIPE_REQUIRE_TOOLS unset): %v", name, err)
	}
	return p
}

// loadCloudBuild runs the CLI's loader on path.
func loadCloudBuild(t *testing.T, path string) (*build, error) {
	t.Helper()
	gcloud := requireTool(t, "gcloud")
	sdkOnce.Do(func() { sdkRoot, sdkPython, sdkErr = findSDK(gcloud) })
	if sdkErr != nil {
		t.Fatal(sdkErr)
	}
	root, python := sdkRoot, sdkPython
	cmd := exec.Command(python, "-c", loader, path)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(root, "lib")+string(os.PathListSeparator)+filepath.Join(root, "lib", "third_party"),
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &loadError{msg: strings.TrimSpace(stderr.String())}
	}
	var b build
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("decode the loader's Build: %v\n%s", err, out)
	}
	return &b, nil
}

var (
	sdkOnce            sync.Once
	sdkRoot, sdkPython string
	sdkErr             error
)

// findSDK returns the CLI's installation directory and the Python it runs with.
func findSDK(gcloud string) (root, python string, err error) {
	out, err := exec.Command(gcloud, "info", "--format=value(installation.sdk_root)").Output()
	if err != nil {
		return "", "", fmt.Errorf("gcloud info: %w", err)
	}
	root = strings.TrimSpace(string(out))
	python = filepath.Join(root, "platform", "bundledpythonunix", "bin", "python3")
	if _, err := os.Stat(python); err != nil {
		if out, err = exec.Command(gcloud, "info", "--format=value(basic.python_location)").Output(); err != nil {
			return "", "", fmt.Errorf("gcloud's python: %w", err)
		}
		python = strings.TrimSpace(string(out))
	}
	return root, python, nil
}

type loadError struct{ msg string }

func (e *loadError) Error() string { return e.msg }

var substitution = regexp.MustCompile(`\$\{(_[A-Z0-9_]+)\}|\$(_[A-Z0-9_]+)|\$\{([A-Z][A-Z0-9_]*)\}|\$([A-Z][A-Z0-9_]*)`)

// Built-in substitutions Cloud Build provides.
var builtins = []string{"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "SHORT_SHA", "COMMIT_SHA", "REVISION_ID", "BRANCH_NAME", "TAG_NAME", "REPO_NAME", "TRIGGER_NAME", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"}

// TestCloudBuildLoads loads cloudbuild.yaml with the CLI's loader and checks the pipeline:
// step ids unique and waited-for ids declared; every substitution used is declared or
// built in, and every declared one used; each service's image is built with its SERVICE build
// argument, pushed, listed in images and deployed.
func TestCloudBuildLoads(t *testing.T) {
	b, err := loadCloudBuild(t, "../../cloudbuild.yaml")
	if err != nil {
		t.Fatalf("the Cloud Build loader rejects cloudbuild.yaml: %v", err)
	}
	ids := map[string]bool{}
	used := map[string]bool{}
	var all []string
	for i, s := range b.Steps {
		if s.ID == "" || ids[s.ID] {
			t.Errorf("step %d: id %q empty or repeated", i, s.ID)
		}
		for _, w := range s.WaitFor {
			if w != "-" && !ids[w] {
				t.Errorf("step %s waits for %q, not an earlier step", s.ID, w)
			}
		}
		ids[s.ID] = true
		all = append(all, s.Name, s.Entrypoint)
		all = append(all, s.Args...)
	}
	all = append(all, b.Images...)
	for _, text := range all {
		// $$ escapes a literal dollar for the shell.
		for _, m := range substitution.FindAllStringSubmatch(strings.ReplaceAll(text, "$$", ""), -1) {
			name := m[1] + m[2] + m[3] + m[4]
			used[name] = true
			if strings.HasPrefix(name, "_") {
				if _, ok := b.Substitutions[name]; !ok {
					t.Errorf("substitution %s used but not declared", name)
				}
			} else if !slices.Contains(builtins, name) {
				t.Errorf("$%s is not a Cloud Build built-in substitution (escape shell variables as $$)", name)
			}
		}
	}
	for name := range b.Substitutions {
		if strings.HasPrefix(name, "_") && !used[name] {
			t.Errorf("substitution %s declared but never used", name)
		}
	}
	for _, svc := range services {
		image := "${_REGION}-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}/" + svc + ":$SHORT_SHA"
		if !slices.Contains(b.Images, image) {
			t.Errorf("images does not list %s", image)
		}
		built := false
		for _, s := range b.Steps {
			if slices.Contains(s.Args, "build") && slices.Contains(s.Args, "--build-arg=SERVICE="+svc) && slices.Contains(s.Args, "--tag="+image) {
				built = true
			}
		}
		if !built {
			t.Errorf("no docker build of %s with --build-arg=SERVICE=%s --tag=%s", svc, svc, image)
		}
	}
	var deploy string
	for _, s := range b.Steps {
		if s.ID == "deploy" {
			deploy = strings.Join(s.Args, " ")
		}
	}
	if !strings.Contains(deploy, "for s in processor replayer ingest") || !strings.Contains(deploy, `gcloud run deploy "${_SERVICE_PREFIX}-$$s"`) {
		t.Errorf("the deploy step does not deploy processor, replayer and ingest: %q", deploy)
	}
}

// TestCloudBuildLoaderRejects: the loader is the real one; it refuses what Cloud Build would.
func TestCloudBuildLoaderRejects(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]string{
		"unknown field":        "steps:\n- name: busybox\n  arg: [x]\n",
		"no steps":             "images: [x]\n",
		"bad substitution key": "substitutions:\n  REGION: x\nsteps:\n- name: busybox\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadCloudBuild(t, p); err == nil {
			t.Errorf("%s: the loader accepted %q", name, cfg)
		}
	}
}
