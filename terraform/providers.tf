provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project     = "glowing-telegram"
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}

# Authenticates with a Temporal Cloud API key (TEMPORAL_CLOUD_API_KEY in the environment when
# var.temporal_cloud_api_key is null).
provider "temporalcloud" {
  api_key = var.temporal_cloud_api_key
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
