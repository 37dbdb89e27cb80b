package service

import "github.com/leadpipe/leadpipe/common/openapitest"

// ingestSpec checks every exchange of the handler tests against ingest/openapi.yaml (the
// fixture's server and TestRunServes go through it), so the spec and the code cannot drift.
var ingestSpec = openapitest.MustLoad("../openapi.yaml")
