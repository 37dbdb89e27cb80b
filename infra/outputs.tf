output "ingest_url" {
  description = "Base URL of ingest; webhook senders POST to <ingest_url>/v1/webhooks/<source>."
  value       = local.service_urls.ingest
}

output "processor_url" {
  description = "Base URL of the processor (private: Pub/Sub push only)."
  value       = local.service_urls.processor
}

output "replayer_url" {
  description = "Base URL of the replayer's triage API and page (operators only)."
  value       = local.service_urls.replayer
}

output "service_uris" {
  description = "URLs Cloud Run reports for each service (the non-deterministic form; either works)."
  value       = { for k, s in google_cloud_run_v2_service.svc : k => s.uri }
}

output "raw_bucket" {
  description = "Raw payload bucket (RAW_BUCKET)."
  value       = google_storage_bucket.raw.name
}

output "topics" {
  description = "Pub/Sub topics."
  value       = { leads = google_pubsub_topic.leads.name, dlq = google_pubsub_topic.dlq.name }
}

output "subscriptions" {
  description = "Pub/Sub push subscriptions."
  value       = { processor = google_pubsub_subscription.processor.name, replayer = google_pubsub_subscription.replayer.name }
}

output "firestore_database" {
  description = "Firestore database id (FIRESTORE_DATABASE)."
  value       = google_firestore_database.main.name
}

output "firestore_ops_database" {
  description = "Firestore operations database id (FIRESTORE_OPS_DATABASE): DLQ records, audit log, replay jobs."
  value       = google_firestore_database.ops.name
}

output "service_accounts" {
  description = "Service account e-mails: runtime (ingest, processor, replayer), push, scheduler and build."
  value = {
    ingest    = google_service_account.ingest.email
    processor = google_service_account.processor.email
    replayer  = google_service_account.replayer.email
    push      = google_service_account.push.email
    scheduler = google_service_account.scheduler.email
    build     = google_service_account.build.email
  }
}

output "image_repository" {
  description = "Artifact Registry path for images: <image_repository>/<service>:<tag>."
  value       = local.image_repository
}

output "secrets" {
  description = "Secret ids to fill with `gcloud secrets versions add` before the first full apply."
  value       = sort(local.secret_ids)
}
