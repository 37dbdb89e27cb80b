# Identities and least-privilege grants. Each service runs as its own service account; Pub/Sub
# pushes and Cloud Scheduler calls carry OIDC tokens of two dedicated accounts that may do
# nothing but invoke.

resource "google_service_account" "ingest" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-ingest"
  display_name = "leadpipe ingest (Cloud Run)"
}

resource "google_service_account" "processor" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-processor"
  display_name = "leadpipe processor (Cloud Run)"
}

resource "google_service_account" "replayer" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-replayer"
  display_name = "leadpipe replayer (Cloud Run)"
}

# Signs the OIDC tokens of Pub/Sub pushes to the processor and the replayer.
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "leadpipe Pub/Sub push identity"
}

# Signs the OIDC tokens of Cloud Scheduler's calls (outbox sweep, auto-replay).
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "leadpipe Cloud Scheduler identity"
}

# Runs Cloud Build: tests, image pushes and deploys.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "leadpipe Cloud Build"
}

locals {
  runtime_accounts = {
    ingest    = google_service_account.ingest
    processor = google_service_account.processor
    replayer  = google_service_account.replayer
  }

  # Project-level roles every service needs: Firestore data access and telemetry.
  runtime_project_roles = [
    "roles/datastore.user",
    "roles/cloudtrace.agent",
    "roles/monitoring.metricWriter",
    "roles/logging.logWriter",
  ]
  runtime_project_grants = merge([
    for svc, sa in local.runtime_accounts : {
      for role in local.runtime_project_roles : "${svc}/${role}" => { role = role, member = sa.member }
    }
  ]...)
}

resource "google_project_iam_member" "runtime" {
  for_each = local.runtime_project_grants

  project = var.project_id
  role    = each.value.role
  member  = each.value.member
}

# --- Storage ---------------------------------------------------------------------------------

# ingest writes raw payloads (create only: it never overwrites or deletes).
resource "google_storage_bucket_iam_member" "ingest_raw_creator" {
  bucket = google_storage_bucket.raw.name
  role   = "roles/storage.objectCreator"
  member = google_service_account.ingest.member
}

# The replayer reads raw payloads to renormalize DLQ records.
resource "google_storage_bucket_iam_member" "replayer_raw_viewer" {
  bucket = google_storage_bucket.raw.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.replayer.member
}

# --- Pub/Sub publishers ------------------------------------------------------------------------

# ingest publishes events to leads and unusable-but-signed payloads to leads-dlq.
resource "google_pubsub_topic_iam_member" "ingest_leads" {
  project = var.project_id
  topic   = google_pubsub_topic.leads.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.ingest.member
}

resource "google_pubsub_topic_iam_member" "ingest_dlq" {
  project = var.project_id
  topic   = google_pubsub_topic.dlq.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.ingest.member
}

# The processor quarantines to leads-dlq.
resource "google_pubsub_topic_iam_member" "processor_dlq" {
  project = var.project_id
  topic   = google_pubsub_topic.dlq.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.processor.member
}

# The replayer republishes replays to leads.
resource "google_pubsub_topic_iam_member" "replayer_leads" {
  project = var.project_id
  topic   = google_pubsub_topic.leads.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.replayer.member
}

# --- Pub/Sub service agent -------------------------------------------------------------------

# Dead-lettering: the Pub/Sub service agent must publish to the dead-letter topic and
# acknowledge on the source subscription, or messages are never dead-lettered. The agent exists
# once the Pub/Sub API is enabled; depending on the topics makes sure of that.
resource "google_pubsub_topic_iam_member" "agent_dlq_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dlq.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${local.pubsub_service_agent}"
}

resource "google_pubsub_subscription_iam_member" "agent_processor_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.processor.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${local.pubsub_service_agent}"
}

# Authenticated push: the agent mints OIDC tokens for the push account. Granted explicitly
# (projects created before April 2021 do not have it through the agent's default role).
resource "google_service_account_iam_member" "agent_push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.pubsub_service_agent}"

  depends_on = [google_pubsub_topic.leads]
}

# --- Secrets ---------------------------------------------------------------------------------

locals {
  secret_readers = merge(
    { for s in distinct(concat(values(var.ingest_secret_env), var.ingest_secret_refs, [var.sources_secret])) : "ingest/${s}" => { secret = s, member = google_service_account.ingest.member } },
    { for s in distinct(values(var.processor_secret_env)) : "processor/${s}" => { secret = s, member = google_service_account.processor.member } },
    { for s in distinct(values(var.replayer_secret_env)) : "replayer/${s}" => { secret = s, member = google_service_account.replayer.member } },
    # The replayer renormalizes with the same sources configuration as ingest.
    { "replayer/${var.sources_secret}" = { secret = var.sources_secret, member = google_service_account.replayer.member } },
  )
}

resource "google_secret_manager_secret_iam_member" "readers" {
  for_each = local.secret_readers

  project   = var.project_id
  secret_id = google_secret_manager_secret.secrets[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}

# --- Cloud Run invokers ------------------------------------------------------------------------

# ingest: webhook senders are external and unauthenticated at the IAM level; ingest verifies
# each source's signature, and its /internal/* endpoints verify the scheduler's OIDC token.
resource "google_cloud_run_v2_service_iam_member" "ingest_public" {
  count = var.ingest_public ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.svc["ingest"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "ingest_scheduler" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.svc["ingest"].name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

resource "google_cloud_run_v2_service_iam_member" "processor_push" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.svc["processor"].name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

resource "google_cloud_run_v2_service_iam_member" "replayer_push" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.svc["replayer"].name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

resource "google_cloud_run_v2_service_iam_member" "replayer_scheduler" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.svc["replayer"].name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

resource "google_cloud_run_v2_service_iam_member" "replayer_operators" {
  for_each = toset(var.operators)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.svc["replayer"].name
  role     = "roles/run.invoker"
  member   = each.value
}

# --- Cloud Build -------------------------------------------------------------------------------

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/run.developer",     # gcloud run deploy (image updates)
    "roles/logging.logWriter", # build logs (cloudbuild.yaml: logging CLOUD_LOGGING_ONLY)
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# Deploying a revision that runs as a service account needs actAs on that account.
resource "google_service_account_iam_member" "build_act_as" {
  for_each = local.runtime_accounts

  service_account_id = each.value.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}
