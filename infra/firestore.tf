# Firestore (native mode), two databases: "main" (var.firestore_database) holds events with
# their idempotency records and attempts, the lookup and identity indexes, CRM health and
# sessions; "ops" (var.firestore_ops_database) holds DLQ records, the audit log and replay jobs,
# so that ingest, granted the main database alone (iam.tf), cannot write them. Indexes follow the queries in common/store; fields written
# with monotonically increasing values at high rates are exempt from single-field indexing
# (an index on them is a write hot spot and costs a write each).

resource "google_firestore_database" "main" {
  project     = var.project_id
  name        = var.firestore_database
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"

  # Server client libraries get pessimistic transactions: the claim transaction in the
  # processor relies on reads locking what they read.
  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.apis]
}

resource "google_firestore_database" "ops" {
  project     = var.project_id
  name        = var.firestore_ops_database
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"

  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.apis]
}

locals {
  # Single-field exemptions: collection group => fields. Timestamps set on every write of a
  # high-rate collection, plus events.event (the normalized event map: personal data nobody
  # queries, and many index entries per write).
  index_exemptions = {
    events = [
      "created_at",
      "updated_at",
      "published_at",
      "first_attempt_at",
      "last_attempt_at",
      "lease_expires_at",
      "completed_at",
      "quarantined_at",
      "event",
    ]
    attempts = [
      "started_at",
      "finished_at",
    ]
  }
  exempt_fields = merge([
    for coll, fields in local.index_exemptions : {
      for f in fields : "${coll}.${f}" => { collection = coll, field = f }
    }
  ]...)

  # Equality-filter combinations of ListDLQ (source, failure_class, status), each with the
  # created_at range and order (newest first). Index merging could serve combinations from the
  # single-filter indexes, but the DLQ writes rarely, so exact indexes are cheap.
  dlq_filter_sets = [
    ["source"],
    ["failure_class"],
    ["status"],
    ["source", "failure_class"],
    ["source", "status"],
    ["failure_class", "status"],
    ["source", "failure_class", "status"],
  ]

  # ListAudit: actor, action (equality) and targets (array-contains) with the `at` range and
  # order (newest first).
  audit_filter_sets = [
    ["actor"],
    ["action"],
    ["targets"],
    ["actor", "action"],
    ["actor", "targets"],
    ["action", "targets"],
    ["actor", "action", "targets"],
  ]
}

# events.outbox_due_at: the outbox sweep's `outbox_due_at <= now ORDER BY outbox_due_at` needs
# only the ascending single-field index; the field is removed once an event is published, so
# the index stays small. Descending and array-contains entries are dropped.
resource "google_firestore_field" "events_outbox_due_at" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "events"
  field      = "outbox_due_at"

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
  }
}

# events.event_id stays on the automatic single-field indexes (FindEvent looks it up by
# equality); nothing to declare.

resource "google_firestore_field" "exempt" {
  for_each = local.exempt_fields

  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = each.value.collection
  field      = each.value.field

  # An empty index_config removes every single-field index on the field.
  index_config {}
}

# TTL policies. Firestore deletes a document some time (typically within 24 h) after the
# timestamp in ttl_field. The services must write that field for anything to expire.
resource "google_firestore_field" "ttl" {
  for_each = toset(var.ttl_collections)

  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = each.value
  field      = var.ttl_field

  ttl_config {}

  # An expiry timestamp is never queried.
  index_config {}
}

resource "google_firestore_index" "dlq" {
  for_each = { for s in local.dlq_filter_sets : join("+", s) => s }

  project    = var.project_id
  database   = google_firestore_database.ops.name
  collection = "dlq"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value
      order      = "ASCENDING"
    }
  }

  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

resource "google_firestore_index" "audit" {
  for_each = { for s in local.audit_filter_sets : join("+", s) => s }

  project    = var.project_id
  database   = google_firestore_database.ops.name
  collection = "audit"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path   = fields.value
      order        = fields.value == "targets" ? null : "ASCENDING"
      array_config = fields.value == "targets" ? "CONTAINS" : null
    }
  }

  fields {
    field_path = "at"
    order      = "DESCENDING"
  }
}

# ParkedEvents (the processor's drain): one CRM's parked events, oldest first:
# event.routing.crm == ? AND state == "parked" ORDER BY parked_at, __name__. The `event` map is
# exempt from single-field indexing; that exemption does not reach composite indexes. parked_at
# exists only while an event is parked, so the index stays as small as the backlog.
resource "google_firestore_index" "events_parked" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "events"

  fields {
    field_path = "event.routing.crm"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "parked_at"
    order      = "ASCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }
}
