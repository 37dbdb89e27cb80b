// Command processor runs the leadpipe processor service. Configuration comes from environment
// variables; see the README.
package main

import (
	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/processor/service"
)

func main() { app.RunService("processor", service.Run) }
