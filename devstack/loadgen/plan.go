package loadgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Profiles: how the distinct leads are spread over time.
const (
	// ProfileSteady sends leads at Plan.Rate per second.
	ProfileSteady = "steady"
	// ProfileBurst sends every lead at once; only the workers limit the pace.
	ProfileBurst = "burst"
	// ProfileCampaign sends at Plan.Rate, then at CampaignFactor times that rate from CampaignAt
	// for CampaignFor, then at Plan.Rate again: a campaign going live.
	ProfileCampaign = "campaign"
)

// Plan is what to send and when. The zero value is not valid: use Validate.
type Plan struct {
	// Leads is the number of distinct leads (each one webhook-id and one CRM record).
	Leads int
	// Dups is how many extra times each lead is delivered, as a vendor retrying.
	Dups int
	// Profile is ProfileSteady, ProfileBurst or ProfileCampaign.
	Profile string
	// Rate is the leads per second of the steady profile and the base rate of the campaign.
	Rate float64
	// CampaignAt, CampaignFor and CampaignFactor shape the campaign's burst.
	CampaignAt, CampaignFor time.Duration
	CampaignFactor          float64
	// DupDelay bounds the random delay of each retry after the delivery before it (0: retries go
	// out right behind the first delivery, racing it).
	DupDelay time.Duration
	// Seed makes the retry delays reproducible.
	Seed uint64
}

// Delivery is one POST of lead Lead (0-based); Attempt 0 is the first delivery, 1..Dups the
// retries, all with the same webhook-id and body. Due is its send time after the run starts.
type Delivery struct {
	Lead    int
	Attempt int
	Due     time.Duration
}

// Validate reports the first invalid field.
func (p Plan) Validate() error {
	switch {
	case p.Leads < 1 || p.Leads > 1_000_000:
		return errors.New("leads must be 1..1000000")
	case p.Dups < 0 || p.Dups > 10:
		return errors.New("dups must be 0..10")
	case p.DupDelay < 0 || p.DupDelay > time.Minute:
		return errors.New("dup delay must be 0..1m")
	}
	switch p.Profile {
	case ProfileBurst:
		return nil
	case ProfileSteady, ProfileCampaign:
	default:
		return fmt.Errorf("unknown profile %q (steady, burst, campaign)", p.Profile)
	}
	if p.Rate <= 0 || p.Rate > 100_000 {
		return errors.New("rate must be in (0, 100000] leads/s")
	}
	if p.Profile == ProfileCampaign && (p.CampaignAt < 0 || p.CampaignFor <= 0 || p.CampaignFactor < 1) {
		return errors.New("campaign needs at >= 0, for > 0 and factor >= 1")
	}
	return nil
}

// Deliveries returns every delivery of the plan, ordered by due time (a lead's retries always
// after its first delivery). Leads*(Dups+1) entries.
func (p Plan) Deliveries() []Delivery {
	rng := rand.New(rand.NewPCG(p.Seed, 0x10ad))
	out := make([]Delivery, 0, p.Leads*(p.Dups+1))
	for i := range p.Leads {
		due := p.leadDue(i)
		out = append(out, Delivery{Lead: i, Due: due})
		for a := 1; a <= p.Dups; a++ {
			if p.DupDelay > 0 {
				due += time.Duration(rng.Int64N(int64(p.DupDelay) + 1))
			}
			out = append(out, Delivery{Lead: i, Attempt: a, Due: due})
		}
	}
	slices.SortStableFunc(out, func(a, b Delivery) int {
		if a.Due != b.Due {
			return cmpDur(a.Due, b.Due)
		}
		return a.Attempt - b.Attempt
	})
	return out
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// leadDue is when lead i's first delivery is due: the time at which the profile's rate,
// integrated from 0, reaches i.
func (p Plan) leadDue(i int) time.Duration {
	x := float64(i)
	secs := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	switch p.Profile {
	case ProfileBurst:
		return 0
	case ProfileCampaign:
		base, peak := p.Rate, p.Rate*p.CampaignFactor
		before := base * p.CampaignAt.Seconds()
		during := peak * p.CampaignFor.Seconds()
		switch {
		case x < before:
			return secs(x / base)
		case x < before+during:
			return p.CampaignAt + secs((x-before)/peak)
		default:
			return p.CampaignAt + p.CampaignFor + secs((x-before-during)/base)
		}
	}
	return secs(x / p.Rate)
}
