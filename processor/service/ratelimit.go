package service

import (
	"context"

	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/crm"
	"github.com/leadpipe/leadpipe/processor/internal/ratelimit"
)

// newLimiter builds CRM name's send-rate limiter: shared between the instances through the
// store's rate budget when CRM_RATE_SHARED and a store are there (it joins now and leaves on
// Close), else local. An adapter reporting the CRM's daily API usage (Salesforce's Budget,
// from Sforce-Limit-Info) lowers the rate near the limit.
func newLimiter(ctx context.Context, cfg *Config, st *store.Store, name string, a crm.Upserter) *ratelimit.Limiter {
	var lim *ratelimit.Limiter
	if cfg.CRMRateShared && st != nil {
		lim = ratelimit.NewShared(cfg.CRMRatePerSec, cfg.RateMaxWait, ratelimit.Shared{CRM: name, Instance: cfg.InstanceID,
			Budget: st, Refresh: cfg.CRMRateRefresh, Headroom: cfg.CRMRateHeadroom, Log: logging.FromContext(ctx)})
	} else {
		lim = ratelimit.New(cfg.CRMRatePerSec, cfg.RateMaxWait)
	}
	if u, ok := a.(interface{ Budget() (used, limit int64) }); ok {
		lim.WithUsage(u.Budget)
	}
	lim.Start(ctx)
	return lim
}
