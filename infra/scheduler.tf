# Periodic work. Cloud Run gives CPU only during requests, so the outbox sweep and auto-replay
# are HTTP endpoints that Cloud Scheduler calls with an OIDC token of the scheduler account
# (locally a ticker calls them).

locals {
  scheduler_region = coalesce(var.scheduler_region, var.region)
}

# Publishes events whose publish failed after they were persisted (the outbox).
resource "google_cloud_scheduler_job" "ingest_sweep" {
  project          = var.project_id
  region           = local.scheduler_region
  name             = "${var.name_prefix}-ingest-sweep"
  description      = "leadpipe: publish persisted but unpublished events (ingest outbox sweep)"
  schedule         = var.sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  # The next run comes within a minute; no need to retry this one.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${local.service_urls.ingest}/internal/sweep"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.service_urls.ingest
    }
  }

  depends_on = [google_project_service.apis]
}

# Replays retryable and outage DLQ records once the CRM's circuit is closed again.
resource "google_cloud_scheduler_job" "replayer_auto_replay" {
  project          = var.project_id
  region           = local.scheduler_region
  name             = "${var.name_prefix}-replayer-auto-replay"
  description      = "leadpipe: auto-replay of retryable DLQ records"
  schedule         = var.auto_replay_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "300s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${local.service_urls.replayer}/internal/auto-replay"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.service_urls.replayer
    }
  }

  depends_on = [google_project_service.apis]
}

# Resumes bulk replay jobs left queued or running by an instance that stopped (their lease has
# expired); jobs run on background goroutines of whichever instance picks them up.
resource "google_cloud_scheduler_job" "replayer_resume_jobs" {
  project          = var.project_id
  region           = local.scheduler_region
  name             = "${var.name_prefix}-replayer-resume-jobs"
  description      = "leadpipe: resume interrupted bulk replay jobs"
  schedule         = var.resume_jobs_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${local.service_urls.replayer}/internal/replay-jobs/resume"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.service_urls.replayer
    }
  }

  depends_on = [google_project_service.apis]
}

# Reconcile with the source: lists the configured Meta forms' recent leads through the Graph API
# and takes in any the webhooks never delivered (same idempotency keys, so nothing twice).
resource "google_cloud_scheduler_job" "replayer_reconcile" {
  count            = length(var.reconcile_forms) > 0 ? 1 : 0
  project          = var.project_id
  region           = local.scheduler_region
  name             = "${var.name_prefix}-replayer-reconcile"
  description      = "leadpipe: reconcile Meta lead forms with the pipeline"
  schedule         = var.reconcile_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "300s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${local.service_urls.replayer}/internal/reconcile"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.service_urls.replayer
    }
  }

  depends_on = [google_project_service.apis]
}
