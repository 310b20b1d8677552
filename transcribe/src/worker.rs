//! The GPU worker's configuration and registration.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use gt_worker_kit::{WorkerDeps, activity_slots, cpus, env, env_parse};
use temporalio_sdk::WorkerOptions;

use crate::activity::GpuActivitiesImpl;
use crate::engine::{Transcriber, check_model_file};

/// Configuration of the GPU worker, besides `gt_worker_kit::WorkerConfig`.
#[derive(Debug, Clone)]
pub struct GpuConfig {
    /// `GT_WHISPER_MODEL`: the ggml model file.
    pub model: PathBuf,
    /// `GT_WHISPER_THREADS`: CPU threads for whisper.cpp (default: the CPU count).
    pub threads: usize,
    /// `GT_TRANSCRIBE_CHUNK_S`: seconds of speech per chunk at most, the unit of decoding and of
    /// resume after a crash (30: one Whisper window, so no sentence straddles two windows).
    pub chunk_s: f64,
    /// `GT_WHISPER_LANES`: chunks decoded at once, sharing the threads (default: one per
    /// thread up to 4 on CPUs, 1 with CUDA).
    pub lanes: usize,
    /// `GT_SHUTDOWN_GRACE_SECS`: how long a running transcription may finish after a stop is
    /// asked (see `gt_worker_kit::DEFAULT_SHUTDOWN_GRACE`).
    pub shutdown_grace: std::time::Duration,
}

impl GpuConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            model: env("GT_WHISPER_MODEL")
                .map(PathBuf::from)
                .context("GT_WHISPER_MODEL is not set (path to ggml-base.bin)")?,
            threads: env_parse("GT_WHISPER_THREADS", cpus())?,
            chunk_s: env_parse("GT_TRANSCRIBE_CHUNK_S", crate::activity::MAX_CHUNK_S)?,
            lanes: env_parse("GT_WHISPER_LANES", 0)?,
            shutdown_grace: gt_worker_kit::shutdown_grace_from_env()?,
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
pub fn gpu_worker_options(
    task_queue: &str,
    deps: &WorkerDeps,
    gpu: &GpuConfig,
) -> anyhow::Result<WorkerOptions> {
    if let Err(e) = check_model_file(&gpu.model) {
        // Not fatal: each transcription will fail with this message until the file is fixed.
        tracing::error!("{e}");
    }
    let (lanes, threads_per_lane) = gpu.lanes_and_threads();
    Ok(WorkerOptions::new(task_queue)
        .graceful_shutdown_period(gpu.shutdown_grace)
        .tuner(activity_slots(1))
        .register_activities(GpuActivitiesImpl {
            store: deps.store.clone(),
            artifacts: deps.artifacts.clone(),
            transcriber: Arc::new(Transcriber::new(gpu.model.clone())),
            chunk_s: gpu.chunk_s,
            lanes,
            threads_per_lane,
        })
        .build())
}
