# GPU workers: an Auto Scaling group of ECS GPU-optimized instances behind a capacity provider
# (managed scaling starts instances when GPU tasks are pending and can scale to zero).

data "aws_ssm_parameter" "ecs_gpu_ami" {
  name = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
}

resource "aws_launch_template" "gpu" {
  name_prefix            = "${local.prefix}-gpu-"
  image_id               = data.aws_ssm_parameter.ecs_gpu_ami.value
  instance_type          = var.gpu_instance_type
  vpc_security_group_ids = [aws_security_group.gpu_instances.id]

  iam_instance_profile {
    arn = aws_iam_instance_profile.gpu_instance.arn
  }

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 100
      volume_type = "gp3"
      encrypted   = true
    }
  }

  user_data = base64encode(<<-EOT
    #!/bin/bash
    cat >> /etc/ecs/ecs.config <<EOF
    ECS_CLUSTER=${aws_ecs_cluster.main.name}
    ECS_ENABLE_GPU_SUPPORT=true
    ECS_ENABLE_TASK_IAM_ROLE=true
    ECS_CONTAINER_STOP_TIMEOUT=60s
    EOF
  EOT
  )
}

resource "aws_autoscaling_group" "gpu" {
  name_prefix           = "${local.prefix}-gpu-"
  min_size              = var.gpu_min_instances
  max_size              = var.gpu_max_instances
  vpc_zone_identifier   = var.private_subnet_ids
  protect_from_scale_in = true

  launch_template {
    id      = aws_launch_template.gpu.id
    version = "$Latest"
  }

  # Managed by the capacity provider's scaling.
  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_ecs_capacity_provider" "gpu" {
  name = "${local.prefix}-gpu"

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.gpu.arn
    managed_termination_protection = "ENABLED"

    managed_scaling {
      status          = "ENABLED"
      target_capacity = 100
    }
  }
}

resource "aws_ecs_task_definition" "worker_gpu" {
  family                   = "${local.prefix}-worker-gpu"
  requires_compatibilities = ["EC2"]
  network_mode             = "awsvpc"
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker_gpu.arn

  container_definitions = jsonencode([merge(local.containers["worker-gpu"], {
    memoryReservation    = var.worker_gpu_memory
    resourceRequirements = [{ type = "GPU", value = "1" }]
  })])
}

resource "aws_ecs_service" "worker_gpu" {
  name            = "worker-gpu"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.worker_gpu.arn
  desired_count   = var.worker_gpu_desired_count

  capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.gpu.name
    weight            = 1
  }

  network_configuration {
    subnets         = var.private_subnet_ids
    security_groups = [aws_security_group.workers.id]
  }

  # One GPU task per instance: spread over instances, never binpack two onto one GPU.
  ordered_placement_strategy {
    type  = "spread"
    field = "instanceId"
  }

  depends_on = [aws_ecs_cluster_capacity_providers.main]
}
