package infra

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/leadpipe/leadpipe/common/store"
)

// codeMetrics returns the OpenTelemetry instruments the services define: every
// Int64Counter("name"), Float64Histogram("name"), ...ObservableGauge("name") call in the
// non-test Go files of common, ingest, processor and replayer.
func codeMetrics(t *testing.T) []string {
	t.Helper()
	instrument := regexp.MustCompile(`\.(?:Int64|Float64)(?:Observable)?(?:Counter|UpDownCounter|Histogram|Gauge)\(\s*"([^"]+)"`)
	var names []string
	for _, dir := range []string{"../common", "../ingest", "../processor", "../replayer"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range instrument.FindAllSubmatch(src, -1) {
				names = append(names, string(m[1]))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Metrics of Google services (not ours) that monitoring.tf may use.
var googleMetrics = []string{
	"pubsub.googleapis.com/subscription/oldest_unacked_message_age",
	"pubsub_googleapis_com:subscription_oldest_unacked_message_age",
}

// TestAlertMetricsExist: every metric an alert policy or the dashboard reads is one the code
// emits (metric type workload.googleapis.com/<name>, or its PromQL form
// workload_googleapis_com:<name, dots as underscores> with a histogram suffix), or a listed
// Google metric.
func TestAlertMetricsExist(t *testing.T) {
	emitted := codeMetrics(t)
	for _, want := range []string{"leadpipe.dlq.records", "leadpipe.crm.breaker.state", "leadpipe.ingest.deliveries", "leadpipe.crm.request.duration"} {
		if !slices.Contains(emitted, want) {
			t.Fatalf("instrument scan found %v: %s missing, the scan is broken", emitted, want)
		}
	}
	src, err := os.ReadFile("monitoring.tf")
	if err != nil {
		t.Fatal(err)
	}
	problems, used := checkMonitoring(string(src), emitted)
	for _, p := range problems {
		t.Error(p)
	}
	if used < 6 {
		t.Errorf("monitoring.tf names only %d leadpipe metrics", used)
	}
	m := loadModule(t, ".", exampleDeployment)
	if n := len(m.resources("google_monitoring_alert_policy")); n < 6 {
		t.Errorf("%d alert policies, want at least 6 (issue 10's list)", n)
	}
	if len(m.resources("google_monitoring_dashboard")) != 1 {
		t.Error("no dashboard")
	}
}

// checkMonitoring returns the metrics src names that the code does not emit, and how many
// leadpipe metric references it found.
func checkMonitoring(src string, emitted []string) (problems []string, used int) {
	promName := map[string]string{}
	for _, n := range emitted {
		promName[strings.ReplaceAll(n, ".", "_")] = n
	}
	for _, m := range regexp.MustCompile(`workload\.googleapis\.com/([A-Za-z0-9_.]+)`).FindAllStringSubmatch(src, -1) {
		used++
		if !slices.Contains(emitted, m[1]) {
			problems = append(problems, "monitoring.tf uses metric "+m[1]+", which no instrument in the code defines")
		}
	}
	for _, m := range regexp.MustCompile(`workload_googleapis_com:([A-Za-z0-9_]+)`).FindAllStringSubmatch(src, -1) {
		used++
		name := m[1]
		if _, ok := promName[name]; !ok {
			base := regexp.MustCompile(`_(bucket|count|sum)$`).ReplaceAllString(name, "")
			if _, ok := promName[base]; !ok || base == name {
				problems = append(problems, "monitoring.tf uses PromQL metric "+name+", which no instrument in the code defines")
			}
		}
	}
	for _, m := range regexp.MustCompile(`[a-z]+(?:\.googleapis\.com/|_googleapis_com:)[A-Za-z0-9_./]+`).FindAllString(src, -1) {
		if !strings.HasPrefix(m, "workload") && !slices.Contains(googleMetrics, m) {
			problems = append(problems, "monitoring.tf uses Google metric "+m+": add it to googleMetrics once checked")
		}
	}
	return problems, used
}

// TestAlertMetricsExistCatches: a misspelt metric is reported by the check above.
func TestAlertMetricsExistCatches(t *testing.T) {
	emitted := codeMetrics(t)
	for _, bad := range []string{
		`filter = "metric.type=\"workload.googleapis.com/leadpipe.dlq.open_records\""`,
		`query = "rate(workload_googleapis_com:leadpipe_crm_requests_count[5m])"`,
		`query = "rate(workload_googleapis_com:leadpipe_ingest_latency_total[5m])"`,
		`filter = "metric.type=\"run.googleapis.com/request_count\""`,
	} {
		if problems, _ := checkMonitoring(bad, emitted); len(problems) != 1 {
			t.Errorf("%s: problems %v, want one", bad, problems)
		}
	}
	if problems, _ := checkMonitoring(`query = "rate(workload_googleapis_com:leadpipe_crm_request_duration_bucket[5m])"`, emitted); len(problems) != 0 {
		t.Errorf("a histogram bucket of an emitted metric reported: %v", problems)
	}
}

// TestTTLFieldsWritten: each collection with a TTL policy (variables ttl_collections and
// ttl_field) is written with that field by common/store, or the policy deletes nothing.
func TestTTLFieldsWritten(t *testing.T) {
	m := loadModule(t, ".", exampleDeployment)
	field := m.vars["ttl_field"].AsString()
	docTypes := store.DocumentTypes()
	for _, v := range m.vars["ttl_collections"].AsValueSlice() {
		coll := v.AsString()
		typ, ok := docTypes[coll]
		if !ok {
			t.Errorf("TTL policy on %s: no document type known for it", coll)
			continue
		}
		if !hasFirestoreField(reflect.TypeOf(typ), field) {
			t.Errorf("TTL policy on %s.%s, but %T has no firestore:%q field: nothing would expire", coll, field, typ, field)
		}
	}
}

func hasFirestoreField(t reflect.Type, name string) bool {
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("firestore"), ",")
		if tag == name {
			return true
		}
	}
	return false
}

// TestNoPublicGrantElsewhere: allUsers appears in one grant only (ingest's invoker), and no
// secret value is ever managed by Terraform (no secret versions, no secret data in state).
func TestNoPublicGrantElsewhere(t *testing.T) {
	paths, _ := filepath.Glob("*.tf")
	public := 0
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		public += strings.Count(string(src), `"allUsers"`) + strings.Count(string(src), `"allAuthenticatedUsers"`)
		for _, forbidden := range []string{"google_secret_manager_secret_version", "secret_data"} {
			if strings.Contains(string(src), forbidden) {
				t.Errorf("%s uses %s: secret values never go through Terraform", p, forbidden)
			}
		}
	}
	// ingest's invoker grant, and the two in the operators variable's validation.
	if public != 3 {
		t.Errorf(`"allUsers"/"allAuthenticatedUsers" appear %d times in infra/*.tf, want 3 (ingest's invoker; the operators validation)`, public)
	}
}
