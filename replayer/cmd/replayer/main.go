// Command replayer runs the leadpipe replayer service. Configuration comes from environment
// variables; see the README.
package main

import (
	"context"
	"os"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/server"
	"github.com/leadpipe/leadpipe/replayer/service"
)

func main() { app.Main("replayer", realMain) }

func realMain(ctx context.Context) error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv, err := server.New(port)
	if err != nil {
		return err
	}
	return service.Run(ctx, config.OSLookuper(), srv)
}
