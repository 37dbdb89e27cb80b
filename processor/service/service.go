// Package service wires the processor service: it loads its configuration, builds its
// dependencies and serves HTTP until the context ends. The command in cmd/processor and devstack
// both call Run.
package service

import (
	"context"
	"net/http"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/server"
)

// Run serves the processor service on srv until ctx ends, reading configuration through env.
func Run(ctx context.Context, env config.Lookuper, srv *server.Server) error {
	mux := http.NewServeMux()
	app.Health(mux, nil)
	return srv.ServeHTTP(ctx, mux)
}
