# Least privilege: one task role per service with only the S3 and DynamoDB actions it uses, and
# one execution role (ECS itself: pull images, write logs, read exactly the secrets injected).

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:*"]
    }
  }
}

# ---- execution role (ECS agent) ----------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${local.prefix}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullImages"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [for r in aws_ecr_repository.service : r.arn]
  }
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.service : "${g.arn}:*"]
  }
  statement {
    sid     = "ReadInjectedSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.database_url.arn,
      aws_secretsmanager_secret.token_key.arn,
      aws_secretsmanager_secret.media_key.arn,
      aws_secretsmanager_secret.temporal_api_key.arn,
      aws_secretsmanager_secret.integrations.arn,
    ]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---- task roles (the processes) ----------------------------------------------------------------

locals {
  dynamodb_arns = [
    aws_dynamodb_table.records.arn,
    "${aws_dynamodb_table.records.arn}/index/*",
  ]
  dynamodb_read  = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"]
  dynamodb_write = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems"]
}

resource "aws_iam_role" "api" {
  name               = "${local.prefix}-api"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# The API lists and presigns (GET for playback, PUT for uploads), answers s3-status (HEAD), and
# starts restores of archived recordings; it never deletes blobs.
data "aws_iam_policy_document" "api" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.recordings.arn, aws_s3_bucket.artifacts.arn]
  }
  statement {
    sid       = "ReadWriteObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${aws_s3_bucket.recordings.arn}/*", "${aws_s3_bucket.artifacts.arn}/*"]
  }
  statement {
    sid       = "RestoreRecordings"
    actions   = ["s3:RestoreObject"]
    resources = ["${aws_s3_bucket.recordings.arn}/*"]
  }
  statement {
    sid       = "Records"
    actions   = concat(local.dynamodb_read, local.dynamodb_write)
    resources = local.dynamodb_arns
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "api"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

resource "aws_iam_role" "worker_cpu" {
  name               = "${local.prefix}-worker-cpu"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# CPU workers ingest, analyse, render (multipart uploads), archive (tagging) and restore
# recordings, and clean up artifacts they replace.
data "aws_iam_policy_document" "worker_cpu" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.recordings.arn, aws_s3_bucket.artifacts.arn]
  }
  statement {
    sid = "ReadWriteObjects"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
      "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
      "s3:GetObjectTagging", "s3:PutObjectTagging",
    ]
    resources = ["${aws_s3_bucket.recordings.arn}/*", "${aws_s3_bucket.artifacts.arn}/*"]
  }
  statement {
    sid       = "ArchiveAndRestoreRecordings"
    actions   = ["s3:RestoreObject"]
    resources = ["${aws_s3_bucket.recordings.arn}/*"]
  }
  statement {
    sid       = "Records"
    actions   = concat(local.dynamodb_read, local.dynamodb_write)
    resources = local.dynamodb_arns
  }
}

resource "aws_iam_role_policy" "worker_cpu" {
  name   = "worker-cpu"
  role   = aws_iam_role.worker_cpu.id
  policy = data.aws_iam_policy_document.worker_cpu.json
}

resource "aws_iam_role" "worker_gpu" {
  name               = "${local.prefix}-worker-gpu"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# GPU workers read the speech audio the CPU workers extracted (artifacts) and store transcript
# chunks; they never touch raw recordings.
data "aws_iam_policy_document" "worker_gpu" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]
  }
  statement {
    sid       = "ReadWriteArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }
  statement {
    sid       = "Records"
    actions   = concat(local.dynamodb_read, ["dynamodb:PutItem", "dynamodb:UpdateItem"])
    resources = local.dynamodb_arns
  }
}

resource "aws_iam_role_policy" "worker_gpu" {
  name   = "worker-gpu"
  role   = aws_iam_role.worker_gpu.id
  policy = data.aws_iam_policy_document.worker_gpu.json
}

# ---- GPU container instances -----------------------------------------------------------------

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "gpu_instance" {
  name               = "${local.prefix}-gpu-instance"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

# The ECS agent's managed policy (register, poll, report) and SSM for shell access without SSH.
resource "aws_iam_role_policy_attachment" "gpu_instance" {
  for_each = toset([
    "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
    "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
  ])
  role       = aws_iam_role.gpu_instance.name
  policy_arn = each.value
}

resource "aws_iam_instance_profile" "gpu_instance" {
  name = "${local.prefix}-gpu-instance"
  role = aws_iam_role.gpu_instance.name
}
