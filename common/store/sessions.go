package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CollSessions holds one document per operator: the generation of the operator's triage
// sessions. A session opened under an older generation is no longer accepted.
const CollSessions = "operator_sessions"

func (s *Store) sessionRef(actor string) *firestore.DocumentRef {
	sum := sha256.Sum256([]byte("operator|" + actor))
	return s.fs.Collection(CollSessions).Doc(hex.EncodeToString(sum[:]))
}

// SessionGeneration returns actor's session generation (0 until the first revocation).
func (s *Store) SessionGeneration(ctx context.Context, actor string) (int64, error) {
	snap, err := s.sessionRef(actor).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("session generation: %w", classify(err))
	}
	g, _ := snap.Data()["generation"].(int64)
	return g, nil
}

// RevokeSessions moves actor's session generation on, ending every session opened before.
func (s *Store) RevokeSessions(ctx context.Context, actor string) error {
	_, err := s.sessionRef(actor).Set(ctx, map[string]any{
		"generation": firestore.Increment(1), "revoked_at": s.Now(),
	}, firestore.MergeAll)
	if err != nil {
		return fmt.Errorf("revoke sessions: %w", classify(err))
	}
	return nil
}
