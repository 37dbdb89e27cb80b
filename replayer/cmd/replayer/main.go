// Command replayer runs the leadpipe replayer service. Configuration comes from environment
// variables; see the README.
package main

import (
	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/replayer/service"
)

func main() { app.RunService("replayer", service.Run) }
