# Security groups: the load balancer takes HTTPS from the allowed ranges, the API takes traffic
# from the load balancer only, the workers take nothing, and Postgres takes 5432 from the API
# and the workers only. Everything may reach out (Temporal Cloud, S3, OpenAI, YouTube, Twitch).

resource "aws_security_group" "alb" {
  name        = "${local.prefix}-alb"
  description = "API load balancer"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.allowed_ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "to the API tasks"
  referenced_security_group_id = aws_security_group.api.id
  ip_protocol                  = "tcp"
  from_port                    = 3030
  to_port                      = 3030
}

resource "aws_security_group" "api" {
  name        = "${local.prefix}-api"
  description = "API tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "from the load balancer"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = 3030
  to_port                      = 3030
}

resource "aws_security_group" "workers" {
  name        = "${local.prefix}-workers"
  description = "CPU and GPU worker tasks (no inbound traffic)"
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "gpu_instances" {
  name        = "${local.prefix}-gpu-instances"
  description = "ECS container instances with GPUs (no inbound traffic)"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "all_out" {
  for_each = {
    api           = aws_security_group.api.id
    workers       = aws_security_group.workers.id
    gpu_instances = aws_security_group.gpu_instances.id
  }
  security_group_id = each.value
  description       = "outbound (Temporal Cloud, AWS APIs, integrations)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_security_group" "db" {
  name        = "${local.prefix}-db"
  description = "Postgres"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_services" {
  for_each = {
    api     = aws_security_group.api.id
    workers = aws_security_group.workers.id
  }
  security_group_id            = aws_security_group.db.id
  description                  = "Postgres from ${each.key}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}
