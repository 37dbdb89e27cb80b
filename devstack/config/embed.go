// Package devconfig embeds the configuration files devstack up hands to the services.
package devconfig

import _ "embed"

// SourcesYAML is sources.yaml in this directory: the ingest (and replayer) sources
// configuration of the local stack, with a `demo` source of kind canonical routed to
// Salesforce and examples of the other kinds. Secrets are references to environment variables.
//
//go:embed sources.yaml
var SourcesYAML []byte
