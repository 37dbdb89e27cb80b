package service

import (
	"fmt"

	"github.com/leadpipe/leadpipe/common/contact"
	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/identity"
)

// identitySteps returns a builder of each CRM's identity step configuration (one contact
// across sources, field trust and freshness: identity.Middleware, and identity.Prerequest for
// the claim), keyed by the deployment's PII hasher (cfg.hasher, from the
// required PII_HASH_KEY). Trust levels come from SOURCES_FILE; without it every source is
// trusted "standard" and freshness alone decides.
func identitySteps(cfg *Config, st *store.Store) (func(crmName string) identity.Config, error) {
	h := cfg.hasher
	if h == nil {
		return nil, fmt.Errorf("identity step: no PII hasher")
	}
	var trust func(string, contact.Group) contact.Trust
	if cfg.SourcesFile != "" {
		srcs, err := mapping.LoadSources(cfg.SourcesFile)
		if err != nil {
			return nil, err
		}
		trust = func(source string, g contact.Group) contact.Trust {
			if s, ok := srcs.Get(source); ok {
				return s.TrustFor(g)
			}
			return contact.TrustStandard
		}
	}
	m := identity.NewMetrics()
	return func(name string) identity.Config {
		return identity.Config{CRM: name, Store: st, Hasher: h, GmailCanonical: cfg.IdentityGmailCanonical, Trust: trust, Metrics: m}
	}, nil
}
