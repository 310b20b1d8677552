//! Inputs and outputs of workflows and activities. These cross the Temporal boundary as JSON,
//! so they must stay backwards compatible: add fields with `#[serde(default)]`, never rename.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::media::{AnalysisParams, MediaInfo};
use crate::records::{TaskStatus, TaskType};

/// Input of `StreamIngest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamIngestInput {
    pub user_id: String,
    pub stream_id: String,
    #[serde(default)]
    pub initial_prompt: String,
    #[serde(default)]
    pub initial_summary: String,
    /// Silence/speech parameters; defaults when absent.
    #[serde(default)]
    pub analysis: Option<AnalysisParams>,
}

/// Result of `StreamIngest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamIngestOutput {
    /// Clips that were probed and recorded.
    pub clip_count: u32,
    /// Sum of the recorded clips' durations, seconds.
    pub duration: f64,
    /// Seconds of speech found (after margins).
    #[serde(default)]
    pub speech_seconds: f64,
    /// Files ingestion could not use, with the reason.
    #[serde(default)]
    pub failures: Vec<ClipFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClipFailure {
    pub key: String,
    pub reason: String,
}

/// Where an ingestion stands; answer of the `progress` query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IngestProgress {
    pub stage: IngestStage,
    pub clips_total: u32,
    pub clips_done: u32,
    pub clips_failed: u32,
    /// Clips whose speech map is done.
    #[serde(default)]
    pub clips_analyzed: u32,
    /// Clips whose thumbnails and HLS preview are done.
    #[serde(default)]
    pub clips_previewed: u32,
    /// 0–100.
    pub percent: f64,
    /// The activity (and clip) being worked on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub failures: Vec<ClipFailure>,
}

impl IngestProgress {
    /// Recomputes `percent`: probing counts for 10 %, speech maps for 30 %, previews for 60 %
    /// (roughly their share of the work).
    pub fn update_percent(&mut self) {
        let total = f64::from(self.clips_total.max(1));
        let probed = f64::from(self.clips_done + self.clips_failed) / total;
        let usable = f64::from(self.clips_done.max(1));
        let analyzed = f64::from(self.clips_analyzed) / usable;
        let previewed = f64::from(self.clips_previewed) / usable;
        self.percent = (10.0 * probed + 30.0 * analyzed + 60.0 * previewed).clamp(0.0, 100.0);
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestStage {
    #[default]
    Starting,
    Listing,
    Probing,
    Recording,
    Analyzing,
    Completed,
    Failed,
    Cancelled,
}

// ---- activity inputs and outputs --------------------------------------------------------

/// Input of `list_stream_media`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamRef {
    pub user_id: String,
    pub stream_id: String,
}

/// Output of `list_stream_media`: every media object under the stream's prefix, all pages,
/// in lexicographic key order (which is chronological for OBS file names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamMedia {
    pub prefix: String,
    pub objects: Vec<MediaObject>,
    /// The stream's (or else the profile's) speech track setting.
    #[serde(default)]
    pub speech_track: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MediaObject {
    pub key: String,
    pub size: u64,
}

/// Input of `probe_clip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClipRef {
    pub user_id: String,
    pub stream_id: String,
    pub key: String,
}

/// Output of `probe_clip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbedClip {
    pub key: String,
    pub info: MediaInfo,
}

/// Input of `finalize_stream_clips`: the stream's clips in order, and which of them failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FinalizeClips {
    pub user_id: String,
    pub stream_id: String,
    /// All keys listed for the stream, in stream order.
    pub keys: Vec<String>,
    /// Keys whose probe failed (they get no start time and count as zero duration).
    #[serde(default)]
    pub failures: Vec<ClipFailure>,
}

/// Output of `finalize_stream_clips`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FinalizedClips {
    pub clip_count: u32,
    pub duration: f64,
    /// Start time in the stream of each usable clip, in stream order.
    #[serde(default)]
    pub clips: Vec<ClipStart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClipStart {
    pub key: String,
    pub start_time: f64,
    #[serde(default)]
    pub duration: f64,
}

/// Input of `media.analyze_speech`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalyzeClip {
    pub user_id: String,
    pub stream_id: String,
    pub key: String,
    pub start_time: f64,
    /// Explicit speech track; `None` lets the activity choose.
    #[serde(default)]
    pub speech_track: Option<u32>,
    #[serde(default)]
    pub params: AnalysisParams,
}

/// Output of `media.analyze_speech` (the full map is stored on the clip).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalyzedClip {
    pub key: String,
    pub track: u32,
    pub silences: u32,
    pub speech_seconds: f64,
    /// Blob key of the speech audio.
    pub audio_key: String,
    /// True when a stored analysis at the current version was reused.
    pub cached: bool,
}

/// Output of `media.make_preview`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreviewedClip {
    pub key: String,
    pub keyframes: u32,
    pub segments: u32,
    pub cached: bool,
}

/// Input of `update_task`: an upsert of a task record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskUpdate {
    pub user_id: String,
    pub task_id: String,
    pub task_type: TaskType,
    pub status: TaskStatus,
    pub record_id: String,
    pub workflow_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Output of `gpu.model_info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    pub path: String,
    pub bytes: u64,
    /// Which whisper.cpp backend the worker was built with (`cpu` or `cuda`).
    pub backend: String,
}
