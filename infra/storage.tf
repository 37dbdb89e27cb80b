# Raw webhook payloads, written once by ingest before it answers 2xx, read by the replayer when
# an operator renormalizes a DLQ record. Private: uniform access, public access prevented.

resource "google_storage_bucket" "raw" {
  project  = var.project_id
  name     = local.raw_bucket
  location = coalesce(var.bucket_location, upper(var.region))

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Objects are write-once (ingest creates with a does-not-exist precondition); versions would
  # only keep copies of payloads that retention is meant to delete.
  versioning {
    enabled = false
  }

  dynamic "lifecycle_rule" {
    for_each = var.raw_retention_days > 0 ? [var.raw_retention_days] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [google_project_service.apis]
}
