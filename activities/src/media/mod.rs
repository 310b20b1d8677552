//! Media work with FFmpeg's libraries, in-process.

pub mod audio;
pub mod probe;
pub mod silence;
pub mod speech;
pub mod video;

use std::path::Path;
use std::sync::Once;

use ffmpeg_next as ffmpeg;
pub use gt_store::blob::MediaSource;

/// Why a file cannot be used. All of these are the file's fault: retrying cannot help.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MediaError {
    #[error("{0}: the file is empty (0 bytes)")]
    Empty(String),
    #[error("{0}: cannot read the file: {1}")]
    Unreadable(String, String),
    #[error("{0}: not a media file FFmpeg can read ({1})")]
    NotMedia(String, String),
    #[error("{0}: corrupt media: {1}")]
    Corrupt(String, String),
    #[error("{0}: truncated: the header says {1:.3} s but the data ends at {2:.3} s")]
    Truncated(String, f64, f64),
    #[error("{0}: has no audio track")]
    NoAudio(String),
    #[error("{0}: has {1} audio track(s); track {2} (counting from 0) was asked for")]
    NoSuchTrack(String, usize, usize),
}

/// Registers FFmpeg's formats once and keeps its own logging quiet (errors reach us as values).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        ffmpeg::init().expect("FFmpeg failed to initialise");
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// How long FFmpeg waits on a stalled read from a URL before failing (microseconds, as its
/// `rw_timeout` option takes it): a hung connection must fail the activity, which is retried,
/// rather than hold its slot until the heartbeat timeout.
const URL_READ_TIMEOUT_US: &str = "30000000";

/// Opens a recording for demuxing; `name` (its blob key) names it in errors. A local file must
/// hold bytes (FFmpeg's own message for an empty file says little). A URL is read with FFmpeg's
/// `http(s)` protocol, which seeks with range requests, so only what is demuxed is transferred
/// (a probe reads the index, not a 6 GB recording); a dropped connection is reopened at the
/// offset it reached.
pub(crate) fn open_input(
    source: &MediaSource,
    name: &str,
) -> Result<ffmpeg::format::context::Input, MediaError> {
    init();
    match source {
        MediaSource::File(path) => {
            let size = std::fs::metadata(path)
                .map_err(|e| MediaError::Unreadable(name.into(), e.to_string()))?
                .len();
            if size == 0 {
                return Err(MediaError::Empty(name.into()));
            }
            ffmpeg::format::input(path)
                .map_err(|e| MediaError::NotMedia(name.into(), e.to_string()))
        }
        MediaSource::Url(url) => {
            let mut options = ffmpeg::Dictionary::new();
            options.set("rw_timeout", URL_READ_TIMEOUT_US);
            options.set("reconnect", "1");
            options.set("reconnect_on_network_error", "1");
            options.set("reconnect_delay_max", "10");
            // An HTTP failure (403 for an expired or tampered URL, 404) is the store's answer,
            // not a verdict on the file.
            let probe_http = |e: ffmpeg::Error| match e {
                ffmpeg::Error::HttpForbidden
                | ffmpeg::Error::HttpNotFound
                | ffmpeg::Error::HttpBadRequest
                | ffmpeg::Error::HttpUnauthorized
                | ffmpeg::Error::HttpOther4xx
                | ffmpeg::Error::HttpServerError => {
                    MediaError::Unreadable(name.into(), e.to_string())
                }
                e => MediaError::NotMedia(name.into(), e.to_string()),
            };
            ffmpeg::format::input_with_dictionary(&Path::new(url.as_str()), options)
                .map_err(probe_http)
        }
    }
}

/// The size in bytes of an opened input (for a URL, what the server said in its answer).
pub(crate) fn input_size(ictx: &ffmpeg::format::context::Input) -> u64 {
    // SAFETY: an opened input owns a live AVIOContext (`pb`); `avio_size` only reads it.
    let size = unsafe {
        let pb = (*ictx.as_ptr()).pb;
        if pb.is_null() {
            -1
        } else {
            ffmpeg::ffi::avio_size(pb)
        }
    };
    u64::try_from(size).unwrap_or(0)
}
