locals {
  prefix         = "${var.name}-${var.environment}"
  dynamodb_table = coalesce(var.dynamodb_table_name, "${local.prefix}-records")
  # gt_records_dynamo::INDEXED_REFERENCES: one sparse index each.
  dynamodb_reference_fields = ["stream_id", "series_id", "record_id", "channel_id", "episode_id"]
  temporal_namespace        = coalesce(var.temporal_namespace_name, local.prefix)
  api_url                   = "https://${var.api_domain}"
  account_id                = data.aws_caller_identity.current.account_id
  partition                 = data.aws_partition.current.partition

  # The environment every service shares (README.md's Configuration table). Local directories
  # are still required by the binaries but only hold scratch files: blobs live in S3.
  common_environment = {
    RUST_LOG               = "info,temporalio_sdk_core=warn"
    TEMPORAL_ADDRESS       = temporalcloud_namespace.main.endpoints.grpc_address
    TEMPORAL_NAMESPACE     = temporalcloud_namespace.main.id
    GT_CPU_TASK_QUEUE      = "gt-cpu"
    GT_GPU_TASK_QUEUE      = "gt-gpu"
    GT_RECORDINGS_DIR      = "/tmp/recordings"
    GT_ARTIFACTS_DIR       = "/tmp/artifacts"
    GT_BLOB_BACKEND        = "s3"
    GT_S3_BUCKET           = aws_s3_bucket.recordings.bucket
    GT_S3_ARTIFACTS_BUCKET = aws_s3_bucket.artifacts.bucket
    GT_S3_REGION           = var.region
    GT_RECORD_BACKEND      = "postgres"
    GT_DYNAMODB_TABLE      = aws_dynamodb_table.records.name
    GT_SHUTDOWN_GRACE_SECS = 110
  }

  # Secrets Manager values injected as environment variables (ECS reads them at task start).
  # GT_TOKEN_KEY (OAuth tokens at rest) only goes to the API and the CPU workers, which talk to
  # YouTube and Twitch; the GPU workers never see it.
  common_secrets = {
    DATABASE_URL     = aws_secretsmanager_secret.database_url.arn
    TEMPORAL_API_KEY = aws_secretsmanager_secret.temporal_api_key.arn
  }

  # Where users come back after connecting YouTube or Twitch, and Twitch's webhook (public
  # HTTPS on 443, which the load balancer provides). Read only when the client ids are set.
  integration_environment = {
    GT_YOUTUBE_REDIRECT_URL  = "${local.api_url}/youtube/callback"
    GT_TWITCH_REDIRECT_URL   = "${local.api_url}/twitch/callback"
    GT_EVENTSUB_CALLBACK_URL = "${local.api_url}/eventsub/webhook"
  }

  # Optional integrations: keys of the JSON secret "integrations", empty until an operator fills
  # them in (an empty variable means "not configured" to the binaries).
  integration_keys = [
    "GT_OPENAI_API_KEY",
    "GT_YOUTUBE_CLIENT_ID",
    "GT_YOUTUBE_CLIENT_SECRET",
    "GT_TWITCH_CLIENT_ID",
    "GT_TWITCH_CLIENT_SECRET",
    "GT_EVENTSUB_SECRET",
  ]
  integration_secrets = {
    for k in local.integration_keys : k => "${aws_secretsmanager_secret.integrations.arn}:${k}::"
  }
}
