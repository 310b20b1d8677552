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
    /// Spoken language (ISO 639-1); detected per clip when absent.
    #[serde(default)]
    pub language: Option<String>,
    /// Task queue of the GPU workers (transcription); `gt-gpu` when absent.
    #[serde(default)]
    pub gpu_task_queue: Option<String>,
    /// Wait for the `review` signal after proposing episodes (the default). `false` proposes
    /// and finishes; the proposals stay awaiting review in the store.
    #[serde(default)]
    pub await_review: Option<bool>,
    /// How talk is cut into episode proposals; defaults when absent.
    #[serde(default)]
    pub episodes: Option<crate::episode::EpisodeParams>,
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
    /// Transcript segments written.
    #[serde(default)]
    pub transcript_segments: u32,
    /// Files ingestion could not use, with the reason.
    #[serde(default)]
    pub failures: Vec<ClipFailure>,
    /// Transcript windows embedded for search.
    #[serde(default)]
    pub windows_embedded: u32,
    /// Ids of the episodes proposed, in stream order.
    #[serde(default)]
    pub episodes_proposed: Vec<String>,
    /// Ids approved in review (an `EpisodePublish` child was started for each).
    #[serde(default)]
    pub episodes_approved: Vec<String>,
    #[serde(default)]
    pub episodes_rejected: Vec<String>,
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
    /// Clips transcribed.
    #[serde(default)]
    pub clips_transcribed: u32,
    /// Clips summarised and embedded.
    #[serde(default)]
    pub clips_summarized: u32,
    #[serde(default)]
    pub clips_embedded: u32,
    /// Episodes proposed, and how many of them have been decided in review.
    #[serde(default)]
    pub episodes_proposed: u32,
    #[serde(default)]
    pub episodes_reviewed: u32,
    /// 0–100.
    pub percent: f64,
    /// The activity (and clip) being worked on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub failures: Vec<ClipFailure>,
}

impl IngestProgress {
    /// Recomputes `percent` of the ingestion: probing counts for 5 %, speech maps for 10 %,
    /// transcripts for 60 %, summaries and embeddings for 5 % each, the proposals for 10 %
    /// (roughly their share of the time to review) and previews, built while the run waits for
    /// review, for the last 5 %.
    pub fn update_percent(&mut self) {
        let total = f64::from(self.clips_total.max(1));
        let probed = f64::from(self.clips_done + self.clips_failed) / total;
        let usable = f64::from(self.clips_done.max(1));
        let share = |n: u32| f64::from(n) / usable;
        let proposed = if matches!(
            self.stage,
            IngestStage::AwaitingReview | IngestStage::Publishing | IngestStage::Completed
        ) {
            1.0
        } else {
            0.0
        };
        self.percent = (5.0 * probed
            + 10.0 * share(self.clips_analyzed)
            + 60.0 * share(self.clips_transcribed)
            + 5.0 * share(self.clips_previewed)
            + 5.0 * share(self.clips_summarized)
            + 5.0 * share(self.clips_embedded)
            + 10.0 * proposed)
            .clamp(0.0, 100.0);
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
    Transcribing,
    /// Summaries and search embeddings, clip by clip.
    Summarizing,
    Proposing,
    /// Proposals are stored; waiting (as long as it takes) for the `review` signal.
    AwaitingReview,
    /// Starting `EpisodePublish` for approved episodes.
    Publishing,
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

/// Input of `gpu.transcribe_clip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TranscribeClip {
    pub user_id: String,
    pub stream_id: String,
    pub key: String,
    pub start_time: f64,
    /// Context for the first words: the previous clip's transcript tail (or the stream's prompt).
    #[serde(default)]
    pub initial_prompt: String,
    #[serde(default)]
    pub language: Option<String>,
}

/// Output of `gpu.transcribe_clip` (the transcript itself is stored on the clip).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TranscribedClip {
    pub key: String,
    pub language: String,
    pub segments: u32,
    pub words: u32,
    /// Seconds of speech audio transcribed.
    pub audio_seconds: f64,
    /// The end of the text, to prompt the next clip.
    pub tail: String,
    pub chunks: u32,
    /// Chunks already done when the last attempt started (non-zero after a retry resumed).
    pub resumed_from_chunk: u32,
    /// True when a stored transcript at the current version was reused.
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
    /// Fraction done (0–1) of a long step: render percent, bytes uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
}

/// Input of `text.summarize_clip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SummarizeClip {
    pub user_id: String,
    pub stream_id: String,
    pub key: String,
    /// The previous clip's `summary_context` (or the stream's initial summary).
    #[serde(default)]
    pub context: String,
}

/// Output of `text.summarize_clip` (the summary itself is stored on the clip).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SummarizedClip {
    pub key: String,
    pub method: crate::episode::SummaryMethod,
    pub title: String,
    /// Context for the next clip's summary.
    pub context: String,
    pub highlights: u32,
    pub cached: bool,
}

/// Input of `text.embed_clip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmbedClip {
    pub user_id: String,
    pub stream_id: String,
    pub key: String,
}

/// Output of `text.embed_clip`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmbeddedClip {
    pub key: String,
    pub windows: u32,
    pub model: String,
    pub dim: u32,
}

/// Output of `episodes.propose`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProposedEpisodes {
    pub episodes: Vec<ProposedEpisode>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProposedEpisode {
    pub id: String,
    pub title: String,
    /// Stream seconds.
    pub start: f64,
    pub end: f64,
    pub chapters: u32,
}

/// The legacy `review` signal: decisions on proposed episodes, from before review became an
/// update. Still handled so recorded histories replay; the API sends [`ReviewUpdate`] now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewSignal {
    #[serde(default)]
    pub approve: Vec<String>,
    #[serde(default)]
    pub reject: Vec<String>,
}

/// Input of `episodes.propose`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProposeEpisodesInput {
    pub user_id: String,
    pub stream_id: String,
    #[serde(default)]
    pub params: crate::episode::EpisodeParams,
}

/// The `review` update: decisions on proposed episodes and edits to them, validated by the
/// waiting ingestion (every id one of its undecided proposals) before anything is written,
/// then written in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewUpdate {
    #[serde(default)]
    pub approve: Vec<String>,
    #[serde(default)]
    pub reject: Vec<String>,
    #[serde(default)]
    pub edits: Vec<EpisodeEdit>,
}

/// Fields a reviewer may change on a proposal (values are checked against the episode
/// record's field types before the review is sent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EpisodeEdit {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapters: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<serde_json::Value>,
    /// A new range (stream seconds): the cut list, `tracks` and (unless `chapters` is given)
    /// the chapters are made again for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
}

/// The shortest episode a range edit may leave (seconds).
pub const MIN_EPISODE_SECONDS: f64 = 1.0;

impl EpisodeEdit {
    /// Whether the edit moves the episode's range.
    pub fn moves_range(&self) -> bool {
        self.start_time.is_some() || self.end_time.is_some()
    }

    /// The range after this edit of an episode now at `[start, end)`, checked against a
    /// stream `duration` seconds long.
    pub fn range(&self, start: f64, end: f64, duration: f64) -> Result<(f64, f64), String> {
        let (s, e) = (
            self.start_time.unwrap_or(start),
            self.end_time.unwrap_or(end),
        );
        if !(s.is_finite() && e.is_finite()) || s < 0.0 || e > duration + 0.05 {
            return Err(format!(
                "episode '{}': the range {s:.2}–{e:.2} s is outside the stream (0–{duration:.2} s)",
                self.id
            ));
        }
        if e - s < MIN_EPISODE_SECONDS {
            return Err(format!(
                "episode '{}': the range must start before it ends and last at least \
                 {MIN_EPISODE_SECONDS} s ({s:.2}–{e:.2} s)",
                self.id
            ));
        }
        Ok((s, e.min(duration)))
    }
    /// The edit as a record patch (only the fields it sets).
    pub fn patch(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.remove("id");
        }
        v
    }

    /// Whether the edit changes anything.
    pub fn is_empty(&self) -> bool {
        self.patch().as_object().is_none_or(|m| m.is_empty())
    }
}

impl ReviewUpdate {
    /// Every episode id the review names.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.approve
            .iter()
            .chain(&self.reject)
            .map(String::as_str)
            .chain(self.edits.iter().map(|e| e.id.as_str()))
    }

    /// What is wrong with the review on its own (before looking at any proposal), if anything.
    pub fn shape_error(&self) -> Option<String> {
        if self.approve.is_empty() && self.reject.is_empty() && self.edits.is_empty() {
            return Some("a review needs at least one of approve, reject or edits".into());
        }
        if let Some(both) = self.reject.iter().find(|id| self.approve.contains(id)) {
            return Some(format!("episode '{both}' is both approved and rejected"));
        }
        if self.edits.iter().any(EpisodeEdit::is_empty) {
            return Some("an edit must change at least one field".into());
        }
        None
    }
}

/// What a review did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewOutcome {
    pub approved: Vec<String>,
    pub rejected: Vec<String>,
    pub edited: Vec<String>,
}

/// Input of `episodes.apply_review`: one transaction for a review's edits and decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApplyReview {
    pub user_id: String,
    pub stream_id: String,
    pub approve: Vec<String>,
    pub reject: Vec<String>,
    pub edits: Vec<EpisodeEdit>,
}

/// Input of `episodes.record_review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecordReview {
    pub user_id: String,
    pub stream_id: String,
    pub approve: Vec<String>,
    pub reject: Vec<String>,
}

/// Input of `EpisodePublish` (`episode-publish-{owner}-{episode_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EpisodePublishInput {
    pub user_id: String,
    pub episode_id: String,
    /// Upload to YouTube after rendering (approval and `POST /upload/youtube`); `POST /render`
    /// renders and exports only. Inputs recorded before this field existed meant "publish".
    #[serde(default = "yes")]
    pub upload: bool,
}

fn yes() -> bool {
    true
}

/// Result of `EpisodePublish`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EpisodePublishOutput {
    pub episode_id: String,
    /// What the publish step did: `approved` (runs recorded before rendering existed),
    /// `rendered` (no upload asked for), `published`, `cancelled`, `needs_youtube` (rendered;
    /// YouTube must be connected or reconnected, then `POST /upload/youtube`).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_key: Option<String>,
}
