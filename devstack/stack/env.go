package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	devconfig "github.com/leadpipe/leadpipe/devstack/config"

	ingest "github.com/leadpipe/leadpipe/ingest/service"
	processor "github.com/leadpipe/leadpipe/processor/service"
	replayer "github.com/leadpipe/leadpipe/replayer/service"
)

// notPassed are service variables devstack sets itself and does not take from the user's
// environment, with what sets them instead.
var notPassed = map[string]string{
	"GOOGLE_CLOUD_PROJECT": "--project",
	"PORT":                 "--ingest-port, --processor-port, --replayer-port",
	"RAW_BUCKET":           "devstack creates <project>-leadpipe-raw",
}

var (
	serviceVarsOnce sync.Once
	serviceVarList  []string
)

// ServiceVars lists, sorted, every environment variable the three services' Config types
// read (their `env:"NAME, ..."` tags, nested structs included).
func ServiceVars() []string {
	serviceVarsOnce.Do(func() {
		seen := map[string]bool{}
		for _, cfg := range []any{ingest.Config{}, processor.Config{}, replayer.Config{}} {
			collectVars(reflect.TypeOf(cfg), seen)
		}
		for k := range seen {
			serviceVarList = append(serviceVarList, k)
		}
		sort.Strings(serviceVarList)
	})
	return append([]string(nil), serviceVarList...)
}

func collectVars(t reflect.Type, seen map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, ok := f.Tag.Lookup("env"); ok {
			if name := strings.TrimSpace(strings.Split(tag, ",")[0]); name != "" {
				seen[name] = true
				continue
			}
		}
		if f.IsExported() {
			collectVars(f.Type, seen)
		}
	}
}

// passThrough copies the user's values of the services' variables (from lookup) over
// devstack's local defaults in env, except those in notPassed. A user's REPLAYER_TOKENS keep
// the local operator's token too, so the exported REPLAYER_TOKEN still works.
func (s *Stack) passThrough(env map[string]string, lookup func(string) (string, bool)) {
	for _, k := range ServiceVars() {
		if _, skip := notPassed[k]; skip {
			continue
		}
		v, ok := lookup(k)
		if !ok {
			continue
		}
		if k == "REPLAYER_TOKENS" && v != "" {
			v += "," + s.ReplayerToken + "=local-operator"
		}
		env[k] = v
	}
}

// secretRef matches a secret reference by environment variable in a sources file.
var secretRef = regexp.MustCompile(`env:([A-Za-z_][A-Za-z0-9_]*)`)

// yamlComment matches a YAML comment (a # at a line's start or after a blank, to the end).
var yamlComment = regexp.MustCompile(`(?m)(^|[ \t])#.*$`)

// sources returns the sources file the services read (the user's, or the shipped one written
// to the stack's temporary directory) and the env:NAME secret references in it other than
// DEMO_WEBHOOK_SECRET, in order of appearance.
func (s *Stack) sources(o Options) (string, []string, error) {
	var content []byte
	path := o.SourcesFile
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", nil, fmt.Errorf("--sources: %w", err)
		}
		if path, err = filepath.Abs(path); err != nil {
			return "", nil, fmt.Errorf("--sources: %w", err)
		}
		content = b
	} else {
		content = devconfig.SourcesYAML
		path = filepath.Join(s.tmpDir, "sources.yaml")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return "", nil, err
		}
	}
	var refs []string
	seen := map[string]bool{"DEMO_WEBHOOK_SECRET": true}
	for _, m := range secretRef.FindAllSubmatch(yamlComment.ReplaceAll(content, nil), -1) {
		if name := string(m[1]); !seen[name] {
			seen[name] = true
			refs = append(refs, name)
		}
	}
	return path, refs, nil
}
