//! What every worker process shares, and nothing heavy: the worker configuration, the store and
//! blob stores it connects to, building and running a Temporal worker, the error helpers every
//! activity uses, and the speech audio's WAV format. The CPU activities (`gt-activities`, with
//! FFmpeg) and the transcription activity (`gt-transcribe`, with whisper.cpp) both build on it,
//! so neither worker binary links the other's native libraries.

pub mod wav;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gt_blob_s3::{BlobLocation, BlobRole};
use gt_records_dynamo::RecordBackend;
use gt_store::{BlobStore, Store, StoreError};
use gt_types::{CPU_TASK_QUEUE, GPU_TASK_QUEUE};
use gt_workflows::client::TemporalTarget;
use gt_workflows::contracts::failure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ApplicationFailure, Runtime, Worker};

/// After a worker is asked to stop (SIGTERM, Ctrl-C) it takes no new activities, and the ones
/// running get this long to finish (`GT_SHUTDOWN_GRACE_SECS`): long enough for a preview
/// encode or a clip's transcription, so a rolling deploy loses no work. Past it they are
/// cancelled (they notice at their next heartbeat and return) and Temporal hands them to
/// another worker, which resumes from their last durable step. Container platforms must allow
/// more before they kill (compose `stop_grace_period`, ECS `stopTimeout`).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(110);

/// `GT_SHUTDOWN_GRACE_SECS`, or [`DEFAULT_SHUTDOWN_GRACE`].
pub fn shutdown_grace_from_env() -> anyhow::Result<Duration> {
    Ok(Duration::from_secs(env_parse(
        "GT_SHUTDOWN_GRACE_SECS",
        DEFAULT_SHUTDOWN_GRACE.as_secs(),
    )?))
}

/// A `GT_*` variable, unset when empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A numeric `GT_*` variable, or `default` when unset.
pub fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match env(name) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a number, got {v:?}")),
        None => Ok(default),
    }
}

/// The CPU count (at least 1).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What every worker connects to, from `GT_*` variables plus Temporal's standard ones.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `GT_RECORD_BACKEND` and `GT_DYNAMODB_*`: where records live (Postgres by default).
    pub records: RecordBackend,
    /// Raw recordings: `GT_RECORDINGS_DIR`, or S3 with `GT_BLOB_BACKEND=s3` and `GT_S3_*`.
    pub recordings: BlobLocation,
    /// Derived files (speech audio, previews, renders): `GT_ARTIFACTS_DIR`, or S3.
    pub artifacts: BlobLocation,
    /// `GT_CPU_TASK_QUEUE` (default `gt-cpu`).
    pub cpu_task_queue: String,
    /// `GT_GPU_TASK_QUEUE` (default `gt-gpu`).
    pub gpu_task_queue: String,
    /// `TEMPORAL_ADDRESS` / `TEMPORAL_NAMESPACE` and friends.
    pub temporal: TemporalTarget,
}

impl WorkerConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            database_url: env("DATABASE_URL").context("DATABASE_URL is not set")?,
            records: RecordBackend::from_env()?,
            recordings: BlobLocation::from_env(
                BlobRole::Recordings,
                env("GT_RECORDINGS_DIR").map(PathBuf::from),
            )?,
            artifacts: BlobLocation::from_env(
                BlobRole::Artifacts,
                env("GT_ARTIFACTS_DIR").map(PathBuf::from),
            )?,
            cpu_task_queue: env("GT_CPU_TASK_QUEUE").unwrap_or_else(|| CPU_TASK_QUEUE.into()),
            gpu_task_queue: env("GT_GPU_TASK_QUEUE").unwrap_or_else(|| GPU_TASK_QUEUE.into()),
            // Temporal's own variables are read by the SDK's env config.
            temporal: TemporalTarget::default(),
        })
    }
}

/// The store and blob stores a worker's activities use.
#[derive(Clone)]
pub struct WorkerDeps {
    pub store: Arc<dyn Store>,
    pub recordings: Arc<dyn BlobStore>,
    pub artifacts: Arc<dyn BlobStore>,
}

impl WorkerDeps {
    pub async fn connect(config: &WorkerConfig) -> anyhow::Result<Self> {
        let pool = gt_store::pg::connect(&config.database_url, 16).await?;
        gt_store::pg::migrate(&pool).await?;
        Ok(Self {
            store: config.records.open(pool).await?,
            recordings: config.recordings.open().await?,
            artifacts: config.artifacts.open().await?,
        })
    }
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
    options: temporalio_sdk::WorkerOptions,
) -> anyhow::Result<Worker> {
    let client = gt_workflows::client::connect(temporal, Duration::from_secs(60)).await?;
    Worker::new(runtime, client, options).context("creating the Temporal worker")
}

/// A worker runs at most `slots` activities at once.
pub fn activity_slots(slots: usize) -> temporalio_sdk::runtime::worker_tuner::WorkerTuner {
    use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
    TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(slots.max(1)))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(10))
        .build()
        .into()
}

/// A failure retrying cannot fix (bad input): reported once, with `message`.
pub fn invalid_input(message: impl Into<String>) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message.into())
            .type_name(failure::INVALID_INPUT.to_string())
            .non_retryable(true)
            .build(),
    )
}

/// A failure only the user can fix (connect or reconnect YouTube or Twitch): not retried; the
/// workflow shows it to the user.
pub fn needs_user(message: impl Into<String>) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message.into())
            .type_name(failure::NEEDS_USER.to_string())
            .non_retryable(true)
            .build(),
    )
}

/// A failure worth retrying (a network hiccup, a 5xx).
pub fn retryable(message: impl Into<String>) -> ActivityError {
    ActivityError::application(ApplicationFailure::new(message.into()))
}

/// Store errors: the caller's fault is final, ours (a database hiccup) is retried.
pub fn store_error(e: StoreError) -> ActivityError {
    match e {
        StoreError::Invalid(m) | StoreError::NotFound(m) | StoreError::Conflict(m) => {
            invalid_input(m)
        }
        StoreError::Backend(e) => {
            ActivityError::application(ApplicationFailure::new(format!("store: {e:#}")))
        }
    }
}

/// Runs `work` while heartbeating every `every`, so a long step is not mistaken for a dead
/// worker and a cancelled activity is noticed.
pub async fn with_heartbeats<T>(
    ctx: &ActivityContext,
    every: Duration,
    work: impl Future<Output = T>,
) -> Result<T, ActivityError> {
    with_beats(ctx, every, work, || async {
        ctx.record_heartbeat(())
            .await
            .map_err(|e| ActivityError::from(anyhow::anyhow!(e)))
    })
    .await
}

/// Runs `work` while, every `every`, checking for cancellation and running `beat` (a heartbeat
/// with progress details, progress on a task row, …); a failing `beat` ends the step.
pub async fn with_beats<T, F>(
    ctx: &ActivityContext,
    every: Duration,
    work: impl Future<Output = T>,
    mut beat: impl FnMut() -> F,
) -> Result<T, ActivityError>
where
    F: Future<Output = Result<(), ActivityError>>,
{
    tokio::pin!(work);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            _ = tick.tick() => {
                if ctx.is_cancelled() {
                    return Err(ActivityError::cancelled());
                }
                beat().await?;
            }
        }
    }
}
