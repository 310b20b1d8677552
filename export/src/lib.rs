//! Subtitles and editor exports.
