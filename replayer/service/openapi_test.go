package service_test

import "github.com/leadpipe/leadpipe/common/openapitest"

// replayerSpec checks every exchange of the tests with the replayer against
// replayer/openapi.yaml: the shared service (TestMain) and each instance are reached through
// its validating proxy, Pub/Sub's pushes included. The triage page (HTML) is outside the
// document.
var replayerSpec = openapitest.MustLoad("../openapi.yaml", openapitest.Outside("/", "/ui/*"))
