//! What a worker process is made of: configuration from the environment, the store and blob
//! store it uses, and the workflows and activities it registers. The worker binaries and the
//! end-to-end tests build workers with these same functions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gt_store::{BlobStore, LocalDirStore, PgStore};
use gt_types::{CPU_TASK_QUEUE, GPU_TASK_QUEUE};
use gt_workflows::StreamIngest;
use gt_workflows::client::TemporalTarget;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::{IngestActivitiesImpl, MediaActivitiesImpl, TaskActivitiesImpl};

/// Worker configuration, one struct, from `GT_*` variables plus Temporal's standard ones.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `GT_RECORDINGS_DIR`: root of the local recordings blob store.
    pub recordings_dir: PathBuf,
    /// `GT_ARTIFACTS_DIR`: root of the blob store for derived files (speech audio, previews).
    pub artifacts_dir: PathBuf,
    /// `GT_ANALYSIS_THREADS`: parallel decode chunks per file (default: the CPU count).
    pub analysis_threads: usize,
    /// `GT_CPU_TASK_QUEUE` (default `gt-cpu`).
    pub cpu_task_queue: String,
    /// `GT_GPU_TASK_QUEUE` (default `gt-gpu`).
    pub gpu_task_queue: String,
    /// `TEMPORAL_ADDRESS` / `TEMPORAL_NAMESPACE` and friends.
    pub temporal: TemporalTarget,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl WorkerConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            database_url: env("DATABASE_URL").context("DATABASE_URL is not set")?,
            recordings_dir: env("GT_RECORDINGS_DIR")
                .map(PathBuf::from)
                .context("GT_RECORDINGS_DIR is not set")?,
            artifacts_dir: env("GT_ARTIFACTS_DIR")
                .map(PathBuf::from)
                .context("GT_ARTIFACTS_DIR is not set")?,
            analysis_threads: match env("GT_ANALYSIS_THREADS") {
                Some(v) => v.parse().context("GT_ANALYSIS_THREADS must be a number")?,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            cpu_task_queue: env("GT_CPU_TASK_QUEUE").unwrap_or_else(|| CPU_TASK_QUEUE.into()),
            gpu_task_queue: env("GT_GPU_TASK_QUEUE").unwrap_or_else(|| GPU_TASK_QUEUE.into()),
            // Temporal's own variables are read by the SDK's env config.
            temporal: TemporalTarget::default(),
        })
    }
}

/// The shared pieces a CPU worker's activities use.
#[derive(Clone)]
pub struct CpuDeps {
    pub store: Arc<PgStore>,
    pub recordings: Arc<dyn BlobStore>,
    pub artifacts: Arc<dyn BlobStore>,
    pub analysis_threads: usize,
}

impl CpuDeps {
    pub async fn connect(config: &WorkerConfig) -> anyhow::Result<Self> {
        let pool = gt_store::pg::connect(&config.database_url, 16).await?;
        gt_store::pg::migrate(&pool).await?;
        Ok(Self {
            store: Arc::new(PgStore::new(pool)),
            recordings: Arc::new(LocalDirStore::new(&config.recordings_dir)),
            artifacts: Arc::new(LocalDirStore::new(&config.artifacts_dir)),
            analysis_threads: config.analysis_threads.max(1),
        })
    }
}

/// Every workflow plus the CPU activities, on `task_queue`.
pub fn cpu_worker_options(task_queue: &str, deps: &CpuDeps) -> anyhow::Result<WorkerOptions> {
    Ok(WorkerOptions::new(task_queue)
        .register_workflow::<StreamIngest>()?
        .register_activities(IngestActivitiesImpl {
            store: deps.store.clone(),
            recordings: deps.recordings.clone(),
        })
        .register_activities(MediaActivitiesImpl {
            store: deps.store.clone(),
            recordings: deps.recordings.clone(),
            artifacts: deps.artifacts.clone(),
            threads: deps.analysis_threads,
        })
        .register_activities(TaskActivitiesImpl {
            store: deps.store.clone(),
        })
        .build())
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    init_tracing_with_default("info,temporalio_sdk_core=warn");
}

/// Logs to stderr with `default` as the filter unless `RUST_LOG` is set. Idempotent.
pub fn init_tracing_with_default(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `worker` on the current task until SIGINT or SIGTERM, then shuts it down gracefully
/// (running activities finish or are handed back).
pub async fn run_until_signalled(mut worker: Worker) -> anyhow::Result<()> {
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        shutdown();
    });
    worker.run().await?;
    Ok(())
}

/// Connects to Temporal and builds a worker from `options`.
pub async fn build_worker(
    runtime: &Runtime,
    temporal: &TemporalTarget,
    options: WorkerOptions,
) -> anyhow::Result<Worker> {
    let client = gt_workflows::client::connect(temporal, Duration::from_secs(60)).await?;
    Worker::new(runtime, client, options).context("creating the Temporal worker")
}

/// `GT_WHISPER_MODEL`: the ggml Whisper model the GPU worker serves.
pub fn whisper_model_from_env() -> anyhow::Result<PathBuf> {
    env("GT_WHISPER_MODEL")
        .map(PathBuf::from)
        .context("GT_WHISPER_MODEL is not set (path to ggml-base.bin)")
}

/// The GPU activities, on `task_queue`. Fails early if the model file is unusable.
pub fn gpu_worker_options(task_queue: &str, model: PathBuf) -> anyhow::Result<WorkerOptions> {
    crate::gpu::check_model_file(&model).map_err(anyhow::Error::msg)?;
    Ok(WorkerOptions::new(task_queue)
        .register_activities(crate::gpu::GpuActivitiesImpl {
            model_path: model,
            backend: "cpu",
        })
        .build())
}
