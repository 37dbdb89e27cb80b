package service

import (
	"context"

	"github.com/leadpipe/leadpipe/common/config"
)

// LoadConfig exposes config loading to the benchmark, which builds the service on its own
// instrumented Firestore client.
func LoadConfig(ctx context.Context, l config.Lookuper) (*Config, error) {
	var c Config
	err := config.Load(ctx, &c, l)
	return &c, err
}
