# Inputs. Only project_id is required; the rest have production-sensible defaults.

variable "project_id" {
  description = "Google Cloud project id to deploy into. Also names the raw bucket (<project>-leadpipe-raw)."
  type        = string
}

variable "region" {
  description = "Region for Cloud Run, Artifact Registry and Cloud Scheduler."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of the Cloud Run services and service accounts: <prefix>-ingest, <prefix>-processor, <prefix>-replayer. Keep it short: service account ids are limited to 30 characters."
  type        = string
  default     = "leadpipe"
}

variable "artifact_repository" {
  description = "Artifact Registry Docker repository that holds the service images."
  type        = string
  default     = "leadpipe"
}

# --- Images ------------------------------------------------------------------------------------

variable "ingest_image" {
  description = "Image for the ingest service at creation. null: a placeholder until Cloud Build deploys the real image. Later image changes are made by Cloud Build (gcloud run deploy) and ignored by Terraform."
  type        = string
  default     = null
}

variable "processor_image" {
  description = "Image for the processor service at creation (see ingest_image)."
  type        = string
  default     = null
}

variable "replayer_image" {
  description = "Image for the replayer service at creation (see ingest_image)."
  type        = string
  default     = null
}

# --- Pub/Sub -----------------------------------------------------------------------------------

variable "leads_topic" {
  description = "Topic of normalized events (LEADS_TOPIC)."
  type        = string
  default     = "leads"
}

variable "dlq_topic" {
  description = "Dead-letter topic (DLQ_TOPIC): processor quarantines and Pub/Sub's own dead-lettering."
  type        = string
  default     = "leads-dlq"
}

variable "message_retention" {
  description = "How long the topics and subscriptions keep messages (lets an operator seek back after an incident)."
  type        = string
  default     = "604800s"
}

# --- Storage -----------------------------------------------------------------------------------

variable "bucket_location" {
  description = "Location of the raw payload bucket. null: the region, upper-cased."
  type        = string
  default     = null
}

variable "raw_retention_days" {
  description = "Days after which raw webhook payloads are deleted from the raw bucket. 0 keeps them forever. Keep it longer than the longest time a lead may wait in the DLQ before a replay that renormalizes it."
  type        = number
  default     = 90
}

# --- Firestore ---------------------------------------------------------------------------------

variable "firestore_database" {
  description = "Firestore database id (FIRESTORE_DATABASE). \"(default)\" unless the project already uses it for something else."
  type        = string
  default     = "(default)"
}

variable "firestore_ops_database" {
  description = "Firestore database of DLQ records, the audit log and replay jobs (FIRESTORE_OPS_DATABASE on the processor and the replayer). Apart from the events so that ingest, granted the events database alone, cannot write them."
  type        = string
  default     = "leadpipe-ops"
}

variable "firestore_location" {
  description = "Firestore location: a region (e.g. europe-west1) or a multi-region (eur3, nam5). Cannot be changed after creation."
  type        = string
  default     = "eur3"
}

variable "firestore_delete_protection" {
  description = "Refuse to delete the Firestore database (recommended: it holds the idempotency records and the DLQ)."
  type        = bool
  default     = true
}

variable "ttl_field" {
  description = "Timestamp field that Firestore TTL policies read: a document is deleted some time after the instant it holds. Documents without the field never expire."
  type        = string
  default     = "expire_at"
}

variable "ttl_collections" {
  description = "Collection groups with a TTL policy on ttl_field. Only collections whose documents the code gives that field (events, attempts, rate_members: common/store; infra's Go test checks it). rate_members holds each processor instance's share of a CRM's rate, refreshed every second: a killed instance's document lapses at its expire_at and the policy removes it. Deliberately excludes dlq and audit: DLQ records are the 'never lost' guarantee and audit entries are the operators' record. replay_jobs documents carry no expire_at yet, so a policy there would delete nothing."
  type        = list(string)
  default     = ["events", "attempts", "rate_members"]
}

# --- Cloud Run -----------------------------------------------------------------------------------

variable "services" {
  description = "Sizing of each Cloud Run service. timeout is the request timeout (the processor's should equal the push ack deadline, 60 s). cpu_idle = false keeps CPU between requests: the replayer runs bulk replay jobs on background goroutines, the processor the drain of parked events (which must also run with no push in flight, hence its one minimum instance)."
  type = map(object({
    min_instances = number
    max_instances = number
    concurrency   = number
    cpu           = string
    memory        = string
    timeout       = string
    cpu_idle      = bool
  }))
  default = {
    ingest    = { min_instances = 1, max_instances = 50, concurrency = 80, cpu = "1", memory = "512Mi", timeout = "30s", cpu_idle = true }
    processor = { min_instances = 1, max_instances = 50, concurrency = 40, cpu = "1", memory = "512Mi", timeout = "60s", cpu_idle = false }
    replayer  = { min_instances = 0, max_instances = 5, concurrency = 40, cpu = "1", memory = "512Mi", timeout = "300s", cpu_idle = false }
  }
}

variable "ingest_public" {
  description = "Grant roles/run.invoker to allUsers on ingest: webhook senders are external and authenticate by signature. Organisations with domain-restricted sharing must allow allUsers for this service."
  type        = bool
  default     = true
}

variable "processor_ingress" {
  description = "Ingress of the processor. Pub/Sub push from the same project counts as internal traffic, so INGRESS_TRAFFIC_INTERNAL_ONLY works too; IAM (run.invoker for the push service account only) protects it either way."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.processor_ingress)
    error_message = "processor_ingress must be INGRESS_TRAFFIC_ALL (IAM-only), INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "log_level" {
  description = "LOG_LEVEL for every service (debug, info, warn, error)."
  type        = string
  default     = "info"
}

variable "otel_exporter" {
  description = "OTEL_EXPORTER for every service: gcp (Cloud Trace and Cloud Monitoring), otlp, stdout or none."
  type        = string
  default     = "gcp"
}

variable "otel_sample_ratio" {
  description = "OTEL_SAMPLE_RATIO: fraction of traces sampled (0..1)."
  type        = number
  default     = 0.1
}

variable "ingest_sources_file" {
  description = "SOURCES_FILE: where ingest (and the replayer, for renormalize) read the source configuration, mounted from the Secret Manager secret named by sources_secret. It holds secret references (env:NAME or projects/P/secrets/S/versions/V), never secret values."
  type        = string
  default     = "/etc/leadpipe/sources/sources.yaml"
}

variable "ingest_env" {
  description = "Extra plain environment variables for ingest (merged over the defaults; see ingest/README.md)."
  type        = map(string)
  default     = {}
}

variable "processor_env" {
  description = "Extra plain environment variables for the processor (see processor/README.md): the CRM endpoint (SALESFORCE_INSTANCE_URL and SALESFORCE_TOKEN_URL, HUBSPOT_BASE_URL or WEBHOOK_CRM_URL; one is required), rate limit, breaker and retry tuning."
  type        = map(string)
  default     = {}
}

variable "replayer_env" {
  description = "Extra plain environment variables for the replayer (see replayer/README.md)."
  type        = map(string)
  default     = {}
}

# --- Secrets -----------------------------------------------------------------------------------

variable "sources_secret" {
  description = "Secret Manager secret holding ingest's sources.yaml, mounted as a file at ingest_sources_file."
  type        = string
  default     = "leadpipe-ingest-sources"
}

variable "ingest_secret_env" {
  description = "Environment variables of ingest read from Secret Manager: env name => secret id, e.g. { TYPEFORM_SECRET = \"leadpipe-typeform-secret\" }. Sources in sources.yaml refer to them as env:NAME (signing secrets, verify tokens); the names are the deployment's choice. Sources may instead refer to a secret version by name (projects/P/secrets/S/versions/V): list such secret ids in ingest_secret_refs."
  type        = map(string)
  default     = {}
}

variable "ingest_secret_refs" {
  description = "Secret ids that ingest reads at run time through the Secret Manager API (references in sources.yaml). Declared and made readable by ingest only."
  type        = list(string)
  default     = []
}

variable "processor_secret_env" {
  description = "Environment variables of the processor read from Secret Manager: env name => secret id (CRM credentials). Add HUBSPOT_ACCESS_TOKEN or META_ACCESS_TOKEN here when those are used; the non-secret SALESFORCE_INSTANCE_URL, SALESFORCE_TOKEN_URL, HUBSPOT_BASE_URL or WEBHOOK_CRM_URL go in processor_env (the processor refuses to start without one CRM configured)."
  type        = map(string)
  default = {
    SALESFORCE_CLIENT_ID     = "leadpipe-salesforce-client-id"
    SALESFORCE_CLIENT_SECRET = "leadpipe-salesforce-client-secret"
  }
}

variable "replayer_secret_env" {
  description = "Environment variables of the replayer read from Secret Manager: env name => secret id. SESSION_KEY signs triage page session cookies (at least 32 bytes) so sessions survive restarts and span instances."
  type        = map(string)
  default = {
    SESSION_KEY = "leadpipe-replayer-session-key"
  }
}

variable "pii_hash_key_secret" {
  description = "Secret Manager secret holding PII_HASH_KEY, the keyed-hash key for personal data in ids and logs (common/pii), read by all three services (at least 32 random bytes; rotating it changes every derived token)."
  type        = string
  default     = "leadpipe-pii-hash-key"
}

# --- Access ------------------------------------------------------------------------------------

variable "operators" {
  description = "IAM members allowed to call the replayer's triage API and page, e.g. [\"group:leadpipe-operators@example.com\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.operators, "allUsers") && !contains(var.operators, "allAuthenticatedUsers")
    error_message = "operators must name users, groups or service accounts: the replayer is never public."
  }
}

variable "replayer_allowed_principals" {
  description = "E-mail addresses the replayer accepts on its operator API and triage page, in addition to the scheduler's service account (AUTH_ALLOWED_PRINCIPALS; exact e-mails, no groups or domains). Cloud Run IAM restricts callers to var.operators first; this is the application-level allow list and names the actor in the audit log. Empty: only the scheduler."
  type        = list(string)
  default     = []
}

variable "audit_log_retention_days" {
  description = "Retention of the audit log bucket that receives the replayer's audit entries (logging.tf)."
  type        = number
  default     = 400
}

# --- Scheduler ---------------------------------------------------------------------------------

variable "scheduler_region" {
  description = "Cloud Scheduler region. null: var.region."
  type        = string
  default     = null
}

variable "sweep_schedule" {
  description = "Cron schedule of ingest's outbox sweep (POST /internal/sweep)."
  type        = string
  default     = "* * * * *"
}

variable "auto_replay_schedule" {
  description = "Cron schedule of the replayer's auto-replay (POST /internal/auto-replay)."
  type        = string
  default     = "*/5 * * * *"
}

variable "reconcile_forms" {
  description = "Meta lead forms the scheduled reconcile covers, each \"source:form_id[:page_id]\" (RECONCILE_FORMS). Empty: no reconcile job. The replayer also needs META_ACCESS_TOKEN in replayer_secret_env."
  type        = list(string)
  default     = []
}

variable "reconcile_schedule" {
  description = "Cron schedule of the replayer's reconcile with the source (POST /internal/reconcile); with the default RECONCILE_LOOKBACK of 2h an hourly run looks at every lead twice."
  type        = string
  default     = "0 * * * *"
}

variable "resume_jobs_schedule" {
  description = "Cron schedule of the replayer's resume of interrupted bulk replay jobs (POST /internal/replay-jobs/resume)."
  type        = string
  default     = "*/5 * * * *"
}

# --- Cloud Build -------------------------------------------------------------------------------

variable "github_repository" {
  description = "GitHub repository for the Cloud Build trigger (the Cloud Build GitHub app must already be connected to it). null: no trigger; run `gcloud builds submit` by hand."
  type = object({
    owner  = string
    name   = string
    branch = string
  })
  default = null
}

# --- Monitoring --------------------------------------------------------------------------------

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) of every alert policy (monitoring.tf). Empty: the incidents show in the console only."
  type        = list(string)
  default     = []
}

variable "leads_age_sla_seconds" {
  description = "Alert when the oldest unacknowledged message on leads-processor is older than this (seconds)."
  type        = number
  default     = 900
}

variable "crm_error_rate_per_second" {
  description = "Alert when a CRM answers 429 or 5xx faster than this (per second, over 5 minutes, for 10 minutes)."
  type        = number
  default     = 0.5
}

variable "intake_silence_window" {
  description = "Alert when a source has had no accepted delivery for this long (a PromQL duration, e.g. 2h)."
  type        = string
  default     = "2h"
}

variable "intake_usual_rate_per_hour" {
  description = "Only sources that averaged more accepted deliveries per hour than this the day before are watched by the intake alert."
  type        = number
  default     = 5
}

variable "outbox_age_threshold_seconds" {
  description = "Alert when the p99 age of the outbox entries the sweep finds due exceeds this (seconds)."
  type        = number
  default     = 300
}

variable "parked_alert_minutes" {
  description = "Alert when leads stay parked (behind an open CRM circuit, waiting for the drain) this many minutes."
  type        = number
  default     = 30
}
