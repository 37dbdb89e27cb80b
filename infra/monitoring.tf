# Alert policies and a dashboard on the metrics the services export (OTEL_EXPORTER=gcp: metric
# types workload.googleapis.com/<name>, PromQL names workload_googleapis_com:<name with dots
# as underscores>, histograms with _bucket/_count/_sum) and on Pub/Sub's own metrics. Every
# leadpipe metric named here is checked against the code's instrument definitions by
# infra/metrics_test.go. Notifications go to var.alert_notification_channels.

locals {
  alert_common = {
    notification_channels = var.alert_notification_channels
    severity              = "WARNING"
  }
}

# 1. DLQ: records have been open for 10 minutes (leads wait for an operator or auto-replay).
resource "google_monitoring_alert_policy" "dlq_open" {
  project               = var.project_id
  display_name          = "leadpipe: DLQ records open"
  combiner              = "OR"
  notification_channels = local.alert_common.notification_channels
  severity              = local.alert_common.severity

  conditions {
    display_name = "leadpipe.dlq.open > 0 for 10 minutes"
    condition_threshold {
      # Every replayer instance reports the same count: take the max.
      filter          = "metric.type=\"workload.googleapis.com/leadpipe.dlq.open\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "600s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "DLQ records are open. Open the replayer's triage page (${local.service_urls.replayer}/) and replay or discard; retryable and outage records are auto-replayed once the CRM is healthy. New records by source and class: leadpipe.dlq.records."
  }
}

# 2. The oldest unacked message on leads-processor is older than the SLA.
resource "google_monitoring_alert_policy" "leads_backlog_age" {
  project               = var.project_id
  display_name          = "leadpipe: leads older than the SLA"
  combiner              = "OR"
  notification_channels = local.alert_common.notification_channels
  severity              = "ERROR"

  conditions {
    display_name = "oldest unacked message on ${google_pubsub_subscription.processor.name} > ${var.leads_age_sla_seconds}s"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type=\"pubsub_subscription\" AND resource.label.subscription_id=\"${google_pubsub_subscription.processor.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.leads_age_sla_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Leads wait longer than the SLA before the processor acknowledges them: the processor is failing (outcomes by class), the CRM is throttling or down (circuit, 429/5xx alerts), or the processor cannot scale."
  }
}

# 3. Sustained CRM 429 or 5xx answers.
resource "google_monitoring_alert_policy" "crm_errors" {
  project               = var.project_id
  display_name          = "leadpipe: CRM answering 429 or 5xx"
  combiner              = "OR"
  notification_channels = local.alert_common.notification_channels
  severity              = local.alert_common.severity

  conditions {
    display_name = "CRM 429/5xx rate > ${var.crm_error_rate_per_second}/s for 10 minutes"
    condition_prometheus_query_language {
      query               = "sum by (crm) (rate(workload_googleapis_com:leadpipe_crm_request_duration_count{status_code=~\"429|5..\"}[5m])) > ${var.crm_error_rate_per_second}"
      duration            = "600s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The CRM throttles (429: lower CRM_RATE_PER_SEC or raise the CRM's quota) or fails (5xx). Events are retried with backoff; persistent failures end in the DLQ."
  }
}

# 4. A CRM circuit is open.
resource "google_monitoring_alert_policy" "crm_circuit_open" {
  project               = var.project_id
  display_name          = "leadpipe: CRM circuit open"
  combiner              = "OR"
  notification_channels = local.alert_common.notification_channels
  severity              = "ERROR"

  conditions {
    display_name = "leadpipe.crm.breaker.state = 2 (open) for 5 minutes"
    condition_threshold {
      filter          = "metric.type=\"workload.googleapis.com/leadpipe.crm.breaker.state\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1.5
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["metric.label.crm"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The processor stopped calling this CRM after repeated retryable failures. Events wait (not charged attempts); auto-replay follows the recovery."
  }
}

# 4b. Leads parked for long. A parked lead is acked, so the unacked-age alert (2) no longer sees
# it; the circuit alert (4) covers an outage, this one a drain that does not progress.
resource "google_monitoring_alert_policy" "leads_parked" {
  project               = var.project_id
  display_name          = "leadpipe: leads parked"
  combiner              = "OR"
  notification_channels = local.alert_common.notification_channels
  severity              = "WARNING"

  conditions {
    display_name = "leadpipe.events.parked > 0 for ${var.parked_alert_minutes} minutes"
    condition_threshold {
      filter          = "metric.type=\"workload.googleapis.com/leadpipe.events.parked\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "${var.parked_alert_minutes * 60}s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Leads have been parked behind an open CRM circuit this long: the CRM is still down, or the processor's drain is not running (it needs an instance with CPU: processor min_instances >= 1, cpu_idle = false). The triage page lists them."
  }
}

# 5. A source's intake fell to zero while it usually sends.
resource "google_monitoring_alert_policy" "intake_stopped" {
  project               = var.project_id
  display_name          = "leadpipe: a source stopped sending"
  combiner              = "OR"
  notification_channels = local.alert_common.notification_channels
  severity              = local.alert_common.severity

  conditions {
    display_name = "no accepted deliveries for ${var.intake_silence_window} from a source that averaged > ${var.intake_usual_rate_per_hour}/h the day before"
    condition_prometheus_query_language {
      query               = "(sum by (source) (increase(workload_googleapis_com:leadpipe_ingest_deliveries{status=\"accepted\"}[${var.intake_silence_window}])) == 0) and on (source) (sum by (source) (increase(workload_googleapis_com:leadpipe_ingest_deliveries{status=\"accepted\"}[1d] offset 1d)) > ${var.intake_usual_rate_per_hour * 24})"
      duration            = "0s"
      evaluation_interval = "300s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A sender stopped delivering, or its deliveries are rejected (check leadpipe.ingest.deliveries by status: rejected_401 means its signing secret changed)."
  }
}

# 6. The outbox backlog grows: persisted events are not being published.
resource "google_monitoring_alert_policy" "outbox_backlog" {
  project               = var.project_id
  display_name          = "leadpipe: outbox backlog growing"
  combiner              = "OR"
  notification_channels = local.alert_common.notification_channels
  severity              = "ERROR"

  conditions {
    display_name = "p99 age of due outbox entries > ${var.outbox_age_threshold_seconds}s"
    condition_prometheus_query_language {
      query               = "histogram_quantile(0.99, sum by (le) (rate(workload_googleapis_com:leadpipe_ingest_outbox_age_bucket[15m]))) > ${var.outbox_age_threshold_seconds}"
      duration            = "600s"
      evaluation_interval = "60s"
    }
  }

  conditions {
    display_name = "publishes failing for 10 minutes"
    condition_threshold {
      filter          = "metric.type=\"workload.googleapis.com/leadpipe.ingest.publish_failures\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "600s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.topic"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Leads are stored but not published to Pub/Sub: the sweep (Cloud Scheduler, every minute) keeps retrying. Check ingest's publish errors and the topics' IAM."
  }
}

resource "google_monitoring_dashboard" "pipeline" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "leadpipe"
    mosaicLayout = {
      columns = 12
      tiles = [for i, w in [
        { title = "Deliveries by source and status (/s)", query = "sum by (source, status) (rate(workload_googleapis_com:leadpipe_ingest_deliveries[5m]))" },
        { title = "Ingest p99 latency (ms)", query = "histogram_quantile(0.99, sum by (le, source) (rate(workload_googleapis_com:leadpipe_ingest_latency_bucket[5m])))" },
        { title = "Processor outcomes (/s)", query = "sum by (outcome, failure_class) (rate(workload_googleapis_com:leadpipe_processor_outcomes[5m]))" },
        { title = "CRM requests by status (/s)", query = "sum by (crm, status_code) (rate(workload_googleapis_com:leadpipe_crm_request_duration_count[5m]))" },
        { title = "CRM 429s (/s)", query = "sum by (crm) (rate(workload_googleapis_com:leadpipe_crm_rate_limited[5m]))" },
        { title = "CRM circuit (0 closed, 1 half-open, 2 open)", query = "max by (crm) (workload_googleapis_com:leadpipe_crm_breaker_state)" },
        { title = "DLQ records open", query = "max(workload_googleapis_com:leadpipe_dlq_open)" },
        { title = "DLQ records opened (per hour)", query = "sum by (failure_class) (increase(workload_googleapis_com:leadpipe_dlq_records[1h]))" },
        { title = "Replays (/s)", query = "sum by (actor_kind, outcome) (rate(workload_googleapis_com:leadpipe_replays[5m]))" },
        { title = "Outbox p99 age (s)", query = "histogram_quantile(0.99, sum by (le) (rate(workload_googleapis_com:leadpipe_ingest_outbox_age_bucket[15m])))" },
        { title = "Publish failures (/s)", query = "sum by (topic) (rate(workload_googleapis_com:leadpipe_ingest_publish_failures[5m]))" },
        { title = "Oldest unacked lead (s)", query = "max(pubsub_googleapis_com:subscription_oldest_unacked_message_age{subscription_id=\"${google_pubsub_subscription.processor.name}\"})" },
        { title = "Redelivery p90 (delivery attempt)", query = "histogram_quantile(0.9, sum by (le) (rate(workload_googleapis_com:leadpipe_processor_delivery_attempt_bucket[15m])))" },
        ] : {
        xPos   = (i % 3) * 4
        yPos   = floor(i / 3) * 4
        width  = 4
        height = 4
        widget = {
          title = w.title
          xyChart = {
            dataSets = [{
              plotType        = "LINE"
              timeSeriesQuery = { prometheusQuery = w.query }
            }]
          }
        }
      }]
    }
  })
}
