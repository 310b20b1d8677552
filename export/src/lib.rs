//! Subtitles and editor exports of an episode, in episode time.
//!
//! [`EpisodeTimeline::build`] lays an episode's cut list (v1.0.0) out in episode time, from one
//! [`SourceMedia`] per `inputMedia` entry (its frame rate, length, file URL, transcript and
//! highlights); see [`timeline`] for how crossfades overlap and how transcripts are cut. From
//! it:
//!
//! - [`subtitles::cues`] → [`subtitles::to_srt`], [`subtitles::to_webvtt`];
//! - [`otio::to_otio_json`] (OpenTimelineIO `.otio`);
//! - [`edl::to_edl`] (CMX 3600).
//!
//! Pure functions over records: nothing here reads files or the database.

pub mod edl;
pub mod otio;
pub mod rational;
pub mod subtitles;
pub mod timeline;

pub use rational::{FrameRate, Rational};
pub use timeline::{EpisodeTimeline, SourceMedia};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The cut list does not describe a playable episode (bad index, empty section, a fade
    /// longer than what it fades).
    #[error("the cut list cannot be exported: {0}")]
    InvalidCutList(String),
}

/// Which export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Otio,
    Edl,
    Srt,
    WebVtt,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 4] = [Self::Otio, Self::Edl, Self::Srt, Self::WebVtt];

    /// File extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Otio => "otio",
            Self::Edl => "edl",
            Self::Srt => "srt",
            Self::WebVtt => "vtt",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.extension() == ext)
    }

    /// The media type served with it.
    pub fn content_type(self) -> &'static str {
        match self {
            // OTIO has no registered type; it is JSON.
            Self::Otio => "application/json",
            Self::Edl => "text/plain; charset=utf-8",
            Self::Srt => "application/x-subrip; charset=utf-8",
            Self::WebVtt => "text/vtt; charset=utf-8",
        }
    }

    /// The file's text.
    pub fn render(self, timeline: &EpisodeTimeline) -> String {
        match self {
            Self::Otio => otio::to_otio_json(timeline),
            Self::Edl => edl::to_edl(timeline),
            Self::Srt => subtitles::to_srt(&subtitles::cues(timeline)),
            Self::WebVtt => subtitles::to_webvtt(&subtitles::cues(timeline)),
        }
    }
}

/// `file://` URL of an absolute path (see [`url_path`]).
pub fn file_url(path: &std::path::Path) -> String {
    format!("file://{}", url_path(path))
}

/// A path as a URL path: each byte but RFC 3986 unreserved characters and `/`
/// percent-encoded. For a relative path this is a relative URL reference.
pub fn url_path(path: &std::path::Path) -> String {
    let mut out = String::new();
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(
            file_url(std::path::Path::new("/rec/alice/2024-05-01/19 00 #1é.mkv")),
            "file:///rec/alice/2024-05-01/19%2000%20%231%C3%A9.mkv"
        );
        assert_eq!(
            ExportFormat::from_extension("vtt"),
            Some(ExportFormat::WebVtt)
        );
        assert_eq!(ExportFormat::from_extension("mp4"), None);
    }
}
