//! `worker-gpu`: polls `gt-gpu` for transcription work. Configuration: `WorkerConfig` plus
//! `GpuConfig` (`GT_WHISPER_MODEL`, `GT_WHISPER_THREADS`, `GT_TRANSCRIBE_CHUNK_S`,
//! `GT_WHISPER_LANES`).

use gt_transcribe::worker::{GpuConfig, gpu_worker_options};
use gt_worker_kit::{WorkerConfig, WorkerDeps, build_worker, init_tracing, run_until_signalled};
use temporalio_sdk::Runtime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let config = WorkerConfig::from_env()?;
    let gpu = GpuConfig::from_env()?;
    let deps = WorkerDeps::connect(&config).await?;
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let options = gpu_worker_options(&config.gpu_task_queue, &deps, &gpu)?;
    let worker = build_worker(&runtime, &config.temporal, options).await?;
    tracing::info!(task_queue = %config.gpu_task_queue, "worker-gpu polling");
    run_until_signalled(worker).await
}
