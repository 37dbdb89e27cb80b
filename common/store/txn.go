package store

import (
	"context"

	"cloud.google.com/go/firestore"

	"github.com/leadpipe/leadpipe/common/store/internal/txretry"
)

// ErrContended: a transaction still conflicted with others after the store's bounded retries
// (txretry.Default: 10 tries with jittered pauses). It comes classified as retryable.
var ErrContended = txretry.ErrContended

// runTx runs f as one Firestore transaction, retried under contention by txretry.Default
// instead of the client library's own loop. f is called once per try and must be idempotent
// (every body in this package re-reads what it decides on). A try that conflicts inside f
// (Google's emulator locks pessimistically: a read of a locked document fails ABORTED "lock
// timeout") returns at once; a conflicting commit costs the client library's single pause of
// at most a second before it returns.
func (s *Store) runTx(ctx context.Context, f func(ctx context.Context, tx *firestore.Transaction) error) error {
	return runTxOn(ctx, s.fs, f)
}

// runOpsTx is runTx on the operations database (DLQ records, audit, replay jobs).
func (s *Store) runOpsTx(ctx context.Context, f func(ctx context.Context, tx *firestore.Transaction) error) error {
	return runTxOn(ctx, s.ops, f)
}

func runTxOn(ctx context.Context, c *firestore.Client, f func(ctx context.Context, tx *firestore.Transaction) error) error {
	return txretry.Default.Do(ctx, func(ctx context.Context) error {
		return c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			return txretry.Shield(ctx, f(ctx, tx))
		}, firestore.MaxAttempts(1))
	}, nil, nil)
}
