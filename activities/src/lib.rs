//! Implementations of the activity contracts in `gt_workflows::contracts`, grouped by concern.
//! Each is idempotent (upserts keyed by natural ids, outputs at deterministic keys), and bad
//! input fails non-retryably with a message naming the file or record and the reason.

pub mod analysis;
pub mod episodes;
#[cfg(feature = "whisper")]
pub mod gpu;
pub mod ingest;
pub mod media;
pub mod tasks;
pub mod text;
#[cfg(feature = "whisper")]
pub mod transcribe;
pub mod worker;

use std::future::Future;
use std::time::Duration;

use gt_store::StoreError;
use gt_workflows::contracts::failure;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub use analysis::MediaActivitiesImpl;
pub use episodes::EpisodeActivitiesImpl;
pub use ingest::IngestActivitiesImpl;
pub use tasks::TaskActivitiesImpl;
pub use text::TextActivitiesImpl;

/// A failure retrying cannot fix (bad input): reported once, with `message`.
pub fn invalid_input(message: impl Into<String>) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message.into())
            .type_name(failure::INVALID_INPUT.to_string())
            .non_retryable(true)
            .build(),
    )
}

/// Store errors: the caller's fault is final, ours (a database hiccup) is retried.
pub fn store_error(e: StoreError) -> ActivityError {
    match e {
        StoreError::Invalid(m) | StoreError::NotFound(m) | StoreError::Conflict(m) => {
            invalid_input(m)
        }
        StoreError::Backend(e) => {
            ActivityError::application(ApplicationFailure::new(format!("store: {e:#}")))
        }
    }
}

/// Runs `work` while heartbeating every `every`, so a long step is not mistaken for a dead
/// worker and a cancelled activity is noticed.
pub async fn with_heartbeats<T>(
    ctx: &ActivityContext,
    every: Duration,
    work: impl Future<Output = T>,
) -> Result<T, ActivityError> {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            _ = tick.tick() => {
                if ctx.is_cancelled() {
                    return Err(ActivityError::cancelled());
                }
                ctx.record_heartbeat(()).await.map_err(|e| ActivityError::from(anyhow::anyhow!(e)))?;
            }
        }
    }
}
