# Inputs. Only the network (vpc_id and subnets), the TLS certificate and the image tag have no
# default; everything else is sized for one streamer's archive and can be raised.

# ---- general --------------------------------------------------------------------------------

variable "region" {
  description = "AWS region for every resource (Temporal Cloud's namespace goes in the same region, prefixed aws-)."
  type        = string
  default     = "us-west-2"
}

variable "name" {
  description = "Prefix of every resource name (lower case letters, digits and hyphens)."
  type        = string
  default     = "glowing-telegram"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment label (prod, staging, ...): tagged on every resource and part of the Temporal namespace name."
  type        = string
  default     = "prod"
}

variable "tags" {
  description = "Extra tags for every AWS resource."
  type        = map(string)
  default     = {}
}

# ---- network (an existing VPC) ---------------------------------------------------------------

variable "vpc_id" {
  description = "VPC the load balancer, the tasks, the GPU instances and the database run in."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets for the internet-facing load balancer (at least two availability zones)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets with a NAT route for the tasks, the GPU instances and the database (at least two availability zones)."
  type        = list(string)
}

variable "allowed_ingress_cidrs" {
  description = "Client address ranges allowed to reach the API's load balancer on 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ACM certificate for the API's HTTPS listener (covers api_domain)."
  type        = string
}

variable "api_domain" {
  description = "Public host name of the API and web UI (e.g. gt.example.com); the Cognito callback and the CORS origin derive from it."
  type        = string
}

# ---- storage ---------------------------------------------------------------------------------

variable "recordings_archive_storage_class" {
  description = "Storage class raw recordings move to once their episodes are published (objects tagged gt-archive=true): GLACIER (restore in hours), DEEP_ARCHIVE (cheapest, restore in up to 12 h) or GLACIER_IR (instant, dearer)."
  type        = string
  default     = "GLACIER"

  validation {
    condition     = contains(["GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"], var.recordings_archive_storage_class)
    error_message = "recordings_archive_storage_class must be GLACIER, DEEP_ARCHIVE or GLACIER_IR."
  }
}

variable "recordings_archive_after_days" {
  description = "Days after tagging (lifecycle days count from object creation) before a tagged recording is archived; 0 archives at the next lifecycle run."
  type        = number
  default     = 0
}

variable "artifacts_temp_expiry_days" {
  description = "Days after which objects under the artifacts bucket's tmp/ prefix (partial renders, multipart scratch) are deleted."
  type        = number
  default     = 7
}

variable "noncurrent_version_expiry_days" {
  description = "Days a replaced or deleted object version is kept (both buckets are versioned)."
  type        = number
  default     = 30
}

variable "dynamodb_table_name" {
  description = "Name of the DynamoDB table for records, pipeline state and tasks (GT_DYNAMODB_TABLE); null = \"<name>-<environment>-records\"."
  type        = string
  default     = null
}

# ---- database ----------------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class for Postgres (pgvector's HNSW index wants memory: db.r6g.large or more for large archives)."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage_gb" {
  description = "Initial RDS storage in GiB (grows automatically up to db_max_allocated_storage_gb)."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage_gb" {
  description = "Upper limit for RDS storage autoscaling, in GiB."
  type        = number
  default     = 500
}

variable "db_engine_version" {
  description = "Postgres major version on RDS (pgvector ships with RDS Postgres 15.2 and later)."
  type        = string
  default     = "17"
}

variable "db_multi_az" {
  description = "Run RDS with a standby in a second availability zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window)."
  type        = number
  default     = 14
}

# ---- compute -----------------------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the api, worker-cpu and worker-gpu images in the ECR repositories this module creates (build with ./Dockerfile's targets)."
  type        = string
}

variable "api_desired_count" {
  description = "API tasks behind the load balancer."
  type        = number
  default     = 2
}

variable "api_cpu" {
  description = "Fargate CPU units of one API task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "api_memory" {
  description = "Fargate memory of one API task, MiB (MiniLM query embeddings need about 300 MiB)."
  type        = number
  default     = 2048
}

variable "worker_cpu_min_count" {
  description = "Fewest CPU worker tasks (workflows and CPU activities); at least 1 so that workflows make progress."
  type        = number
  default     = 1
}

variable "worker_cpu_max_count" {
  description = "Most CPU worker tasks when scaled out on CPU load."
  type        = number
  default     = 6
}

variable "worker_cpu_cpu" {
  description = "Fargate CPU units of one CPU worker (decoding, analysis and rendering are CPU bound)."
  type        = number
  default     = 4096
}

variable "worker_cpu_memory" {
  description = "Fargate memory of one CPU worker, MiB."
  type        = number
  default     = 8192
}

variable "worker_cpu_ephemeral_storage_gb" {
  description = "Fargate scratch disk of one CPU worker, GiB (21-200): renders are written here before upload."
  type        = number
  default     = 100
}

variable "gpu_instance_type" {
  description = "EC2 instance type of the GPU capacity (one NVIDIA GPU each: g5.xlarge A10G, g6.xlarge L4, ...)."
  type        = string
  default     = "g6.xlarge"
}

variable "gpu_min_instances" {
  description = "Fewest GPU instances (0 lets the capacity provider scale to zero when no transcription runs)."
  type        = number
  default     = 0
}

variable "gpu_max_instances" {
  description = "Most GPU instances."
  type        = number
  default     = 2
}

variable "worker_gpu_desired_count" {
  description = "GPU worker tasks (one GPU each); the capacity provider starts instances for them."
  type        = number
  default     = 1
}

variable "worker_gpu_memory" {
  description = "Memory reserved for one GPU worker task, MiB (must fit the instance next to the ECS agent)."
  type        = number
  default     = 12288
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the services' logs."
  type        = number
  default     = 30
}

# ---- auth --------------------------------------------------------------------------------------

variable "cognito_domain_prefix" {
  description = "Prefix of the Cognito hosted UI domain (<prefix>.auth.<region>.amazoncognito.com); globally unique."
  type        = string
}

variable "cognito_extra_callback_urls" {
  description = "More OAuth callback URLs for the app client besides https://<api_domain>/ (e.g. the front end's dev server)."
  type        = list(string)
  default     = []
}

# ---- Temporal Cloud ------------------------------------------------------------------------------

variable "temporal_cloud_api_key" {
  description = "Temporal Cloud API key Terraform manages the namespace with; null reads TEMPORAL_CLOUD_API_KEY from the environment."
  type        = string
  default     = null
  sensitive   = true
}

variable "temporal_namespace_name" {
  description = "Temporal Cloud namespace name (2-39 lower-case letters, digits, hyphens); null = \"<name>-<environment>\"."
  type        = string
  default     = null
}

variable "temporal_retention_days" {
  description = "Days Temporal Cloud keeps closed workflow histories."
  type        = number
  default     = 30
}

variable "temporal_api_key_expiry" {
  description = "Expiry (RFC 3339) of the workers' and API's Temporal Cloud API key; rotate before it."
  type        = string
  default     = "2027-12-31T00:00:00Z"
}
