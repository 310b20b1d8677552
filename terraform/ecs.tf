# ECS: the API and the CPU workers on Fargate, the GPU workers on EC2 GPU instances (gpu.tf).

resource "aws_ecs_cluster" "main" {
  name = local.prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT", aws_ecs_capacity_provider.gpu.name]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "service" {
  for_each          = toset(["api", "worker-cpu", "worker-gpu"])
  name              = "/ecs/${local.prefix}/${each.key}"
  retention_in_days = var.log_retention_days
}

locals {
  # ECS wants lists of {name, value} and {name, valueFrom}.
  container_env = {
    api = merge(local.common_environment, local.integration_environment, {
      GT_API_ADDR        = "0.0.0.0:3030"
      GT_JWKS_URL        = "https://cognito-idp.${var.region}.amazonaws.com/${aws_cognito_user_pool.main.id}/.well-known/jwks.json"
      GT_JWT_ISSUER      = "https://cognito-idp.${var.region}.amazonaws.com/${aws_cognito_user_pool.main.id}"
      GT_JWT_AUDIENCE    = aws_cognito_user_pool_client.web.id
      GT_CORS_ORIGINS    = local.api_url
      GT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
    })
    worker-cpu = merge(local.common_environment, local.integration_environment, {
      GT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
    })
    worker-gpu = local.common_environment
  }
  container_secrets = {
    api = merge(local.common_secrets, local.integration_secrets, {
      GT_TOKEN_KEY = aws_secretsmanager_secret.token_key.arn
      GT_MEDIA_KEY = aws_secretsmanager_secret.media_key.arn
    })
    worker-cpu = merge(local.common_secrets, local.integration_secrets, {
      GT_TOKEN_KEY = aws_secretsmanager_secret.token_key.arn
    })
    worker-gpu = local.common_secrets
  }
  containers = {
    for svc in ["api", "worker-cpu", "worker-gpu"] : svc => {
      name      = svc
      image     = "${aws_ecr_repository.service[svc].repository_url}:${var.image_tag}"
      essential = true
      # Workers drain running activities on SIGTERM for GT_SHUTDOWN_GRACE_SECS (110 s) before
      # exiting; 120 s is the most ECS allows before SIGKILL.
      stopTimeout = 120
      environment = [for k, v in local.container_env[svc] : { name = k, value = tostring(v) }]
      secrets     = [for k, v in local.container_secrets[svc] : { name = k, valueFrom = v }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.service[svc].name
          awslogs-region        = var.region
          awslogs-stream-prefix = svc
        }
      }
    }
  }
}

# ---- API ------------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "api" {
  family                   = "${local.prefix}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.api_cpu
  memory                   = var.api_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.api.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([merge(local.containers["api"], {
    portMappings = [{ containerPort = 3030, protocol = "tcp" }]
    healthCheck = {
      command     = ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3030/healthz"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
  })])
}

resource "aws_lb" "api" {
  name                       = substr("${local.prefix}-api", 0, 32)
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  # Long uploads and HLS segment requests.
  idle_timeout = 120
}

resource "aws_lb_target_group" "api" {
  name        = substr("${local.prefix}-api", 0, 32)
  port        = 3030
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  # /readyz: Postgres and Temporal answer, so a task that lost them stops getting traffic.
  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  deregistration_delay = 30
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

resource "aws_ecs_service" "api" {
  name                              = "api"
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.api.arn
  desired_count                     = var.api_desired_count
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = 90

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.api.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = 3030
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.https]
}

# ---- CPU workers ------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "worker_cpu" {
  family                   = "${local.prefix}-worker-cpu"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu_cpu
  memory                   = var.worker_cpu_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker_cpu.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = var.worker_cpu_ephemeral_storage_gb
  }

  container_definitions = jsonencode([local.containers["worker-cpu"]])
}

resource "aws_ecs_service" "worker_cpu" {
  name            = "worker-cpu"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.worker_cpu.arn
  desired_count   = var.worker_cpu_min_count
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.workers.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The autoscaler owns the count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }
}

resource "aws_appautoscaling_target" "worker_cpu" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.worker_cpu.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker_cpu_min_count
  max_capacity       = var.worker_cpu_max_count
}

# Busy workers are CPU bound (decode, analysis, render): scale on average CPU.
resource "aws_appautoscaling_policy" "worker_cpu" {
  name               = "${local.prefix}-worker-cpu-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker_cpu.service_namespace
  resource_id        = aws_appautoscaling_target.worker_cpu.resource_id
  scalable_dimension = aws_appautoscaling_target.worker_cpu.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = 70
    scale_in_cooldown  = 600
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
