//! `RestoreStream` (`restore-stream-{owner}-{stream_id}`): brings a stream's archived raw
//! recordings back — a restore request per recording (Standard tier), then a durable wait on
//! Temporal timers (the first progress check after the poll interval, 60 s by default like
//! the original's Step Function, then at doubling intervals up to 15 min: S3 takes hours) until every one is readable, then each is made standard
//! again and the stream is marked `standard`. `ArchiveStream` (`archive-stream-{owner}-…`)
//! moves them to the archive class.
//!
//! [`restore_recordings`] is the same sequence for any workflow: `StreamIngest` runs it
//! before listing an archived stream and `EpisodePublish` before rendering from one, in their
//! own histories (behind `patched()`), so no second run has to be joined.

use std::time::Duration;

use gt_types::workflow::StreamRef;
use gt_types::{OWNER_MEMO, owner_segment};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityExecutionError, ActivityOptions, MemoValue, RetryPolicy, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

use crate::contracts::{ArchiveActivities, RecordingsStorage, RestoreRecordings, failure};

/// Seconds between progress checks unless the input says otherwise (the original polled S3
/// every 60 s).
pub const DEFAULT_POLL_SECONDS: u64 = 60;
/// Days a restored copy is kept (the original's `Days: 1`); it is made standard long before.
pub const DEFAULT_RESTORE_DAYS: u32 = 1;
/// The wait between progress checks doubles from the poll interval up to this. Glacier
/// restores take hours and each check is a timer and an activity in the history of the run
/// that waits (an ingestion or a publish too): a 12-hour restore polled every minute would add
/// thousands of events; this way it adds about fifty.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// How long the restores may take before the wait gives up: a Deep Archive Standard restore
/// takes up to 12 hours, so this only ends a restore that will never finish.
pub const MAX_RESTORE_WAIT: Duration = Duration::from_secs(4 * 24 * 3600);

/// `restore-stream-{owner}-{stream_id}`: one restore per stream at a time; a repeat joins it.
pub fn restore_stream_workflow_id(user_id: &str, stream_id: &str) -> String {
    format!("restore-stream-{}-{stream_id}", owner_segment(user_id))
}

/// `archive-stream-{owner}-{stream_id}`.
pub fn archive_stream_workflow_id(user_id: &str, stream_id: &str) -> String {
    format!("archive-stream-{}-{stream_id}", owner_segment(user_id))
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoreStreamInput {
    pub user_id: String,
    pub stream_id: String,
    /// Seconds between progress checks (default [`DEFAULT_POLL_SECONDS`]).
    #[serde(default)]
    pub poll_seconds: Option<u64>,
    /// Days the restored copies are kept (default [`DEFAULT_RESTORE_DAYS`]).
    #[serde(default)]
    pub days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoreStreamOutput {
    pub storage: RecordingsStorage,
    /// Progress checks made while restores ran (0 when all were readable at once).
    pub polls: u32,
}

fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(max_attempts)
        .non_retryable_error_types([failure::INVALID_INPUT])
        .build()
}

/// One HEAD or copy per recording: a few hundred objects at most per stream. Copies of 6 GB
/// objects run server-side on S3 (seconds each); locally they are renames.
fn archive_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(1800))
        .retry_policy(retry(10))
        .build()
}

/// Restores the stream's recordings and waits, durably, until all are readable; then makes
/// them standard. Usable from any workflow (its timers and activities land in that
/// workflow's history).
///
/// `cancelled` is the caller's stop condition, checked while waiting between polls: `None`
/// comes back when it turned true (the restores asked for go on at S3; a later run finds
/// them in progress or done).
pub async fn restore_recordings<W>(
    ctx: &WorkflowContext<W>,
    stream: &StreamRef,
    poll: Duration,
    days: u32,
    cancelled: fn(&W) -> bool,
) -> Result<Option<RestoreStreamOutput>, ActivityExecutionError> {
    let mut storage = ctx
        .execute_activity(
            ArchiveActivities::request_restore,
            RestoreRecordings {
                user_id: stream.user_id.clone(),
                stream_id: stream.stream_id.clone(),
                days,
            },
            archive_options(),
        )
        .await?;
    let mut polls = 0;
    let (mut interval, mut waited) = (poll, Duration::ZERO);
    while !storage.all_readable() && waited < MAX_RESTORE_WAIT {
        let mut timer = ctx.timer(interval);
        waited += interval;
        interval = (interval * 2).min(MAX_POLL_INTERVAL.max(poll));
        let mut stop = ctx.wait_condition(cancelled);
        temporalio_workflow::select! {
            _ = timer => {}
            _ = stop => return Ok(None),
        };
        polls += 1;
        storage = ctx
            .execute_activity(
                ArchiveActivities::restore_progress,
                stream.clone(),
                archive_options(),
            )
            .await?;
        if storage.archived > 0 {
            // A restored copy expired before the others were back (or a recording was
            // archived again meanwhile): ask again.
            storage = ctx
                .execute_activity(
                    ArchiveActivities::request_restore,
                    RestoreRecordings {
                        user_id: stream.user_id.clone(),
                        stream_id: stream.stream_id.clone(),
                        days,
                    },
                    archive_options(),
                )
                .await?;
        }
    }
    let storage = ctx
        .execute_activity(
            ArchiveActivities::make_standard,
            stream.clone(),
            archive_options(),
        )
        .await?;
    Ok(Some(RestoreStreamOutput { storage, polls }))
}

#[workflow]
pub struct RestoreStream {
    input: RestoreStreamInput,
}

#[workflow_methods]
impl RestoreStream {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: RestoreStreamInput) -> Self {
        Self { input }
    }

    #[run(name = "RestoreStream")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<RestoreStreamOutput> {
        let input = ctx.state(|s| s.input.clone());
        // Started by the API with the memo already set; set it again for runs started
        // otherwise (a child cannot be given one).
        ctx.upsert_memo([(OWNER_MEMO, Some(MemoValue::new(input.user_id.clone())))])?;
        let poll = Duration::from_secs(input.poll_seconds.unwrap_or(DEFAULT_POLL_SECONDS).max(1));
        let days = input.days.unwrap_or(DEFAULT_RESTORE_DAYS).max(1);
        let stream = StreamRef {
            user_id: input.user_id,
            stream_id: input.stream_id,
        };
        let out = restore_recordings(ctx, &stream, poll, days, |_| false).await?;
        Ok(out.expect("a restore without a stop condition runs to its end"))
    }
}

/// Moves a stream's recordings to the archive class (`POST …/archive`).
#[workflow]
pub struct ArchiveStream {
    input: StreamRef,
}

#[workflow_methods]
impl ArchiveStream {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: StreamRef) -> Self {
        Self { input }
    }

    #[run(name = "ArchiveStream")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<RecordingsStorage> {
        let input = ctx.state(|s| s.input.clone());
        ctx.upsert_memo([(OWNER_MEMO, Some(MemoValue::new(input.user_id.clone())))])?;
        Ok(ctx
            .execute_activity(ArchiveActivities::archive_stream, input, archive_options())
            .await?)
    }
}

pub use archive_stream::Run as ArchiveStreamRun;
pub use restore_stream::Run as RestoreStreamRun;

#[cfg(test)]
mod tests {
    #[test]
    fn ids_carry_the_owner() {
        assert_eq!(
            super::restore_stream_workflow_id("alice", "s1"),
            "restore-stream-alice-s1"
        );
        assert_ne!(
            super::restore_stream_workflow_id("a/b", "s"),
            super::restore_stream_workflow_id("a_b", "s")
        );
        assert_eq!(
            super::archive_stream_workflow_id("alice", "s1"),
            "archive-stream-alice-s1"
        );
    }
}
