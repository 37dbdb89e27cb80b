package stack

import (
	"reflect"
	"sort"
	"strings"
	"sync"

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

// passThrough copies the user's values of the services' variables over devstack's local
// defaults in env, except those in notPassed, and returns the names it took.
func passThrough(env map[string]string, lookup func(string) (string, bool)) []string {
	var took []string
	for _, k := range ServiceVars() {
		if _, skip := notPassed[k]; skip {
			continue
		}
		if v, ok := lookup(k); ok {
			env[k] = v
			took = append(took, k)
		}
	}
	return took
}
