# One table for records, pipeline state and tasks (single-table design: every item's partition
# key starts with the owning user, so one user's data never mixes with another's). Used when
# GT_RECORD_BACKEND=dynamodb; vector search stays in Postgres (pgvector) either way. The key
# names must match the DynamoDB backend's (store crate) once it lands.
resource "aws_dynamodb_table" "records" {
  name         = local.dynamodb_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }

  # Listing by another order (e.g. a user's streams by date, tasks by status).
  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  # Expiring items (finished tasks, chat past its retention) without a sweep.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  # Task updates fan out from the stream in production (DynamoDB Local has no streams).
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = true
}
