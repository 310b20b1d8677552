//! The GPU worker's configuration and registration.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use gt_worker_kit::{WorkerDeps, activity_slots, cpus, env, env_parse};
use temporalio_sdk::WorkerOptions;

use crate::activity::GpuActivitiesImpl;
use crate::engine::{Transcriber, check_model_file};
use crate::quantize::QuantType;

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
    /// `GT_WHISPER_QUANT`: decode with the model's weights quantised to this type (`q8_0`,
    /// the default: faster on CPUs at the f16 model's WER, see BENCHMARKS.md; `q5_1`, `q5_0`,
    /// `q4_0`; `none` for the file as it is). The copy is made once, beside the model.
    pub quantization: Option<QuantType>,
}

/// The quantisation used unless `GT_WHISPER_QUANT` says otherwise.
pub const DEFAULT_QUANTIZATION: Option<QuantType> = Some(QuantType::Q8_0);

/// `GT_WHISPER_QUANT`'s value: `none` (or `f16`) for the model file as it is, else a type.
pub fn parse_quantization(value: &str) -> Result<Option<QuantType>, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "none" | "f16" => Ok(None),
        other => other.parse().map(Some),
    }
}

impl GpuConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            model: env("GT_WHISPER_MODEL")
                .map(PathBuf::from)
                .context("GT_WHISPER_MODEL is not set (path to ggml-base.bin)")?,
            threads: env_parse("GT_WHISPER_THREADS", cpus())?,
            chunk_s: env_parse("GT_TRANSCRIBE_CHUNK_S", crate::activity::DEFAULT_CHUNK_S)?,
            lanes: env_parse("GT_WHISPER_LANES", 0)?,
            shutdown_grace: gt_worker_kit::shutdown_grace_from_env()?,
            quantization: match env("GT_WHISPER_QUANT") {
                Some(v) => {
                    parse_quantization(&v).map_err(|e| anyhow::anyhow!("GT_WHISPER_QUANT: {e}"))?
                }
                None => DEFAULT_QUANTIZATION,
            },
        })
    }

    /// The transcriber this configuration describes.
    pub fn transcriber(&self) -> Transcriber {
        Transcriber::new(self.model.clone()).with_quantization(self.quantization)
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
            transcriber: Arc::new(gpu.transcriber()),
            chunk_s: gpu.chunk_s,
            lanes,
            threads_per_lane,
        })
        .build())
}
