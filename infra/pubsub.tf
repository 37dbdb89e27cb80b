# Topics and subscriptions. This is the production twin of devstack/provision/provision.go: keep
# names, ack deadlines, retry and dead-letter policies identical in both places.

resource "google_pubsub_topic" "leads" {
  project                    = var.project_id
  name                       = var.leads_topic
  message_retention_duration = var.message_retention

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dlq" {
  project                    = var.project_id
  name                       = var.dlq_topic
  message_retention_duration = var.message_retention

  depends_on = [google_project_service.apis]
}

# leads -> processor. Ordering by contact key, 60 s ack deadline (the push request timeout),
# backoff 2 s..60 s between redeliveries, dead-lettered to leads-dlq after 10 deliveries.
resource "google_pubsub_subscription" "processor" {
  project = var.project_id
  name    = "leads-processor"
  topic   = google_pubsub_topic.leads.id

  ack_deadline_seconds       = 60
  enable_message_ordering    = true
  message_retention_duration = var.message_retention

  retry_policy {
    minimum_backoff = "2s"
    maximum_backoff = "60s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dlq.id
    max_delivery_attempts = 10
  }

  push_config {
    push_endpoint = "${local.service_urls.processor}/pubsub/push"
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.service_urls.processor
    }
  }

  # Never expire for inactivity: a quiet week must not delete the pipeline.
  expiration_policy {
    ttl = ""
  }
}

# leads-dlq -> replayer. One DLQ record per event; slow backoff (10 s..600 s) because a failing
# replayer should not hammer Firestore, and there is no further dead-lettering: messages stay
# in the subscription (up to message_retention) until the replayer stores them.
resource "google_pubsub_subscription" "replayer" {
  project = var.project_id
  name    = "leads-dlq-replayer"
  topic   = google_pubsub_topic.dlq.id

  ack_deadline_seconds       = 30
  message_retention_duration = var.message_retention

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  push_config {
    push_endpoint = "${local.service_urls.replayer}/pubsub/dlq"
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.service_urls.replayer
    }
  }

  expiration_policy {
    ttl = ""
  }
}
