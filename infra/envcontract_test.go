package infra

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"

	"github.com/leadpipe/leadpipe/common/config"
	ingest "github.com/leadpipe/leadpipe/ingest/service"
	processor "github.com/leadpipe/leadpipe/processor/service"
	replayer "github.com/leadpipe/leadpipe/replayer/service"
)

// The deployment the contract is checked on: the variables' defaults plus what docs/deploy.md's
// bootstrap sets (the processor refuses to start without a CRM; the signing secrets are the
// deployment's, referenced from sources.yaml as env:NAME).
const exampleDeployment = `
project_id = "example-project"
replayer_allowed_principals = ["alice@example.com"]
ingest_secret_env = {
  TYPEFORM_SECRET = "leadpipe-typeform-secret"
}
processor_env = {
  SALESFORCE_INSTANCE_URL = "https://example.my.salesforce.com"
  SALESFORCE_TOKEN_URL    = "https://login.salesforce.com/services/oauth2/token"
}
reconcile_forms = ["meta:1234567890123"]
replayer_secret_env = {
  META_ACCESS_TOKEN = "leadpipe-meta-graph-token"
}
`

// contract is one service's side: its config struct and the variables it reads outside it.
type contract struct {
	config any
	// alsoRead: read by common/app (PORT, set by Cloud Run) or through sources.yaml env:NAME
	// references (the keys of the named Terraform variable).
	alsoRead       []string
	referencedFrom string
}

var contracts = map[string]contract{
	"ingest": {
		config: &ingest.Config{}, alsoRead: []string{"PORT"}, referencedFrom: "ingest_secret_env",
	},
	"processor": {config: &processor.Config{}, alsoRead: []string{"PORT"}},
	"replayer":  {config: &replayer.Config{}, alsoRead: []string{"PORT"}},
}

// secretName is a variable that holds a credential: it must come from Secret Manager.
var secretName = regexp.MustCompile(`(SECRET|TOKENS?|KEY|PASSWORD)$`)

// envTags returns the variables a config struct reads (its `env:"NAME, ..."` tags, nested
// structs included) and those it requires (`required`).
func envTags(v any) (read, required []string) {
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for i := range t.NumField() {
			f := t.Field(i)
			tag, ok := f.Tag.Lookup("env")
			if !ok {
				if f.Type.Kind() == reflect.Struct {
					walk(f.Type)
				}
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			name = strings.TrimSpace(name)
			read = append(read, name)
			for _, o := range strings.Split(opts, ",") {
				if strings.TrimSpace(o) == "required" {
					required = append(required, name)
				}
			}
		}
	}
	walk(reflect.TypeOf(v))
	sort.Strings(read)
	return read, required
}

// deployed is what Terraform gives one service: plain values (unknown ones as placeholders)
// and the names injected from Secret Manager.
type deployed struct {
	plain   map[string]string
	secrets []string
}

func terraformEnv(t *testing.T, m *module) map[string]deployed {
	t.Helper()
	run := m.local("run")
	out := map[string]deployed{}
	for svc, v := range run.AsValueMap() {
		d := deployed{plain: map[string]string{}}
		for name, val := range v.GetAttr("env").AsValueMap() {
			if val.IsKnown() && !val.IsNull() && val.Type() == cty.String {
				d.plain[name] = val.AsString()
			} else {
				d.plain[name] = "placeholder-" + strings.ToLower(name) // a resource attribute, known after apply
			}
		}
		d.secrets = keysOf(t, v.GetAttr("secret_env"))
		out[svc] = d
	}
	return out
}

// TestCloudRunEnvFromLocals: the Cloud Run services take their variables from local.run and
// nowhere else: plain values from each.value.env, Secret Manager references from
// each.value.secret_env (value_source.secret_key_ref, version pinned by Terraform), so the
// contract test below sees everything that is deployed.
func TestCloudRunEnvFromLocals(t *testing.T) {
	m := loadModule(t, ".", exampleDeployment)
	svc := m.resource("google_cloud_run_v2_service", "svc")
	if got := traversalString(svc.Attributes["for_each"].Expr); got != "local.run" {
		t.Fatalf("google_cloud_run_v2_service.svc for_each = %q, want local.run", got)
	}
	var containers []*hclsyntax.Block
	for _, b := range svc.Blocks {
		if b.Type == "template" {
			for _, c := range b.Body.Blocks {
				if c.Type == "containers" {
					containers = append(containers, c)
				}
			}
		}
	}
	if len(containers) != 1 {
		t.Fatalf("%d containers blocks, want 1", len(containers))
	}
	var sources []string
	for _, b := range containers[0].Body.Blocks {
		switch {
		case b.Type == "env":
			t.Errorf("a static env block (%v): every variable must come from local.run", b.Body.Attributes["name"])
		case b.Type == "dynamic" && b.Labels[0] == "env":
			src := traversalString(b.Body.Attributes["for_each"].Expr)
			sources = append(sources, src)
			var content *hclsyntax.Body
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					content = c.Body
				}
			}
			_, plain := content.Attributes["value"]
			var secretRef bool
			for _, vs := range content.Blocks {
				if vs.Type == "value_source" {
					for _, r := range vs.Body.Blocks {
						secretRef = secretRef || r.Type == "secret_key_ref"
					}
				}
			}
			switch src {
			case "each.value.env":
				if !plain || secretRef {
					t.Errorf("env from each.value.env must set value only")
				}
			case "each.value.secret_env":
				if plain || !secretRef {
					t.Errorf("env from each.value.secret_env must be a value_source.secret_key_ref, never a value")
				}
			default:
				t.Errorf("dynamic env over %q: want each.value.env or each.value.secret_env", src)
			}
		}
	}
	slices.Sort(sources)
	if !slices.Equal(sources, []string{"each.value.env", "each.value.secret_env"}) {
		t.Errorf("env sources = %v", sources)
	}
}

// TestEnvironmentContract: for each service, what Terraform (infra/run.tf) and cloudbuild.yaml
// deploy matches what its config reads: nothing deployed that no code reads, the deployed
// environment loads and validates (so nothing required is missing), and credentials come only
// as Secret Manager references.
func TestEnvironmentContract(t *testing.T) {
	m := loadModule(t, ".", exampleDeployment)
	env := terraformEnv(t, m)
	if len(env) != len(contracts) {
		t.Fatalf("Terraform deploys %d services, the contract knows %d", len(env), len(contracts))
	}
	cloudBuild := cloudBuildEnv(t)
	for svc, c := range contracts {
		t.Run(svc, func(t *testing.T) {
			d, ok := env[svc]
			if !ok {
				t.Fatalf("Terraform does not deploy %s", svc)
			}
			read, required := envTags(c.config)
			read = append(read, c.alsoRead...)
			if c.referencedFrom != "" {
				read = append(read, keysOf(t, m.vars[c.referencedFrom])...)
			}
			all := append(slices.Collect(mapsKeys(d.plain)), d.secrets...)
			all = append(all, cloudBuild...)
			for _, name := range all {
				if slices.Contains(read, name) {
					continue
				}
				t.Errorf("%s is deployed but %s never reads it", name, svc)
			}
			for _, name := range required {
				if !slices.Contains(all, name) {
					t.Errorf("%s is required by %s but not deployed", name, svc)
				}
			}
			for name := range d.plain {
				if secretName.MatchString(name) {
					t.Errorf("%s looks like a credential but is a plain value: move it to a *_secret_env variable (Secret Manager)", name)
				}
			}
			for _, name := range d.secrets {
				if _, dup := d.plain[name]; dup {
					t.Errorf("%s is both a plain value and a secret", name)
				}
			}
			// Loading the config from exactly what is deployed proves that nothing it needs
			// (required tags, or the combinations Validate checks) is missing.
			vars := map[string]string{"PORT": "8080"} // set by Cloud Run
			for k, v := range d.plain {
				vars[k] = v
			}
			for _, name := range d.secrets {
				vars[name] = strings.Repeat("s", 48) // a Secret Manager version's value
			}
			cfg := reflect.New(reflect.TypeOf(c.config).Elem()).Interface()
			if err := config.Load(context.Background(), cfg, config.MapLookuper(vars)); err != nil {
				t.Errorf("%s does not start with the deployed environment: %v", svc, err)
			}
		})
	}
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// cloudBuildEnv returns the variables cloudbuild.yaml's deploy sets on the services. It must
// set none: `gcloud run deploy --image` changes the image only, Terraform owns the rest. Any
// env or secret flag is reported.
func cloudBuildEnv(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("../cloudbuild.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cb struct {
		Steps []struct {
			ID   string   `yaml:"id"`
			Args []string `yaml:"args"`
		} `yaml:"steps"`
	}
	if err := yaml.Unmarshal(src, &cb); err != nil {
		t.Fatalf("cloudbuild.yaml: %v", err)
	}
	envFlag := regexp.MustCompile(`--(set|update|remove|clear)-(env-vars|secrets)|--env-vars-file`)
	deploys := 0
	for _, s := range cb.Steps {
		text := strings.Join(s.Args, " ")
		if strings.Contains(text, "gcloud run deploy") {
			deploys++
			if !strings.Contains(text, "--image=") {
				t.Errorf("cloudbuild step %s: gcloud run deploy without --image", s.ID)
			}
		}
		if f := envFlag.FindString(text); f != "" {
			t.Errorf("cloudbuild step %s sets the environment (%s): Terraform owns it (infra/run.tf), a deploy changes only the image", s.ID, f)
		}
	}
	if deploys == 0 {
		t.Error("cloudbuild.yaml has no gcloud run deploy step")
	}
	return nil
}

// TestEnvironmentContractCatches: the contract test's checks fail on the defects they are for
// (a variable no code reads, a required one missing, a credential as a plain value).
func TestEnvironmentContractCatches(t *testing.T) {
	read, required := envTags(&ingest.Config{})
	if !slices.Contains(read, "SOURCES_FILE") || !slices.Contains(required, "SOURCES_FILE") || !slices.Contains(read, "GOOGLE_CLOUD_PROJECT") {
		t.Fatalf("envTags(ingest.Config) = %v, required %v", read, required)
	}
	if slices.Contains(read, "AUTH_MODE") {
		t.Error("ingest reads AUTH_MODE: the old Terraform env would have been right")
	}
	// The environment main's Terraform gave ingest (AUTH_* instead of SWEEP_*): AUTH_MODE is
	// not read by ingest.
	m := loadModule(t, ".", exampleDeployment)
	d := terraformEnv(t, m)["ingest"]
	for _, gone := range []string{"AUTH_MODE", "AUTH_AUDIENCE", "AUTH_ALLOWED_PRINCIPALS"} {
		if _, ok := d.plain[gone]; ok {
			t.Errorf("ingest is deployed with %s, which it never reads", gone)
		}
	}
	// Without SOURCES_FILE the deployed environment would not load.
	vars := map[string]string{}
	for k, v := range d.plain {
		if k != "SOURCES_FILE" {
			vars[k] = v
		}
	}
	if err := config.Load(context.Background(), &ingest.Config{}, config.MapLookuper(vars)); err == nil {
		t.Error("ingest config loads without SOURCES_FILE")
	}
	if !secretName.MatchString("SALESFORCE_CLIENT_SECRET") || !secretName.MatchString("PII_HASH_KEY") || !secretName.MatchString("REPLAYER_TOKENS") || secretName.MatchString("SALESFORCE_TOKEN_URL") {
		t.Error("secretName misclassifies")
	}
}
