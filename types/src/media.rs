//! What a probe of a media file reports. Shaped like `ffprobe -show_format -show_streams`
//! (`{format, streams}`) because the original stored that JSON in `video_clips.metadata` and its
//! front end reads `metadata.format.duration`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MediaInfo {
    pub format: FormatInfo,
    pub streams: Vec<StreamInfo>,
}

impl MediaInfo {
    /// Audio streams in file order; `audio_tracks()[n]` is what `-map 0:a:n` selects.
    pub fn audio_tracks(&self) -> impl Iterator<Item = &StreamInfo> {
        self.streams
            .iter()
            .filter(|s| s.codec_type == CodecType::Audio)
    }

    pub fn video_tracks(&self) -> impl Iterator<Item = &StreamInfo> {
        self.streams
            .iter()
            .filter(|s| s.codec_type == CodecType::Video)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FormatInfo {
    /// Container short name(s), as FFmpeg names them, e.g. `matroska,webm`.
    pub format_name: String,
    /// Seconds.
    pub duration: f64,
    /// Bytes.
    pub size: u64,
    /// Bits per second, when the container knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    /// Seconds; FFmpeg's `start_time` of the container.
    #[serde(default)]
    pub start_time: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum CodecType {
    Video,
    Audio,
    Subtitle,
    Data,
    Attachment,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamInfo {
    /// Index of the stream in the container.
    pub index: usize,
    pub codec_type: CodecType,
    pub codec_name: String,
    /// Seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    // audio
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    // video
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Average frame rate (frames per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Frame rate as a fraction, e.g. `60/1` or `30000/1001`, for frame-exact cut lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<String>,
    // tags
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `title` tag, or `handler_name` (what MP4 files and OBS use to name tracks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}
