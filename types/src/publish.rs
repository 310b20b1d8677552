//! Publishing an approved episode (`EpisodePublish`): render → verify → subtitles and editor
//! exports → YouTube upload → thumbnail, playlist item, captions → processing status. The
//! inputs and outputs of its activities, its progress, and the per-user publishing settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where `EpisodePublish` is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublishStage {
    #[default]
    Starting,
    Rendering,
    Exporting,
    Uploading,
    /// A quota or upload limit was hit: a durable timer runs until `waiting_until`.
    WaitingForQuota,
    /// Thumbnail, playlist item, captions.
    Finishing,
    /// Polling YouTube until the video is processed.
    Processing,
    /// Rendered and exported; no upload was asked for (`POST /render`).
    Rendered,
    Completed,
    Failed,
    Cancelled,
}

/// The `progress` query of `EpisodePublish`. Render percent and uploaded bytes also go to the
/// episode's task row (and so over the WebSocket) while the activities run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PublishProgress {
    pub stage: PublishStage,
    /// Whether this run uploads (approval and `POST /upload/youtube` ask for it).
    pub upload_requested: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<RenderedEpisode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<WrittenExports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    /// RFC 3339 time a quota wait ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Input of the publish activities that need only the episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EpisodeRef {
    pub user_id: String,
    pub episode_id: String,
}

/// How an episode was rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenderMethodKind {
    /// Whole GOPs copied, only the partial GOPs at each cut re-encoded.
    SmartCut,
    FullReencode,
}

/// Output of `publish.render_episode` (also stored on the episode as `publish.render`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RenderedEpisode {
    /// Artifact key of the MP4 (`{owner}/renders/{episode}/{fingerprint}.mp4`).
    pub key: String,
    /// Fingerprint of what was rendered (cut list, sources, profile): same input, same key.
    pub fingerprint: String,
    pub method: RenderMethodKind,
    /// Why the smart cut was not used or not kept, if it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub frames: u64,
    pub duration_s: f64,
    pub copied_packets: u64,
    pub reencoded_frames: u64,
    pub bytes: u64,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    /// Whether an earlier, verified render of the same input was reused.
    #[serde(default)]
    pub reused: bool,
}

/// Output of `publish.write_exports`: artifact keys of the episode's files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WrittenExports {
    pub srt: String,
    pub vtt: String,
    pub otio: String,
    pub edl: String,
    /// Subtitle cues written.
    pub cues: u32,
}

/// Input of `publish.upload_youtube`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UploadEpisode {
    pub user_id: String,
    pub episode_id: String,
    pub render: RenderedEpisode,
}

/// Output of `publish.upload_youtube`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UploadOutcome {
    /// The video exists (uploaded now, or found from an earlier attempt's session).
    Uploaded { video_id: String },
    /// YouTube refused for a while (quota, daily upload limit, a long `Retry-After`): the
    /// workflow sleeps durably until `until` (unix seconds) and tries again; the session and
    /// confirmed offset are kept on the episode.
    WaitUntil { until: i64, reason: String },
}

/// Input of `publish.finish_youtube`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FinishYouTube {
    pub user_id: String,
    pub episode_id: String,
    pub video_id: String,
    /// The WebVTT key, uploaded as captions if the user enabled it.
    pub vtt: Option<String>,
}

/// Output of `publish.finish_youtube`: what each follow-up call did. A refused thumbnail (an
/// account that may not set custom thumbnails) is recorded, not fatal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FinishedYouTube {
    pub thumbnail: StepOutcome,
    pub playlist_item: StepOutcome,
    pub captions: StepOutcome,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum StepOutcome {
    /// Nothing to do (no thumbnail, no playlist, captions not enabled).
    #[default]
    Skipped,
    Done(String),
    Refused(String),
}

/// Input of `publish.video_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VideoStatusRequest {
    pub user_id: String,
    pub episode_id: String,
    pub video_id: String,
}

/// YouTube's processing state of an uploaded video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VideoProcessing {
    /// `processingDetails.processingStatus`: `processing`, `succeeded`, `failed`, `terminated`.
    pub processing_status: String,
    /// `status.uploadStatus`: `uploaded`, `processed`, `failed`, `rejected`, `deleted`.
    pub upload_status: String,
    /// Processing is over, one way or the other (as the YouTube client judges the two
    /// statuses).
    #[serde(default)]
    pub done: bool,
}

/// What the episode row keeps of publishing (`episodes.publish`, server-managed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PublishRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<RenderedEpisode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<WrittenExports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub youtube_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub youtube: Option<FinishedYouTube>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<VideoProcessing>,
}

/// YouTube's "Gaming" category, used when neither the episode nor its series names one.
pub const DEFAULT_CATEGORY: i64 = 20;

/// What an upload sets on the video, chosen from the episode, its series and the user's
/// profile: the episode's own field wins, then the series', then the default. Tags are the
/// episode's (else the series') followed by the profile's standard tags, without repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct YouTubeFields {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category_id: String,
    /// `private`, `unlisted` or `public` (the profile's `youtubePrivacy`; private by default,
    /// and private when the episode is scheduled).
    pub privacy: String,
    /// The episode's `publish_at`: YouTube makes the private video public then.
    pub publish_at: Option<crate::records::Timestamp>,
    pub notify_subscribers: bool,
    pub playlist_id: Option<String>,
    /// The profile's `youtubeCaptions`.
    pub captions: bool,
}

pub fn youtube_fields(
    episode: &crate::records::Episode,
    series: Option<&crate::records::Series>,
    profile: &crate::records::Profile,
) -> YouTubeFields {
    let mut tags: Vec<String> = Vec::new();
    let own = episode
        .tags
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| series.and_then(|s| s.tags.clone()))
        .unwrap_or_default();
    for t in own
        .into_iter()
        .chain(profile.standard_tags.clone().unwrap_or_default())
    {
        let t = t.trim().to_string();
        if !t.is_empty() && !tags.iter().any(|x| x.eq_ignore_ascii_case(&t)) {
            tags.push(t);
        }
    }
    YouTubeFields {
        title: episode.title.clone().unwrap_or_default().trim().to_string(),
        description: episode.description.clone().unwrap_or_default(),
        tags,
        category_id: episode
            .category
            .or_else(|| series.and_then(|s| s.category))
            .unwrap_or(DEFAULT_CATEGORY)
            .to_string(),
        privacy: if episode.publish_at.is_some() {
            "private".into()
        } else {
            profile
                .youtube_privacy
                .clone()
                .unwrap_or_else(|| "private".into())
        },
        publish_at: episode.publish_at,
        notify_subscribers: episode
            .notify_subscribers
            .or_else(|| series.and_then(|s| s.notify_subscribers))
            .unwrap_or(false),
        playlist_id: episode
            .playlist_id
            .clone()
            .or_else(|| series.and_then(|s| s.playlist_id.clone()))
            .filter(|p| !p.trim().is_empty()),
        captions: profile.youtube_captions.unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Episode, Profile, Series};

    #[test]
    fn the_episode_wins_then_the_series_then_the_defaults() {
        let series = Series {
            tags: Some(vec!["castle".into(), "Speedrun".into()]),
            category: Some(24),
            playlist_id: Some("PL1".into()),
            notify_subscribers: Some(true),
            ..Default::default()
        };
        let profile = Profile {
            standard_tags: Some(vec!["speedrun".into(), "live".into()]),
            youtube_captions: Some(true),
            ..Default::default()
        };
        let ep = Episode {
            title: Some("  Episode 1 ".into()),
            ..Default::default()
        };
        let f = youtube_fields(&ep, Some(&series), &profile);
        assert_eq!(f.title, "Episode 1");
        assert_eq!(f.tags, ["castle", "Speedrun", "live"]);
        assert_eq!(f.category_id, "24");
        assert_eq!(f.playlist_id.as_deref(), Some("PL1"));
        assert!(f.notify_subscribers && f.captions);
        assert_eq!(f.privacy, "private");
        let ep = Episode {
            tags: Some(vec!["boss".into()]),
            category: Some(20),
            notify_subscribers: Some(false),
            ..ep
        };
        let f = youtube_fields(&ep, None, &Profile::default());
        assert_eq!(f.tags, ["boss"]);
        assert_eq!(f.category_id, "20");
        assert_eq!(f.playlist_id, None);
        assert!(!f.notify_subscribers && !f.captions);
    }
}
