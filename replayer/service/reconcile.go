package service

import (
	"net/http"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/leadpipe/leadpipe/common/archive"
	"github.com/leadpipe/leadpipe/common/metagraph"
	"github.com/leadpipe/leadpipe/common/outbox"
	"github.com/leadpipe/leadpipe/common/pii"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/api"
	"github.com/leadpipe/leadpipe/replayer/internal/reconcile"
	"github.com/leadpipe/leadpipe/replayer/internal/renormalize"
)

// newReconcile builds the reconcile endpoints: the Graph API client, and the outbox that
// publishes what reconcile takes in exactly as ingest publishes webhooks. Without a Meta token
// or a sources file the endpoints answer 422. What it takes in is indexed for "find a lead"
// with hasher, as ingest indexes webhooks (nil: no index). stop writes the deferred publish
// marks and flushes the publishers.
func newReconcile(ps *pubsub.Client, st *store.Store, raw *archive.Archive, sources *renormalize.File, hasher *pii.Hasher, cfg *Config) (*api.Reconcile, func()) {
	leads := ps.Publisher(cfg.GCP.LeadsTopic)
	leads.EnableMessageOrdering = true
	dlq := ps.Publisher(cfg.GCP.DLQTopic)
	dlq.EnableMessageOrdering = true
	ob := outbox.New(st, leads, dlq, outbox.Options{Delay: cfg.ReplayOutboxGrace})
	var graph reconcile.Graph
	if rc := cfg.Reconcile; rc.MetaAccessToken != "" {
		graph = &metagraph.Client{BaseURL: rc.MetaGraphURL, Version: rc.MetaGraphVersion, AccessToken: rc.MetaAccessToken,
			HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: otelhttp.NewTransport(http.DefaultTransport)}}
	}
	var src reconcile.Sources
	if sources != nil {
		src = sources
	}
	forms, _ := reconcile.ParseForms(cfg.Reconcile.Forms) // validated with the config
	r := reconcile.New(st, raw, graph, ob, src, reconcile.Options{
		PageSize: cfg.Reconcile.PageSize, MaxLeads: cfg.Reconcile.MaxLeads, OutboxDelay: cfg.ReplayOutboxGrace, Hasher: hasher,
	})
	return &api.Reconcile{Runner: r, Forms: forms, Lookback: cfg.Reconcile.Lookback}, func() { _ = ob.Close(); leads.Stop(); dlq.Stop() }
}
