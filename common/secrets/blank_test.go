package secrets

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/config"
)

// fakeSecretManager serves AccessSecretVersion from a map, over real gRPC.
type fakeSecretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	values map[string]string
}

func (f *fakeSecretManager) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	v, ok := f.values[req.GetName()]
	if !ok {
		return nil, status.Error(codes.NotFound, "secret version not found")
	}
	return &secretmanagerpb.AccessSecretVersionResponse{Name: req.GetName(), Payload: &secretmanagerpb.SecretPayload{Data: []byte(v)}}, nil
}

func startSecretManager(t *testing.T, values map[string]string) []option.ClientOption {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(srv, &fakeSecretManager{values: values})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return []option.ClientOption{option.WithEndpoint(lis.Addr().String()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
}

// TestBlankSecretsAreRefused: an environment variable or a Secret Manager version holding
// only white space is refused, as an empty one is; real values resolve, and their values
// appear in no span of the Secret Manager client.
func TestBlankSecretsAreRefused(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	const good = "whsec_c2VjcmV0LXZhbHVlLWZyb20tc20="
	opts := startSecretManager(t, map[string]string{
		"projects/p/secrets/good/versions/1":  good,
		"projects/p/secrets/blank/versions/1": " \n\t",
		"projects/p/secrets/empty/versions/1": "",
	})
	r := NewResolver(config.MapLookuper(map[string]string{"SPACES": "   ", "NEWLINE": "\n", "GOOD": "s3cret"}), opts...)
	defer r.Close()
	tests := []struct {
		ref     string
		want    string
		wantErr error
	}{
		{"env:SPACES", "", ErrBlank},
		{"env:NEWLINE", "", ErrBlank},
		{"env:GOOD", "s3cret", nil},
		{"projects/p/secrets/blank/versions/1", "", ErrBlank},
		{"projects/p/secrets/empty/versions/1", "", ErrBlank},
		{"projects/p/secrets/good/versions/1", good, nil},
	}
	for _, tt := range tests {
		got, err := r.Resolve(context.Background(), tt.ref)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tt.ref, got, err, tt.want, tt.wantErr)
		}
	}
	if len(exp.GetSpans()) == 0 {
		t.Error("the Secret Manager client recorded no spans: nothing was checked")
	}
	for _, s := range exp.GetSpans() {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.Emit(), "c2VjcmV0") {
				t.Errorf("span %s attribute %s holds the secret value", s.Name, kv.Key)
			}
		}
		for _, ev := range s.Events {
			for _, kv := range ev.Attributes {
				if strings.Contains(kv.Value.Emit(), "c2VjcmV0") {
					t.Errorf("span %s event attribute %s holds the secret value", s.Name, kv.Key)
				}
			}
		}
	}
}
