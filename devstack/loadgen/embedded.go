package loadgen

import (
	"context"
	"io"

	"github.com/leadpipe/leadpipe/devstack/stack"
)

// Embedded boots the whole local stack in this process on free loopback ports (stack.Up with
// o; Ports and Host are overridden, Logs defaults to io.Discard) and returns its Targets and
// the function that stops it. stack.Up points this process's Google clients at its emulators,
// so one process runs at most one embedded stack at a time.
func Embedded(ctx context.Context, o stack.Options) (Targets, func(), error) {
	o.Host, o.Ports = "127.0.0.1", stack.Ports{}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	st, err := stack.Up(ctx, o)
	if err != nil {
		return Targets{}, nil, err
	}
	return Targets{
		IngestURL: st.IngestURL, CRMURL: st.CRM.URL(), ReplayerURL: st.ReplayerURL,
		ReplayerToken: st.ReplayerToken, Source: st.DemoSource, Secret: st.DemoSecret,
	}, st.Close, nil
}
