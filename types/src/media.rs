//! What a probe of a media file reports. Shaped like `ffprobe -show_format -show_streams`
//! (`{format, streams}`) because the original stored that JSON in `video_clips.metadata` and its
//! front end reads `metadata.format.duration`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::records::Interval;

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
    /// Typical seconds between keyframes, estimated from the start of the file (how finely a
    /// stream copy can cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe_interval: Option<f64>,
    // tags
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `title` tag, or `handler_name` (what MP4 files and OBS use to name tracks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Version of the media analysis; bumping it makes ingestion redo analyses stored by older code.
pub const ANALYSIS_VERSION: &str = "speech-2";
/// Version of the preview (thumbnails + HLS).
pub const PREVIEW_VERSION: &str = "preview-1";

/// How silence and speech are told apart: FFmpeg `silencedetect` parameters for what is loud
/// enough, a voice-activity threshold for what of that is a voice, and a margin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalysisParams {
    /// Noise threshold in dBFS: quieter samples count as silence.
    pub noise_db: f64,
    /// Shortest pause, seconds, that counts as silence (and between two stretches of voice).
    pub min_silence: f64,
    /// Seconds of context kept on both sides of speech, so words are not clipped.
    pub margin: f64,
    /// Silero VAD probability from which a 32 ms window is voice (0.5, Silero's default); 0
    /// keeps everything the energy threshold calls speech.
    #[serde(default = "default_voice_threshold")]
    pub voice_threshold: f64,
}

fn default_voice_threshold() -> f64 {
    0.5
}

impl Default for AnalysisParams {
    fn default() -> Self {
        Self {
            noise_db: -50.0,
            min_silence: 2.0,
            margin: 0.25,
            voice_threshold: default_voice_threshold(),
        }
    }
}

impl AnalysisParams {
    /// Checks the ranges; the message names the parameter.
    pub fn validate(&self) -> Result<(), String> {
        if !(-120.0..=0.0).contains(&self.noise_db) {
            return Err(format!(
                "noise_db must be between -120 and 0 dB, got {}",
                self.noise_db
            ));
        }
        if !(0.01..=3600.0).contains(&self.min_silence) {
            return Err(format!(
                "min_silence must be between 0.01 and 3600 s, got {}",
                self.min_silence
            ));
        }
        if !(0.0..=10.0).contains(&self.margin) {
            return Err(format!(
                "margin must be between 0 and 10 s, got {}",
                self.margin
            ));
        }
        if !(0.0..=1.0).contains(&self.voice_threshold) {
            return Err(format!(
                "voice_threshold must be between 0 and 1, got {}",
                self.voice_threshold
            ));
        }
        Ok(())
    }
}

/// The speech map of a clip: where the streamer talks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpeechMap {
    pub version: String,
    /// Audio track analysed (counting audio streams from 0).
    pub track: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_title: Option<String>,
    pub params: AnalysisParams,
    /// Clip seconds of the first and one-past-last audio sample.
    pub start: f64,
    pub end: f64,
    /// Silence as `silencedetect` reports it, clip seconds.
    pub silence: Vec<Interval>,
    /// Speech: voice (Silero VAD) inside the complement of silence, padded by the margin,
    /// clip seconds.
    pub speech: Vec<Interval>,
    /// The clip's start in the stream when the map was made.
    pub stream_offset: f64,
    /// `speech` in stream seconds.
    pub stream_speech: Vec<Interval>,
    pub speech_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<SpeechAudio>,
}

/// Thumbnails and the HLS preview of a clip.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Preview {
    pub version: String,
    /// Blob key of the clip's HLS playlist (empty for a file without video).
    pub playlist: String,
    pub segments: Vec<PreviewSegment>,
    /// Blob keys of the thumbnails, in time order.
    pub keyframes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreviewSegment {
    pub key: String,
    pub duration: f64,
}

/// Speech audio: the speech intervals of a clip's speech track at 16 kHz mono, concatenated
/// (with short silent gaps between them), and the map back to clip time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpeechAudio {
    /// Blob key of the WAV file (16-bit mono).
    pub key: String,
    pub sample_rate: u32,
    /// Seconds of audio in the file.
    pub duration: f64,
    /// Where each piece of the file comes from, in order.
    pub segments: Vec<SpeechSegment>,
}

/// `[start, end)` of the clip (seconds) is at `offset` seconds in the speech audio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpeechSegment {
    pub start: f64,
    pub end: f64,
    pub offset: f64,
}

impl SpeechAudio {
    /// Audio that is one piece of speech from clip time 0 (a whole file handed over as is).
    pub fn whole(key: &str, duration: f64) -> Self {
        Self {
            key: key.to_string(),
            sample_rate: 16_000,
            duration,
            segments: vec![SpeechSegment {
                start: 0.0,
                end: duration,
                offset: 0.0,
            }],
        }
    }

    /// The index of the segment whose audio holds speech-audio time `t`, or, inside a gap, of
    /// the segment before it (the last one after the end, the first one before the start).
    pub fn segment_at(&self, t: f64) -> Option<usize> {
        if self.segments.is_empty() {
            return None;
        }
        Some(
            self.segments
                .iter()
                .rposition(|s| t >= s.offset)
                .unwrap_or(0),
        )
    }

    /// Clip time of speech-audio time `t` as the *end* of something said: a time inside a
    /// gap between segments maps to the end of the segment before it (nothing was said in
    /// between).
    pub fn to_clip_time(&self, t: f64) -> f64 {
        match self.segment_at(t) {
            Some(i) => {
                let s = &self.segments[i];
                (s.start + (t - s.offset)).clamp(s.start, s.end)
            }
            None => t,
        }
    }

    /// Clip time of speech-audio time `t` as the *start* of something said: a time inside a
    /// gap maps to the start of the segment after it (speech resumes there, not in the pause).
    pub fn to_clip_start(&self, t: f64) -> f64 {
        let Some(i) = self.segment_at(t) else {
            return t;
        };
        let s = &self.segments[i];
        let in_audio = t - s.offset;
        match self.segments.get(i + 1) {
            Some(next) if in_audio >= s.end - s.start => next.start,
            _ => (s.start + in_audio).clamp(s.start, s.end),
        }
    }

    /// The segment a word starting at speech-audio time `t` belongs to (the one after a gap).
    pub fn segment_of_start(&self, t: f64) -> Option<usize> {
        let i = self.segment_at(t)?;
        let s = &self.segments[i];
        Some(
            if t - s.offset >= s.end - s.start && i + 1 < self.segments.len() {
                i + 1
            } else {
                i
            },
        )
    }

    /// Speech-audio time of clip time `t`, if `t` is inside a speech segment.
    pub fn to_audio_time(&self, t: f64) -> Option<f64> {
        self.segments
            .iter()
            .find(|s| t >= s.start && t < s.end)
            .map(|s| s.offset + (t - s.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_time_map_round_trips() {
        let a = SpeechAudio {
            key: "k".into(),
            sample_rate: 16_000,
            duration: 7.25,
            segments: vec![
                SpeechSegment {
                    start: 2.0,
                    end: 5.0,
                    offset: 0.0,
                },
                SpeechSegment {
                    start: 10.0,
                    end: 14.0,
                    offset: 3.25,
                },
            ],
        };
        for t in [2.0, 3.5, 4.999, 10.0, 12.25, 13.9] {
            let o = a.to_audio_time(t).unwrap();
            assert!((a.to_clip_time(o) - t).abs() < 1e-9, "{t}");
        }
        assert_eq!(a.to_audio_time(7.0), None);
        // Inside the gap: the end of the segment before as an end, the start of the next as
        // a start; the segment of a start in the gap is the next one.
        assert_eq!(a.to_clip_time(3.1), 5.0);
        assert_eq!(a.to_clip_start(3.1), 10.0);
        assert_eq!(a.segment_of_start(3.1), Some(1));
        assert_eq!(a.segment_of_start(2.9), Some(0));
        assert_eq!(a.to_clip_start(2.5), 4.5);
        assert_eq!(a.to_clip_time(7.25), 14.0);
        assert_eq!(a.to_clip_start(7.25), 14.0);
        assert_eq!(a.to_clip_start(-1.0), 2.0);
    }
}
