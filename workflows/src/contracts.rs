//! Activity contracts: name, input and output of every activity a workflow may schedule. The
//! implementations live in `gt-activities` and are checked against these at compile time
//! (`#[activity(definition = ...)]`), so workflows and the API never link FFmpeg, Whisper or
//! cloud SDKs.
#![allow(unused_variables)]

use gt_types::chat::{CaptureReport, ChatCaptureInput, TokenSweep};
use gt_types::publish::{
    EpisodeRef, FinishYouTube, FinishedYouTube, RenderedEpisode, UploadEpisode, UploadOutcome,
    VideoProcessing, VideoStatusRequest, WrittenExports,
};
use gt_types::widget::{WidgetTimerInput, WidgetTimerReport};
use gt_types::workflow::{
    AnalyzeClip, AnalyzedClip, ApplyReview, ClipRef, EmbedClip, EmbeddedClip, EpisodePublishInput,
    EpisodePublishOutput, FinalizeClips, FinalizedClips, PreviewedClip, ProbedClip,
    ProposeEpisodesInput, ProposedEpisodes, RecordReview, StreamMedia, StreamRef, SummarizeClip,
    SummarizedClip, TaskUpdate, TranscribeClip, TranscribedClip,
};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

/// Activities that look at a stream's recordings and record what they find.
pub struct IngestActivities;

#[activity_definitions]
impl IngestActivities {
    /// Lists the stream's media under its blob prefix (all pages, key order).
    /// Non-retryable if the stream does not exist or has no usable prefix.
    #[activity(name = "ingest.list_stream_media")]
    pub fn list_stream_media(input: StreamRef) -> Result<StreamMedia, ActivityError> {
        unimplemented!()
    }

    /// Probes one file in-process and upserts its clip row. Non-retryable, naming the file and
    /// the reason, for empty, corrupt or non-media files.
    #[activity(name = "ingest.probe_clip")]
    pub fn probe_clip(input: ClipRef) -> Result<ProbedClip, ActivityError> {
        unimplemented!()
    }

    /// Sets cumulative start times in stream order and the stream's clip count and duration.
    #[activity(name = "ingest.finalize_stream_clips")]
    pub fn finalize_stream_clips(input: FinalizeClips) -> Result<FinalizedClips, ActivityError> {
        unimplemented!()
    }
}

/// Media analysis of one clip (CPU; decodes in parallel chunks).
pub struct MediaActivities;

#[activity_definitions]
impl MediaActivities {
    /// Speech map (silencedetect semantics, margins) of the clip's speech track and the 16 kHz
    /// speech audio with its time map. Non-retryable for audio-less, corrupt or truncated files.
    #[activity(name = "media.analyze_speech")]
    pub fn analyze_speech(input: AnalyzeClip) -> Result<AnalyzedClip, ActivityError> {
        unimplemented!()
    }

    /// Thumbnails at keyframes and the 480p HLS preview.
    #[activity(name = "media.make_preview")]
    pub fn make_preview(input: ClipRef) -> Result<PreviewedClip, ActivityError> {
        unimplemented!()
    }
}

/// Bookkeeping shared by every workflow.
pub struct TaskActivities;

#[activity_definitions]
impl TaskActivities {
    /// Upserts the task record the front end's task drawer shows.
    #[activity(name = "tasks.update_task")]
    pub fn update_task(input: TaskUpdate) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

/// What the transcripts mean: summaries and search embeddings (CPU, or a remote model).
pub struct TextActivities;

#[activity_definitions]
impl TextActivities {
    /// Summarises a clip's transcript in the original's schema: with the configured
    /// OpenAI-compatible chat model (strict JSON schema, context chained from the previous
    /// clip), or extractively from the transcript when no API key is configured. Stored on the
    /// clip; a clip without speech gets an empty summary.
    #[activity(name = "text.summarize_clip")]
    pub fn summarize_clip(input: SummarizeClip) -> Result<SummarizedClip, ActivityError> {
        unimplemented!()
    }

    /// Embeds the clip's transcript windows (~30 s / ~100 words, overlapping) and replaces its
    /// rows in the search index.
    #[activity(name = "text.embed_clip")]
    pub fn embed_clip(input: EmbedClip) -> Result<EmbeddedClip, ActivityError> {
        unimplemented!()
    }
}

/// Episode proposals and their review.
pub struct EpisodeActivities;

#[activity_definitions]
impl EpisodeActivities {
    /// Turns the stream's speech map and highlights into episode drafts (cut list at the
    /// source's frame rate, chapters), stored awaiting review. Idempotent: re-proposing
    /// replaces the stream's undecided proposals and keeps decided ones.
    #[activity(name = "episodes.propose")]
    pub fn propose_episodes(
        input: ProposeEpisodesInput,
    ) -> Result<ProposedEpisodes, ActivityError> {
        unimplemented!()
    }

    /// Records review decisions on the stream's proposals (the legacy signal path).
    #[activity(name = "episodes.record_review")]
    pub fn record_review(input: RecordReview) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Writes a review's edits and decisions in one transaction: all of it or nothing.
    #[activity(name = "episodes.apply_review")]
    pub fn apply_review(input: ApplyReview) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// The publish step until rendering lands: records that the episode was approved for
    /// publishing.
    #[activity(name = "episodes.record_publish_request")]
    pub fn record_publish_request(
        input: EpisodePublishInput,
    ) -> Result<EpisodePublishOutput, ActivityError> {
        unimplemented!()
    }
}

/// Publishing one approved episode (CPU pool; the render encoder is configurable so a GPU
/// worker can take `publish.render_episode` with NVENC).
pub struct PublishActivities;

#[activity_definitions]
impl PublishActivities {
    /// Renders the episode's cut list to MP4 (smart cut where eligible, else a full re-encode),
    /// verifies it (decodes end to end, frame count and timestamps, copied packets identical),
    /// falls back to a full re-encode when verification fails, and stores it at a key derived
    /// from what was rendered. Reuses an earlier verified render of the same input.
    /// Heartbeats render progress; non-retryable for a bad cut list or missing sources.
    #[activity(name = "publish.render_episode")]
    pub fn render_episode(input: EpisodeRef) -> Result<RenderedEpisode, ActivityError> {
        unimplemented!()
    }

    /// SRT and WebVTT subtitles from the (edited) transcript in episode time, the
    /// OpenTimelineIO timeline and the CMX3600 EDL, stored as artifacts.
    #[activity(name = "publish.write_exports")]
    pub fn write_exports(input: EpisodeRef) -> Result<WrittenExports, ActivityError> {
        unimplemented!()
    }

    /// Uploads the render to YouTube with the resumable protocol, resuming the session kept on
    /// the episode. Quota and upload limits come back as `WaitUntil`, not as failures; a
    /// refused refresh token fails non-retryably ("reconnect YouTube").
    #[activity(name = "publish.upload_youtube")]
    pub fn upload_youtube(input: UploadEpisode) -> Result<UploadOutcome, ActivityError> {
        unimplemented!()
    }

    /// Thumbnail (a refusal is recorded, not fatal), the series' playlist item and, if the
    /// user enabled it, the captions.
    #[activity(name = "publish.finish_youtube")]
    pub fn finish_youtube(input: FinishYouTube) -> Result<FinishedYouTube, ActivityError> {
        unimplemented!()
    }

    /// YouTube's processing state of the uploaded video (stored on the episode).
    #[activity(name = "publish.video_status")]
    pub fn video_status(input: VideoStatusRequest) -> Result<VideoProcessing, ActivityError> {
        unimplemented!()
    }
}

pub use publish_activities::{
    FinishYoutube as FinishYouTubeActivity, RenderEpisode, UploadYoutube as UploadYouTubeActivity,
    VideoStatus, WriteExports,
};

pub use episode_activities::{
    ApplyReview as ApplyReviewActivity, ProposeEpisodes, RecordPublishRequest,
    RecordReview as RecordReviewActivity,
};
pub use ingest_activities::{FinalizeStreamClips, ListStreamMedia, ProbeClip};
pub use media_activities::{AnalyzeSpeech, MakePreview};
pub use task_activities::UpdateTask;
pub use text_activities::{EmbedClip as EmbedClipActivity, SummarizeClip as SummarizeClipActivity};

/// Twitch chat capture: EventSub subscriptions, the WebSocket session, token upkeep.
pub struct ChatActivities;

#[activity_definitions]
impl ChatActivities {
    /// Makes sure every chat-capture subscription exists for the broadcaster (webhook
    /// transport: lists, creates what is missing with the app token, records them), or says
    /// that a WebSocket session must carry capture, or that the user must reconnect Twitch.
    #[activity(name = "chat.ensure_subscriptions")]
    pub fn ensure_subscriptions(input: ChatCaptureInput) -> Result<CaptureReport, ActivityError> {
        unimplemented!()
    }

    /// Holds an EventSub WebSocket session for the broadcaster (subscribes within the welcome's
    /// keepalive window, follows `session_reconnect`, stores messages like the webhook does).
    /// Runs until cancelled; heartbeats; fails (and is retried) when the session is lost.
    #[activity(name = "chat.hold_socket")]
    pub fn hold_socket(input: ChatCaptureInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Deletes the broadcaster's chat-capture subscriptions at Twitch.
    #[activity(name = "chat.unsubscribe")]
    pub fn unsubscribe(input: ChatCaptureInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// The hourly upkeep: validates every connected user's Twitch token (refreshing, and
    /// storing the rotated refresh token, when it is no longer valid; marking "reconnect
    /// Twitch" when the refresh is refused) and purges chat past its retention.
    #[activity(name = "chat.maintain")]
    pub fn maintain(input: ()) -> Result<TokenSweep, ActivityError> {
        unimplemented!()
    }
}

pub use chat_activities::{
    EnsureSubscriptions, HoldSocket, Maintain as MaintainChat, Unsubscribe as UnsubscribeChat,
};

/// OBS widgets' time-driven transitions (the durable timers of `WidgetTimer`).
pub struct WidgetActivities;

#[activity_definitions]
impl WidgetActivities {
    /// Applies the timer input to the widget at the current time (a countdown reaching zero,
    /// an ad break ending); the pure state machine ignores a tick the state no longer needs.
    /// `Gone` when the widget was deleted or deactivated.
    #[activity(name = "widgets.tick")]
    pub fn tick(input: WidgetTimerInput) -> Result<WidgetTimerReport, ActivityError> {
        unimplemented!()
    }

    /// Reads the broadcaster's ad schedule from Helix (the user's token) and applies it to the
    /// ad-timer widget. Non-retryable `NeedsUser` when Twitch is not connected.
    #[activity(name = "widgets.poll_ad_schedule")]
    pub fn poll_ad_schedule(input: WidgetTimerInput) -> Result<WidgetTimerReport, ActivityError> {
        unimplemented!()
    }
}

pub use widget_activities::{PollAdSchedule, Tick as TickWidget};

/// Application failure type names shared by activities and retry policies.
pub mod failure {
    /// Bad input (missing record, corrupt file, invalid cut list): retrying cannot help.
    pub const INVALID_INPUT: &str = "InvalidInput";
    /// The user must act first (connect or reconnect YouTube): retrying cannot help.
    pub const NEEDS_USER: &str = "NeedsUser";
}

/// Activities of the GPU worker pool (`gt-gpu`).
pub struct GpuActivities;

#[activity_definitions]
impl GpuActivities {
    /// Transcribes a clip's speech audio with Whisper and stores the transcript (on the clip
    /// and as segment rows). Heartbeats per chunk and resumes from the last finished chunk when
    /// retried. Empty speech audio gives an empty transcript; a missing or broken model file is
    /// a non-retryable error naming the path.
    #[activity(name = "gpu.transcribe_clip")]
    pub fn transcribe_clip(input: TranscribeClip) -> Result<TranscribedClip, ActivityError> {
        unimplemented!()
    }
}

pub use gpu_activities::TranscribeClip as TranscribeClipActivity;

/// Where a stream's raw recordings are (`streams.archive_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveState {
    Standard,
    Archived,
    Restoring,
}

/// Input of `archive.request_restore`: keep the restored copies `days` days (the original
/// asked for 1; they are made standard as soon as all are back).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoreRecordings {
    pub user_id: String,
    pub stream_id: String,
    pub days: u32,
}

/// A stream's recordings, counted by where they are, and the stream's archive state after
/// the activity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordingsStorage {
    pub stream_id: String,
    pub state: ArchiveState,
    /// Objects under the stream's prefix.
    pub recordings: u32,
    pub standard: u32,
    /// Archived, no restore asked for (or its copy expired).
    pub archived: u32,
    /// Archived, restore running.
    pub restoring: u32,
    /// Archived with a readable restored copy.
    pub restored: u32,
    pub bytes: u64,
}

impl RecordingsStorage {
    /// Every recording can be read now.
    pub fn all_readable(&self) -> bool {
        self.archived == 0 && self.restoring == 0
    }
}

/// Output of `archive.archive_if_published`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ArchiveAfterPublish {
    /// Every episode of the stream meant for publishing is published: its recordings went to
    /// the archive class.
    Archived(RecordingsStorage),
    /// `unpublished` episodes of the stream still need the recordings.
    NotYet { stream_id: String, unpublished: u64 },
    /// The episode names no stream.
    NoStream,
}

/// Output of `archive.episode_stream`: the stream an episode is cut from and where its
/// recordings are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EpisodeStream {
    pub stream_id: Option<String>,
    pub state: ArchiveState,
}

/// Moving a stream's raw recordings to and from the archive storage class.
pub struct ArchiveActivities;

#[activity_definitions]
impl ArchiveActivities {
    /// Moves every recording under the stream's prefix to the archive class and marks the
    /// stream `archived`. Idempotent.
    #[activity(name = "archive.archive_stream")]
    pub fn archive_stream(input: StreamRef) -> Result<RecordingsStorage, ActivityError> {
        unimplemented!()
    }

    /// Archives the episode's stream when every episode of it meant for publishing has a
    /// YouTube video; otherwise says how many still need the recordings.
    #[activity(name = "archive.archive_if_published")]
    pub fn archive_if_published(input: EpisodeRef) -> Result<ArchiveAfterPublish, ActivityError> {
        unimplemented!()
    }

    /// Asks for a restore of every archived recording of the stream (Standard tier) and marks
    /// the stream `restoring` (or `standard` when nothing is archived).
    #[activity(name = "archive.request_restore")]
    pub fn request_restore(input: RestoreRecordings) -> Result<RecordingsStorage, ActivityError> {
        unimplemented!()
    }

    /// Where the stream's recordings are now (one HEAD per recording).
    #[activity(name = "archive.restore_progress")]
    pub fn restore_progress(input: StreamRef) -> Result<RecordingsStorage, ActivityError> {
        unimplemented!()
    }

    /// Makes every restored recording standard again and marks the stream `standard`; fails
    /// (retryably) while any restore is still running.
    #[activity(name = "archive.make_standard")]
    pub fn make_standard(input: StreamRef) -> Result<RecordingsStorage, ActivityError> {
        unimplemented!()
    }

    /// The episode's stream and its archive state.
    #[activity(name = "archive.episode_stream")]
    pub fn episode_stream(input: EpisodeRef) -> Result<EpisodeStream, ActivityError> {
        unimplemented!()
    }

    /// The stream's archive state as recorded on the stream.
    #[activity(name = "archive.stream_state")]
    pub fn stream_state(input: StreamRef) -> Result<ArchiveState, ActivityError> {
        unimplemented!()
    }
}

pub use archive_activities::{
    ArchiveIfPublished, ArchiveStream as ArchiveStreamActivity,
    EpisodeStream as EpisodeStreamActivity, MakeStandard, RequestRestore, RestoreProgress,
    StreamState,
};
