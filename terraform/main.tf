# AWS infrastructure for a production deployment (sketch; providers cannot be downloaded on the
# development machines, so only `terraform fmt -check` runs here). The application needs:
# Temporal (Cloud or self-hosted), Postgres with pgvector (Aurora), an S3 bucket for recordings
# and artifacts, and compute for the API and the CPU and GPU workers.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-west-2"
}

variable "name" {
  type    = string
  default = "glowing-telegram"
}

provider "aws" {
  region = var.region
}

resource "aws_s3_bucket" "media" {
  bucket_prefix = "${var.name}-media-"
}

resource "aws_s3_bucket_versioning" "media" {
  bucket = aws_s3_bucket.media.id
  versioning_configuration {
    status = "Enabled"
  }
}

output "media_bucket" {
  value = aws_s3_bucket.media.bucket
}
