//! Temporal workflow definitions and the activity contracts they schedule.
//!
//! Everything here is deterministic: no I/O, no clocks, no randomness, no threads. Side effects
//! are activities, declared in [`contracts`] and implemented in `gt-activities`. The API links
//! this crate to start, signal and query workflows by type.

pub mod chat_capture;
#[cfg(feature = "client")]
pub mod client;
pub mod clip_reembed;
pub mod contracts;
pub mod episode_publish;
pub mod restore_stream;
pub mod stream_ingest;
pub mod widget_timer;

pub use chat_capture::{ChatCapture, ChatCaptureRun, TwitchMaintenance};
pub use clip_reembed::ClipReembed;
pub use episode_publish::{EpisodePublish, EpisodePublishRun};
pub use restore_stream::{ArchiveStream, ArchiveStreamRun, RestoreStream, RestoreStreamRun};
pub use stream_ingest::{StreamIngest, StreamIngestRun};
pub use widget_timer::{WidgetTimer, WidgetTimerRun};

use temporalio_workflow::ActivityExecutionError;
use temporalio_workflow::common::error::IncomingError;

/// The human-readable reason an activity failed: the application failure's message (which
/// names the file and the problem) rather than the SDK's wrapper text.
pub fn failure_message(err: &ActivityExecutionError) -> String {
    match err {
        ActivityExecutionError::Failed(f) => match f.cause() {
            Some(IncomingError::Application(app)) => app.to_string(),
            Some(other) => other.to_string(),
            None => f.to_string(),
        },
        other => other.to_string(),
    }
}

/// The application failure type an activity failed with (`InvalidInput`, `NeedsUser`, …).
pub fn failure_type(err: &ActivityExecutionError) -> Option<String> {
    match err {
        ActivityExecutionError::Failed(f) => match f.cause() {
            Some(IncomingError::Application(app)) => app.type_name().map(str::to_string),
            _ => None,
        },
        _ => None,
    }
}
