//! Media work with FFmpeg's libraries, in-process.

pub mod audio;
pub mod probe;
pub mod silence;
pub mod speech;
pub mod video;

use std::sync::Once;

use ffmpeg_next as ffmpeg;

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
