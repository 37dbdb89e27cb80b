package store

// DocumentTypes maps each collection the store writes (the top-level ones, and attempts under
// each event) to the Go type of its documents. Deployment checks hold infra/ against it (a TTL
// policy must name a field the documents of its collection carry); it grants no access.
func DocumentTypes() map[string]any {
	return map[string]any{
		collEvents: EventDoc{}, collAttempts: Attempt{}, collReplayJobs: ReplayJob{},
		collDLQ: DLQRecord{}, collAudit: AuditEntry{}, collCRMHealth: CRMHealth{}, collLookup: LookupEntry{},
		collRateMembers: RateMember{},
	}
}
