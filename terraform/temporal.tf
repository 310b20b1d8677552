# Temporal Cloud: one namespace in the same AWS region, reached with an API key that belongs to
# a service account allowed to write to that namespace only.

resource "temporalcloud_namespace" "main" {
  name           = local.temporal_namespace
  regions        = ["aws-${var.region}"]
  api_key_auth   = true
  retention_days = var.temporal_retention_days
}

resource "temporalcloud_service_account" "services" {
  name           = "${local.prefix}-services"
  account_access = "Read"
  namespace_accesses = [
    {
      namespace_id = temporalcloud_namespace.main.id
      permission   = "Write"
    },
  ]
}

resource "temporalcloud_apikey" "services" {
  display_name = "${local.prefix}-services"
  owner_type   = "service-account"
  owner_id     = temporalcloud_service_account.services.id
  expiry_time  = var.temporal_api_key_expiry
}
