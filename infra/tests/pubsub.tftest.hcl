# Pub/Sub invariants: dead-lettering works (the service agent's grants), retry and dead-letter
# policies as designed (the twin of devstack/provision/provision.go), pushes authenticated with
# OIDC tokens of a dedicated account whose audience is the receiving service's URL.
# Each error message starts with "invariant <id>:"; infra/broken_test.go breaks each one.

mock_provider "google" {
  source = "./tests/mocks"
}

variables {
  project_id = "leadpipe-test"
}

run "pubsub" {
  command = plan

  # --- dead-lettering: agent publisher on the dead-letter topic, subscriber on the subscription
  assert {
    condition = alltrue([
      for s in [google_pubsub_subscription.processor, google_pubsub_subscription.replayer] : anytrue([
        for g in google_pubsub_topic_iam_member.grants :
        endswith(s.dead_letter_policy[0].dead_letter_topic, "/topics/${g.topic}") && g.role == "roles/pubsub.publisher" && g.member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
      ]) if length(s.dead_letter_policy) > 0
    ])
    error_message = "invariant dead-letter-publisher: the Pub/Sub service agent must have roles/pubsub.publisher on every dead-letter topic"
  }

  assert {
    condition = alltrue([
      for s in [google_pubsub_subscription.processor, google_pubsub_subscription.replayer] : anytrue([
        for g in google_pubsub_subscription_iam_member.grants :
        g.subscription == s.name && g.role == "roles/pubsub.subscriber" && g.member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
      ]) if length(s.dead_letter_policy) > 0
    ])
    error_message = "invariant dead-letter-subscriber: the Pub/Sub service agent must have roles/pubsub.subscriber on every dead-lettering subscription"
  }

  # --- retry and dead-letter policies as designed
  assert {
    condition = (
      google_pubsub_subscription.processor.topic == google_pubsub_topic.leads.id &&
      google_pubsub_subscription.processor.ack_deadline_seconds == 60 &&
      google_pubsub_subscription.processor.enable_message_ordering == true &&
      google_pubsub_subscription.processor.retry_policy[0].minimum_backoff == "2s" &&
      google_pubsub_subscription.processor.retry_policy[0].maximum_backoff == "60s" &&
      google_pubsub_subscription.processor.dead_letter_policy[0].dead_letter_topic == google_pubsub_topic.dlq.id &&
      google_pubsub_subscription.processor.dead_letter_policy[0].max_delivery_attempts == 10 &&
      google_pubsub_subscription.processor.expiration_policy[0].ttl == ""
    )
    error_message = "invariant processor-policy: leads-processor must be leads -> processor, 60 s ack deadline, ordered, backoff 2s..60s, dead-lettered to leads-dlq after 10 deliveries, never expiring"
  }

  assert {
    condition = (
      google_pubsub_subscription.replayer.topic == google_pubsub_topic.dlq.id &&
      google_pubsub_subscription.replayer.ack_deadline_seconds == 30 &&
      google_pubsub_subscription.replayer.retry_policy[0].minimum_backoff == "10s" &&
      google_pubsub_subscription.replayer.retry_policy[0].maximum_backoff == "600s" &&
      length(google_pubsub_subscription.replayer.dead_letter_policy) == 0 &&
      google_pubsub_subscription.replayer.expiration_policy[0].ttl == ""
    )
    error_message = "invariant replayer-policy: leads-dlq-replayer must be leads-dlq -> replayer, 30 s ack deadline, backoff 10s..600s, no dead-lettering, never expiring"
  }

  assert {
    condition     = google_cloud_run_v2_service.svc["processor"].template[0].timeout == "${google_pubsub_subscription.processor.ack_deadline_seconds}s"
    error_message = "invariant processor-timeout: the processor's request timeout must equal the push ack deadline"
  }

  # --- authenticated push: a dedicated account (not a runtime one) and the service URL as audience
  assert {
    condition = alltrue([
      for pair in [
        [google_pubsub_subscription.processor, "processor", "/pubsub/push"],
        [google_pubsub_subscription.replayer, "replayer", "/pubsub/dlq"],
      ] :
      pair[0].push_config[0].oidc_token[0].service_account_email == google_service_account.push.email &&
      pair[0].push_config[0].oidc_token[0].audience == "https://leadpipe-${pair[1]}-123456789012.europe-west1.run.app" &&
      pair[0].push_config[0].push_endpoint == "https://leadpipe-${pair[1]}-123456789012.europe-west1.run.app${pair[2]}"
    ])
    error_message = "invariant push-oidc: each push subscription must carry an OIDC token of the push service account with the receiving service's URL as audience"
  }

  assert {
    condition = !contains([
      google_service_account.ingest.email, google_service_account.processor.email, google_service_account.replayer.email,
      google_service_account.scheduler.email, google_service_account.build.email,
    ], google_service_account.push.email)
    error_message = "invariant push-oidc: the push identity must be an account of its own"
  }

  assert {
    condition = (
      { for e in google_cloud_run_v2_service.svc["processor"].template[0].containers[0].env : e.name => e.value }["PUSH_AUDIENCE"] == google_pubsub_subscription.processor.push_config[0].oidc_token[0].audience &&
      { for e in google_cloud_run_v2_service.svc["processor"].template[0].containers[0].env : e.name => e.value }["PUSH_SERVICE_ACCOUNT"] == google_service_account.push.email &&
      { for e in google_cloud_run_v2_service.svc["replayer"].template[0].containers[0].env : e.name => e.value }["PUSH_AUDIENCE"] == google_pubsub_subscription.replayer.push_config[0].oidc_token[0].audience &&
      { for e in google_cloud_run_v2_service.svc["replayer"].template[0].containers[0].env : e.name => e.value }["PUSH_SERVICE_ACCOUNTS"] == google_service_account.push.email
    )
    error_message = "invariant push-oidc: the services must verify the audience and account the pushes are sent with (PUSH_AUDIENCE, PUSH_SERVICE_ACCOUNT(S))"
  }
}
