package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/pushmsg"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/api"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
)

// webformSources is a json_map source; emailPath and idPath are where its mapping looks for
// the email and the submission id.
func webformSources(version, emailPath, idPath string) string {
	return `sources:
  webform:
    kind: json_map
    mapping_version: ` + version + `
    secrets: ["env:WEBFORM_SECRET"]
    routing: {crm: salesforce, object: Lead, upsert_key: External_Id__c}
    fields:
      source_event_id: ` + idPath + `
      identity.email: ` + emailPath + `
      attributes.first_name: contact.first_name
`
}

// The form sends contact.email; mapping webform-1 looks for contact.mail.
const (
	brokenMapping = "contact.mail"
	fixedMapping  = "contact.email"
)

// writeSources (re)writes the sources file in place, as an operator fixing a mapping would.
func writeSources(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// quarantineUnusable does what ingest does with a signed payload its mapping cannot use:
// archive the raw body in GCS, store the partial event quarantined with the mapping's reason,
// and dead-letter it. It returns the document id and the partial event.
func quarantineUnusable(t *testing.T, sourcesYAML string, body []byte, archiveIt bool) (string, event.Event) {
	t.Helper()
	ctx := context.Background()
	sources, err := mapping.ParseSources([]byte(sourcesYAML))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := sources.Get("webform")
	received := time.Now().UTC().Truncate(time.Millisecond)
	_, err = src.Normalize(body, http.Header{}, received)
	var ue *mapping.UnusableError
	if !errors.As(err, &ue) {
		t.Fatalf("the broken mapping accepted the payload: %v", err)
	}
	raw := &archive.Raw{Source: "webform", ReceivedAt: received, ContentType: "application/json",
		Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: body,
		Signature: archive.SignatureResult{Scheme: mapping.SchemeStandardWebhooks, Verified: true}}
	gcs, err := env.StorageClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Close()
	ar := archive.New(gcs, env.Bucket)
	ref := ar.Ref(archive.ObjectName("webform", body))
	if archiveIt {
		if ref, err = ar.Put(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	ev := *ue.Partial
	id := event.DocID(ev.IdempotencyKey)
	ev.CorrelationID = "corr-" + id[:8]
	ev.Audit.RawEventRef, ev.Audit.NormalizedEventRef = ref, store.DocPath(id)
	doc := &store.EventDoc{
		IdempotencyKey: ev.IdempotencyKey, EventID: ev.EventID, Source: ev.Source, EventType: ev.EventType,
		CorrelationID: ev.CorrelationID, MappingVersion: ev.MappingVersion, Event: ev, RawRef: ref,
		State: store.StateQuarantined, FailureClass: "permanent", ErrorMessage: ue.Error(), QuarantinedBy: "ingest",
	}
	if err := st.CreateEvent(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if code := pushDLQ(t, ev, baseAttrs(ev), "m-"+id[:12]); code != http.StatusNoContent {
		t.Fatalf("dead-letter push = %d, want 204", code)
	}
	return id, ev
}

func renormReq(reason string) map[string]any {
	return map[string]any{"reason": reason, "renormalize": true}
}

// A lead quarantined because the source's mapping missed the email is replayed with
// renormalize after the sources file is fixed: the running replayer picks up the new file,
// and the republished message is the rebuilt event (identity set) under the same key, with
// both mapping versions on record.
func TestRenormalizeAfterMappingFix(t *testing.T) {
	reset(t)
	path := filepath.Join(t.TempDir(), "sources.yaml")
	writeSources(t, path, webformSources("webform-1", brokenMapping, "submission.id"))
	inst := startReplayer(t, map[string]string{"SOURCES_FILE": path})

	subID := "sub-" + nonce()
	body := []byte(`{"submission":{"id":"` + subID + `"},"contact":{"email":"Ada.Lovelace@Example.com","first_name":"Ada"}}`)
	id, partial := quarantineUnusable(t, webformSources("webform-1", brokenMapping, "submission.id"), body, true)
	if partial.IdempotencyKey != event.IdempotencyKey("webform", event.TypeLeadCreated, subID) || !partial.Identity.Empty() {
		t.Fatalf("partial event: key %q identity %+v", partial.IdempotencyKey, partial.Identity)
	}

	// Before the fix the current mapping still finds no identity: 422, nothing moves.
	code, msg := callAt(t, inst.URL, "POST", "/v1/dlq/"+id+":replay", aliceToken, renormReq("try again"), nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(msg), "no identity") {
		t.Fatalf("renormalize with the broken mapping = %d %s, want 422 naming the missing identity", code, msg)
	}
	if s := getEvent(t, id).State; s != store.StateQuarantined || len(leadsMessages(partial.IdempotencyKey)) != 0 {
		t.Fatalf("a failed renormalize moved the event to %s or published", s)
	}

	writeSources(t, path, webformSources("webform-2", fixedMapping, "submission.id"))
	var res replay.Result
	if code, msg := callAt(t, inst.URL, "POST", "/v1/dlq/"+id+":replay", aliceToken, renormReq("email path fixed, INC-9"), &res); code != http.StatusOK {
		t.Fatalf("renormalizing replay = %d %s, want 200", code, msg)
	}
	if res.Outcome != replay.OutcomeReplayed || res.OldMappingVersion != "webform-1" || res.NewMappingVersion != "webform-2" {
		t.Errorf("result = %+v, want replayed webform-1 -> webform-2", res)
	}

	var msgs []event.Event
	var attrs []map[string]string
	for _, m := range env.Messages(leadsTop) {
		if m.Attributes[pushmsg.AttrIdempotencyKey] != partial.IdempotencyKey {
			continue
		}
		var ev event.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("replayed message data: %v", err)
		}
		msgs, attrs = append(msgs, ev), append(attrs, m.Attributes)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages on leads, want 1", len(msgs))
	}
	got := msgs[0]
	if got.IdempotencyKey != partial.IdempotencyKey || got.EventID != partial.EventID {
		t.Errorf("rebuilt event key %q id %q, want the original %q %q", got.IdempotencyKey, got.EventID, partial.IdempotencyKey, partial.EventID)
	}
	if got.Identity.Email != "ada.lovelace@example.com" || got.Attributes["first_name"] != "Ada" {
		t.Errorf("rebuilt event identity %+v attributes %v, want the email and first name", got.Identity, got.Attributes)
	}
	if got.MappingVersion != "webform-2" || got.CorrelationID != partial.CorrelationID || got.Audit.RawEventRef != partial.Audit.RawEventRef {
		t.Errorf("rebuilt event mapping %q correlation %q raw %q", got.MappingVersion, got.CorrelationID, got.Audit.RawEventRef)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("rebuilt event is not valid: %v", err)
	}
	if attrs[0][pushmsg.AttrMappingVersion] != "webform-2" || attrs[0][pushmsg.AttrReplayID] != res.ReplayID {
		t.Errorf("message attributes = %v", attrs[0])
	}

	doc := getEvent(t, id)
	if doc.State != store.StateReceived || doc.MappingVersion != "webform-2" || doc.Event.Identity.Email != "ada.lovelace@example.com" {
		t.Errorf("event after replay: state %s mapping %s identity %+v", doc.State, doc.MappingVersion, doc.Event.Identity)
	}
	var audit api.AuditResponse
	callAt(t, inst.URL, "GET", "/v1/audit?target="+id, aliceToken, nil, &audit)
	var replayed *store.AuditEntry
	for _, e := range audit.Entries {
		if e.Outcome == replay.OutcomeReplayed {
			replayed = e
		}
	}
	if replayed == nil || replayed.Actor != "alice" || replayed.Reason != "email path fixed, INC-9" ||
		!strings.Contains(replayed.Detail, "webform-1") || !strings.Contains(replayed.Detail, "webform-2") {
		t.Errorf("audit of the renormalizing replay = %+v, want both mapping versions in its detail", audit.Entries)
	}
}

// A fix that would give the lead another idempotency key is refused: replaying it under a new
// key could create a second CRM record.
func TestRenormalizeKeyChangeRefused(t *testing.T) {
	reset(t)
	path := filepath.Join(t.TempDir(), "sources.yaml")
	writeSources(t, path, webformSources("webform-1", brokenMapping, "submission.id"))
	inst := startReplayer(t, map[string]string{"SOURCES_FILE": path})
	uuid := "u-" + nonce()
	body := []byte(`{"submission":{"id":"sub-` + nonce() + `","uuid":"` + uuid + `"},"contact":{"email":"grace@example.com"}}`)
	id, partial := quarantineUnusable(t, webformSources("webform-1", brokenMapping, "submission.id"), body, true)

	writeSources(t, path, webformSources("webform-2", fixedMapping, "submission.uuid"))
	code, msg := callAt(t, inst.URL, "POST", "/v1/dlq/"+id+":replay", aliceToken, renormReq("fixed"), nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(msg), "idempotency key") {
		t.Errorf("key-changing renormalize = %d %s, want 422 about the idempotency key", code, msg)
	}
	if doc := getEvent(t, id); doc.State != store.StateQuarantined || doc.MappingVersion != "webform-1" {
		t.Errorf("refused renormalize changed the event: state %s mapping %s", doc.State, doc.MappingVersion)
	}
	if n := len(leadsMessages(partial.IdempotencyKey)) + len(leadsMessages(event.IdempotencyKey("webform", event.TypeLeadCreated, uuid))); n != 0 {
		t.Errorf("%d messages published by a refused renormalize", n)
	}
	if r, _ := st.GetDLQ(context.Background(), id); r.Status != store.DLQOpen {
		t.Errorf("record status %s, want open", r.Status)
	}
}

// Without the archived payload there is nothing to rebuild from: a 422 that says so, and a
// plain replay is still possible.
func TestRenormalizeWithoutRawPayload(t *testing.T) {
	reset(t)
	path := filepath.Join(t.TempDir(), "sources.yaml")
	writeSources(t, path, webformSources("webform-2", fixedMapping, "submission.id"))
	inst := startReplayer(t, map[string]string{"SOURCES_FILE": path})

	body := []byte(`{"submission":{"id":"sub-` + nonce() + `"},"contact":{"email":"hopper@example.com"}}`)
	notArchived, _ := quarantineUnusable(t, webformSources("webform-1", brokenMapping, "submission.id"), body, false)
	noRef := newEvent("noraw-" + nonce())
	noRef.Source = "webform"
	noRefID := seed(t, noRef, store.StateQuarantined, 1)
	pushDLQ(t, noRef, processorAttrs(noRef, "permanent", "x", 1), "m-"+noRefID[:12])

	for _, id := range []string{notArchived, noRefID} {
		code, msg := callAt(t, inst.URL, "POST", "/v1/dlq/"+id+":replay", aliceToken, renormReq("fixed"), nil)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(msg), replay.ErrRawMissing.Error()) {
			t.Errorf("%s: renormalize without raw payload = %d %s, want 422 %q", id, code, msg, replay.ErrRawMissing)
		}
		if s := getEvent(t, id).State; s != store.StateQuarantined {
			t.Errorf("%s: state %s after a failed renormalize, want quarantined", id, s)
		}
	}
	// The main replayer has no SOURCES_FILE at all.
	if code, msg := callAt(t, baseURL, "POST", "/v1/dlq/"+noRefID+":replay", aliceToken, renormReq("fixed"), nil); code != http.StatusUnprocessableEntity || !strings.Contains(string(msg), "SOURCES_FILE") {
		t.Errorf("renormalize without a sources file = %d %s, want 422 naming SOURCES_FILE", code, msg)
	}
	var res replay.Result
	if code := call(t, "POST", "/v1/dlq/"+noRefID+":replay", aliceToken, replayReq("replay as stored"), &res); code != http.StatusOK || res.Outcome != replay.OutcomeReplayed {
		t.Errorf("plain replay = %d %+v, want replayed", code, res)
	}
}
