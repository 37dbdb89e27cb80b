package fakecrm

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAccountLimitAcrossCallers: each system's callers share its account's bucket; past it
// HubSpot answers 429 with Retry-After and Salesforce 403 REQUEST_LIMIT_EXCEEDED with
// Sforce-Limit-Info, and the control API counts both.
func TestAccountLimitAcrossCallers(t *testing.T) {
	s := start(t)
	ctl := s.URL() + "/_control/account-limit"
	const limit = 20
	if resp, b := do(t, "PUT", ctl, "", map[string]any{"per_sec": limit}); resp.StatusCode != 200 {
		t.Fatalf("put account limit: %d %s", resp.StatusCode, b)
	}
	tok := sfToken(t, s)
	sf := s.URL() + "/services/data/v61.0/sobjects/Lead/Ext_Id__c/"
	hs := s.URL() + "/crm/v3/objects/contacts/batch/upsert"
	lead := map[string]any{"LastName": "R", "Company": "C"}
	in := map[string]any{"inputs": []map[string]any{{"idProperty": "email", "id": "x@example.com", "properties": map[string]any{"email": "x@example.com"}}}}

	start := time.Now()
	var mu sync.Mutex
	codes := map[string]map[int]int{"sf": {}, "hs": {}}
	var sawSFLimit, sawRetryAfter bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				if w%2 == 0 {
					resp, body := do(t, "PATCH", sf+"k"+string(rune('a'+w))+string(rune('a'+i)), tok, lead)
					mu.Lock()
					codes["sf"][resp.StatusCode]++
					if resp.StatusCode == 403 {
						var errs []map[string]any
						_ = json.Unmarshal(body, &errs)
						if len(errs) == 1 && errs[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED" &&
							strings.HasPrefix(resp.Header.Get("Sforce-Limit-Info"), "api-usage=") {
							sawSFLimit = true
						}
					}
					mu.Unlock()
					continue
				}
				resp, _ := do(t, "POST", hs, "tok", in)
				mu.Lock()
				codes["hs"][resp.StatusCode]++
				if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "1" {
					sawRetryAfter = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if !sawSFLimit || !sawRetryAfter {
		t.Errorf("throttling answers: salesforce 403 REQUEST_LIMIT_EXCEEDED with Sforce-Limit-Info %v, hubspot 429 Retry-After %v; codes %v", sawSFLimit, sawRetryAfter, codes)
	}
	resp, b := do(t, "GET", ctl, "", nil)
	var st AccountStats
	if err := json.Unmarshal(b, &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("get stats: %d %s %v", resp.StatusCode, b, err)
	}
	if st.Accepted+st.Throttled != 100 {
		t.Errorf("counted %d+%d requests, want 100", st.Accepted, st.Throttled)
	}
	// Each system is one account: a full bucket (one second's worth) plus the refill over the
	// run, and at least the bucket.
	sfs, hss := st.BySystem[SystemSalesforce], st.BySystem[SystemHubSpot]
	for name, sys := range map[string]SystemStats{"salesforce": sfs, "hubspot": hss} {
		if maxOK := int64(limit + limit*elapsed + 1); sys.Accepted < limit || sys.Accepted > maxOK {
			t.Errorf("%s accepted %d in %.2fs from two callers, want %d..%d", name, sys.Accepted, elapsed, limit, maxOK)
		}
	}
	if sfs.Throttled != int64(codes["sf"][403]) || hss.Throttled != int64(codes["hs"][429]) || sfs.Accepted != int64(codes["sf"][201]) {
		t.Errorf("per-system counts %+v %+v do not match answers %v", sfs, hss, codes)
	}
	if st.LimitPerSec != limit || st.ThrottledShare() <= 0 || st.AcceptedPerSec() <= 0 {
		t.Errorf("stats %+v: share %v, rate %v", st, st.ThrottledShare(), st.AcceptedPerSec())
	}
	// Removing the limit admits everything again, counted afresh.
	s.AccountLimit(0)
	for range 30 {
		if resp, _ := do(t, "POST", hs, "tok", in); resp.StatusCode != 200 {
			t.Fatalf("no limit: got %d", resp.StatusCode)
		}
	}
	if st := s.AccountStats(); st.Accepted != 30 || st.Throttled != 0 {
		t.Errorf("after removing the limit: %+v, want 30 accepted", st)
	}
	if resp, _ := do(t, "PUT", ctl, "", map[string]any{"per_sec": -1}); resp.StatusCode != 400 {
		t.Errorf("negative limit: got %d, want 400", resp.StatusCode)
	}
}
