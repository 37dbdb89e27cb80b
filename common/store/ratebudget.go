package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadpipe/leadpipe/common/failure"
)

// The shared CRM rate budget: the processor instances sending to one CRM account divide its
// rate between them without a hot document. Each instance keeps its own membership document,
// refreshed every second or two with a short expiry, and reads its CRM's documents with one
// query on the same cadence; the CRM's budget document (pause and lowered ceiling after the
// CRM throttled) is written only when the CRM throttles. Layout:
//
//	rate_members/{crm}:{instance}  RateMember (expire_at for the TTL policy)
//	rate_members/{crm}             RateBudget (the same query returns it)
const collRateMembers = "rate_members"

// RateMember is one instance's membership in its CRM's shared rate budget.
type RateMember struct {
	CRM      string `firestore:"crm"`
	Instance string `firestore:"instance"`
	// Demand is the rate (requests/s) the instance would send if allowed: its recent calls plus
	// its waiting backlog. The budget is divided by demand.
	Demand float64 `firestore:"demand"`
	// Rate is the rate the instance takes now (requests/s): what it promised the others.
	Rate      float64   `firestore:"rate"`
	UpdatedAt time.Time `firestore:"updated_at"`
	// ExpireAt is when the membership lapses: a member not refreshed by then counts as gone
	// (and the TTL policy deletes the document some time later).
	ExpireAt time.Time `firestore:"expire_at"`
}

// RateBudget is a CRM's shared throttling state, written when the CRM throttles.
type RateBudget struct {
	CRM string `firestore:"crm"`
	// PausedUntil: no member sends before it (the CRM's Retry-After).
	PausedUntil time.Time `firestore:"paused_until"`
	// Ceiling is the fraction (0..1] of the configured rate the CRM allowed when it last
	// throttled, at LoweredAt; members recover from it over time by a rule of their own.
	Ceiling   float64   `firestore:"ceiling"`
	LoweredAt time.Time `firestore:"lowered_at"`
	// By is the instance that wrote it last.
	By        string    `firestore:"by"`
	UpdatedAt time.Time `firestore:"updated_at"`
	ExpireAt  time.Time `firestore:"expire_at"`
}

// RateView is what an instance reads of its CRM's budget: the live members (itself included,
// ordered by instance) and the budget document (zero when the CRM never throttled).
type RateView struct {
	Members []RateMember
	Budget  RateBudget
}

// rateDoc decodes both kinds of document of the collection: a budget has no instance.
type rateDoc struct {
	RateMember
	PausedUntil time.Time `firestore:"paused_until"`
	Ceiling     float64   `firestore:"ceiling"`
	LoweredAt   time.Time `firestore:"lowered_at"`
	By          string    `firestore:"by"`
}

func rateMemberID(crm, instance string) string {
	return crm + ":" + strings.ReplaceAll(instance, "/", "_")
}

// RefreshRateMember reads instance's CRM's live members and budget with one query, passes
// them to decide (with the store's time), and writes the membership decide returns (CRM,
// Instance, UpdatedAt and ExpireAt = now+ttl filled in): two RPCs, the write on the
// instance's own document. The view returned holds the membership as written. Reading first
// lets the instance publish the rate it takes from now on, not the one it took before.
func (s *Store) RefreshRateMember(ctx context.Context, crm, instance string, ttl time.Duration, decide func(v RateView, now time.Time) RateMember) (RateView, error) {
	if crm == "" || instance == "" || ttl <= 0 {
		return RateView{}, failure.New(failure.Permanent, 0, "rate member: crm, instance and ttl are required")
	}
	docs, err := s.fs.Collection(collRateMembers).Where("crm", "==", crm).Documents(ctx).GetAll()
	if err != nil {
		return RateView{}, fmt.Errorf("read rate members %s: %w", crm, classify(err))
	}
	now := s.Now()
	var v RateView
	for _, d := range docs {
		var r rateDoc
		if err := d.DataTo(&r); err != nil {
			return RateView{}, fmt.Errorf("read rate members %s: %w", crm, failure.Wrap(failure.Permanent, err, "decode"))
		}
		if r.Instance == "" {
			v.Budget = RateBudget{CRM: r.CRM, PausedUntil: r.PausedUntil, Ceiling: r.Ceiling, LoweredAt: r.LoweredAt,
				By: r.By, UpdatedAt: r.UpdatedAt, ExpireAt: r.ExpireAt}
			continue
		}
		if r.ExpireAt.After(now) {
			v.Members = append(v.Members, r.RateMember)
		}
	}
	m := decide(v, now)
	m.CRM, m.Instance, m.UpdatedAt, m.ExpireAt = crm, instance, now, now.Add(ttl)
	if _, err := s.fs.Collection(collRateMembers).Doc(rateMemberID(crm, instance)).Set(ctx, m); err != nil {
		return RateView{}, fmt.Errorf("refresh rate member %s: %w", crm, classify(err))
	}
	kept := v.Members[:0]
	for _, o := range v.Members {
		if o.Instance != instance {
			kept = append(kept, o)
		}
	}
	v.Members = append(kept, m)
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].Instance < v.Members[j].Instance })
	return v, nil
}

// RemoveRateMember deletes an instance's membership (on shutdown), handing its share to the
// others at their next refresh instead of at its expiry.
func (s *Store) RemoveRateMember(ctx context.Context, crm, instance string) error {
	if _, err := s.fs.Collection(collRateMembers).Doc(rateMemberID(crm, instance)).Delete(ctx); err != nil {
		return fmt.Errorf("remove rate member %s: %w", crm, classify(err))
	}
	return nil
}

// ThrottleRate records that the CRM throttled: decide gets the current budget (zero when
// none) and the store's time and returns the new one, which is written in one transaction
// (concurrent throttles of several members merge rather than overwrite). It is called only
// when the CRM throttles, so the document is never hot. ExpireAt defaults to an hour after
// the later of PausedUntil and now.
func (s *Store) ThrottleRate(ctx context.Context, crm, by string, decide func(cur RateBudget, now time.Time) RateBudget) (RateBudget, error) {
	ref := s.fs.Collection(collRateMembers).Doc(crm)
	var out RateBudget
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		var cur RateBudget
		snap, err := tx.Get(ref)
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err
		default:
			if err := snap.DataTo(&cur); err != nil {
				return failure.Wrap(failure.Permanent, err, "decode rate budget")
			}
		}
		now := s.Now()
		next := decide(cur, now)
		next.CRM, next.By, next.UpdatedAt = crm, by, now
		if next.ExpireAt.IsZero() {
			next.ExpireAt = later(next.PausedUntil, now).Add(time.Hour)
		}
		out = next
		return tx.Set(ref, next)
	})
	if err != nil {
		return RateBudget{}, fmt.Errorf("throttle rate %s: %w", crm, classify(err))
	}
	return out, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
