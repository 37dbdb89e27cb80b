# The operators' audit trail in Cloud Logging. The replayer keeps every audit entry in
# Firestore (the `audit` collection, no TTL) and also logs each one as a JSON line whose
# message is "audit" (with audit_id, actor, action, targets and outcome: ids only). The sink
# below routes those lines to a bucket of their own with a long retention, so the trail
# outlives the _Default bucket's 30 days and survives a Firestore restore.

locals {
  audit_log_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${local.service_names.replayer}\"",
    "jsonPayload.message=\"audit\"",
  ])
}

resource "google_logging_project_bucket_config" "audit" {
  project        = var.project_id
  location       = "global"
  bucket_id      = "${var.name_prefix}-audit"
  retention_days = var.audit_log_retention_days
  description    = "leadpipe replayer audit trail (operator replays, discards, bulk jobs)."

  depends_on = [google_project_service.apis]
}

resource "google_logging_project_sink" "audit" {
  project     = var.project_id
  name        = "${var.name_prefix}-audit"
  description = "leadpipe: replayer audit entries to the audit log bucket."
  destination = "logging.googleapis.com/${google_logging_project_bucket_config.audit.id}"
  filter      = local.audit_log_filter

  unique_writer_identity = true
}
