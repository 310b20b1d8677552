//! What a worker process is made of: configuration from the environment, the store and blob
//! store it uses, and the workflows and activities it registers. The worker binaries and the
//! end-to-end tests build workers with these same functions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gt_store::{BlobStore, LocalDirStore, PgStore};
use gt_types::{CPU_TASK_QUEUE, GPU_TASK_QUEUE};
use gt_workflows::client::TemporalTarget;
use gt_workflows::{ClipReembed, EpisodePublish, StreamIngest};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::{
    EpisodeActivitiesImpl, IngestActivitiesImpl, MediaActivitiesImpl, TaskActivitiesImpl,
    TextActivitiesImpl,
};

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
    /// Summary and embedding models (`GT_OPENAI_*`, `GT_EMBEDDING_MODEL`, `GT_EMBED_MODEL_DIR`).
    pub ai: gt_ai::AiConfig,
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
            ai: gt_ai::AiConfig::from_env(),
        })
    }
}

/// The shared pieces a CPU worker's activities use.
#[derive(Clone)]
pub struct WorkerDeps {
    pub store: Arc<PgStore>,
    pub recordings: Arc<dyn BlobStore>,
    pub artifacts: Arc<dyn BlobStore>,
    pub analysis_threads: usize,
    pub ai: gt_ai::AiConfig,
}

impl WorkerDeps {
    pub async fn connect(config: &WorkerConfig) -> anyhow::Result<Self> {
        let pool = gt_store::pg::connect(&config.database_url, 16).await?;
        gt_store::pg::migrate(&pool).await?;
        Ok(Self {
            store: Arc::new(PgStore::new(pool)),
            recordings: Arc::new(LocalDirStore::new(&config.recordings_dir)),
            artifacts: Arc::new(LocalDirStore::new(&config.artifacts_dir)),
            analysis_threads: config.analysis_threads.max(1),
            ai: config.ai.clone(),
        })
    }
}

/// Every workflow plus the CPU activities, on `task_queue`.
pub fn cpu_worker_options(task_queue: &str, deps: &WorkerDeps) -> anyhow::Result<WorkerOptions> {
    Ok(WorkerOptions::new(task_queue)
        .register_workflow::<StreamIngest>()?
        .register_workflow::<EpisodePublish>()?
        .register_workflow::<ClipReembed>()?
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
        .register_activities(TextActivitiesImpl {
            store: deps.store.clone(),
            embedder: deps.ai.embedder()?,
            chat: deps.ai.chat(),
        })
        .register_activities(EpisodeActivitiesImpl {
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

/// A worker runs at most `slots` activities at once.
fn activity_slots(slots: usize) -> temporalio_sdk::runtime::worker_tuner::WorkerTuner {
    use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
    TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(slots.max(1)))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(10))
        .build()
        .into()
}

/// Configuration of the GPU worker, besides [`WorkerConfig`].
#[derive(Debug, Clone)]
pub struct GpuConfig {
    /// `GT_WHISPER_MODEL`: the ggml model file.
    pub model: PathBuf,
    /// `GT_WHISPER_THREADS`: CPU threads for whisper.cpp (default: the CPU count).
    pub threads: usize,
    /// `GT_TRANSCRIBE_CHUNK_S`: seconds of speech per chunk, the resume granularity (120).
    pub chunk_s: f64,
    /// `GT_WHISPER_LANES`: chunks decoded at once, sharing the threads (default: one per
    /// thread up to 4 on CPUs, 1 with CUDA).
    pub lanes: usize,
}

impl GpuConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            model: env("GT_WHISPER_MODEL")
                .map(PathBuf::from)
                .context("GT_WHISPER_MODEL is not set (path to ggml-base.bin)")?,
            threads: match env("GT_WHISPER_THREADS") {
                Some(v) => v.parse().context("GT_WHISPER_THREADS must be a number")?,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            chunk_s: match env("GT_TRANSCRIBE_CHUNK_S") {
                Some(v) => v
                    .parse()
                    .context("GT_TRANSCRIBE_CHUNK_S must be a number")?,
                None => 120.0,
            },
            lanes: match env("GT_WHISPER_LANES") {
                Some(v) => v.parse().context("GT_WHISPER_LANES must be a number")?,
                None => 0,
            },
        })
    }

    /// Lanes and threads per lane. A GPU runs one lane; CPU cores scale better as one-thread
    /// lanes than as threads of one decode (measured in bench/transcribe).
    pub fn lanes_and_threads(&self) -> (usize, usize) {
        let threads = self.threads.max(1);
        let lanes = match self.lanes {
            0 if cfg!(feature = "cuda") => 1,
            0 => threads.min(4),
            n => n.min(threads),
        };
        (lanes, (threads / lanes).max(1))
    }
}

/// The transcription activity on `task_queue`, one at a time (a GPU, or all CPU cores, is busy
/// with one clip). The model loads on the first transcription and stays loaded.
#[cfg(feature = "whisper")]
pub fn gpu_worker_options(
    task_queue: &str,
    deps: &WorkerDeps,
    gpu: &GpuConfig,
) -> anyhow::Result<WorkerOptions> {
    if let Err(e) = crate::transcribe::check_model_file(&gpu.model) {
        // Not fatal: each transcription will fail with this message until the file is fixed.
        tracing::error!("{e}");
    }
    let (lanes, threads_per_lane) = gpu.lanes_and_threads();
    Ok(WorkerOptions::new(task_queue)
        .tuner(activity_slots(1))
        .register_activities(crate::gpu::GpuActivitiesImpl {
            store: deps.store.clone(),
            artifacts: deps.artifacts.clone(),
            transcriber: Arc::new(crate::transcribe::Transcriber::new(gpu.model.clone())),
            chunk_s: gpu.chunk_s,
            lanes,
            threads_per_lane,
        })
        .build())
}
