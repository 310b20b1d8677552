# One table for the /records resources (crate gt-records-dynamo, single-table design: the
# partition key `PK` = USER#{owner}#{resource}, the sort key `SK` = the record id, so one user's
# data never mixes with another's). Related lists read sparse indexes `by_{field}` keyed on
# `REF_{field}` = USER#{owner}#{resource}#{value}. Used when GT_RECORD_BACKEND=dynamodb; vector
# search stays in Postgres (pgvector) either way.
resource "aws_dynamodb_table" "records" {
  name         = local.dynamodb_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "PK"
  range_key    = "SK"

  attribute {
    name = "PK"
    type = "S"
  }
  attribute {
    name = "SK"
    type = "S"
  }

  dynamic "attribute" {
    for_each = local.dynamodb_reference_fields
    content {
      name = "REF_${attribute.value}"
      type = "S"
    }
  }

  # Related lists (a stream's clips, a series' streams, a record's tasks, ...): the fields of
  # gt_records_dynamo::INDEXED_REFERENCES.
  dynamic "global_secondary_index" {
    for_each = local.dynamodb_reference_fields
    content {
      name            = "by_${global_secondary_index.value}"
      hash_key        = "REF_${global_secondary_index.value}"
      range_key       = "SK"
      projection_type = "ALL"
    }
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
