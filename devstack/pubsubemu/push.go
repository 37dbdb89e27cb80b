package pubsubemu

import (
	"context"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/proto"
)

const (
	// initialWindow is how many pushes a subscription may have in flight
	// before any has succeeded; each ack widens the window by one, up to
	// Options.MaxConcurrentPushes, and each nack halves it.
	initialWindow = 4
	// minPushBackoff is the first pause of a subscription after a nack.
	minPushBackoff = 100 * time.Millisecond
	// leaseTime is the ack deadline the worker holds in pstest while a
	// message is pushed or waits for its retry; renewAfter is when it is
	// extended again.
	leaseTime  = 600 * time.Second
	renewAfter = 300 * time.Second
	// Pub/Sub's retry policy defaults when the policy leaves them zero.
	defaultMinRetryBackoff = 10 * time.Second
	defaultMaxRetryBackoff = 600 * time.Second
)

// pushWorker delivers one subscription's messages to its push endpoint
// while it has one. All fields below results are owned by the run
// goroutine; pushes run in their own goroutines and report on results.
type pushWorker struct {
	srv     *Server
	name    string
	quit    chan struct{}
	done    chan struct{}
	pushes  sync.WaitGroup
	results chan pushResult

	held        map[string]*lease // leased from pstest, by message id
	inflight    int
	window      int
	nacks       int // consecutive, for push backoff
	pausedUntil time.Time
}

// lease is a message the worker holds (outstanding in pstest) between
// pushes. attempts counts this subscription's deliveries only.
type lease struct {
	msg      *pb.PubsubMessage
	ackID    string
	attempts int32
	due      time.Time // earliest next push, per the retry policy
	inflight bool
	renewed  time.Time
}

func newPushWorker(srv *Server, name string) *pushWorker {
	return &pushWorker{
		srv:     srv,
		name:    name,
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		results: make(chan pushResult, srv.opts.MaxConcurrentPushes),
		held:    map[string]*lease{},
		window:  min(initialWindow, srv.opts.MaxConcurrentPushes),
	}
}

func (w *pushWorker) start() {
	w.srv.wg.Add(1)
	go func() {
		defer w.srv.wg.Done()
		w.run()
	}()
}

// stop ends the worker and waits for it; pushes in flight are cancelled.
func (w *pushWorker) stop() {
	close(w.quit)
	<-w.done
}

func (w *pushWorker) run() {
	defer close(w.done)
	ctx, cancel := context.WithCancel(w.srv.ctx)
	defer func() {
		cancel()
		w.pushes.Wait()
	}()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		case res := <-w.results:
			w.handle(ctx, res)
		case <-tick.C:
		}
		w.step(ctx)
	}
}

// step starts the pushes that are due, as far as the window allows.
func (w *pushWorker) step(ctx context.Context) {
	cfg := w.srv.config(w.name)
	if cfg == nil {
		return
	}
	endpoint := cfg.GetPushConfig().GetPushEndpoint()
	if endpoint == "" {
		w.release(ctx) // now a pull subscription: hand messages back
		return
	}
	now := time.Now()
	w.renew(ctx, now)
	if now.Before(w.pausedUntil) {
		return
	}
	for _, l := range w.held {
		if w.inflight >= w.window {
			return
		}
		if !l.inflight && !now.Before(l.due) {
			w.dispatch(ctx, cfg, l)
		}
	}
	if w.inflight >= w.window {
		return
	}
	res, err := w.srv.ps.GServer.Pull(ctx, &pb.PullRequest{
		Subscription:      w.name,
		MaxMessages:       int32(w.window - w.inflight),
		ReturnImmediately: true,
	})
	if err != nil {
		if ctx.Err() == nil {
			w.srv.log.Warn("pubsubemu: lease for push", "subscription", w.name, "error", err)
		}
		return
	}
	var ackIDs []string
	for _, rm := range res.GetReceivedMessages() {
		// pstest shares this proto among its goroutines: copy it while
		// the message is outstanding and pstest leaves it alone.
		rm = proto.Clone(rm).(*pb.ReceivedMessage)
		l := &lease{msg: rm.GetMessage(), ackID: rm.GetAckId(), renewed: now}
		w.held[rm.GetMessage().GetMessageId()] = l
		ackIDs = append(ackIDs, l.ackID)
		w.dispatch(ctx, cfg, l)
	}
	w.modack(ctx, ackIDs, leaseTime)
}

// dispatch starts one push of l.
func (w *pushWorker) dispatch(ctx context.Context, cfg *pb.Subscription, l *lease) {
	l.attempts++
	l.inflight = true
	w.inflight++
	w.srv.count(w.name, func(ps *PushStats) { ps.Delivered++ })
	req := newPushRequest(cfg, l.msg, l.attempts)
	timeout := w.srv.opts.PushTimeout
	if timeout <= 0 {
		timeout = time.Duration(cfg.GetAckDeadlineSeconds()) * time.Second
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
	}
	id := l.msg.GetMessageId()
	w.pushes.Add(1)
	go func() {
		defer w.pushes.Done()
		res := w.srv.push(ctx, req, timeout)
		res.id = id
		w.results <- res // buffered for every push in flight
	}()
}

// handle settles a push: ack, retry later or dead-letter.
func (w *pushWorker) handle(ctx context.Context, res pushResult) {
	l := w.held[res.id]
	if l == nil {
		return
	}
	l.inflight = false
	w.inflight--
	now := time.Now()
	if res.acked() {
		w.srv.count(w.name, func(ps *PushStats) { ps.Acked++ })
		w.ack(ctx, res.id, l)
		w.nacks = 0
		w.pausedUntil = time.Time{}
		w.window = min(w.window+1, w.srv.opts.MaxConcurrentPushes)
		w.srv.log.Debug("pubsubemu: push acked", "subscription", w.name, "message_id", res.id, "status", res.status)
		return
	}
	w.srv.count(w.name, func(ps *PushStats) { ps.Nacked++ })
	w.srv.log.Debug("pubsubemu: push nacked", "subscription", w.name, "message_id", res.id,
		"status", res.status, "error", res.err, "attempt", l.attempts)
	w.nacks++
	w.pausedUntil = now.Add(pushBackoff(w.nacks, w.srv.opts.MaxPushBackoff))
	w.window = max(1, w.window/2)
	cfg := w.srv.config(w.name)
	if cfg == nil {
		return
	}
	if dlp := cfg.GetDeadLetterPolicy(); dlp != nil && l.attempts >= dlp.GetMaxDeliveryAttempts() {
		if err := w.srv.deadLetter(ctx, cfg, l.msg, l.attempts); err == nil {
			w.ack(ctx, res.id, l)
			return
		} else if ctx.Err() == nil {
			w.srv.log.Warn("pubsubemu: dead-letter", "subscription", w.name, "message_id", res.id, "error", err)
		}
	}
	l.due = now.Add(retryBackoff(cfg.GetRetryPolicy(), l.attempts))
}

// ack ends the lease in pstest and forgets the message.
func (w *pushWorker) ack(ctx context.Context, id string, l *lease) {
	delete(w.held, id)
	_, err := w.srv.ps.GServer.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: w.name, AckIds: []string{l.ackID}})
	if err != nil && ctx.Err() == nil {
		w.srv.log.Warn("pubsubemu: ack", "subscription", w.name, "message_id", id, "error", err)
	}
}

// renew extends the pstest leases of held messages before they expire.
func (w *pushWorker) renew(ctx context.Context, now time.Time) {
	var ackIDs []string
	for _, l := range w.held {
		if now.Sub(l.renewed) >= renewAfter {
			l.renewed = now
			ackIDs = append(ackIDs, l.ackID)
		}
	}
	w.modack(ctx, ackIDs, leaseTime)
}

// release nacks, in pstest, every held message not in flight, so that pull
// clients get them once the push endpoint is removed.
func (w *pushWorker) release(ctx context.Context) {
	var ackIDs []string
	for id, l := range w.held {
		if !l.inflight {
			ackIDs = append(ackIDs, l.ackID)
			delete(w.held, id)
		}
	}
	w.modack(ctx, ackIDs, 0)
}

func (w *pushWorker) modack(ctx context.Context, ackIDs []string, d time.Duration) {
	if len(ackIDs) == 0 {
		return
	}
	_, err := w.srv.ps.GServer.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{
		Subscription: w.name, AckIds: ackIDs, AckDeadlineSeconds: int32(d / time.Second),
	})
	if err != nil && ctx.Err() == nil {
		w.srv.log.Warn("pubsubemu: modify ack deadline", "subscription", w.name, "error", err)
	}
}

// pushBackoff is the pause of the whole subscription after n consecutive
// nacks: 100 ms, doubling, capped.
func pushBackoff(n int, limit time.Duration) time.Duration {
	d := minPushBackoff
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// retryBackoff is how long a message waits after its attempt-th delivery
// was nacked: nothing without a retry policy, else minimum_backoff doubling
// per attempt up to maximum_backoff.
func retryBackoff(rp *pb.RetryPolicy, attempt int32) time.Duration {
	if rp == nil {
		return 0
	}
	lo, hi := rp.GetMinimumBackoff().AsDuration(), rp.GetMaximumBackoff().AsDuration()
	if rp.GetMinimumBackoff() == nil || lo <= 0 {
		lo = defaultMinRetryBackoff
	}
	if rp.GetMaximumBackoff() == nil || hi <= 0 {
		hi = defaultMaxRetryBackoff
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := int32(1); i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
