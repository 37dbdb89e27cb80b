package store

import (
	"context"
	"log/slog"

	"github.com/leadpipe/leadpipe/common/logging"
)

// LogAudit writes an audit entry to the service's log as well (Cloud Logging in the cloud,
// where a sink or a log-based alert can keep it apart from Firestore, which ingest's identity
// cannot touch): one structured line "audit" with the entry's id, actor, action, targets
// (document ids), replay and job ids and outcome. The reason and detail are free text an
// operator typed, which may quote a lead, so they stay in the Firestore entry only.
func LogAudit(ctx context.Context, id string, e AuditEntry) {
	logging.FromContext(ctx).LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("audit_id", id), slog.String("actor", e.Actor), slog.String("action", e.Action),
		slog.Any("targets", e.Targets), slog.String("replay_id", e.ReplayID), slog.String("job_id", e.JobID),
		slog.String("outcome", e.Outcome), slog.Bool("audit", true))
}
