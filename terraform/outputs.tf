# What the operator needs after `terraform apply`: where to push images, where the API is, and
# the settings a local tool or a new service needs to join the deployment.

output "api_url" {
  description = "Public URL of the API and web UI (point api_domain's DNS record at load_balancer_dns_name)."
  value       = local.api_url
}

output "load_balancer_dns_name" {
  description = "DNS name of the API's load balancer (CNAME or alias target for api_domain)."
  value       = aws_lb.api.dns_name
}

output "ecr_repository_urls" {
  description = "ECR repository per image (push ./Dockerfile's api, worker-cpu and worker-gpu targets tagged var.image_tag)."
  value       = { for k, r in aws_ecr_repository.service : k => r.repository_url }
}

output "ecs_cluster_name" {
  description = "ECS cluster running the api, worker-cpu and worker-gpu services."
  value       = aws_ecs_cluster.main.name
}

output "recordings_bucket" {
  description = "S3 bucket for raw recordings (GT_S3_BUCKET)."
  value       = aws_s3_bucket.recordings.bucket
}

output "artifacts_bucket" {
  description = "S3 bucket for derived files (GT_S3_ARTIFACTS_BUCKET)."
  value       = aws_s3_bucket.artifacts.bucket
}

output "dynamodb_table" {
  description = "DynamoDB table for records when GT_RECORD_BACKEND=dynamodb (GT_DYNAMODB_TABLE)."
  value       = aws_dynamodb_table.records.name
}

output "dynamodb_stream_arn" {
  description = "The table's stream (task updates fan out from it)."
  value       = aws_dynamodb_table.records.stream_arn
}

output "database_endpoint" {
  description = "Postgres host:port (the full DATABASE_URL is in the database_url secret)."
  value       = aws_db_instance.postgres.endpoint
}

output "cognito_user_pool_id" {
  description = "Cognito user pool (invite users with admin-create-user)."
  value       = aws_cognito_user_pool.main.id
}

output "cognito_client_id" {
  description = "App client id of the web UI (GT_JWT_AUDIENCE)."
  value       = aws_cognito_user_pool_client.web.id
}

output "cognito_issuer" {
  description = "Token issuer (GT_JWT_ISSUER)."
  value       = local.container_env["api"]["GT_JWT_ISSUER"]
}

output "cognito_jwks_url" {
  description = "Signing keys the API verifies tokens with (GT_JWKS_URL)."
  value       = local.container_env["api"]["GT_JWKS_URL"]
}

output "cognito_hosted_ui" {
  description = "Base URL of Cognito's hosted sign-in pages."
  value       = "https://${aws_cognito_user_pool_domain.main.domain}.auth.${var.region}.amazoncognito.com"
}

output "temporal_namespace" {
  description = "Temporal Cloud namespace id (TEMPORAL_NAMESPACE)."
  value       = temporalcloud_namespace.main.id
}

output "temporal_address" {
  description = "Temporal Cloud gRPC endpoint for API-key clients (TEMPORAL_ADDRESS)."
  value       = temporalcloud_namespace.main.endpoints.grpc_address
}

output "secret_arns" {
  description = "Secrets Manager secrets the services read (integrations: fill in the optional OpenAI, YouTube and Twitch keys)."
  value = {
    database_url     = aws_secretsmanager_secret.database_url.arn
    token_key        = aws_secretsmanager_secret.token_key.arn
    media_key        = aws_secretsmanager_secret.media_key.arn
    temporal_api_key = aws_secretsmanager_secret.temporal_api_key.arn
    integrations     = aws_secretsmanager_secret.integrations.arn
  }
}

output "gpu_capacity_provider" {
  description = "ECS capacity provider of the GPU instances."
  value       = aws_ecs_capacity_provider.gpu.name
}
