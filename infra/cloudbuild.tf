# Optional Cloud Build trigger on pushes to a GitHub branch (var.github_repository). The
# repository must already be connected to Cloud Build through the GitHub app.

resource "google_cloudbuild_trigger" "main" {
  count = var.github_repository == null ? 0 : 1

  project         = var.project_id
  location        = "global"
  name            = "${var.name_prefix}-main"
  description     = "leadpipe: lint, test, build, push and deploy"
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.build.id

  github {
    owner = var.github_repository.owner
    name  = var.github_repository.name
    push {
      branch = "^${var.github_repository.branch}$"
    }
  }

  substitutions = {
    _REGION         = var.region
    _REPOSITORY     = google_artifact_registry_repository.images.repository_id
    _SERVICE_PREFIX = var.name_prefix
  }

  depends_on = [google_project_service.apis]
}
