package firestoreemu_test

import (
	"context"
	"net"
	"testing"

	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
)

// TestRPCCounts: every RPC is counted by method and by the client's address, and the counts
// reset.
func TestRPCCounts(t *testing.T) {
	s, err := firestoreemu.Start(firestoreemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newClientFor(t, s.Addr())
	ctx := context.Background()
	doc := c.Collection("counts").Doc("a")
	if _, err := doc.Set(ctx, map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := doc.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	byMethod := map[string]int{}
	for _, rc := range s.RPCCounts() {
		if host, _, err := net.SplitHostPort(rc.Peer); err != nil || net.ParseIP(host) == nil {
			t.Errorf("peer %q: want the client's ip:port", rc.Peer)
		}
		byMethod[rc.Method] += rc.N
	}
	if byMethod["Commit"] != 1 || byMethod["BatchGetDocuments"] != 2 {
		t.Errorf("counts %v, want Commit 1 and BatchGetDocuments 2", byMethod)
	}
	s.ResetRPCCounts()
	if got := s.RPCCounts(); len(got) != 0 {
		t.Errorf("after reset: %v", got)
	}
}
