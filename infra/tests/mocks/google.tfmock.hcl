# Values the mock google provider gives in plan mode for attributes that only the API would
# compute (e-mails of service accounts, topic ids, the project number), shaped as Google's.
# Every tests/*.tftest.hcl uses this directory: mock_provider "google" { source = "./tests/mocks" }.

override_data {
  target = data.google_project.this
  values = {
    number = "123456789012"
  }
}

override_resource {
  target          = google_service_account.ingest
  override_during = plan
  values = {
    email  = "leadpipe-ingest@leadpipe-test.iam.gserviceaccount.com"
    member = "serviceAccount:leadpipe-ingest@leadpipe-test.iam.gserviceaccount.com"
    name   = "projects/leadpipe-test/serviceAccounts/leadpipe-ingest@leadpipe-test.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_service_account.processor
  override_during = plan
  values = {
    email  = "leadpipe-processor@leadpipe-test.iam.gserviceaccount.com"
    member = "serviceAccount:leadpipe-processor@leadpipe-test.iam.gserviceaccount.com"
    name   = "projects/leadpipe-test/serviceAccounts/leadpipe-processor@leadpipe-test.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_service_account.replayer
  override_during = plan
  values = {
    email  = "leadpipe-replayer@leadpipe-test.iam.gserviceaccount.com"
    member = "serviceAccount:leadpipe-replayer@leadpipe-test.iam.gserviceaccount.com"
    name   = "projects/leadpipe-test/serviceAccounts/leadpipe-replayer@leadpipe-test.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_service_account.push
  override_during = plan
  values = {
    email  = "leadpipe-push@leadpipe-test.iam.gserviceaccount.com"
    member = "serviceAccount:leadpipe-push@leadpipe-test.iam.gserviceaccount.com"
    name   = "projects/leadpipe-test/serviceAccounts/leadpipe-push@leadpipe-test.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_service_account.scheduler
  override_during = plan
  values = {
    email  = "leadpipe-scheduler@leadpipe-test.iam.gserviceaccount.com"
    member = "serviceAccount:leadpipe-scheduler@leadpipe-test.iam.gserviceaccount.com"
    name   = "projects/leadpipe-test/serviceAccounts/leadpipe-scheduler@leadpipe-test.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_service_account.build
  override_during = plan
  values = {
    email  = "leadpipe-build@leadpipe-test.iam.gserviceaccount.com"
    member = "serviceAccount:leadpipe-build@leadpipe-test.iam.gserviceaccount.com"
    name   = "projects/leadpipe-test/serviceAccounts/leadpipe-build@leadpipe-test.iam.gserviceaccount.com"
  }
}

override_resource {
  target          = google_pubsub_topic.leads
  override_during = plan
  values = {
    id = "projects/leadpipe-test/topics/leads"
  }
}

override_resource {
  target          = google_pubsub_topic.dlq
  override_during = plan
  values = {
    id = "projects/leadpipe-test/topics/leads-dlq"
  }
}

override_resource {
  target          = google_project_iam_custom_role.ingest_firestore
  override_during = plan
  values = {
    name = "projects/leadpipe-test/roles/leadpipe_ingest_firestore"
  }
}

override_resource {
  target          = google_logging_project_bucket_config.audit
  override_during = plan
  values = {
    id = "projects/leadpipe-test/locations/global/buckets/leadpipe-audit"
  }
}
