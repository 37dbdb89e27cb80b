# The three Cloud Run services. Terraform owns their configuration; Cloud Build owns their image
# (gcloud run deploy --image), so image changes made by a deploy are ignored here.

locals {
  common_env = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    LEADS_TOPIC          = google_pubsub_topic.leads.name
    DLQ_TOPIC            = google_pubsub_topic.dlq.name
    RAW_BUCKET           = google_storage_bucket.raw.name
    FIRESTORE_DATABASE   = google_firestore_database.main.name
    LOG_LEVEL            = var.log_level
    OTEL_EXPORTER        = var.otel_exporter
    OTEL_SAMPLE_RATIO    = tostring(var.otel_sample_ratio)
  }

  # Secrets every service reads (env name => Secret Manager secret id): the keyed-hash key
  # for personal data in ids and logs (common/pii); all three must share it.
  common_secret_env = {
    PII_HASH_KEY = var.pii_hash_key_secret
  }

  run = {
    ingest = {
      ingress = "INGRESS_TRAFFIC_ALL"
      sources = true
      env = merge(local.common_env, {
        OTEL_SERVICE_NAME = "ingest"
        SOURCES_FILE      = var.ingest_sources_file
        # POST /internal/sweep is called by Cloud Scheduler with an OIDC token of the
        # scheduler account whose audience is ingest's URL (scheduler.tf).
        SWEEP_AUTH             = "oidc"
        SWEEP_AUDIENCE         = local.service_urls.ingest
        SWEEP_SERVICE_ACCOUNTS = google_service_account.scheduler.email
      }, var.ingest_env)
      secret_env = merge(local.common_secret_env, var.ingest_secret_env)
    }
    processor = {
      ingress = var.processor_ingress
      sources = false
      env = merge(local.common_env, {
        OTEL_SERVICE_NAME      = "processor"
        FIRESTORE_OPS_DATABASE = google_firestore_database.ops.name
        PUSH_AUTH              = "oidc"
        PUSH_AUDIENCE          = local.service_urls.processor
        PUSH_SERVICE_ACCOUNT   = google_service_account.push.email
      }, var.processor_env)
      secret_env = merge(local.common_secret_env, var.processor_secret_env)
    }
    replayer = {
      ingress = "INGRESS_TRAFFIC_ALL"
      sources = true
      env = merge(local.common_env, {
        OTEL_SERVICE_NAME      = "replayer"
        FIRESTORE_OPS_DATABASE = google_firestore_database.ops.name
        SOURCES_FILE           = var.ingest_sources_file
        PUSH_AUTH              = "oidc"
        PUSH_AUDIENCE          = local.service_urls.replayer
        PUSH_SERVICE_ACCOUNTS  = google_service_account.push.email
        # Operator API, triage page and /internal/auto-replay: exact e-mails (no groups).
        AUTH_MODE               = "oidc"
        AUTH_AUDIENCE           = local.service_urls.replayer
        AUTH_ALLOWED_PRINCIPALS = join(",", concat([google_service_account.scheduler.email], var.replayer_allowed_principals))
      }, length(var.reconcile_forms) > 0 ? { RECONCILE_FORMS = join(",", var.reconcile_forms) } : {}, var.replayer_env)
      secret_env = merge(local.common_secret_env, var.replayer_secret_env)
    }
  }
}

resource "google_cloud_run_v2_service" "svc" {
  for_each = local.run

  project             = var.project_id
  location            = var.region
  name                = local.service_names[each.key]
  ingress             = each.value.ingress
  deletion_protection = false

  labels = {
    app     = "leadpipe"
    service = each.key
  }

  template {
    service_account                  = local.runtime_accounts[each.key].email
    timeout                          = var.services[each.key].timeout
    max_instance_request_concurrency = var.services[each.key].concurrency

    scaling {
      min_instance_count = var.services[each.key].min_instances
      max_instance_count = var.services[each.key].max_instances
    }

    dynamic "volumes" {
      for_each = each.value.sources ? [var.sources_secret] : []
      content {
        name = "sources"
        secret {
          secret = google_secret_manager_secret.secrets[volumes.value].secret_id
          items {
            version = "latest"
            path    = basename(var.ingest_sources_file)
          }
        }
      }
    }

    containers {
      name  = each.key
      image = local.images[each.key]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.services[each.key].cpu
          memory = var.services[each.key].memory
        }
        cpu_idle          = var.services[each.key].cpu_idle
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = each.value.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = each.value.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.secrets[env.value].secret_id
              version = "latest"
            }
          }
        }
      }

      dynamic "volume_mounts" {
        for_each = each.value.sources ? ["sources"] : []
        content {
          name       = volume_mounts.value
          mount_path = dirname(var.ingest_sources_file)
        }
      }

      # Probes reach the container directly (Cloud Run's frontend reserves paths ending in z
      # for outside callers, not for probes).
      startup_probe {
        period_seconds    = 2
        timeout_seconds   = 1
        failure_threshold = 30
        http_get {
          path = "/healthz"
        }
      }

      liveness_probe {
        period_seconds    = 30
        timeout_seconds   = 5
        failure_threshold = 3
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      client,
      client_version,
      template[0].containers[0].image,
    ]
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.runtime,
    google_project_iam_member.firestore,
    google_secret_manager_secret_iam_member.readers,
  ]
}
