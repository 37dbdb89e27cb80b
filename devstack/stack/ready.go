package stack

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/leadpipe/leadpipe/devstack/provision"
)

func (s *Stack) provision(ctx context.Context, t provision.Topology) error {
	c, err := pubsub.NewClient(ctx, s.ProjectID)
	if err != nil {
		return fmt.Errorf("pubsub client: %w", err)
	}
	defer c.Close()
	return provision.PubSub(ctx, c, t)
}

// waitReady polls each service's /readyz (and the fake CRM's control API) until all answer 200 or 30 s pass.
func (s *Stack) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range []string{s.IngestURL + "/readyz", s.ProcessorURL + "/readyz", s.ReplayerURL + "/readyz", s.CRM.URL() + "/_control/faults"} {
		for {
			if err := s.Err(); err != nil {
				return err
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after 30s (last error: %v)", u, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
