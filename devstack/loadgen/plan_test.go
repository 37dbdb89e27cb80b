package loadgen

import (
	"testing"
	"time"
)

// countFirst counts first deliveries due in [from, to).
func countFirst(ds []Delivery, from, to time.Duration) int {
	n := 0
	for _, d := range ds {
		if d.Attempt == 0 && d.Due >= from && d.Due < to {
			n++
		}
	}
	return n
}

func TestPlan_Deliveries(t *testing.T) {
	tests := []struct {
		name string
		plan Plan
		// windows of first deliveries and how many each must hold
		windows []struct {
			from, to time.Duration
			want     int
		}
		wantLast time.Duration // due of the last first delivery
	}{
		{
			name: "steady 100/s",
			plan: Plan{Leads: 300, Dups: 2, Profile: ProfileSteady, Rate: 100, DupDelay: time.Second},
			windows: []struct {
				from, to time.Duration
				want     int
			}{{0, time.Second, 100}, {time.Second, 2 * time.Second, 100}, {2 * time.Second, 3 * time.Second, 100}},
			wantLast: 2990 * time.Millisecond,
		},
		{
			name: "burst",
			plan: Plan{Leads: 50, Dups: 1, Profile: ProfileBurst},
			windows: []struct {
				from, to time.Duration
				want     int
			}{{0, time.Nanosecond, 50}},
			wantLast: 0,
		},
		{
			name: "campaign 10/s, 20x from 2s for 1s",
			plan: Plan{Leads: 260, Profile: ProfileCampaign, Rate: 10, CampaignAt: 2 * time.Second, CampaignFor: time.Second, CampaignFactor: 20},
			windows: []struct {
				from, to time.Duration
				want     int
			}{{0, 2 * time.Second, 20}, {2 * time.Second, 3 * time.Second, 200}, {3 * time.Second, 5 * time.Second, 20}, {5 * time.Second, time.Hour, 20}},
			wantLast: 6900 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.plan.Validate(); err != nil {
				t.Fatal(err)
			}
			ds := tt.plan.Deliveries()
			if got, want := len(ds), tt.plan.Leads*(tt.plan.Dups+1); got != want {
				t.Fatalf("deliveries = %d, want %d", got, want)
			}
			for _, w := range tt.windows {
				if got := countFirst(ds, w.from, w.to); got != w.want {
					t.Errorf("first deliveries in [%v, %v) = %d, want %d", w.from, w.to, got, w.want)
				}
			}
			var last time.Duration
			for _, d := range ds {
				if d.Attempt == 0 {
					last = max(last, d.Due)
				}
			}
			if diff := last - tt.wantLast; diff < -time.Millisecond || diff > time.Millisecond {
				t.Errorf("last first delivery due at %v, want %v", last, tt.wantLast)
			}
		})
	}
}

func TestPlan_RetriesFollowTheirLead(t *testing.T) {
	p := Plan{Leads: 200, Dups: 3, Profile: ProfileSteady, Rate: 50, DupDelay: 500 * time.Millisecond, Seed: 42}
	ds := p.Deliveries()
	prev := map[int]Delivery{}
	seen := map[[2]int]bool{}
	for i, d := range ds {
		if i > 0 && d.Due < ds[i-1].Due {
			t.Fatalf("delivery %d due %v before delivery %d due %v", i, d.Due, i-1, ds[i-1].Due)
		}
		if seen[[2]int{d.Lead, d.Attempt}] {
			t.Fatalf("lead %d attempt %d twice", d.Lead, d.Attempt)
		}
		seen[[2]int{d.Lead, d.Attempt}] = true
		if d.Attempt > 0 {
			before, ok := prev[d.Lead]
			if !ok || before.Attempt != d.Attempt-1 {
				t.Fatalf("lead %d attempt %d comes before attempt %d", d.Lead, d.Attempt, d.Attempt-1)
			}
			if gap := d.Due - before.Due; gap < 0 || gap > p.DupDelay {
				t.Errorf("lead %d attempt %d: %v after the previous, want 0..%v", d.Lead, d.Attempt, gap, p.DupDelay)
			}
		}
		prev[d.Lead] = d
	}
	again := p.Deliveries()
	for i := range ds {
		if ds[i] != again[i] {
			t.Fatalf("same seed, different plan at %d: %+v vs %+v", i, ds[i], again[i])
		}
	}
}

func TestPlan_Validate(t *testing.T) {
	ok := Plan{Leads: 10, Dups: 2, Profile: ProfileSteady, Rate: 10}
	tests := []struct {
		name  string
		edit  func(*Plan)
		valid bool
	}{
		{"ok", func(*Plan) {}, true},
		{"no leads", func(p *Plan) { p.Leads = 0 }, false},
		{"negative dups", func(p *Plan) { p.Dups = -1 }, false},
		{"zero rate", func(p *Plan) { p.Rate = 0 }, false},
		{"burst needs no rate", func(p *Plan) { p.Profile, p.Rate = ProfileBurst, 0 }, true},
		{"unknown profile", func(p *Plan) { p.Profile = "sawtooth" }, false},
		{"campaign without burst length", func(p *Plan) { p.Profile, p.CampaignFactor = ProfileCampaign, 20 }, false},
		{"campaign", func(p *Plan) {
			p.Profile, p.CampaignFactor, p.CampaignAt, p.CampaignFor = ProfileCampaign, 20, time.Second, time.Second
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			if err := p.Validate(); (err == nil) != tt.valid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
		})
	}
}
