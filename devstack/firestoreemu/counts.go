package firestoreemu

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// RPCCount is how many calls of one method came from one client address.
type RPCCount struct {
	// Peer is the client's "ip:port" as the server saw it (one gRPC connection; a client
	// process may hold several).
	Peer   string
	Method string // "Commit", "RunQuery", ...
	N      int
}

// counter counts RPCs by client address and method, so a benchmark can say how many
// Firestore calls each process made (a process's connections are found from its sockets).
type counter struct {
	mu sync.Mutex
	m  map[[2]string]int
}

func newCounter() *counter { return &counter{m: map[[2]string]int{}} }

func (c *counter) add(ctx context.Context, fullMethod string) {
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	c.mu.Lock()
	c.m[[2]string{addr, method}]++
	c.mu.Unlock()
}

// RPCCounts returns every RPC counted since the server started or since the last
// ResetRPCCounts, by client address and method.
func (s *Server) RPCCounts() []RPCCount {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	out := make([]RPCCount, 0, len(s.counts.m))
	for k, n := range s.counts.m {
		out = append(out, RPCCount{Peer: k[0], Method: k[1], N: n})
	}
	return out
}

// ResetRPCCounts zeroes the RPC counters.
func (s *Server) ResetRPCCounts() {
	s.counts.mu.Lock()
	s.counts.m = map[[2]string]int{}
	s.counts.mu.Unlock()
}

func (c *counter) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	c.add(ctx, info.FullMethod)
	return h(ctx, req)
}

func (c *counter) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	c.add(ss.Context(), info.FullMethod)
	return h(srv, ss)
}
