// Package mapping turns a source's webhook body into normalized events (schema v1). It owns the
// sources file (YAML: one entry per source with its kind, mapping version, routing defaults,
// trust level, signature scheme and secret references) and one normalizer per kind:
// canonical, facebook_leads, typeform and json_map.
//
// Ingest runs it on every delivery; the replayer re-runs it on the archived raw body to
// re-normalize an event after a mapping fix. Normalizers are pure: no I/O, no clock (the
// receive time is passed in), so the same body and mapping version give the same events.
package mapping

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/leadpipe/leadpipe/common/contact"
	"github.com/leadpipe/leadpipe/common/event"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/secrets"
)

// Kind selects a source's payload format and its default signature scheme.
type Kind string

// The built-in kinds.
const (
	// KindCanonical: the body is the normalized event's own fields; Standard Webhooks signature.
	KindCanonical Kind = "canonical"
	// KindFacebookLeads: Meta Lead Ads webhooks (ids only; enriched by the processor).
	KindFacebookLeads Kind = "facebook_leads"
	// KindTypeform: Typeform form_response webhooks, answers mapped by field ref.
	KindTypeform Kind = "typeform"
	// KindJSONMap: any JSON body mapped by configured field paths.
	KindJSONMap Kind = "json_map"
)

// Signature schemes a source may use.
const (
	// SchemeStandardWebhooks: webhook-id, webhook-timestamp, webhook-signature "v1,<base64>",
	// secrets "whsec_<base64>".
	SchemeStandardWebhooks = "standard_webhooks"
	// SchemeMeta: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>.
	SchemeMeta = "meta_sha256"
	// SchemeTypeform: Typeform-Signature: sha256=<base64 HMAC-SHA256 of the body>.
	SchemeTypeform = "typeform_sha256"
	// SchemeHMACHex: a configured header carrying [prefix]<hex HMAC-SHA256 of the body>.
	SchemeHMACHex = "hmac_sha256_hex"
)

// Trust levels. A source has one per field group (identity, contact, company, marketing,
// other; see common/contact): the processor applies a field to a CRM record only when the
// event's source is at least as trusted for the field's group as the source of the value there,
// and not older. The default level is also logged with each delivery.
const (
	TrustHigh     = "high"
	TrustStandard = "standard"
	TrustLow      = "low"
)

// ErrConfig is wrapped by every sources-file error.
var ErrConfig = errors.New("invalid sources config")

// Sources is the parsed sources file. It is immutable and safe for concurrent use.
type Sources struct {
	byName map[string]*Source
}

// UseHasher sets the keyed hasher (PII_HASH_KEY) the sources' fallback idempotency keys are
// made with. Normalize refuses to run without one (ErrNoHasher).
func (s *Sources) UseHasher(h *pii.Hasher) {
	for _, src := range s.byName {
		src.hasher = h
	}
}

// Source is one configured sender.
type Source struct {
	// Name is the key in the sources file and the {source} path segment; [a-z0-9_-], at most 64.
	Name string `yaml:"-"`
	// hasher makes fallback idempotency keys (see Sources.UseHasher).
	hasher *pii.Hasher
	// Kind is required.
	Kind Kind `yaml:"kind"`
	// MappingVersion is written into every event; bump it when the mapping changes. Default "<kind>-1".
	MappingVersion string `yaml:"mapping_version"`
	// Trust is the source's default trust level: high, standard (default) or low.
	Trust string `yaml:"-"`
	// TrustSpec is the `trust` key as written: a level ("trust: high"), or a map of field
	// group to level with an optional "default" ("trust: {default: standard, marketing: high}").
	TrustSpec TrustSpec `yaml:"trust"`
	// Secrets are references (env:NAME or projects/P/secrets/S/versions/V) to the signing
	// secrets; every one is accepted, so a secret can be rotated without downtime. Required.
	Secrets []string `yaml:"secrets"`
	// VerifyToken is a reference to Meta's verify token for the GET handshake (facebook_leads).
	VerifyToken string `yaml:"verify_token"`
	// Signature overrides the kind's default scheme.
	Signature Signature `yaml:"signature"`
	// ContentTypes the source may send. Default ["application/json"].
	ContentTypes []string `yaml:"content_types"`
	// Routing is the default routing of the source's events. crm is required.
	Routing Routing `yaml:"routing"`
	// EventType is the event type of typeform and json_map events when the payload gives none.
	// Default lead.created.
	EventType string `yaml:"event_type"`
	// Fields maps payload fields to event fields. typeform: answer field ref -> target;
	// json_map: target -> dot path in the body (numeric segments index arrays). Targets are
	// event_type, source_event_id, occurred_at, identity.contact_external_id, identity.email,
	// identity.phone_e164 and attributes.<name>.
	Fields map[string]string `yaml:"fields"`

	normalize normalizer
	trust     map[contact.Group]contact.Trust
}

// TrustSpec is a source's `trust` key: Default for every group, Groups overriding by group.
type TrustSpec struct {
	Default string
	Groups  map[string]string
}

// UnmarshalYAML reads a level or a map of group to level.
func (t *TrustSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.Default = n.Value
		return nil
	}
	var m map[string]string
	if err := n.Decode(&m); err != nil {
		return fmt.Errorf("trust: want a level or a map of field group to level: %w", err)
	}
	t.Default = m["default"]
	delete(m, "default")
	t.Groups = m
	return nil
}

// TrustFor is the source's trust level for a field group.
func (s *Source) TrustFor(g contact.Group) contact.Trust {
	if t, ok := s.trust[g]; ok {
		return t
	}
	return contact.TrustStandard
}

// Signature selects and parameterizes the signature scheme.
type Signature struct {
	// Scheme is one of the Scheme* constants. Default by kind.
	Scheme string `yaml:"scheme"`
	// Header carries the signature (hmac_sha256_hex only). Default X-Signature.
	Header string `yaml:"header"`
	// Prefix precedes the hex digest (hmac_sha256_hex only), e.g. "sha256=". Default none.
	Prefix string `yaml:"prefix"`
}

// Routing is a source's default routing.
type Routing struct {
	CRM       string `yaml:"crm"`
	Object    string `yaml:"object"`
	UpsertKey string `yaml:"upsert_key"`
	// Modes maps an event type to upsert or update_only. Defaults: lead.enriched update_only,
	// everything else upsert.
	Modes map[string]string `yaml:"modes"`
}

// For returns the routing of an event of type eventType.
func (r Routing) For(eventType string) event.Routing {
	mode := r.Modes[eventType]
	if mode == "" {
		mode = event.ModeUpsert
		if eventType == event.TypeLeadEnriched {
			mode = event.ModeUpdateOnly
		}
	}
	return event.Routing{CRM: r.CRM, Object: r.Object, UpsertKey: r.UpsertKey, Mode: mode}
}

// LoadSources reads and validates the sources file at path.
func LoadSources(path string) (*Sources, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load sources: %w", err)
	}
	s, err := ParseSources(b)
	if err != nil {
		return nil, fmt.Errorf("load sources %s: %w", path, err)
	}
	return s, nil
}

// ParseSources parses and validates a sources file. Unknown keys are errors.
func ParseSources(b []byte) (*Sources, error) {
	var f struct {
		Sources map[string]*Source `yaml:"sources"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if len(f.Sources) == 0 {
		return nil, fmt.Errorf("%w: no sources", ErrConfig)
	}
	s := &Sources{byName: make(map[string]*Source, len(f.Sources))}
	for name, src := range f.Sources {
		if src == nil {
			return nil, fmt.Errorf("%w: source %q is empty", ErrConfig, name)
		}
		src.Name = name
		if err := src.init(); err != nil {
			return nil, fmt.Errorf("%w: source %q: %v", ErrConfig, name, err)
		}
		s.byName[name] = src
	}
	return s, nil
}

// Get returns the named source.
func (s *Sources) Get(name string) (*Source, bool) {
	src, ok := s.byName[name]
	return src, ok
}

// Names returns the source names, sorted.
func (s *Sources) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	targetRE = regexp.MustCompile(`^(event_type|source_event_id|occurred_at|identity\.(contact_external_id|email|phone_e164)|attributes\.[A-Za-z0-9_]{1,64})$`)
)

// init applies defaults and validates; it binds the kind's normalizer.
func (s *Source) init() error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("name must match %s", nameRE)
	}
	switch s.Kind {
	case KindCanonical:
		s.normalize = normalizeCanonical
		s.defaultScheme(SchemeStandardWebhooks)
	case KindFacebookLeads:
		s.normalize = normalizeFacebook
		s.defaultScheme(SchemeMeta)
		if s.VerifyToken == "" {
			return errors.New("facebook_leads needs verify_token (a secret reference)")
		}
	case KindTypeform:
		s.normalize = normalizeTypeform
		s.defaultScheme(SchemeTypeform)
	case KindJSONMap:
		s.normalize = normalizeJSONMap
		s.defaultScheme(SchemeStandardWebhooks)
		if len(s.Fields) == 0 {
			return errors.New("json_map needs fields")
		}
	default:
		return fmt.Errorf("kind %q: want canonical, facebook_leads, typeform or json_map", s.Kind)
	}
	switch s.Signature.Scheme {
	case SchemeStandardWebhooks, SchemeMeta, SchemeTypeform:
	case SchemeHMACHex:
		if s.Signature.Header == "" {
			s.Signature.Header = "X-Signature"
		}
	default:
		return fmt.Errorf("signature scheme %q unknown", s.Signature.Scheme)
	}
	if s.MappingVersion == "" {
		s.MappingVersion = string(s.Kind) + "-1"
	}
	if err := s.initTrust(); err != nil {
		return err
	}
	if len(s.Secrets) == 0 {
		return errors.New("secrets: at least one reference is required")
	}
	for _, ref := range s.Secrets {
		if err := secrets.Check(ref); err != nil {
			return err
		}
	}
	if s.VerifyToken != "" {
		if err := secrets.Check(s.VerifyToken); err != nil {
			return fmt.Errorf("verify_token: %w", err)
		}
	}
	if len(s.ContentTypes) == 0 {
		s.ContentTypes = []string{"application/json"}
	}
	if s.EventType == "" {
		s.EventType = event.TypeLeadCreated
	}
	if s.Routing.CRM == "" {
		return errors.New("routing.crm is required")
	}
	for t, m := range s.Routing.Modes {
		if m != event.ModeUpsert && m != event.ModeUpdateOnly {
			return fmt.Errorf("routing.modes[%s] = %q: want upsert or update_only", t, m)
		}
	}
	for k, v := range s.Fields {
		target := v
		if s.Kind == KindJSONMap {
			target = k
			if v == "" {
				return fmt.Errorf("fields[%s]: empty path", k)
			}
		}
		if !targetRE.MatchString(target) {
			return fmt.Errorf("fields: target %q unknown", target)
		}
	}
	return nil
}

// initTrust validates the trust key and fills Trust and the per-group levels.
func (s *Source) initTrust() error {
	s.Trust = s.TrustSpec.Default
	if s.Trust == "" {
		s.Trust = TrustStandard
	}
	def, err := contact.ParseTrust(s.Trust)
	if err != nil {
		return err
	}
	s.trust = make(map[contact.Group]contact.Trust, len(contact.Groups))
	for _, g := range contact.Groups {
		s.trust[g] = def
	}
	for g, level := range s.TrustSpec.Groups {
		if !contact.ValidGroup(g) {
			return fmt.Errorf("trust: field group %q unknown (want default, identity, contact, company, marketing or other)", g)
		}
		t, err := contact.ParseTrust(level)
		if err != nil {
			return fmt.Errorf("trust.%s: %w", g, err)
		}
		s.trust[contact.Group(g)] = t
	}
	return nil
}

func (s *Source) defaultScheme(scheme string) {
	if s.Signature.Scheme == "" {
		s.Signature.Scheme = scheme
	}
}

// AcceptsContentType reports whether the media type (parameters ignored) is one the source takes.
func (s *Source) AcceptsContentType(mediaType string) bool {
	for _, ct := range s.ContentTypes {
		if strings.EqualFold(ct, mediaType) {
			return true
		}
	}
	return false
}
