//! The records the store keeps. Field names follow the original system's schemas exactly
//! (`reference/anchor-backend.md` §2.2, `anchor-frontend.md` §2.6) so its React front end can
//! talk to this API; every record additionally carries the owning `user_id`.
//!
//! Every field is optional on read (records are sparse, as in the original DynamoDB tables);
//! the store's catalog (`gt-store`) says which fields a create requires.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::media::MediaInfo;

pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Stream {
    pub id: String,
    pub user_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Seconds.
    pub duration: Option<f64>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub has_episodes: Option<bool>,
    /// Blob-store folder holding the stream's recordings, e.g. `2023-08-31`.
    pub prefix: Option<String>,
    pub series_id: Option<String>,
    pub stream_date: Option<Timestamp>,
    pub stream_platform: Option<String>,
    pub thumbnail_url: Option<String>,
    /// Written by the front end's forms (the schema says `thumbnail_url`); both are kept.
    pub thumbnail: Option<String>,
    /// The platform's id of the broadcast (e.g. a Twitch VOD id).
    pub stream_id: Option<String>,
    /// Set by ingestion.
    pub video_clip_count: Option<i64>,
    /// Audio track (counting audio streams from 0) with the streamer's voice; overrides the
    /// profile's `speechTrack`; without either, ingestion picks one.
    pub speech_track: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Series {
    pub id: String,
    pub user_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<i64>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub is_active: Option<bool>,
    pub max_episode_order_index: Option<i64>,
    pub notify_subscribers: Option<bool>,
    pub playlist_id: Option<String>,
    pub prep_notes: Option<String>,
    pub skips: Option<Vec<SeriesSkip>>,
    pub recurrence: Option<Recurrence>,
    pub timezone: Option<String>,
    pub start_date: Option<NaiveDate>,
    /// `HH:mm`.
    pub start_time: Option<String>,
    pub end_date: Option<NaiveDate>,
    /// `HH:mm`.
    pub end_time: Option<String>,
    pub tags: Option<Vec<String>>,
    pub thumbnail_url: Option<String>,
    pub stream_title_template: Option<String>,
    pub twitch_category: Option<TwitchCategory>,
    pub stream_count: Option<i64>,
    pub episode_title_template: Option<String>,
    pub episode_description_template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeriesSkip {
    pub date: NaiveDate,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Recurrence {
    /// Only `weekly` is defined by the original schema.
    #[serde(rename = "type")]
    pub kind: String,
    pub interval: i64,
    pub days: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TwitchCategory {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub box_art_url: Option<String>,
}

/// One recording file of a stream (an OBS segment). `id` equals `key`, the blob key, so the
/// front end's `id = key` convention holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct VideoClip {
    pub id: String,
    pub key: String,
    pub user_id: Option<String>,
    pub stream_id: Option<String>,
    /// Seconds from the start of the stream (sum of the durations of the clips before it).
    pub start_time: Option<f64>,
    pub audio: Option<String>,
    pub keyframes: Option<Vec<String>>,
    pub silence: Option<Vec<Interval>>,
    /// Probe of the file, ffprobe-shaped: `{format: {duration, ...}, streams: [...]}`.
    pub metadata: Option<MediaInfo>,
    pub transcription: Option<Value>,
    pub summary: Option<Value>,
    pub transcode: Option<Value>,
    pub ingestion_version: Option<String>,
    /// Why ingestion could not use this file (corrupt, empty, not media), if it could not.
    pub error: Option<String>,
    pub speech: Option<crate::media::SpeechMap>,
    pub preview: Option<crate::media::Preview>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interval {
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Episode {
    pub id: String,
    pub user_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub order_index: Option<i64>,
    pub is_published: Option<bool>,
    /// ISO-8601 durations relative to the stream start, e.g. `PT1M2.5S`.
    pub tracks: Option<Vec<Track>>,
    pub stream_id: Option<String>,
    pub series_id: Option<String>,
    pub cut_list: Option<CutList>,
    pub youtube_video_id: Option<String>,
    pub youtube_upload_url: Option<String>,
    pub upload_attempts: Option<i64>,
    pub upload_status: Option<UploadStatus>,
    pub error_message: Option<String>,
    pub retry_after_seconds: Option<i64>,
    pub upload_resume_at_byte: Option<i64>,
    pub render_uri: Option<String>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub tags: Option<Vec<String>>,
    pub category: Option<i64>,
    pub notify_subscribers: Option<bool>,
    pub upload_queue_timestamp: Option<Timestamp>,
    pub playlist_id: Option<String>,
    /// What publishing produced (render report, export keys, the video's URL, follow-ups);
    /// server-managed.
    pub publish: Option<crate::publish::PublishRecord>,
    /// Chapters in episode seconds (from the proposal, or edited in review).
    pub chapters: Option<Vec<crate::episode::Chapter>>,
    /// Scheduled publication on YouTube: uploaded private, public at this time.
    pub publish_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Track {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UploadStatus {
    #[serde(rename = "FAILED")]
    Failed,
    #[serde(rename = "SUCCESS")]
    Success,
    #[serde(rename = "THROTTLED")]
    Throttled,
    #[serde(rename = "ready_to_upload")]
    ReadyToUpload,
    #[serde(rename = "not_ready_to_upload")]
    NotReadyToUpload,
}

impl UploadStatus {
    pub const ALL: &'static [&'static str] = &[
        "FAILED",
        "SUCCESS",
        "THROTTLED",
        "ready_to_upload",
        "not_ready_to_upload",
    ];
}

/// Cut list v1.0.0: which frame ranges of which source files make an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CutList {
    pub version: String,
    pub input_media: Vec<InputMedia>,
    pub output_track: Vec<OutputTrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlay_tracks: Vec<OverlayTrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audio_mixing: Vec<AudioMixing>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InputMedia {
    pub s3_location: String,
    pub sections: Vec<Section>,
}

/// `endFrame` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub start_frame: u64,
    pub end_frame: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputTrackItem {
    pub media_index: usize,
    pub section_index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_in: Option<Transition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_out: Option<Transition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Transition {
    #[serde(rename = "type")]
    pub kind: TransitionKind,
    /// Frames.
    pub duration: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    Fade,
    Cut,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverlayTrackItem {
    pub start_frame: u64,
    pub media_index: usize,
    pub section_index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    #[serde(rename = "type")]
    pub kind: OverlayKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverlayKind {
    Alpha,
    Colorkey,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AudioMixing {
    pub source_channel: u32,
    pub output_channel: u32,
    #[serde(default)]
    pub keyframes: Vec<VolumeKeyframe>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VolumeKeyframe {
    pub frame: u64,
    /// 0–2.
    pub volume: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Project {
    pub id: String,
    pub user_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub episode_id: Option<String>,
    pub cuts: Option<Vec<StreamClip>>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamClip {
    pub stream_id: String,
    /// Seconds from the stream start.
    pub start_time: f64,
    pub end_time: f64,
    pub title: String,
}

/// Per-user settings. The front end uses camelCase keys here, unlike everywhere else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Profile {
    pub id: String,
    pub user_id: Option<String>,
    pub timezone: Option<String>,
    #[serde(rename = "standardTags")]
    pub standard_tags: Option<Vec<String>>,
    #[serde(rename = "promptTemplate")]
    pub prompt_template: Option<String>,
    #[serde(rename = "summaryTemplate")]
    pub summary_template: Option<String>,
    #[serde(rename = "twitchChatEnabled")]
    pub twitch_chat_enabled: Option<bool>,
    #[serde(rename = "speechTrack")]
    pub speech_track: Option<i64>,
    /// Upload the episode's subtitles as YouTube captions when publishing.
    #[serde(rename = "youtubeCaptions")]
    pub youtube_captions: Option<bool>,
    /// `private` (default), `unlisted` or `public`.
    #[serde(rename = "youtubePrivacy")]
    pub youtube_privacy: Option<String>,
    /// Render settings: `{width, height, fps: [num, den], encoder, preset, crf, videoBitrate}`;
    /// absent fields keep the source's (which lets the smart cut copy whole GOPs).
    #[serde(rename = "renderProfile")]
    pub render_profile: Option<serde_json::Value>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Task {
    pub id: String,
    pub user_id: Option<String>,
    pub status: Option<TaskStatus>,
    pub task_type: Option<TaskType>,
    pub record_id: Option<String>,
    /// The Temporal workflow that runs this task.
    pub workflow_id: Option<String>,
    /// Human-readable outcome or failure reason.
    pub message: Option<String>,
    /// Fraction done (0–1) of the running step, where one is measured (render, upload).
    pub progress: Option<f64>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Pending,
    Running,
    Completed,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl TaskStatus {
    pub const ALL: &'static [&'static str] = &[
        "PENDING",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "TIMED_OUT",
        "ABORTED",
        "PENDING_REDRIVE",
    ];
    /// How a task ends: no later update changes it.
    pub const FINAL: &'static [&'static str] = &["COMPLETED", "FAILED", "TIMED_OUT", "ABORTED"];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    Ingestion,
    Upload,
    Rendering,
}

impl TaskType {
    pub const ALL: &'static [&'static str] = &["ingestion", "upload", "rendering"];
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ChatMessage {
    /// The EventSub message id (deduplication key).
    pub id: String,
    pub user_id: Option<String>,
    pub channel_id: Option<String>,
    pub sender_id: Option<String>,
    pub message: Option<String>,
    pub user_name: Option<String>,
    pub user_login: Option<String>,
    pub event_type: Option<String>,
    /// When the message was sent.
    pub timestamp: Option<Timestamp>,
    /// Epoch seconds after which the message is purged.
    pub ttl: Option<i64>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct StreamWidget {
    pub id: String,
    pub user_id: Option<String>,
    pub title: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub active: Option<bool>,
    pub config: Option<Value>,
    pub state: Option<Value>,
    /// Server-generated OBS credential (read-only access to this one widget).
    pub access_token: Option<String>,
    #[serde(rename = "showOnDashboard")]
    pub show_on_dashboard: Option<bool>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

pub const WIDGET_TYPES: &[&str] = &[
    "countdown",
    "text_overlay",
    "poll",
    "name_queue",
    "bot_integration",
    "ad_timer",
    "chat_overlay",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_list_uses_the_original_field_names() {
        let json = serde_json::json!({
            "version": "1.0.0",
            "inputMedia": [{"s3Location": "2024-01-01/a.mkv", "sections": [{"startFrame": 0, "endFrame": 60}]}],
            "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0, "transitionIn": {"type": "fade", "duration": 30}}]
        });
        let cut: CutList = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(cut.input_media[0].sections[0].end_frame, 60);
        assert_eq!(
            cut.output_track[0].transition_in.as_ref().unwrap().kind,
            TransitionKind::Fade
        );
        assert_eq!(serde_json::to_value(&cut).unwrap(), json);
    }

    #[test]
    fn status_enums_round_trip_with_the_original_spelling() {
        for s in TaskStatus::ALL {
            let v: TaskStatus = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(s));
        }
        for s in UploadStatus::ALL {
            let v: UploadStatus = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(s));
        }
        for s in TaskType::ALL {
            let v: TaskType = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(s));
        }
    }

    #[test]
    fn profile_keys_are_camel_case() {
        let p = Profile {
            id: "u".into(),
            standard_tags: Some(vec!["rust".into()]),
            ..Default::default()
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["standardTags"], serde_json::json!(["rust"]));
    }
}
