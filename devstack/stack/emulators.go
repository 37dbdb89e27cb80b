package stack

import (
	"context"
	"fmt"
	"os"

	"github.com/leadpipe/leadpipe/common/app"
	"github.com/leadpipe/leadpipe/common/config"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/devstack/emulators"
)

// Emulators starts (or, with --emulators=external, finds) the Firestore, Pub/Sub and GCS
// emulators, creates the raw bucket and points this process's Google clients at them.
func Emulators(ctx context.Context, o Options) (*Stack, error) {
	o.defaults()
	s := &Stack{ProjectID: o.ProjectID}
	set, err := emulators.Start(ctx, emulators.Options{
		Mode: o.Emulators, ProjectID: o.ProjectID, Host: o.Host,
		FirestorePort: o.Ports.Firestore, PubSubPort: o.Ports.PubSub, GCSPort: o.Ports.GCS,
		Logger: o.logger, Buckets: []string{s.Bucket()},
		PushTimeout: o.PushTimeout, MaxPushBackoff: o.MaxPushBackoff, Lookup: o.Lookup,
	})
	if err != nil {
		return nil, err
	}
	s.emu = set
	s.Firestore, s.PubSub, s.GCS = set.Firestore, set.PubSub, set.GCS
	for k, v := range s.emulatorVars() {
		if err := os.Setenv(k, v); err != nil {
			s.Close()
			return nil, fmt.Errorf("setenv %s: %w", k, err)
		}
	}
	return s, nil
}

// Store opens the pipeline's store on the stack's emulators as the services open it (events in
// "(default)", DLQ records, audit and replay jobs in emulators.OpsDatabase); the caller closes
// it.
func (s *Stack) Store(ctx context.Context) (*store.Store, func() error, error) {
	return app.OpenStore(ctx, config.GCP{ProjectID: s.ProjectID, FirestoreDatabase: "(default)", FirestoreOpsDatabase: emulators.OpsDatabase})
}

// EmulatorMode is the mode the stack's emulators run in.
func (s *Stack) EmulatorMode() emulators.Mode { return s.emu.Mode }

func (s *Stack) emulatorVars() map[string]string {
	m := s.emu.Vars()
	m["GOOGLE_CLOUD_PROJECT"] = s.ProjectID
	return m
}

func (s *Stack) emulatorExports() [][2]string {
	return [][2]string{
		{"GOOGLE_CLOUD_PROJECT", s.ProjectID},
		{emulators.FirestoreVar, s.emu.FirestoreAddr},
		{emulators.OpsDatabaseVar, emulators.OpsDatabase},
		{emulators.PubSubVar, s.emu.PubSubAddr},
		{emulators.StorageVar, s.emu.StorageHost},
	}
}

func (s *Stack) closeEmulators() {
	if s.emu != nil {
		_ = s.emu.Close()
	}
}

// ServiceEnv is a copy of the configuration environment the three services run with (tests
// start an extra instance of a service with it).
func (s *Stack) ServiceEnv() map[string]string {
	m := make(map[string]string, len(s.serviceEnv))
	for k, v := range s.serviceEnv {
		m[k] = v
	}
	return m
}
