# Postgres with pgvector. RDS Postgres ships the `vector` extension; the migrations run
# `CREATE EXTENSION IF NOT EXISTS vector` as the master user at the first start of the API or a
# worker, so nothing needs preloading (shared_preload_libraries is not required by pgvector).

resource "aws_db_subnet_group" "main" {
  name       = local.prefix
  subnet_ids = var.private_subnet_ids
}

resource "aws_db_parameter_group" "postgres" {
  name   = "${local.prefix}-pg${var.db_engine_version}"
  family = "postgres${var.db_engine_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # pgvector's HNSW builds use maintenance memory (value in KiB: 1 GiB).
  parameter {
    name  = "maintenance_work_mem"
    value = "1048576"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

resource "random_password" "db" {
  length  = 40
  special = false
}

resource "aws_db_instance" "postgres" {
  identifier                   = local.prefix
  engine                       = "postgres"
  engine_version               = var.db_engine_version
  instance_class               = var.db_instance_class
  allocated_storage            = var.db_allocated_storage_gb
  max_allocated_storage        = var.db_max_allocated_storage_gb
  storage_type                 = "gp3"
  storage_encrypted            = true
  db_name                      = "glowing_telegram"
  username                     = "gt"
  password                     = random_password.db.result
  db_subnet_group_name         = aws_db_subnet_group.main.name
  vpc_security_group_ids       = [aws_security_group.db.id]
  parameter_group_name         = aws_db_parameter_group.postgres.name
  multi_az                     = var.db_multi_az
  publicly_accessible          = false
  backup_retention_period      = var.db_backup_retention_days
  deletion_protection          = true
  skip_final_snapshot          = false
  final_snapshot_identifier    = "${local.prefix}-final"
  auto_minor_version_upgrade   = true
  performance_insights_enabled = true
  copy_tags_to_snapshot        = true
}
