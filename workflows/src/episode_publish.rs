//! `EpisodePublish` (`episode-publish-{owner}-{episode_id}`): render → verify → subtitles and
//! editor exports → YouTube upload → thumbnail, playlist item, captions → processing status.
//!
//! Started as a child of `StreamIngest` when an episode is approved, or by the API
//! (`POST /render` renders and exports only; `POST /upload/youtube` starts a run that uploads,
//! or asks a running one to, with the `request_upload` signal). Every step is an idempotent
//! activity writing to keys derived from its input, so a retried or re-run step reuses what is
//! done (a verified render, a confirmed upload session). A quota wall is a durable timer, not a
//! retry loop. `progress` is a query; `cancel` stops the running step and ends the run.
//!
//! Runs recorded before the pipeline existed only recorded the publish request; they replay
//! through the unpatched branch. Started as a child (no memo can be given then), the run writes
//! its owner into its own memo first, for the API's ownership check.

use std::time::{Duration, UNIX_EPOCH};

use gt_types::OWNER_MEMO;
use gt_types::publish::{
    EpisodeRef, FinishYouTube, PublishProgress, PublishStage, UploadEpisode, UploadOutcome,
    VideoStatusRequest,
};
use gt_types::records::{TaskStatus, TaskType};
use gt_types::workflow::{EpisodePublishInput, EpisodePublishOutput, TaskUpdate};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::common::error::ApplicationFailure;
use temporalio_workflow::{
    ActivityExecutionError, ActivityOptions, CancellableFuture, MemoValue, RetryPolicy,
    SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::contracts::{
    ArchiveActivities, ArchiveState, EpisodeActivities, PublishActivities, TaskActivities, failure,
};
use crate::restore_stream::{DEFAULT_POLL_SECONDS, DEFAULT_RESTORE_DAYS, restore_recordings};
use crate::{failure_message, failure_type};

/// Writes the owner into the memo before anything else.
pub const PATCH_OWNER_MEMO: &str = "owner-memo-v1";
/// Render, exports, upload and follow-ups instead of only recording the request.
pub const PATCH_PUBLISH_PIPELINE: &str = "publish-pipeline-v1";
/// Before rendering from an archived stream, restore its recordings (waiting durably).
pub const PATCH_RESTORE_BEFORE_RENDER: &str = "restore-before-render-v1";
/// After a published upload, archive the stream's recordings once every episode of it meant
/// for publishing is published.
pub const PATCH_ARCHIVE_AFTER_PUBLISH: &str = "archive-after-publish-v1";

/// Polls of YouTube's processing state: waits between them (the last repeats), and how many.
const PROCESSING_POLL_WAITS: [u64; 5] = [5, 10, 20, 40, 60];
const PROCESSING_POLLS: usize = 40;

#[workflow]
pub struct EpisodePublish {
    input: EpisodePublishInput,
    /// Kept for recorded runs' `status` query.
    status: String,
    progress: PublishProgress,
    cancel_requested: bool,
    /// Set by `resume`: end a quota wait now (the user raised the quota, or a test).
    resume_requested: bool,
}

enum Stop {
    Cancelled,
    Failed(String),
    /// The user must act first (connect or reconnect YouTube); the render is kept and the
    /// run ends with status `needs_youtube`.
    NeedsUser(String),
}

fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .maximum_attempts(max_attempts)
        .non_retryable_error_types([failure::INVALID_INPUT, failure::NEEDS_USER])
        .build()
}

fn short_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .retry_policy(retry(10))
        .build()
}

/// Rendering and uploading run long and heartbeat (every 2 s): a worker that dies is noticed
/// within the heartbeat timeout and the step resumes on another (a render from scratch at the same key,
/// an upload from the byte YouTube confirmed).
fn long_options(hours: u64) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(hours * 3600))
        .heartbeat_timeout(Duration::from_secs(20))
        .retry_policy(retry(5))
        .build()
}

fn needs_user(e: &ActivityExecutionError) -> bool {
    failure_type(e).as_deref() == Some(failure::NEEDS_USER)
}

#[workflow_methods]
impl EpisodePublish {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: EpisodePublishInput) -> Self {
        let progress = PublishProgress {
            upload_requested: input.upload,
            ..Default::default()
        };
        Self {
            input,
            status: "starting".into(),
            progress,
            cancel_requested: false,
            resume_requested: false,
        }
    }

    #[run(name = "EpisodePublish")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<EpisodePublishOutput> {
        let input = ctx.state(|s| s.input.clone());
        if ctx.patched(PATCH_OWNER_MEMO) {
            ctx.upsert_memo([(OWNER_MEMO, Some(MemoValue::new(input.user_id.clone())))])?;
        }
        if !ctx.patched(PATCH_PUBLISH_PIPELINE) {
            let out = ctx
                .execute_activity(
                    EpisodeActivities::record_publish_request,
                    input,
                    short_options(),
                )
                .await?;
            ctx.state_mut(|s| s.status = out.status.clone());
            return Ok(out);
        }
        let task = task_of(ctx, &input);
        let result = Self::pipeline(ctx, &input).await;
        let (stage, kind) = ctx.state(|s| {
            let kind = if matches!(
                s.progress.stage,
                PublishStage::Starting | PublishStage::Rendering | PublishStage::Exporting
            ) {
                TaskType::Rendering
            } else {
                TaskType::Upload
            };
            (s.progress.stage, kind)
        });
        match result {
            Ok(out) => Ok(out),
            Err(stop) => {
                let (status, message, final_stage) = match &stop {
                    Stop::Cancelled => (
                        TaskStatus::Aborted,
                        format!("cancelled while {stage:?}").to_lowercase(),
                        PublishStage::Cancelled,
                    ),
                    Stop::Failed(m) | Stop::NeedsUser(m) => {
                        (TaskStatus::Failed, m.clone(), PublishStage::Failed)
                    }
                };
                ctx.state_mut(|s| {
                    s.progress.stage = final_stage;
                    s.progress.message = Some(message.clone());
                });
                // Best effort: the run's outcome is what counts.
                let _ = ctx
                    .execute_activity(
                        TaskActivities::update_task,
                        task(kind, status, &message),
                        short_options(),
                    )
                    .await;
                // Cancelling and "connect YouTube first" are outcomes, not failures: what is
                // done (the render, the exports) stays and a later run reuses it.
                let outcome = match stop {
                    Stop::Cancelled => "cancelled",
                    Stop::NeedsUser(_) => "needs_youtube",
                    Stop::Failed(_) => {
                        return Err(ApplicationFailure::non_retryable(message).into());
                    }
                };
                ctx.state_mut(|s| s.status = outcome.into());
                Ok(EpisodePublishOutput {
                    episode_id: input.episode_id.clone(),
                    status: outcome.into(),
                    video_id: None,
                    render_key: ctx.state(|s| s.progress.render.as_ref().map(|r| r.key.clone())),
                })
            }
        }
    }

    async fn pipeline(
        ctx: &mut WorkflowContext<Self>,
        input: &EpisodePublishInput,
    ) -> Result<EpisodePublishOutput, Stop> {
        let task = task_of(ctx, input);
        let episode = EpisodeRef {
            user_id: input.user_id.clone(),
            episode_id: input.episode_id.clone(),
        };

        // Before the render stage begins: the stage says "rendering" only once the render
        // itself is next.
        if ctx.patched(PATCH_RESTORE_BEFORE_RENDER) {
            Self::restore_sources(ctx, input, &episode, &task).await?;
        }
        set_stage(ctx, PublishStage::Rendering);
        step(
            ctx,
            ctx.execute_activity(
                TaskActivities::update_task,
                task(TaskType::Rendering, TaskStatus::Running, "rendering"),
                short_options(),
            ),
        )
        .await?;
        let render = step(
            ctx,
            ctx.execute_activity(
                PublishActivities::render_episode,
                episode.clone(),
                long_options(6),
            ),
        )
        .await?;
        ctx.state_mut(|s| s.progress.render = Some(render.clone()));

        set_stage(ctx, PublishStage::Exporting);
        let exports = step(
            ctx,
            ctx.execute_activity(
                PublishActivities::write_exports,
                episode.clone(),
                short_options(),
            ),
        )
        .await?;
        ctx.state_mut(|s| s.progress.exports = Some(exports.clone()));
        let rendered = format!(
            "rendered ({}{}), {} frames, subtitles and editor files written",
            match render.method {
                gt_types::publish::RenderMethodKind::SmartCut => "smart cut",
                gt_types::publish::RenderMethodKind::FullReencode => "full re-encode",
            },
            render
                .fallback_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            render.frames
        );
        step(
            ctx,
            ctx.execute_activity(
                TaskActivities::update_task,
                task(TaskType::Rendering, TaskStatus::Completed, &rendered),
                short_options(),
            ),
        )
        .await?;

        if !ctx.state(|s| s.progress.upload_requested) {
            set_stage(ctx, PublishStage::Rendered);
            ctx.state_mut(|s| s.status = "rendered".into());
            return Ok(EpisodePublishOutput {
                episode_id: input.episode_id.clone(),
                status: "rendered".into(),
                video_id: None,
                render_key: Some(render.key),
            });
        }

        set_stage(ctx, PublishStage::Uploading);
        step(
            ctx,
            ctx.execute_activity(
                TaskActivities::update_task,
                task(
                    TaskType::Upload,
                    TaskStatus::Running,
                    "uploading to YouTube",
                ),
                short_options(),
            ),
        )
        .await?;
        let video_id = loop {
            let outcome = step(
                ctx,
                ctx.execute_activity(
                    PublishActivities::upload_youtube,
                    UploadEpisode {
                        user_id: input.user_id.clone(),
                        episode_id: input.episode_id.clone(),
                        render: render.clone(),
                    },
                    long_options(12),
                ),
            )
            .await?;
            match outcome {
                UploadOutcome::Uploaded { video_id } => break video_id,
                UploadOutcome::WaitUntil { until, reason } => {
                    let now = ctx
                        .workflow_time()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs() as i64);
                    let wait = Duration::from_secs((until - now).max(1) as u64);
                    let until_text = rfc3339(until);
                    ctx.state_mut(|s| {
                        s.progress.stage = PublishStage::WaitingForQuota;
                        s.progress.waiting_until = Some(until_text.clone());
                        s.progress.message = Some(reason.clone());
                    });
                    step(
                        ctx,
                        ctx.execute_activity(
                            TaskActivities::update_task,
                            task(
                                TaskType::Upload,
                                TaskStatus::Pending,
                                &format!("{reason}; resuming at {until_text}"),
                            ),
                            short_options(),
                        ),
                    )
                    .await?;
                    ctx.state_mut(|s| s.resume_requested = false);
                    let mut timer = ctx.timer(wait);
                    let mut cancelled = ctx.wait_condition(|s| s.cancel_requested);
                    let mut resumed = ctx.wait_condition(|s| s.resume_requested);
                    temporalio_workflow::select! {
                        _ = timer => {}
                        _ = cancelled => return Err(Stop::Cancelled),
                        _ = resumed => {}
                    };
                    ctx.state_mut(|s| {
                        s.progress.stage = PublishStage::Uploading;
                        s.progress.waiting_until = None;
                        s.resume_requested = false;
                    });
                }
            }
        };
        ctx.state_mut(|s| s.progress.video_id = Some(video_id.clone()));

        set_stage(ctx, PublishStage::Finishing);
        step(
            ctx,
            ctx.execute_activity(
                PublishActivities::finish_youtube,
                FinishYouTube {
                    user_id: input.user_id.clone(),
                    episode_id: input.episode_id.clone(),
                    video_id: video_id.clone(),
                    vtt: Some(exports.vtt.clone()),
                },
                short_options(),
            ),
        )
        .await?;

        set_stage(ctx, PublishStage::Processing);
        let mut processing = None;
        for poll in 0..PROCESSING_POLLS {
            let status = step(
                ctx,
                ctx.execute_activity(
                    PublishActivities::video_status,
                    VideoStatusRequest {
                        user_id: input.user_id.clone(),
                        episode_id: input.episode_id.clone(),
                        video_id: video_id.clone(),
                    },
                    short_options(),
                ),
            )
            .await?;
            let done = status.done;
            processing = Some(status);
            if done {
                break;
            }
            let wait = PROCESSING_POLL_WAITS[poll.min(PROCESSING_POLL_WAITS.len() - 1)];
            let mut timer = ctx.timer(Duration::from_secs(wait));
            let mut cancelled = ctx.wait_condition(|s| s.cancel_requested);
            temporalio_workflow::select! {
                _ = timer => {}
                _ = cancelled => return Err(Stop::Cancelled),
            };
        }
        let processed = processing.map_or_else(
            || "processing state unknown".to_string(),
            |p| format!("processing {}", p.processing_status),
        );
        step(
            ctx,
            ctx.execute_activity(
                TaskActivities::update_task,
                task(
                    TaskType::Upload,
                    TaskStatus::Completed,
                    &format!("published as https://youtu.be/{video_id} ({processed})"),
                ),
                short_options(),
            ),
        )
        .await?;
        if ctx.patched(PATCH_ARCHIVE_AFTER_PUBLISH) {
            // The publish is done whatever happens here: a failed archive leaves the
            // recordings standard (costlier, not wrong) and `POST …/archive` can retry it.
            let _ = ctx
                .execute_activity(
                    ArchiveActivities::archive_if_published,
                    episode.clone(),
                    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(1800))
                        .retry_policy(retry(5))
                        .build(),
                )
                .await;
        }
        set_stage(ctx, PublishStage::Completed);
        ctx.state_mut(|s| s.status = "published".into());
        Ok(EpisodePublishOutput {
            episode_id: input.episode_id.clone(),
            status: "published".into(),
            video_id: Some(video_id),
            render_key: Some(render.key),
        })
    }

    /// Restores the episode's stream when its recordings are archived, waiting durably (the
    /// render reads them). Shown on the render task row while it waits.
    async fn restore_sources(
        ctx: &mut WorkflowContext<Self>,
        input: &EpisodePublishInput,
        episode: &EpisodeRef,
        task: &impl Fn(TaskType, TaskStatus, &str) -> TaskUpdate,
    ) -> Result<(), Stop> {
        let source = step(
            ctx,
            ctx.execute_activity(
                ArchiveActivities::episode_stream,
                episode.clone(),
                short_options(),
            ),
        )
        .await?;
        let Some(stream_id) = source.stream_id else {
            return Ok(());
        };
        if source.state == ArchiveState::Standard {
            return Ok(());
        }
        ctx.state_mut(|s| {
            s.progress.message = Some(format!("restoring the recordings of stream {stream_id}"))
        });
        step(
            ctx,
            ctx.execute_activity(
                TaskActivities::update_task,
                task(
                    TaskType::Rendering,
                    TaskStatus::Running,
                    "restoring the stream's archived recordings",
                ),
                short_options(),
            ),
        )
        .await?;
        let stream = gt_types::workflow::StreamRef {
            user_id: input.user_id.clone(),
            stream_id,
        };
        let poll = Duration::from_secs(DEFAULT_POLL_SECONDS);
        match restore_recordings(ctx, &stream, poll, DEFAULT_RESTORE_DAYS, |s: &Self| {
            s.cancel_requested
        })
        .await
        {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Stop::Cancelled),
            Err(e) => Err(Stop::Failed(format!(
                "restoring the recordings: {}",
                failure_message(&e)
            ))),
        }
    }

    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> String {
        self.status.clone()
    }

    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> PublishProgress {
        self.progress.clone()
    }

    /// Upload after rendering (a run started by `POST /render` is asked to publish too).
    #[signal]
    pub fn request_upload(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.progress.upload_requested = true;
    }

    /// Ends a quota wait now instead of at the quota reset (after the quota was raised).
    #[signal]
    pub fn resume(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.resume_requested = true;
    }

    /// Stops the running step (its activity is cancelled at its next heartbeat) and ends the
    /// run; what is done (a render, an upload session) is kept for the next run.
    #[signal]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.cancel_requested = true;
    }
}

/// The run's task rows: `{run}-render` (rendering) and `{run}-upload` (upload), for the front
/// end's task drawer (the activities write progress to the same rows).
fn task_of(
    ctx: &WorkflowContext<EpisodePublish>,
    input: &EpisodePublishInput,
) -> impl Fn(TaskType, TaskStatus, &str) -> TaskUpdate + use<> {
    let (run_id, workflow_id) = (ctx.run_id().to_string(), ctx.workflow_id().to_string());
    let (user_id, episode_id) = (input.user_id.clone(), input.episode_id.clone());
    move |kind, status, message| TaskUpdate {
        user_id: user_id.clone(),
        task_id: format!("{run_id}-{}", task_suffix(kind)),
        task_type: kind,
        status,
        record_id: episode_id.clone(),
        workflow_id: workflow_id.clone(),
        message: Some(message.to_string()),
        progress: None,
    }
}

/// The task row suffix of a publish step's kind.
pub fn task_suffix(kind: TaskType) -> &'static str {
    if kind == TaskType::Upload {
        "upload"
    } else {
        "render"
    }
}

fn set_stage(ctx: &WorkflowContext<EpisodePublish>, stage: PublishStage) {
    ctx.state_mut(|s| {
        s.progress.stage = stage;
        s.progress.message = None;
    });
}

/// Runs one activity unless the run is cancelled first (then the activity is cancelled too).
async fn step<T>(
    ctx: &WorkflowContext<EpisodePublish>,
    activity: impl CancellableFuture<Output = Result<T, ActivityExecutionError>>,
) -> Result<T, Stop> {
    if ctx.state(|s| s.cancel_requested) {
        return Err(Stop::Cancelled);
    }
    let mut activity = std::pin::pin!(activity);
    let mut cancelled = ctx.wait_condition(|s| s.cancel_requested);
    temporalio_workflow::select! {
        result = activity.as_mut() => match result {
            Ok(v) => Ok(v),
            Err(e) if needs_user(&e) => Err(Stop::NeedsUser(failure_message(&e))),
            Err(e) => Err(Stop::Failed(failure_message(&e))),
        },
        _ = cancelled => {
            activity.cancel();
            Err(Stop::Cancelled)
        }
    }
}

/// Unix seconds as RFC 3339 (UTC), without a date library in the workflow.
fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub use episode_publish::Run as EpisodePublishRun;

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_042_794), "2026-11-30T12:46:34Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
