# Exact provider versions: a plan made today and one made next year use the same code. Update
# them deliberately (terraform init -upgrade, read the changelogs, commit .terraform.lock.hcl).
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "= 3.7.2"
    }
    temporalcloud = {
      source  = "temporalio/temporalcloud"
      version = "= 1.1.2"
    }
  }
}
