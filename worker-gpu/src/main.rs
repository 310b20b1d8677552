//! `worker-gpu`: polls `gt-gpu` for transcription work. Configuration: `GT_WHISPER_MODEL`,
//! `GT_GPU_TASK_QUEUE` and Temporal's standard variables.

use gt_activities::worker::{
    WorkerConfig, build_worker, gpu_worker_options, init_tracing, run_until_signalled,
    whisper_model_from_env,
};
use temporalio_sdk::Runtime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let config = WorkerConfig::from_env()?;
    let model = whisper_model_from_env()?;
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let options = gpu_worker_options(&config.gpu_task_queue, model)?;
    let worker = build_worker(&runtime, &config.temporal, options).await?;
    tracing::info!(task_queue = %config.gpu_task_queue, "worker-gpu polling");
    run_until_signalled(worker).await
}
