# Access invariants: who may invoke what (only ingest is public), how the scheduler
# authenticates, least privilege on Firestore and the raw bucket, secrets only from Secret
# Manager, the audit trail in Cloud Logging.
# Each error message starts with "invariant <id>:"; infra/broken_test.go breaks each one.

mock_provider "google" {
  source = "./tests/mocks"
}

variables {
  project_id      = "leadpipe-test"
  reconcile_forms = ["meta:1234567890123"]
}

run "access" {
  command = plan

  # --- invokers and ingress
  assert {
    condition = alltrue(concat(
      [for g in google_cloud_run_v2_service_iam_member.invokers : !contains(["allUsers", "allAuthenticatedUsers"], g.member) || g.name == google_cloud_run_v2_service.svc["ingest"].name],
      [for g in google_cloud_run_v2_service_iam_member.replayer_operators : !contains(["allUsers", "allAuthenticatedUsers"], g.member)],
    ))
    error_message = "invariant only-ingest-public: only ingest may be invocable by allUsers"
  }

  assert {
    condition     = anytrue([for g in google_cloud_run_v2_service_iam_member.invokers : g.member == "allUsers" && g.name == google_cloud_run_v2_service.svc["ingest"].name])
    error_message = "invariant only-ingest-public: ingest must be invocable by allUsers (webhook senders authenticate by signature)"
  }

  assert {
    condition = alltrue([
      for s in ["processor", "replayer"] :
      contains(["INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_ALL"], google_cloud_run_v2_service.svc[s].ingress) &&
      google_cloud_run_v2_service.svc[s].invoker_iam_disabled != true
    ])
    error_message = "invariant private-services: processor and replayer must be internal or IAM-only (invoker IAM check never disabled)"
  }

  assert {
    condition = alltrue([
      for g in google_cloud_run_v2_service_iam_member.invokers : g.member == google_service_account.push.member
      if g.name == google_cloud_run_v2_service.svc["processor"].name
    ])
    error_message = "invariant private-services: only the push account may invoke the processor"
  }

  # --- Cloud Scheduler calls carry OIDC tokens the services check
  assert {
    condition = (
      google_cloud_scheduler_job.ingest_sweep.http_target[0].uri == "https://leadpipe-ingest-123456789012.europe-west1.run.app/internal/sweep" &&
      google_cloud_scheduler_job.ingest_sweep.http_target[0].oidc_token[0].service_account_email == google_service_account.scheduler.email &&
      google_cloud_scheduler_job.ingest_sweep.http_target[0].oidc_token[0].audience == "https://leadpipe-ingest-123456789012.europe-west1.run.app"
    )
    error_message = "invariant sweep-oidc: the outbox sweep job must call ingest's /internal/sweep with an OIDC token of the scheduler account for ingest's URL"
  }

  assert {
    condition = (
      { for e in google_cloud_run_v2_service.svc["ingest"].template[0].containers[0].env : e.name => e.value }["SWEEP_AUTH"] == "oidc" &&
      { for e in google_cloud_run_v2_service.svc["ingest"].template[0].containers[0].env : e.name => e.value }["SWEEP_AUDIENCE"] == google_cloud_scheduler_job.ingest_sweep.http_target[0].oidc_token[0].audience &&
      contains(split(",", { for e in google_cloud_run_v2_service.svc["ingest"].template[0].containers[0].env : e.name => e.value }["SWEEP_SERVICE_ACCOUNTS"]), google_service_account.scheduler.email)
    )
    error_message = "invariant sweep-oidc: ingest must verify the sweep's token (SWEEP_AUTH=oidc, SWEEP_AUDIENCE, SWEEP_SERVICE_ACCOUNTS naming the scheduler account)"
  }

  assert {
    condition = alltrue([
      for j in concat([google_cloud_scheduler_job.replayer_auto_replay, google_cloud_scheduler_job.replayer_resume_jobs], google_cloud_scheduler_job.replayer_reconcile) :
      j.http_target[0].oidc_token[0].service_account_email == google_service_account.scheduler.email &&
      j.http_target[0].oidc_token[0].audience == { for e in google_cloud_run_v2_service.svc["replayer"].template[0].containers[0].env : e.name => e.value }["AUTH_AUDIENCE"] &&
      contains(split(",", { for e in google_cloud_run_v2_service.svc["replayer"].template[0].containers[0].env : e.name => e.value }["AUTH_ALLOWED_PRINCIPALS"]), google_service_account.scheduler.email)
    ])
    error_message = "invariant replayer-jobs-oidc: the replayer's scheduler jobs must carry OIDC tokens the replayer accepts (AUTH_AUDIENCE, AUTH_ALLOWED_PRINCIPALS)"
  }

  # --- least privilege on Firestore
  assert {
    condition = alltrue([
      for g in google_project_iam_member.runtime :
      !startswith(g.role, "roles/datastore.") && !contains(["roles/owner", "roles/editor", "roles/viewer"], g.role)
    ])
    error_message = "invariant firestore-least-privilege: no project-wide Firestore or basic role for the runtime accounts"
  }

  assert {
    condition = (
      length(google_project_iam_member.firestore) == 3 &&
      alltrue([for k, g in google_project_iam_member.firestore : length(g.condition) == 1]) &&
      google_project_iam_member.firestore["processor"].condition[0].expression == "resource.name == \"projects/leadpipe-test/databases/(default)\" || resource.name == \"projects/leadpipe-test/databases/leadpipe-ops\"" &&
      google_project_iam_member.firestore["replayer"].condition[0].expression == "resource.name == \"projects/leadpipe-test/databases/(default)\" || resource.name == \"projects/leadpipe-test/databases/leadpipe-ops\""
    )
    error_message = "invariant firestore-least-privilege: each service's Firestore grant must be conditioned on the pipeline's databases"
  }

  assert {
    condition = (
      google_project_iam_member.firestore["ingest"].condition[0].expression == "resource.name == \"projects/leadpipe-test/databases/(default)\"" &&
      google_firestore_database.ops.name != google_firestore_database.main.name &&
      google_firestore_index.dlq["status"].database == google_firestore_database.ops.name &&
      google_firestore_index.audit["actor"].database == google_firestore_database.ops.name &&
      contains([for e in google_cloud_run_v2_service.svc["processor"].template[0].containers[0].env : e.value if e.name == "FIRESTORE_OPS_DATABASE"], "leadpipe-ops") &&
      contains([for e in google_cloud_run_v2_service.svc["replayer"].template[0].containers[0].env : e.value if e.name == "FIRESTORE_OPS_DATABASE"], "leadpipe-ops") &&
      !contains([for e in google_cloud_run_v2_service.svc["ingest"].template[0].containers[0].env : e.name], "FIRESTORE_OPS_DATABASE")
    )
    error_message = "invariant ingest-no-ops-database: DLQ records, audit and replay jobs live in their own database (indexes there, the processor and the replayer pointed at it) and ingest is granted the events database only"
  }

  assert {
    condition = (
      google_project_iam_member.firestore["ingest"].role == google_project_iam_custom_role.ingest_firestore.name &&
      length(setintersection(toset(google_project_iam_custom_role.ingest_firestore.permissions), toset([
        "datastore.entities.delete", "datastore.databases.update", "datastore.databases.delete", "datastore.indexes.create",
        "datastore.indexes.delete", "datastore.indexes.update", "datastore.databases.export", "datastore.databases.import",
      ]))) == 0
    )
    error_message = "invariant firestore-least-privilege: ingest's Firestore role may create, read and update documents only (no delete, no admin)"
  }

  # --- the raw bucket
  assert {
    condition = (
      google_storage_bucket.raw.uniform_bucket_level_access == true &&
      google_storage_bucket.raw.public_access_prevention == "enforced" &&
      google_storage_bucket_iam_member.ingest_raw_creator.role == "roles/storage.objectCreator" &&
      google_storage_bucket_iam_member.ingest_raw_creator.member == google_service_account.ingest.member &&
      google_storage_bucket_iam_member.replayer_raw_viewer.role == "roles/storage.objectViewer" &&
      google_storage_bucket_iam_member.replayer_raw_viewer.member == google_service_account.replayer.member
    )
    error_message = "invariant raw-bucket: the raw bucket must have uniform access and enforced public access prevention, ingest create-only and the replayer read-only"
  }

  # --- secrets only from Secret Manager
  assert {
    condition = alltrue(flatten([
      for s in google_cloud_run_v2_service.svc : [
        for e in s.template[0].containers[0].env :
        try(e.value == null && contains(values(google_secret_manager_secret.secrets)[*].secret_id, e.value_source[0].secret_key_ref[0].secret), false)
        if length(regexall("(SECRET|TOKENS?|KEY|PASSWORD)$", e.name)) > 0
      ]
    ]))
    error_message = "invariant secrets: every credential variable must be a Secret Manager reference (value_source.secret_key_ref to a declared secret), never a value"
  }

  assert {
    condition = alltrue([
      for s in google_cloud_run_v2_service.svc :
      contains([for e in s.template[0].containers[0].env : e.name if length(e.value_source) == 1], "PII_HASH_KEY")
    ])
    error_message = "invariant secrets: every service must get PII_HASH_KEY from Secret Manager"
  }

  # --- TTL policies on the field the code writes, never on dlq or audit
  assert {
    condition = (
      alltrue([for k, f in google_firestore_field.ttl : f.field == "expire_at" && length(f.ttl_config) == 1]) &&
      contains(keys(google_firestore_field.ttl), "events") && contains(keys(google_firestore_field.ttl), "attempts") &&
      !contains(keys(google_firestore_field.ttl), "dlq") && !contains(keys(google_firestore_field.ttl), "audit")
    )
    error_message = "invariant ttl: TTL policies on expire_at of events and attempts, never on dlq or audit"
  }

  # --- the audit trail also goes to Cloud Logging
  assert {
    condition = (
      google_logging_project_sink.audit.destination == "logging.googleapis.com/${google_logging_project_bucket_config.audit.id}" &&
      strcontains(google_logging_project_sink.audit.filter, "resource.labels.service_name=\"leadpipe-replayer\"") &&
      strcontains(google_logging_project_sink.audit.filter, "jsonPayload.message=\"audit\"") &&
      google_logging_project_bucket_config.audit.retention_days >= 365
    )
    error_message = "invariant audit-log: the replayer's audit lines must be routed to the audit log bucket (retention of a year or more)"
  }
}
