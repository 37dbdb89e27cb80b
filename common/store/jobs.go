package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Replay job statuses. queued and running jobs are resumable; the others are final.
const (
	JobQueued  = "queued"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// ReplayJob is a bulk replay: which DLQ records it selects, who asked and why, and how far it
// got. Cursor is the page token after the last record it handled, so a job interrupted by a
// restart resumes where it stopped instead of starting over.
type ReplayJob struct {
	ID          string    `firestore:"-" json:"id"`
	Filter      DLQFilter `firestore:"filter" json:"filter"`
	Reason      string    `firestore:"reason" json:"reason"`
	Actor       string    `firestore:"actor" json:"actor"`
	DryRun      bool      `firestore:"dry_run" json:"dry_run"`
	Renormalize bool      `firestore:"renormalize,omitempty" json:"renormalize,omitempty"`
	// Max bounds how many records the job handles (matched); 0 means the service's limit.
	Max    int    `firestore:"max" json:"max"`
	Status string `firestore:"status" json:"status"`
	// Counters: Matched records handled so far; of those Replayed, Skipped (already succeeded,
	// in flight, discarded) and Failed. A dry run only counts Matched and lists WouldReplay.
	Matched     int      `firestore:"matched" json:"matched"`
	Replayed    int      `firestore:"replayed" json:"replayed"`
	Skipped     int      `firestore:"skipped" json:"skipped"`
	Failed      int      `firestore:"failed" json:"failed"`
	WouldReplay []string `firestore:"would_replay,omitempty" json:"would_replay,omitempty"`
	Cursor      string   `firestore:"cursor,omitempty" json:"-"`
	Error       string   `firestore:"error,omitempty" json:"error,omitempty"`
	// Owner and LeaseExpiresAt: the instance running the job; an expired lease may be taken
	// over by a resume.
	Owner          string    `firestore:"owner,omitempty" json:"-"`
	LeaseExpiresAt time.Time `firestore:"lease_expires_at,omitempty" json:"-"`
	CreatedAt      time.Time `firestore:"created_at" json:"created_at"`
	UpdatedAt      time.Time `firestore:"updated_at" json:"updated_at"`
	FinishedAt     time.Time `firestore:"finished_at,omitempty" json:"finished_at,omitzero"`
}

// Final reports whether the job has stopped for good.
func (j *ReplayJob) Final() bool { return j.Status == JobDone || j.Status == JobFailed }

// ErrJobLeased: another instance holds the job's lease.
var ErrJobLeased = errors.New("replay job held by another instance")

func (s *Store) jobRef(id string) *firestore.DocumentRef {
	return s.ops.Collection(collReplayJobs).Doc(id)
}

// CreateReplayJob stores a new job under j.ID (which the caller chooses).
func (s *Store) CreateReplayJob(ctx context.Context, j *ReplayJob) error {
	now := s.Now()
	j.CreatedAt, j.UpdatedAt = now, now
	if j.Status == "" {
		j.Status = JobQueued
	}
	if _, err := s.jobRef(j.ID).Create(ctx, j); err != nil {
		return fmt.Errorf("create replay job %s: %w", j.ID, classify(err))
	}
	return nil
}

// GetReplayJob reads a job; ErrNotFound when there is none.
func (s *Store) GetReplayJob(ctx context.Context, id string) (*ReplayJob, error) {
	return get(ctx, s.jobRef(id), "get replay job", decodeJob)
}

// SaveReplayJob writes the job's progress (counters, cursor, status, lease) if owner still
// holds its lease; ErrJobLeased otherwise.
func (s *Store) SaveReplayJob(ctx context.Context, j *ReplayJob, owner string) error {
	err := s.runOpsTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(s.jobRef(j.ID))
		if err != nil {
			return err
		}
		cur, err := decodeJob(snap)
		if err != nil {
			return err
		}
		if cur.Owner != owner {
			return ErrJobLeased
		}
		j.UpdatedAt = s.Now()
		return tx.Set(s.jobRef(j.ID), j)
	})
	if err != nil {
		if errors.Is(err, ErrJobLeased) {
			return fmt.Errorf("save replay job %s: %w", j.ID, err)
		}
		return fmt.Errorf("save replay job %s: %w", j.ID, classify(err))
	}
	return nil
}

// LeaseReplayJob makes owner the job's runner until now+ttl if the job is not final and its
// lease is free, expired or already owner's; it returns the job as stored. ErrJobLeased when
// another live owner holds it.
func (s *Store) LeaseReplayJob(ctx context.Context, id, owner string, ttl time.Duration) (*ReplayJob, error) {
	var out *ReplayJob
	err := s.runOpsTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(s.jobRef(id))
		if err != nil {
			return err
		}
		j, err := decodeJob(snap)
		if err != nil {
			return err
		}
		now := s.Now()
		if j.Final() {
			out = j
			return nil
		}
		if j.Owner != "" && j.Owner != owner && j.LeaseExpiresAt.After(now) {
			return ErrJobLeased
		}
		j.Owner, j.LeaseExpiresAt, j.UpdatedAt = owner, now.Add(ttl), now
		j.Status = JobRunning
		out = j
		return tx.Set(s.jobRef(id), j)
	})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("lease replay job %s: %w", id, ErrNotFound)
	}
	if errors.Is(err, ErrJobLeased) {
		return nil, fmt.Errorf("lease replay job %s: %w", id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("lease replay job %s: %w", id, classify(err))
	}
	return out, nil
}

// UnfinishedReplayJobs lists up to limit jobs that are queued or running.
func (s *Store) UnfinishedReplayJobs(ctx context.Context, limit int) ([]*ReplayJob, error) {
	var out []*ReplayJob
	for _, st := range []string{JobQueued, JobRunning} {
		it := s.ops.Collection(collReplayJobs).Where("status", "==", st).Limit(limit).Documents(ctx)
		for {
			snap, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				it.Stop()
				return nil, fmt.Errorf("unfinished replay jobs: %w", classify(err))
			}
			j, err := decodeJob(snap)
			if err != nil {
				it.Stop()
				return nil, err
			}
			out = append(out, j)
		}
		it.Stop()
	}
	return out, nil
}

func decodeJob(snap *firestore.DocumentSnapshot) (*ReplayJob, error) {
	var j ReplayJob
	if err := snap.DataTo(&j); err != nil {
		return nil, fmt.Errorf("decode replay job %s: %w", snap.Ref.ID, err)
	}
	j.ID = snap.Ref.ID
	return &j, nil
}
