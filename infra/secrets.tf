# Secret Manager secrets: declared here, values added out of band (docs/deploy.md), so no secret
# ever passes through Terraform state. Cloud Run refuses to deploy a revision whose secret has
# no enabled version: add the versions before the first full apply.

locals {
  secret_ids = distinct(concat(
    [var.sources_secret],
    values(local.common_secret_env),
    values(var.ingest_secret_env),
    var.ingest_secret_refs,
    values(var.processor_secret_env),
    values(var.replayer_secret_env),
  ))
}

resource "google_secret_manager_secret" "secrets" {
  for_each = toset(local.secret_ids)

  project   = var.project_id
  secret_id = each.value

  labels = {
    app = "leadpipe"
  }

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}
