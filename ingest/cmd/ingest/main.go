// Command ingest runs the leadpipe ingest service. Configuration comes from environment
// variables; see the README.
package main

import (
	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/ingest/service"
)

func main() { app.RunService("ingest", service.Run) }
