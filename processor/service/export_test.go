package service

import (
	"context"

	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/processor/internal/push"
)

// LoadConfig and Routes expose the wiring to the benchmark, which builds the handler on its
// own instrumented Firestore client.
func LoadConfig(ctx context.Context, l config.Lookuper) (*Config, error) {
	var c Config
	err := config.Load(ctx, &c, l)
	return &c, err
}

func Routes(ctx context.Context, c *Config, st *store.Store) map[string]push.Route {
	return routes(ctx, c, st, nil, nil)
}
