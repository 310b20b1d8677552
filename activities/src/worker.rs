//! What a CPU worker registers: every workflow plus the CPU activities, with their own
//! configuration (decode threads, the VAD model, the AI models). The worker binary and the
//! end-to-end tests build CPU workers with these same functions.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use gt_worker_kit::{WorkerDeps, cpus, env, env_parse};
use gt_workflows::{
    ArchiveStream, ChatCapture, ClipReembed, EpisodePublish, RestoreStream, StreamIngest,
    TwitchMaintenance, WidgetTimer,
};
use temporalio_sdk::WorkerOptions;

use crate::{
    ArchiveActivitiesImpl, ChatActivitiesImpl, EpisodeActivitiesImpl, IngestActivitiesImpl,
    MediaActivitiesImpl, PublishActivitiesImpl, TaskActivitiesImpl, TextActivitiesImpl,
    WidgetActivitiesImpl,
};

/// Configuration of the CPU activities, besides `gt_worker_kit::WorkerConfig`.
#[derive(Debug, Clone)]
pub struct CpuConfig {
    /// `GT_ANALYSIS_THREADS`: parallel decode chunks per file (default: the CPU count).
    pub analysis_threads: usize,
    /// `GT_VAD_MODEL`: Silero VAD's 16 kHz ONNX model (`./gt` points it into the
    /// `silero-vad` wheel).
    pub vad_model: PathBuf,
    /// Summary and embedding models (`GT_OPENAI_*`, `GT_EMBEDDING_MODEL`, `GT_EMBED_MODEL_DIR`).
    pub ai: gt_ai::AiConfig,
    /// The YouTube app uploads go to (`GT_YOUTUBE_*`, `GT_TOKEN_KEY`), when configured.
    pub youtube: Option<gt_youtube::YouTubeApp>,
    /// The Twitch app chat capture uses (`GT_TWITCH_*`, `GT_EVENTSUB_*`, `GT_TOKEN_KEY`).
    pub twitch: Option<gt_twitch::app::TwitchApp>,
    /// `GT_RENDER_ENCODER`: encoder for full re-encodes unless the user's render profile names
    /// one (e.g. `h264_nvenc` where the FFmpeg build and a GPU have it; default libx264).
    pub render_encoder: Option<String>,
    /// `GT_CPU_ACTIVITY_SLOTS`: activities this worker runs at once (default 8); more workers
    /// on the same queue share the rest.
    pub activity_slots: usize,
    /// `GT_SHUTDOWN_GRACE_SECS`: how long running activities may finish after a stop is asked
    /// (see `gt_worker_kit::DEFAULT_SHUTDOWN_GRACE`).
    pub shutdown_grace: std::time::Duration,
}

/// Default CPU activity slots: several small activities (probes, task rows, summaries) run
/// beside one or two long analyses.
pub const DEFAULT_CPU_ACTIVITY_SLOTS: usize = 8;

impl CpuConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            analysis_threads: env_parse("GT_ANALYSIS_THREADS", cpus())?,
            vad_model: env("GT_VAD_MODEL").map(PathBuf::from).context(
                "GT_VAD_MODEL is not set (path to silero_vad_16k_op15.onnx from the silero-vad wheel)",
            )?,
            ai: gt_ai::AiConfig::from_env(),
            youtube: gt_youtube::YouTubeApp::from_env().map_err(anyhow::Error::msg)?,
            twitch: gt_twitch::app::TwitchApp::from_env().map_err(anyhow::Error::msg)?,
            render_encoder: env("GT_RENDER_ENCODER"),
            activity_slots: env_parse("GT_CPU_ACTIVITY_SLOTS", DEFAULT_CPU_ACTIVITY_SLOTS)?,
            shutdown_grace: gt_worker_kit::shutdown_grace_from_env()?,
        })
    }
}

/// Every workflow plus the CPU activities, on `task_queue`. Fails if the VAD model cannot be
/// loaded: without it no speech can be told from music.
pub fn cpu_worker_options(
    task_queue: &str,
    deps: &WorkerDeps,
    cpu: &CpuConfig,
) -> anyhow::Result<WorkerOptions> {
    let vad = Arc::new(gt_vad::SileroVad::load(&cpu.vad_model)?);
    let twitch = cpu.twitch.clone().map(Arc::new);
    Ok(WorkerOptions::new(task_queue)
        .graceful_shutdown_period(cpu.shutdown_grace)
        .tuner(gt_worker_kit::activity_slots(cpu.activity_slots))
        .register_workflow::<StreamIngest>()?
        .register_workflow::<EpisodePublish>()?
        .register_workflow::<ClipReembed>()?
        .register_workflow::<ChatCapture>()?
        .register_workflow::<TwitchMaintenance>()?
        .register_workflow::<WidgetTimer>()?
        .register_workflow::<RestoreStream>()?
        .register_workflow::<ArchiveStream>()?
        .register_activities(IngestActivitiesImpl {
            store: deps.store.clone(),
            recordings: deps.recordings.clone(),
        })
        .register_activities(MediaActivitiesImpl {
            store: deps.store.clone(),
            recordings: deps.recordings.clone(),
            artifacts: deps.artifacts.clone(),
            threads: cpu.analysis_threads.max(1),
            vad,
        })
        .register_activities(ArchiveActivitiesImpl {
            store: deps.store.clone(),
            recordings: deps.recordings.clone(),
        })
        .register_activities(TaskActivitiesImpl {
            store: deps.store.clone(),
        })
        .register_activities(TextActivitiesImpl {
            store: deps.store.clone(),
            embedder: cpu.ai.embedder()?,
            chat: cpu.ai.chat(),
        })
        .register_activities(EpisodeActivitiesImpl {
            store: deps.store.clone(),
        })
        .register_activities(PublishActivitiesImpl {
            store: deps.store.clone(),
            recordings: deps.recordings.clone(),
            artifacts: deps.artifacts.clone(),
            youtube: cpu.youtube.clone().map(Arc::new),
            encoder: cpu.render_encoder.clone(),
        })
        .register_activities(ChatActivitiesImpl {
            store: deps.store.clone(),
            twitch: twitch.clone(),
        })
        .register_activities(WidgetActivitiesImpl {
            store: deps.store.clone(),
            twitch,
        })
        .build())
}
