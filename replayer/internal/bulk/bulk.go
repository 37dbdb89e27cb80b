// Package bulk runs bulk replay jobs: a filter over the DLQ, a reason and an actor, executed in
// the background at a bounded rate, checkpointed in replay_jobs/{id} (about once a second, and
// when a shutdown stops the job, which also gives up its lease) so a restart resumes after the
// last record handled. A dry run reports what would be replayed and changes nothing.
package bulk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/replayer/internal/replay"
)

// Replayer is what a job needs from the replay package.
type Replayer interface {
	Replay(ctx context.Context, req replay.Request) (*replay.Result, error)
	Check(ctx context.Context, id string, force bool) (*replay.Result, error)
}

var _ Replayer = (*replay.Replayer)(nil)

// ErrInvalid: the job request is not acceptable (no reason, bad max).
var ErrInvalid = errors.New("invalid bulk replay request")

// maxWouldReplay caps the ids a dry run lists (the counters stay exact).
const maxWouldReplay = 500

// replayTimeout bounds one record's replay. A replay, once started, finishes even when the
// job's context ends (a shutdown): cut off between its transaction and its publish, the event
// would wait for the outbox sweep instead of being delivered now.
const replayTimeout = 10 * time.Second

// stopTimeout bounds the checkpoint written when a job is stopped by its context.
const stopTimeout = 5 * time.Second

// Options configure a Runner.
type Options struct {
	// RatePerSec bounds replays per second across all jobs of this instance. Default 10.
	RatePerSec float64
	// MaxPerJob caps a job's max (and is the default when a request gives none). Default 10000.
	MaxPerJob int
	// LeaseTTL is how long a job stays with this instance without a checkpoint. Default 1m.
	LeaseTTL time.Duration
}

// Runner starts and resumes jobs. Jobs run on goroutines of the context given to Run.
type Runner struct {
	st      *store.Store
	rp      Replayer
	limiter *rate.Limiter
	owner   string
	o       Options
	queue   chan string
	wg      sync.WaitGroup
}

// NewRunner returns a Runner; call Run to start executing jobs.
func NewRunner(st *store.Store, rp Replayer, o Options) *Runner {
	if o.RatePerSec <= 0 {
		o.RatePerSec = 10
	}
	if o.MaxPerJob <= 0 {
		o.MaxPerJob = 10000
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = time.Minute
	}
	return &Runner{
		st: st, rp: rp, o: o,
		limiter: rate.NewLimiter(rate.Limit(o.RatePerSec), 1),
		owner:   "replayer-" + uuid.NewString(),
		queue:   make(chan string, 64),
	}
}

// Submit stores a new job and queues it. The job runs once Run is running.
func (r *Runner) Submit(ctx context.Context, j *store.ReplayJob) (*store.ReplayJob, error) {
	if strings.TrimSpace(j.Reason) == "" {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, replay.ErrReasonRequired)
	}
	if j.Max < 0 || j.Max > r.o.MaxPerJob {
		return nil, fmt.Errorf("%w: max must be 0..%d", ErrInvalid, r.o.MaxPerJob)
	}
	if j.Max == 0 {
		j.Max = r.o.MaxPerJob
	}
	if j.Filter.Status == "" {
		j.Filter.Status = store.DLQOpen
	}
	j.ID = uuid.NewString()
	j.Status = store.JobQueued
	if err := r.st.CreateReplayJob(ctx, j); err != nil {
		return nil, err
	}
	r.enqueue(j.ID)
	return j, nil
}

func (r *Runner) enqueue(id string) {
	select {
	case r.queue <- id:
	default:
		// Full queue: the job stays queued in the store and the next Resume picks it up.
	}
}

// Resume queues every unfinished job (after a restart, or from POST
// /internal/replay-jobs/resume). Jobs leased by another live instance are left to it.
func (r *Runner) Resume(ctx context.Context) (int, error) {
	jobs, err := r.st.UnfinishedReplayJobs(ctx, 100)
	if err != nil {
		return 0, err
	}
	for _, j := range jobs {
		r.enqueue(j.ID)
	}
	return len(jobs), nil
}

// Run executes queued jobs until ctx ends, each on its own goroutine, and waits for them on
// the way out. A job cut off by ctx keeps its checkpoint and is resumed later.
func (r *Runner) Run(ctx context.Context) {
	if _, err := r.Resume(ctx); err != nil {
		logging.FromContext(ctx).WarnContext(ctx, "bulk: resume at start-up failed", "error", err.Error())
	}
	running := map[string]bool{}
	var mu sync.Mutex
	for {
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return
		case id := <-r.queue:
			mu.Lock()
			if running[id] {
				mu.Unlock()
				continue
			}
			running[id] = true
			mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer func() { mu.Lock(); delete(running, id); mu.Unlock() }()
				if err := r.execute(ctx, id); err != nil && ctx.Err() == nil {
					logging.FromContext(ctx).WarnContext(ctx, "bulk: job stopped", "job_id", id, "error", err.Error())
				}
			}()
		}
	}
}

// execute runs one job from its checkpoint. When ctx ends, the job stops after the record in
// hand, checkpoints and gives up its lease (see stop).
func (r *Runner) execute(ctx context.Context, id string) error {
	j, err := r.st.LeaseReplayJob(ctx, id, r.owner, r.o.LeaseTTL)
	if errors.Is(err, store.ErrJobLeased) {
		return nil
	}
	if err != nil {
		return err
	}
	if j.Final() {
		return nil
	}
	log := logging.FromContext(ctx).With("job_id", id)
	log.InfoContext(ctx, "bulk: job running", "dry_run", j.DryRun, "matched", j.Matched)
	lastSave := time.Now()
	save := func(force bool) error {
		if !force && time.Since(lastSave) < time.Second {
			return nil
		}
		lastSave = time.Now()
		j.LeaseExpiresAt = r.st.Now().Add(r.o.LeaseTTL)
		return r.st.SaveReplayJob(ctx, j, r.owner)
	}
	for j.Matched < j.Max {
		page, err := r.st.ListDLQ(ctx, j.Filter, min(100, j.Max-j.Matched), j.Cursor)
		if err != nil {
			if ctx.Err() != nil {
				return r.stop(ctx, j)
			}
			if failure.Is(err, failure.Permanent) {
				return r.fail(ctx, j, err)
			}
			return err // transient: the job stays running and a resume continues it
		}
		for _, rec := range page.Records {
			if ctx.Err() != nil || !r.one(ctx, j, rec) {
				return r.stop(ctx, j)
			}
			j.Matched++
			j.Cursor = store.DLQCursor(rec)
			if err := save(false); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			break
		}
	}
	j.Status, j.FinishedAt = store.JobDone, r.st.Now()
	if err := save(true); err != nil {
		return err
	}
	if _, err := r.st.AppendAudit(ctx, store.AuditEntry{
		Actor: j.Actor, Action: "bulk_replay", Reason: j.Reason, JobID: j.ID, Outcome: store.JobDone,
		Detail: fmt.Sprintf("dry_run=%t matched=%d replayed=%d skipped=%d failed=%d", j.DryRun, j.Matched, j.Replayed, j.Skipped, j.Failed),
	}); err != nil {
		log.WarnContext(ctx, "bulk: audit failed", "error", err.Error())
	}
	log.InfoContext(ctx, "bulk: job done", "matched", j.Matched, "replayed", j.Replayed, "skipped", j.Skipped, "failed", j.Failed)
	return nil
}

// stop is a job's way out when ctx ends: it saves the checkpoint (counters and the cursor
// after the last record handled) and releases the lease, so the next instance (a restart, or
// POST /internal/replay-jobs/resume) takes the job at once and continues after that record
// instead of waiting for the lease to expire. It returns ctx's error, or the save's.
func (r *Runner) stop(ctx context.Context, j *store.ReplayJob) error {
	j.Owner, j.LeaseExpiresAt = "", time.Time{}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if err := r.st.SaveReplayJob(sctx, j, r.owner); err != nil {
		// The job resumes from its last periodic checkpoint once the lease expires; records
		// replayed since then are no longer open and are not replayed again. Logged here:
		// Run does not log errors of a job cut off by its context.
		logging.FromContext(ctx).WarnContext(ctx, "bulk: checkpoint on stop failed", "job_id", j.ID, "error", err.Error())
		return fmt.Errorf("checkpoint on stop: %w", err)
	}
	logging.FromContext(ctx).InfoContext(ctx, "bulk: job paused", "job_id", j.ID, "matched", j.Matched, "replayed", j.Replayed)
	return ctx.Err()
}

// one handles one record and counts the outcome. It reports false when ctx ended before the
// record was handled (the record is left for the job's resumption).
func (r *Runner) one(ctx context.Context, j *store.ReplayJob, rec *store.DLQRecord) bool {
	if j.DryRun {
		res, err := r.rp.Check(ctx, rec.ID, false)
		switch {
		case err != nil && ctx.Err() != nil:
			return false
		case err != nil:
			j.Skipped++
		case res.Outcome == replay.OutcomeWouldReplay:
			if len(j.WouldReplay) < maxWouldReplay {
				j.WouldReplay = append(j.WouldReplay, rec.ID)
			}
		default:
			j.Skipped++
		}
		return true
	}
	if err := r.limiter.Wait(ctx); err != nil {
		return false
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replayTimeout)
	defer cancel()
	res, err := r.rp.Replay(rctx, replay.Request{ID: rec.ID, Reason: j.Reason, Actor: j.Actor, JobID: j.ID, Renormalize: j.Renormalize, QuietNoop: true})
	switch {
	case errors.Is(err, replay.ErrDiscarded), errors.Is(err, replay.ErrNoEvent), errors.Is(err, replay.ErrNotFound):
		j.Skipped++
	case err != nil:
		j.Failed++
		logging.FromContext(ctx).WarnContext(ctx, "bulk: replay failed", "job_id", j.ID, "dlq_id", rec.ID, "error", err.Error())
	case res.Outcome == replay.OutcomeReplayed || res.Outcome == replay.OutcomeQueued:
		j.Replayed++
	default:
		j.Skipped++
	}
	return true
}

func (r *Runner) fail(ctx context.Context, j *store.ReplayJob, cause error) error {
	j.Status, j.Error, j.FinishedAt = store.JobFailed, cause.Error(), r.st.Now()
	if err := r.st.SaveReplayJob(ctx, j, r.owner); err != nil {
		return fmt.Errorf("%w (and saving the failure: %v)", cause, err)
	}
	return cause
}
