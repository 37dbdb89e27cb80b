# Shared lookups and names used by every other file.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  # Service names and their deterministic Cloud Run URLs
  # (https://<service>-<project number>.<region>.run.app). The URLs are known before the
  # services exist, so a service can be told its own URL (its token audience) without a cycle.
  service_names = {
    ingest    = "${var.name_prefix}-ingest"
    processor = "${var.name_prefix}-processor"
    replayer  = "${var.name_prefix}-replayer"
  }
  service_urls = {
    for k, name in local.service_names : k => "https://${name}-${local.project_number}.${var.region}.run.app"
  }

  raw_bucket = "${var.project_id}-leadpipe-raw"

  # Google-managed service agents.
  pubsub_service_agent = "service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Placeholder image until Cloud Build has pushed real ones (see docs/deploy.md, bootstrap).
  placeholder_image = "us-docker.pkg.dev/cloudrun/container/hello"
  images = {
    ingest    = coalesce(var.ingest_image, local.placeholder_image)
    processor = coalesce(var.processor_image, local.placeholder_image)
    replayer  = coalesce(var.replayer_image, local.placeholder_image)
  }

  image_repository = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}
