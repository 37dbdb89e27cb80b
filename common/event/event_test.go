package event_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pii"
)

const (
	testEmail = "Jane.Doe@Example.com"
	testPhone = "+15551234567"
)

var occurred = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

func validEvent() event.Event {
	return event.Event{
		SchemaVersion:  event.SchemaVersion,
		EventID:        "evt-1",
		EventType:      event.TypeLeadCreated,
		Source:         "typeform",
		SourceEventID:  "resp-42",
		OccurredAt:     occurred,
		IdempotencyKey: event.IdempotencyKey("typeform", event.TypeLeadCreated, "resp-42"),
		Identity:       event.Identity{Email: testEmail},
		Attributes:     map[string]string{"first_name": "Jane", "company": "Acme"},
		Routing:        event.Routing{CRM: "salesforce", Object: "Lead", UpsertKey: "External_Id__c", Mode: event.ModeUpsert},
		Audit: event.Audit{
			ReceivedAt:         occurred.Add(time.Second),
			RawEventRef:        "gs://b/raw/typeform/x.json",
			NormalizedEventRef: "events/abc",
		},
		MappingVersion: "typeform-v3",
		CorrelationID:  "corr-1",
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*event.Event)
		wantErr error
		wantMsg string // substring of the error, when set
	}{
		{"valid", func(*event.Event) {}, nil, ""},
		{"valid update_only", func(e *event.Event) { e.Routing.Mode = event.ModeUpdateOnly }, nil, ""},
		{"valid external id only", func(e *event.Event) { e.Identity = event.Identity{ContactExternalID: "c-1"} }, nil, ""},
		{"valid phone only", func(e *event.Event) { e.Identity = event.Identity{PhoneE164: testPhone} }, nil, ""},
		{"valid thin event for enrichment", func(e *event.Event) {
			e.Identity = event.Identity{}
			e.Enrich = &event.Enrichment{Provider: "meta_graph", Refs: map[string]string{"leadgen_id": "1"}}
		}, nil, ""},
		{"schema version empty", func(e *event.Event) { e.SchemaVersion = "" }, event.ErrSchemaVersion, ""},
		{"schema version 2.0", func(e *event.Event) { e.SchemaVersion = "2.0" }, event.ErrSchemaVersion, `"2.0"`},
		{"missing event_id", func(e *event.Event) { e.EventID = "" }, event.ErrMissingField, "event_id"},
		{"missing event_type", func(e *event.Event) { e.EventType = "" }, event.ErrMissingField, "event_type"},
		{"missing source", func(e *event.Event) { e.Source = "" }, event.ErrMissingField, "source"},
		{"missing idempotency_key", func(e *event.Event) { e.IdempotencyKey = "" }, event.ErrMissingField, "idempotency_key"},
		{"missing occurred_at", func(e *event.Event) { e.OccurredAt = time.Time{} }, event.ErrMissingField, "occurred_at"},
		{"no identity", func(e *event.Event) { e.Identity = event.Identity{} }, event.ErrNoIdentity, ""},
		{"empty mode", func(e *event.Event) { e.Routing.Mode = "" }, event.ErrBadRouting, "mode"},
		{"unknown mode", func(e *event.Event) { e.Routing.Mode = "insert" }, event.ErrBadRouting, `"insert"`},
		{"empty crm", func(e *event.Event) { e.Routing.CRM = "" }, event.ErrBadRouting, "crm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			tt.mutate(&e)
			err := e.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate: got %v, want errors.Is %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Validate: got %q, want it to mention %q", err, tt.wantMsg)
			}
			// Validation errors never echo personal data.
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(testEmail)) {
				t.Errorf("error %q contains the email", err)
			}
		})
	}
}

func TestIdentityEmpty(t *testing.T) {
	tests := []struct {
		id   event.Identity
		want bool
	}{
		{event.Identity{}, true},
		{event.Identity{ContactExternalID: "x"}, false},
		{event.Identity{Email: "a@b"}, false},
		{event.Identity{PhoneE164: "+1"}, false},
	}
	for _, tt := range tests {
		if got := tt.id.Empty(); got != tt.want {
			t.Errorf("%+v.Empty(): got %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	if got, want := event.IdempotencyKey("hubspot", "lead.updated", "987"), "hubspot|lead.updated|987"; got != want {
		t.Errorf("IdempotencyKey: got %q, want %q", got, want)
	}
}

var fallbackRE = regexp.MustCompile(`^typeform\|lead\.created\|[0-9a-f]{64}$`)

func TestFallbackIdempotencyKey(t *testing.T) {
	id := event.Identity{Email: testEmail, PhoneE164: testPhone}
	base := event.FallbackIdempotencyKey(testHasher, "typeform", event.TypeLeadCreated, id, occurred)

	t.Run("format", func(t *testing.T) {
		if !fallbackRE.MatchString(base) {
			t.Errorf("got %q, want source|event_type|<64 hex>", base)
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		if again := event.FallbackIdempotencyKey(testHasher, "typeform", event.TypeLeadCreated, id, occurred); again != base {
			t.Errorf("got %q then %q, want equal", base, again)
		}
	})
	t.Run("no personal data", func(t *testing.T) {
		low := strings.ToLower(base)
		for _, pii := range []string{strings.ToLower(testEmail), "jane", "example.com", strings.TrimPrefix(testPhone, "+"), "5551234567"} {
			if strings.Contains(low, pii) {
				t.Errorf("key %q contains %q", base, pii)
			}
		}
	})

	same := []struct {
		name string
		id   event.Identity
		at   time.Time
	}{
		{"email case", event.Identity{Email: strings.ToUpper(testEmail), PhoneE164: testPhone}, occurred},
		{"email spaces", event.Identity{Email: "  " + testEmail + "\t", PhoneE164: testPhone}, occurred},
		{"phone spaces", event.Identity{Email: testEmail, PhoneE164: " " + testPhone + " "}, occurred},
		{"same instant other zone", id, occurred.In(time.FixedZone("X", 5*3600))},
	}
	for _, tt := range same {
		t.Run("same/"+tt.name, func(t *testing.T) {
			if got := event.FallbackIdempotencyKey(testHasher, "typeform", event.TypeLeadCreated, tt.id, tt.at); got != base {
				t.Errorf("got %q, want %q", got, base)
			}
		})
	}

	different := []struct {
		name            string
		source, evtType string
		id              event.Identity
		at              time.Time
	}{
		{"occurred_at +1ns", "typeform", event.TypeLeadCreated, id, occurred.Add(time.Nanosecond)},
		{"occurred_at +1s", "typeform", event.TypeLeadCreated, id, occurred.Add(time.Second)},
		{"other email", "typeform", event.TypeLeadCreated, event.Identity{Email: "other@example.com", PhoneE164: testPhone}, occurred},
		{"other phone", "typeform", event.TypeLeadCreated, event.Identity{Email: testEmail, PhoneE164: "+15550000000"}, occurred},
		{"external id added", "typeform", event.TypeLeadCreated, event.Identity{ContactExternalID: "c1", Email: testEmail, PhoneE164: testPhone}, occurred},
		// Field boundaries matter: moving a value between fields must change the key.
		{"email as phone", "typeform", event.TypeLeadCreated, event.Identity{PhoneE164: strings.ToLower(testEmail) + "\x00" + testPhone}, occurred},
		{"other source", "webflow", event.TypeLeadCreated, id, occurred},
		{"other type", "typeform", event.TypeLeadUpdated, id, occurred},
	}
	for _, tt := range different {
		t.Run("different/"+tt.name, func(t *testing.T) {
			if got := event.FallbackIdempotencyKey(testHasher, tt.source, tt.evtType, tt.id, tt.at); got == base {
				t.Errorf("got the same key %q, want a different one", got)
			}
		})
	}
}

func TestDocID(t *testing.T) {
	key := event.FallbackIdempotencyKey(testHasher, "typeform", event.TypeLeadCreated, event.Identity{Email: testEmail}, occurred)
	keys := []string{
		"typeform|lead.created|resp-42",
		"src|lead.created|" + testEmail, // a careless source id that is an email
		key,
		"",
	}
	seen := map[string]string{}
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			id := event.DocID(k)
			if len(id) != 64 {
				t.Fatalf("len: got %d, want 64", len(id))
			}
			if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
				t.Errorf("DocID %q: want lowercase hex", id)
			}
			if strings.Contains(strings.ToLower(id), "jane") || strings.Contains(id, "@") {
				t.Errorf("DocID %q holds personal data", id)
			}
			if id != event.DocID(k) {
				t.Errorf("DocID not deterministic")
			}
			if prev, ok := seen[id]; ok {
				t.Errorf("DocID(%q) == DocID(%q)", k, prev)
			}
			seen[id] = k
		})
	}
	// Known vector: SHA-256("abc").
	if got, want := event.DocID("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("DocID(abc): got %s, want %s", got, want)
	}
}

func TestContactKey(t *testing.T) {
	hashPart, tokenPart := `[0-9a-f]{24}`, `[0-9a-f]{64}`
	tests := []struct {
		name   string
		id     event.Identity
		enrich *event.Enrichment
		want   string // regexp
	}{
		{"external id wins", event.Identity{ContactExternalID: "C-9", Email: testEmail, PhoneE164: testPhone}, nil, `^typeform:C-9$`},
		{"email", event.Identity{Email: testEmail, PhoneE164: testPhone}, nil, `^typeform:email:` + tokenPart + `$`},
		{"phone", event.Identity{PhoneE164: testPhone}, nil, `^typeform:phone:` + tokenPart + `$`},
		{"leadgen id", event.Identity{}, &event.Enrichment{Provider: "meta_graph", Refs: map[string]string{"leadgen_id": "777"}}, `^typeform:lead:777$`},
		{"enrich without leadgen id falls back to key", event.Identity{}, &event.Enrichment{Provider: "meta_graph"}, `^typeform:key:` + hashPart + `$`},
		{"nothing: key hash", event.Identity{}, nil, `^typeform:key:` + hashPart + `$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			e.Identity = tt.id
			e.Enrich = tt.enrich
			got := e.ContactKey(testHasher)
			if !regexp.MustCompile(tt.want).MatchString(got) {
				t.Errorf("ContactKey: got %q, want match %s", got, tt.want)
			}
			low := strings.ToLower(got)
			for _, pii := range []string{strings.ToLower(testEmail), "example.com", "@", "5551234567"} {
				if strings.Contains(low, pii) {
					t.Errorf("ContactKey %q contains %q in clear", got, pii)
				}
			}
		})
	}

	t.Run("email case-insensitive", func(t *testing.T) {
		a, b := validEvent(), validEvent()
		a.Identity = event.Identity{Email: testEmail}
		b.Identity = event.Identity{Email: strings.ToUpper(testEmail)}
		if a.ContactKey(testHasher) != b.ContactKey(testHasher) {
			t.Errorf("got %q and %q, want equal", a.ContactKey(testHasher), b.ContactKey(testHasher))
		}
	})
	t.Run("email and phone hashes differ", func(t *testing.T) {
		a, b := validEvent(), validEvent()
		a.Identity = event.Identity{Email: "x"}
		b.Identity = event.Identity{PhoneE164: "x"}
		if a.ContactKey(testHasher) == b.ContactKey(testHasher) {
			t.Errorf("email and phone keys collide: %q", a.ContactKey(testHasher))
		}
	})
}

var testHasher, _ = pii.NewHasher([]byte("event-test-pii-key-0123456789"))

// TestKeysAreKeyed: the hashes of personal data in keys are HMACs under the deployment key:
// another key gives other keys, and the bare SHA-256 a dictionary would try is not among them.
func TestKeysAreKeyed(t *testing.T) {
	other, _ := pii.NewHasher([]byte("another-deployment-key-0123"))
	id := event.Identity{Email: testEmail}
	k1 := event.FallbackIdempotencyKey(testHasher, "typeform", event.TypeLeadCreated, id, occurred)
	k2 := event.FallbackIdempotencyKey(other, "typeform", event.TypeLeadCreated, id, occurred)
	if k1 == k2 {
		t.Error("the fallback key does not depend on the deployment key")
	}
	e := validEvent()
	e.Identity = id
	if e.ContactKey(testHasher) == e.ContactKey(other) {
		t.Error("the contact key does not depend on the deployment key")
	}
	bare := sha256.Sum256([]byte(strings.ToLower(testEmail)))
	for _, k := range []string{k1, e.ContactKey(testHasher)} {
		if strings.Contains(k, hex.EncodeToString(bare[:12])) {
			t.Errorf("key %q holds the bare SHA-256 of the email", k)
		}
	}
	var b strings.Builder
	for _, s := range []string{"", strings.ToLower(testEmail), "", occurred.UTC().Format(time.RFC3339Nano)} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	plain := sha256.Sum256([]byte(b.String()))
	if strings.HasSuffix(k1, hex.EncodeToString(plain[:])) {
		t.Error("the fallback key is the bare SHA-256 of the identity")
	}
}

// TestJSONFieldNames checks the wire names against the design brief, exactly.
func TestJSONFieldNames(t *testing.T) {
	e := validEvent()
	e.Identity = event.Identity{ContactExternalID: "c-1", Email: testEmail, PhoneE164: testPhone}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	wantTop := []string{
		"schema_version", "event_id", "event_type", "source", "source_event_id", "occurred_at",
		"idempotency_key", "identity", "attributes", "routing", "audit", "mapping_version",
		"correlation_id",
	}
	checkKeys(t, "event", m, wantTop)

	nested := []struct {
		field string
		want  []string
	}{
		{"identity", []string{"contact_external_id", "email", "phone_e164"}},
		{"routing", []string{"crm", "object", "upsert_key", "mode"}},
		{"audit", []string{"received_at", "raw_event_ref", "normalized_event_ref"}},
		{"attributes", []string{"first_name", "company"}},
	}
	for _, n := range nested {
		t.Run(n.field, func(t *testing.T) {
			var sub map[string]json.RawMessage
			if err := json.Unmarshal(m[n.field], &sub); err != nil {
				t.Fatalf("%s: %v", n.field, err)
			}
			checkKeys(t, n.field, sub, n.want)
		})
	}

	t.Run("values", func(t *testing.T) {
		var got struct {
			SchemaVersion string    `json:"schema_version"`
			OccurredAt    time.Time `json:"occurred_at"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.SchemaVersion != "1.0" {
			t.Errorf("schema_version: got %q, want %q", got.SchemaVersion, "1.0")
		}
		if !got.OccurredAt.Equal(occurred) {
			t.Errorf("occurred_at: got %v, want %v", got.OccurredAt, occurred)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		var back event.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		b2, _ := json.Marshal(back)
		if string(b2) != string(b) {
			t.Errorf("round trip:\n got %s\nwant %s", b2, b)
		}
	})

	t.Run("optional fields omitted", func(t *testing.T) {
		e := validEvent()
		e.SourceEventID = ""
		e.Attributes = nil
		e.Identity = event.Identity{Email: "a@b.c"}
		b, _ := json.Marshal(e)
		var m map[string]json.RawMessage
		_ = json.Unmarshal(b, &m)
		for _, k := range []string{"source_event_id", "attributes", "enrich"} {
			if _, ok := m[k]; ok {
				t.Errorf("key %q present, want omitted when empty", k)
			}
		}
		var id map[string]any
		_ = json.Unmarshal(m["identity"], &id)
		checkKeys(t, "identity", mapRaw(id), []string{"email"})
	})
}

func mapRaw(m map[string]any) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k := range m {
		out[k] = nil
	}
	return out
}

func checkKeys(t *testing.T, what string, m map[string]json.RawMessage, want []string) {
	t.Helper()
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys:\n got %v\nwant %v", what, got, want)
	}
}
