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

  # Project-level roles every service needs: telemetry. Firestore access is granted below,
  # per service and only on the pipeline's database.
  runtime_project_roles = [
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

# --- Firestore ---------------------------------------------------------------------------------

# Least privilege on Firestore. IAM is the only control for server client libraries (security
# rules do not apply to them), and Firestore's IAM resource is the database: a condition can
# name a database, not a collection. So the operator's collections (DLQ records, audit log,
# replay jobs) live in their own database (firestore.tf), every grant is conditioned on the
# databases its service uses, and ingest gets the events database alone, with a custom role
# without delete: it cannot read or write a DLQ record, an audit entry or a replay job. The
# store's operator actions span the two databases in steps with a recorded intent
# (common/store/operator.go); internal/archtest also checks ingest's code calls no store method
# touching them.
resource "google_project_iam_custom_role" "ingest_firestore" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_ingest_firestore"
  title       = "leadpipe ingest Firestore access"
  description = "Create, read and update documents (events and their outbox fields); no delete, no admin."
  permissions = [
    "datastore.databases.get",
    "datastore.databases.getMetadata",
    "datastore.entities.create",
    "datastore.entities.get",
    "datastore.entities.list",
    "datastore.entities.update",
  ]
}

locals {
  firestore_database_resource     = "projects/${var.project_id}/databases/${var.firestore_database}"
  firestore_ops_database_resource = "projects/${var.project_id}/databases/${var.firestore_ops_database}"
  firestore_grants = {
    # Events only: no DLQ record, audit entry or replay job.
    ingest = {
      role      = google_project_iam_custom_role.ingest_firestore.name
      databases = [local.firestore_database_resource]
    }
    # Events, and the operations database to resolve the DLQ record of a replayed lead.
    processor = {
      role      = "roles/datastore.user"
      databases = [local.firestore_database_resource, local.firestore_ops_database_resource]
    }
    replayer = {
      role      = "roles/datastore.user"
      databases = [local.firestore_database_resource, local.firestore_ops_database_resource]
    }
  }
}

resource "google_project_iam_member" "firestore" {
  for_each = local.firestore_grants

  project = var.project_id
  role    = each.value.role
  member  = local.runtime_accounts[each.key].member

  condition {
    title       = "leadpipe Firestore databases only"
    description = "Only the pipeline's databases this service uses."
    expression  = join(" || ", [for db in each.value.databases : "resource.name == \"${db}\""])
  }
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

# Reconcile archives the leads it takes in (write-once), and the processor reads and archives
# fetched Meta leads next to the raw webhook (write-once), so a replay needs no Graph call.
resource "google_storage_bucket_iam_member" "replayer_raw_creator" {
  bucket = google_storage_bucket.raw.name
  role   = "roles/storage.objectCreator"
  member = google_service_account.replayer.member
}

resource "google_storage_bucket_iam_member" "processor_raw_viewer" {
  bucket = google_storage_bucket.raw.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.processor.member
}

resource "google_storage_bucket_iam_member" "processor_raw_creator" {
  bucket = google_storage_bucket.raw.name
  role   = "roles/storage.objectCreator"
  member = google_service_account.processor.member
}

# --- Pub/Sub ------------------------------------------------------------------------------------

# Every Pub/Sub grant, in one place (tests/pubsub.tftest.hcl asserts over them):
# - ingest publishes events to leads and unusable-but-signed payloads to leads-dlq;
# - the processor quarantines to leads-dlq; the replayer republishes replays to leads;
# - dead-lettering: the Pub/Sub service agent must publish to the dead-letter topic and
#   acknowledge on the source subscription, or messages are never dead-lettered. The agent
#   exists once the Pub/Sub API is enabled (the topics depend on it).
locals {
  pubsub_agent_member = "serviceAccount:${local.pubsub_service_agent}"
  pubsub_topic_grants = {
    "ingest/leads"   = { topic = google_pubsub_topic.leads.name, role = "roles/pubsub.publisher", member = google_service_account.ingest.member }
    "ingest/dlq"     = { topic = google_pubsub_topic.dlq.name, role = "roles/pubsub.publisher", member = google_service_account.ingest.member }
    "processor/dlq"  = { topic = google_pubsub_topic.dlq.name, role = "roles/pubsub.publisher", member = google_service_account.processor.member }
    "replayer/leads" = { topic = google_pubsub_topic.leads.name, role = "roles/pubsub.publisher", member = google_service_account.replayer.member }
    "agent/dlq"      = { topic = google_pubsub_topic.dlq.name, role = "roles/pubsub.publisher", member = local.pubsub_agent_member }
  }
  pubsub_subscription_grants = {
    "agent/processor" = { subscription = google_pubsub_subscription.processor.name, role = "roles/pubsub.subscriber", member = local.pubsub_agent_member }
  }
}

resource "google_pubsub_topic_iam_member" "grants" {
  for_each = local.pubsub_topic_grants

  project = var.project_id
  topic   = each.value.topic
  role    = each.value.role
  member  = each.value.member
}

resource "google_pubsub_subscription_iam_member" "grants" {
  for_each = local.pubsub_subscription_grants

  project      = var.project_id
  subscription = each.value.subscription
  role         = each.value.role
  member       = each.value.member
}

moved {
  from = google_pubsub_topic_iam_member.ingest_leads
  to   = google_pubsub_topic_iam_member.grants["ingest/leads"]
}

moved {
  from = google_pubsub_topic_iam_member.ingest_dlq
  to   = google_pubsub_topic_iam_member.grants["ingest/dlq"]
}

moved {
  from = google_pubsub_topic_iam_member.processor_dlq
  to   = google_pubsub_topic_iam_member.grants["processor/dlq"]
}

moved {
  from = google_pubsub_topic_iam_member.replayer_leads
  to   = google_pubsub_topic_iam_member.grants["replayer/leads"]
}

moved {
  from = google_pubsub_topic_iam_member.agent_dlq_publisher
  to   = google_pubsub_topic_iam_member.grants["agent/dlq"]
}

moved {
  from = google_pubsub_subscription_iam_member.agent_processor_subscriber
  to   = google_pubsub_subscription_iam_member.grants["agent/processor"]
}

# Authenticated push: the agent mints OIDC tokens for the push account. Granted explicitly
# (projects created before April 2021 do not have it through the agent's default role).
resource "google_service_account_iam_member" "agent_push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent_member

  depends_on = [google_pubsub_topic.leads]
}

# --- Secrets ---------------------------------------------------------------------------------

locals {
  secret_readers = merge(
    { for pair in setproduct(keys(local.runtime_accounts), distinct(values(local.common_secret_env))) : "${pair[0]}/${pair[1]}" => { secret = pair[1], member = local.runtime_accounts[pair[0]].member } },
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

# Every run.invoker grant (tests/ingress.tftest.hcl asserts that allUsers is on ingest only):
# - ingest: webhook senders are external and unauthenticated at the IAM level; ingest
#   verifies each source's signature, and /internal/sweep the scheduler's OIDC token;
# - the processor: Pub/Sub pushes only; the replayer: pushes, the scheduler and operators.
locals {
  run_invokers = merge(
    var.ingest_public ? { "ingest/allUsers" = { service = "ingest", member = "allUsers" } } : {},
    {
      "ingest/scheduler"   = { service = "ingest", member = google_service_account.scheduler.member }
      "processor/push"     = { service = "processor", member = google_service_account.push.member }
      "replayer/push"      = { service = "replayer", member = google_service_account.push.member }
      "replayer/scheduler" = { service = "replayer", member = google_service_account.scheduler.member }
    },
  )
}

# Operators (var.operators, never allUsers: the variable refuses it) on the replayer.
resource "google_cloud_run_v2_service_iam_member" "replayer_operators" {
  for_each = toset(var.operators)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.svc["replayer"].name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = local.run_invokers

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.svc[each.value.service].name
  role     = "roles/run.invoker"
  member   = each.value.member
}

moved {
  from = google_cloud_run_v2_service_iam_member.ingest_public[0]
  to   = google_cloud_run_v2_service_iam_member.invokers["ingest/allUsers"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.ingest_scheduler
  to   = google_cloud_run_v2_service_iam_member.invokers["ingest/scheduler"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.processor_push
  to   = google_cloud_run_v2_service_iam_member.invokers["processor/push"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.replayer_push
  to   = google_cloud_run_v2_service_iam_member.invokers["replayer/push"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.replayer_scheduler
  to   = google_cloud_run_v2_service_iam_member.invokers["replayer/scheduler"]
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
