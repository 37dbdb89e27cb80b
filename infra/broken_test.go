//go:build infra

package infra

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// edit replaces old (which must occur exactly once) with new in file.
type edit struct{ file, old, new string }

// breaks are deliberate defects, one per invariant of tests/*.tftest.hcl: on a copy of infra/
// with the edits applied, `terraform test` must fail and name the invariant.
var breaks = []struct {
	name, invariant string
	edits           []edit
}{
	{"drop the agent's publisher grant on the DLQ topic", "dead-letter-publisher", []edit{{"iam.tf",
		`    "agent/dlq"      = { topic = google_pubsub_topic.dlq.name, role = "roles/pubsub.publisher", member = local.pubsub_agent_member }` + "\n", ""}}},
	{"agent gets viewer instead of subscriber on the subscription", "dead-letter-subscriber", []edit{{"iam.tf",
		`role = "roles/pubsub.subscriber", member = local.pubsub_agent_member`, `role = "roles/pubsub.viewer", member = local.pubsub_agent_member`}}},
	{"dead-letter after 5 deliveries", "processor-policy", []edit{{"pubsub.tf",
		"max_delivery_attempts = 10", "max_delivery_attempts = 5"}}},
	{"processor request timeout shorter than the ack deadline", "processor-timeout", []edit{{"variables.tf",
		`timeout = "60s"`, `timeout = "30s"`}}},
	{"replayer subscription backs off from 1 s", "replayer-policy", []edit{{"pubsub.tf",
		`minimum_backoff = "10s"`, `minimum_backoff = "1s"`}}},
	{"processor push with ingest's URL as audience", "push-oidc", []edit{{"pubsub.tf",
		"      audience              = local.service_urls.processor", "      audience              = local.service_urls.ingest"}}},
	{"replayer push signed by the replayer's own account", "push-oidc", []edit{{"pubsub.tf",
		"    push_endpoint = \"${local.service_urls.replayer}/pubsub/dlq\"\n    oidc_token {\n      service_account_email = google_service_account.push.email",
		"    push_endpoint = \"${local.service_urls.replayer}/pubsub/dlq\"\n    oidc_token {\n      service_account_email = google_service_account.replayer.email"}}},
	{"processor invocable by allUsers", "only-ingest-public", []edit{{"iam.tf",
		`      "processor/push"     = { service = "processor", member = google_service_account.push.member }`,
		`      "processor/push"     = { service = "processor", member = google_service_account.push.member }` + "\n" + `      "processor/public"   = { service = "processor", member = "allUsers" }`}}},
	{"invoker IAM check disabled on the services", "private-services", []edit{{"run.tf",
		"  deletion_protection = false\n", "  deletion_protection = false\n  invoker_iam_disabled = true\n"}}},
	{"ingest sweep without token check", "sweep-oidc", []edit{{"run.tf",
		`SWEEP_AUTH             = "oidc"`, `SWEEP_AUTH             = "none"`}}},
	{"sweep job token for the replayer's URL", "sweep-oidc", []edit{{"scheduler.tf",
		"    uri         = \"${local.service_urls.ingest}/internal/sweep\"\n\n    oidc_token {\n      service_account_email = google_service_account.scheduler.email\n      audience              = local.service_urls.ingest",
		"    uri         = \"${local.service_urls.ingest}/internal/sweep\"\n\n    oidc_token {\n      service_account_email = google_service_account.scheduler.email\n      audience              = local.service_urls.replayer"}}},
	{"auto-replay job token for ingest's URL", "replayer-jobs-oidc", []edit{{"scheduler.tf",
		"    uri         = \"${local.service_urls.replayer}/internal/auto-replay\"\n\n    oidc_token {\n      service_account_email = google_service_account.scheduler.email\n      audience              = local.service_urls.replayer",
		"    uri         = \"${local.service_urls.replayer}/internal/auto-replay\"\n\n    oidc_token {\n      service_account_email = google_service_account.scheduler.email\n      audience              = local.service_urls.ingest"}}},
	{"project-wide datastore.user again", "firestore-least-privilege", []edit{{"iam.tf",
		"  runtime_project_roles = [\n", "  runtime_project_roles = [\n    \"roles/datastore.user\",\n"}}},
	{"Firestore grants unconditioned", "firestore-least-privilege", []edit{{"iam.tf",
		`expression  = join(" || ", [for db in each.value.databases : "resource.name == \"${db}\""])`, `expression  = "true"`}}},
	{"ingest granted the operations database", "ingest-no-ops-database", []edit{{"iam.tf",
		"      databases = [local.firestore_database_resource]\n", "      databases = [local.firestore_database_resource, local.firestore_ops_database_resource]\n"}}},
	{"DLQ records back in the events database", "ingest-no-ops-database", []edit{{"run.tf",
		"        OTEL_SERVICE_NAME      = \"replayer\"\n        FIRESTORE_OPS_DATABASE = google_firestore_database.ops.name\n", "        OTEL_SERVICE_NAME      = \"replayer\"\n"}}},
	{"ingest may delete documents", "firestore-least-privilege", []edit{{"iam.tf",
		`    "datastore.entities.create",`, `    "datastore.entities.create",` + "\n" + `    "datastore.entities.delete",`}}},
	{"raw bucket public access prevention inherited", "raw-bucket", []edit{{"storage.tf",
		`public_access_prevention    = "enforced"`, `public_access_prevention    = "inherited"`}}},
	{"raw bucket with ACLs", "raw-bucket", []edit{{"storage.tf",
		"uniform_bucket_level_access = true", "uniform_bucket_level_access = false"}}},
	{"a CRM secret as a plain value", "secrets", []edit{
		{"variables.tf", "    SALESFORCE_CLIENT_SECRET = \"leadpipe-salesforce-client-secret\"\n", ""},
		{"run.tf", "        PUSH_SERVICE_ACCOUNT   = google_service_account.push.email\n", "        PUSH_SERVICE_ACCOUNT   = google_service_account.push.email\n        SALESFORCE_CLIENT_SECRET = \"hunter2\"\n"},
	}},
	{"no PII_HASH_KEY", "secrets", []edit{{"run.tf",
		"    PII_HASH_KEY = var.pii_hash_key_secret\n", ""}}},
	{"TTL on the DLQ", "ttl", []edit{{"variables.tf",
		`default     = ["events", "attempts", "rate_members"]`, `default     = ["events", "attempts", "rate_members", "dlq"]`}}},
	{"audit log kept 30 days", "audit-log", []edit{{"variables.tf",
		"  default     = 400\n", "  default     = 30\n"}}},
}

// TestBrokenCopies applies each break to a copy of infra/ and runs `terraform test` on it.
// TF_TEST_BASE is an initialised copy of infra/ (infra/check.sh makes it): its .terraform
// directory and lock file are reused, so no copy is initialised again.
func TestBrokenCopies(t *testing.T) {
	base := os.Getenv("TF_TEST_BASE")
	if base == "" {
		t.Fatal("TF_TEST_BASE is not set: run `make test-infra` (infra/check.sh)")
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyConfig(t, base, dir)
			for _, e := range b.edits {
				p := filepath.Join(dir, e.file)
				src, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if n := bytes.Count(src, []byte(e.old)); n != 1 {
					t.Fatalf("%s: the text to break occurs %d times, want 1: %q", e.file, n, e.old)
				}
				if err := os.WriteFile(p, bytes.Replace(src, []byte(e.old), []byte(e.new), 1), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "terraform", "-chdir="+dir, "test", "-no-color")
			cmd.Env = append(os.Environ(), "TF_DATA_DIR="+filepath.Join(base, ".terraform"))
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("terraform test passed on the broken copy:\n%s", out)
			}
			if !strings.Contains(string(out), "invariant "+b.invariant+":") {
				t.Fatalf("terraform test failed, but not on invariant %s:\n%s", b.invariant, out)
			}
		})
	}
}

// copyConfig copies base's .tf files, .terraform.lock.hcl and tests/ to dir.
func copyConfig(t *testing.T, base, dir string) {
	t.Helper()
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if d.IsDir() {
			if rel == ".terraform" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		if !strings.HasSuffix(p, ".tf") && !strings.HasSuffix(p, ".hcl") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), src, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
