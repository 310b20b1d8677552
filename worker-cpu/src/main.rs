//! `worker-cpu`: polls `gt-cpu` for workflow tasks and CPU activities (media analysis,
//! summaries, embeddings). Configuration: `WorkerConfig` plus `CpuConfig`.

use gt_activities::worker::{CpuConfig, cpu_worker_options};
use gt_worker_kit::{WorkerConfig, WorkerDeps, build_worker, init_tracing, run_until_signalled};
use temporalio_sdk::Runtime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let config = WorkerConfig::from_env()?;
    let cpu = CpuConfig::from_env()?;
    let deps = WorkerDeps::connect(&config).await?;
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let options = cpu_worker_options(&config.cpu_task_queue, &deps, &cpu)?;
    let worker = build_worker(&runtime, &config.temporal, options).await?;
    tracing::info!(task_queue = %config.cpu_task_queue, "worker-cpu polling");
    // Worker::run is not Send: it runs on the main task.
    run_until_signalled(worker).await
}
