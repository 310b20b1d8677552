//! `StreamIngest` (`stream-ingest-{owner}-{stream_id}`): turns a stream's recordings into
//! reviewable episodes.
//!
//! list media → probe each file (bounded parallelism; a bad file is recorded and skipped) →
//! set cumulative start times → speech maps → transcripts (GPU queue, chained prompt) alongside
//! previews → per clip a summary (chained context) and search embeddings → episode proposals →
//! wait, durably, for reviews → an `EpisodePublish` child per approved episode.
//!
//! A review is the `review` update: its validator refuses anything but undecided proposals of
//! this run (nothing is written then); the handler writes edits and decisions in one activity
//! (one transaction) and hands the decisions to the main loop, which starts the children. The
//! older `review` signal is still handled so recorded histories replay. Progress is a query;
//! `cancel` stops between steps. Deterministic: every side effect is an activity.

use std::time::Duration;

use gt_types::records::{TaskStatus, TaskType};
use gt_types::workflow::{
    AnalyzeClip, ApplyReview, ClipFailure, ClipRef, ClipStart, EmbedClip, EpisodePublishInput,
    FinalizeClips, IngestProgress, IngestStage, ProposeEpisodesInput, RecordReview, ReviewOutcome,
    ReviewSignal, ReviewUpdate, StreamIngestInput, StreamIngestOutput, StreamRef, SummarizeClip,
    TaskUpdate, TranscribeClip,
};
use gt_types::{GPU_TASK_QUEUE, episode_publish_workflow_id};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::common::error::ApplicationFailure;
use temporalio_workflow::workflows::{join, join_all};
use temporalio_workflow::{
    ActivityOptions, ChildWorkflowOptions, ChildWorkflowStartError, ParentClosePolicy, RetryPolicy,
    SignalWorkflowOptions, StartChildWorkflowExecutionFailedCause, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::contracts::{
    ArchiveActivities, ArchiveState, EpisodeActivities, GpuActivities, IngestActivities,
    MediaActivities, TaskActivities, TextActivities, failure,
};
use crate::episode_publish::EpisodePublish;
use crate::failure_message;
use crate::restore_stream::{DEFAULT_POLL_SECONDS, DEFAULT_RESTORE_DAYS, restore_recordings};

/// How a review refused because the run is not waiting for one begins (the API answers 409).
pub const NOT_WAITING: &str = "not waiting for review";

/// Files probed at once. Probing is I/O-light but decoding-heavy work follows per clip; a small
/// bound keeps one stream from monopolising the CPU workers.
pub const MAX_PARALLEL_PROBES: usize = 4;

/// Clips analysed at once. Each analysis already decodes in parallel chunks on every core.
pub const MAX_PARALLEL_ANALYSES: usize = 2;

/// Added the speech map and preview stage after clip finalisation.
pub const PATCH_MEDIA_ANALYSIS: &str = "media-analysis-v1";
/// Added transcription (on the GPU queue, alongside the previews) after the speech maps.
pub const PATCH_TRANSCRIPTION: &str = "transcription-v1";

/// Added summaries, embeddings, episode proposals, review and publish children.
pub const PATCH_EPISODES: &str = "episodes-v1";
/// Publish children are `episode-publish-{owner}-{episode_id}` (was `episode-publish-{id}`).
pub const PATCH_OWNER_IDS: &str = "owner-ids-v1";
/// Every stage change is written to the run's task row (stage in the message, percent in
/// `progress`), so the task drawer follows the ingestion over the WebSocket without polling.
pub const PATCH_STAGE_TASKS: &str = "stage-task-updates-v1";
/// An approval whose episode already has a publish run (from `POST /render`) signals that run
/// to upload instead of failing the ingestion.
pub const PATCH_JOIN_RUNNING_PUBLISH: &str = "join-running-publish-v1";
/// A re-ingest of an archived stream restores its recordings first (waiting durably).
pub const PATCH_RESTORE_BEFORE_INGEST: &str = "restore-before-ingest-v1";
/// Previews are built after the proposals are written (while the run waits for review), one
/// clip at a time: the review needs the transcripts, summaries and proposals, not the HLS
/// previews, and the preview encodes used to share the cores with transcription.
pub const PATCH_PREVIEWS_AFTER_PROPOSALS: &str = "previews-after-proposals-v1";

/// A review the main loop has not acted on yet; `recorded` when the update handler already
/// wrote it (a legacy signal is recorded by the main loop).
#[derive(Debug, Clone)]
struct QueuedReview {
    decision: ReviewSignal,
    recorded: bool,
}

/// Retries for activities that only fail on infrastructure hiccups; bad input is never retried.
fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(max_attempts)
        .non_retryable_error_types([failure::INVALID_INPUT])
        .build()
}

fn store_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .retry_policy(retry(10))
        .build()
}

fn listing_options() -> ActivityOptions {
    // Listing a folder of a few hundred files; remote stores page through 1000 keys at a time.
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(300))
        .retry_policy(retry(5))
        .build()
}

fn probe_options() -> ActivityOptions {
    // The end-of-data check reads the tail of the file; a file without a declared duration is
    // read whole, which for a multi-GB OBS segment takes a while on a slow disk.
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(1800))
        .heartbeat_timeout(Duration::from_secs(60))
        .retry_policy(retry(3))
        .build()
}

/// Time allowed for work proportional to a clip's length: `base` plus `per_second` of media.
fn scaled(base: u64, per_second: f64, clip: &ClipStart) -> Duration {
    Duration::from_secs(base + (per_second * clip.duration.max(0.0)) as u64)
}

fn analysis_options(clip: &ClipStart) -> ActivityOptions {
    // Decoding audio runs at hundreds of times real time; leave room for a slow, busy disk.
    ActivityOptions::with_start_to_close_timeout(scaled(300, 0.5, clip))
        .heartbeat_timeout(Duration::from_secs(60))
        .retry_policy(retry(3))
        .build()
}

fn preview_options(clip: &ClipStart) -> ActivityOptions {
    // A 480p H.264 encode runs around real time on two busy cores.
    ActivityOptions::with_start_to_close_timeout(scaled(600, 5.0, clip))
        .heartbeat_timeout(Duration::from_secs(60))
        .retry_policy(retry(3))
        .build()
}

fn transcription_options(clip: &ClipStart, queue: &str) -> ActivityOptions {
    // whisper on a GPU runs far faster than real time; on CPU cores about 0.1–0.5×.
    ActivityOptions::with_start_to_close_timeout(scaled(600, 3.0, clip))
        .task_queue(queue.to_string())
        .heartbeat_timeout(Duration::from_secs(30))
        .retry_policy(retry(5))
        .build()
}

/// Summaries and embeddings: a chat model answers a 20-minute transcript in under a minute
/// (rate limits are retried with backoff); local embedding runs on the CPU.
fn text_options(clip: &ClipStart) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(scaled(300, 0.2, clip))
        .heartbeat_timeout(Duration::from_secs(60))
        .retry_policy(retry(6))
        .build()
}

#[workflow]
pub struct StreamIngest {
    input: StreamIngestInput,
    progress: IngestProgress,
    cancel_requested: bool,
    /// Review decisions received and not yet acted on.
    reviews: Vec<QueuedReview>,
    /// Proposals not decided yet (set when the run starts waiting for review).
    pending: Vec<String>,
    /// Proposals a running review update is deciding: no other review may name them.
    deciding: Vec<String>,
    /// Whether reviews are accepted now.
    awaiting_review: bool,
}

#[workflow_methods]
impl StreamIngest {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: StreamIngestInput) -> Self {
        Self {
            input,
            progress: IngestProgress::default(),
            cancel_requested: false,
            reviews: Vec::new(),
            pending: Vec::new(),
            deciding: Vec::new(),
            awaiting_review: false,
        }
    }

    #[run(name = "StreamIngest")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<StreamIngestOutput> {
        let input = ctx.state(|s| s.input.clone());
        // One task record per run: a re-ingest is a new task in the front end's drawer.
        let (run_id, workflow_id) = (ctx.run_id().to_string(), ctx.workflow_id().to_string());
        let task = |status: TaskStatus, message: Option<String>| TaskUpdate {
            user_id: input.user_id.clone(),
            task_id: run_id.clone(),
            task_type: TaskType::Ingestion,
            status,
            record_id: input.stream_id.clone(),
            workflow_id: workflow_id.clone(),
            message,
            progress: None,
        };
        let running = task(TaskStatus::Running, None);
        ctx.execute_activity(TaskActivities::update_task, running, store_options())
            .await?;

        match Self::ingest(ctx, &input).await {
            Ok(out) => {
                set_stage(ctx, IngestStage::Completed, None);
                let msg = format!(
                    "{} clips, {:.1} s{}",
                    out.clip_count,
                    out.duration,
                    if out.failures.is_empty() {
                        String::new()
                    } else {
                        format!(", {} files could not be used", out.failures.len())
                    }
                );
                ctx.execute_activity(
                    TaskActivities::update_task,
                    task(TaskStatus::Completed, Some(msg)),
                    store_options(),
                )
                .await?;
                Ok(out)
            }
            Err(Stop::Cancelled) => {
                set_stage(ctx, IngestStage::Cancelled, None);
                ctx.execute_activity(
                    TaskActivities::update_task,
                    task(TaskStatus::Aborted, Some("cancelled".into())),
                    store_options(),
                )
                .await?;
                Err(ApplicationFailure::non_retryable("ingestion cancelled").into())
            }
            Err(Stop::Failed(message)) => {
                set_stage(ctx, IngestStage::Failed, None);
                ctx.execute_activity(
                    TaskActivities::update_task,
                    task(TaskStatus::Failed, Some(message.clone())),
                    store_options(),
                )
                .await?;
                Err(ApplicationFailure::non_retryable(message).into())
            }
        }
    }

    async fn ingest(
        ctx: &mut WorkflowContext<Self>,
        input: &StreamIngestInput,
    ) -> Result<StreamIngestOutput, Stop> {
        if ctx.patched(PATCH_RESTORE_BEFORE_INGEST) {
            Self::restore_if_archived(ctx, input).await?;
        }
        enter_stage(ctx, IngestStage::Listing, Some("listing media".into())).await;
        let media = ctx
            .execute_activity(
                IngestActivities::list_stream_media,
                StreamRef {
                    user_id: input.user_id.clone(),
                    stream_id: input.stream_id.clone(),
                },
                listing_options(),
            )
            .await
            .map_err(|e| Stop::Failed(failure_message(&e)))?;
        let keys: Vec<String> = media.objects.iter().map(|o| o.key.clone()).collect();
        ctx.state_mut(|s| s.progress.clips_total = keys.len() as u32);
        check_cancel(ctx)?;

        enter_stage(ctx, IngestStage::Probing, None).await;
        let mut failures = Vec::new();
        for chunk in keys.chunks(MAX_PARALLEL_PROBES) {
            ctx.state_mut(|s| s.progress.current = Some(format!("probing {}", chunk.join(", "))));
            let probes = chunk.iter().map(|key| {
                ctx.execute_activity(
                    IngestActivities::probe_clip,
                    ClipRef {
                        user_id: input.user_id.clone(),
                        stream_id: input.stream_id.clone(),
                        key: key.clone(),
                    },
                    probe_options(),
                )
            });
            for (key, result) in chunk.iter().zip(join_all(probes).await) {
                match result {
                    Ok(_) => ctx.state_mut(|s| s.progress.clips_done += 1),
                    Err(e) => {
                        // One unusable file must not sink the whole stream: record and go on.
                        let failure = ClipFailure {
                            key: key.clone(),
                            reason: failure_message(&e),
                        };
                        ctx.state_mut(|s| {
                            s.progress.clips_failed += 1;
                            s.progress.failures.push(failure.clone());
                        });
                        failures.push(failure);
                    }
                }
            }
            ctx.state_mut(|s| s.progress.update_percent());
            check_cancel(ctx)?;
        }

        enter_stage(ctx, IngestStage::Recording, Some("recording clips".into())).await;
        let finalized = ctx
            .execute_activity(
                IngestActivities::finalize_stream_clips,
                FinalizeClips {
                    user_id: input.user_id.clone(),
                    stream_id: input.stream_id.clone(),
                    keys,
                    failures: failures.clone(),
                },
                store_options(),
            )
            .await
            .map_err(|e| Stop::Failed(failure_message(&e)))?;
        check_cancel(ctx)?;

        let mut out = StreamIngestOutput {
            clip_count: finalized.clip_count,
            duration: finalized.duration,
            ..Default::default()
        };
        let mut transcribed = Vec::new();
        let mut previews_after_proposals = false;
        if ctx.patched(PATCH_MEDIA_ANALYSIS) {
            previews_after_proposals = ctx.patched(PATCH_PREVIEWS_AFTER_PROPOSALS);
            let previews = if previews_after_proposals {
                Previews::AfterProposals
            } else {
                Previews::BesideTranscription
            };
            let analysed =
                Self::analyse(ctx, input, &finalized.clips, media.speech_track, previews).await?;
            out.speech_seconds = analysed.speech_seconds;
            out.transcript_segments = analysed.segments;
            transcribed = analysed.transcribed;
            failures.extend(analysed.failures);
        }
        if ctx.patched(PATCH_EPISODES) {
            Self::summarise_and_embed(ctx, input, &transcribed, &mut out, &mut failures).await?;
            // The proposals are ready for review before any preview is encoded; the previews
            // are built while the run waits for the reviewer.
            let previews = previews_after_proposals.then_some(finalized.clips.as_slice());
            failures.extend(Self::propose_and_review(ctx, input, &mut out, previews).await?);
        }
        ctx.state_mut(|s| s.progress.percent = 100.0);
        out.failures = failures;
        Ok(out)
    }

    /// Restores the stream's recordings when they are archived, waiting durably (S3 takes
    /// hours), so the probes read them.
    async fn restore_if_archived(
        ctx: &mut WorkflowContext<Self>,
        input: &StreamIngestInput,
    ) -> Result<(), Stop> {
        let stream = StreamRef {
            user_id: input.user_id.clone(),
            stream_id: input.stream_id.clone(),
        };
        let state = ctx
            .execute_activity(
                ArchiveActivities::stream_state,
                stream.clone(),
                store_options(),
            )
            .await
            .map_err(|e| Stop::Failed(failure_message(&e)))?;
        if state == ArchiveState::Standard {
            return Ok(());
        }
        ctx.state_mut(|s| s.progress.current = Some("restoring the archived recordings".into()));
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

    /// Per transcribed clip, in order: its summary (context chained from the previous one)
    /// and its search embeddings, side by side.
    async fn summarise_and_embed(
        ctx: &mut WorkflowContext<Self>,
        input: &StreamIngestInput,
        clips: &[ClipStart],
        out: &mut StreamIngestOutput,
        failures: &mut Vec<ClipFailure>,
    ) -> Result<(), Stop> {
        enter_stage(ctx, IngestStage::Summarizing, None).await;
        let mut context = input.initial_summary.clone();
        for clip in clips {
            ctx.state_mut(|s| {
                s.progress.current = Some(format!("summary and embeddings of {}", clip.key))
            });
            let (summary, embedded) = join!(
                ctx.execute_activity(
                    TextActivities::summarize_clip,
                    SummarizeClip {
                        user_id: input.user_id.clone(),
                        stream_id: input.stream_id.clone(),
                        key: clip.key.clone(),
                        context: context.clone(),
                    },
                    text_options(clip),
                ),
                ctx.execute_activity(
                    TextActivities::embed_clip,
                    EmbedClip {
                        user_id: input.user_id.clone(),
                        stream_id: input.stream_id.clone(),
                        key: clip.key.clone(),
                    },
                    text_options(clip),
                )
            );
            match summary {
                Ok(s) => context = s.context,
                Err(e) => failures.push(ClipFailure {
                    key: clip.key.clone(),
                    reason: format!("summary: {}", failure_message(&e)),
                }),
            }
            match embedded {
                Ok(e) => out.windows_embedded += e.windows,
                Err(e) => failures.push(ClipFailure {
                    key: clip.key.clone(),
                    reason: format!("embeddings: {}", failure_message(&e)),
                }),
            }
            ctx.state_mut(|s| {
                s.progress.clips_summarized += 1;
                s.progress.clips_embedded += 1;
                s.progress.update_percent();
            });
            check_cancel(ctx)?;
        }
        Ok(())
    }

    /// Proposes episodes, then (unless told not to) waits for review decisions, for as long
    /// as it takes, starting an `EpisodePublish` child for each approved episode. With
    /// `previews`, those clips' previews are built once the proposals are written, while the
    /// run waits; their failures are returned.
    async fn propose_and_review(
        ctx: &WorkflowContext<Self>,
        input: &StreamIngestInput,
        out: &mut StreamIngestOutput,
        previews: Option<&[ClipStart]>,
    ) -> Result<Vec<ClipFailure>, Stop> {
        enter_stage(
            ctx,
            IngestStage::Proposing,
            Some("proposing episodes".into()),
        )
        .await;
        let proposed = ctx
            .execute_activity(
                EpisodeActivities::propose_episodes,
                ProposeEpisodesInput {
                    user_id: input.user_id.clone(),
                    stream_id: input.stream_id.clone(),
                    params: input.episodes.unwrap_or_default(),
                },
                store_options(),
            )
            .await
            .map_err(|e| Stop::Failed(format!("proposing episodes: {}", failure_message(&e))))?;
        let ids: Vec<String> = proposed.episodes.iter().map(|e| e.id.clone()).collect();
        out.episodes_proposed = ids.clone();
        ctx.state_mut(|s| s.progress.episodes_proposed = ids.len() as u32);
        let Some(clips) = previews else {
            Self::await_reviews(ctx, input, ids, out).await?;
            return Ok(Vec::new());
        };
        // Each encode uses every core: one clip at a time.
        let (reviewed, previewed) = join!(
            Self::await_reviews(ctx, input, ids, out),
            Self::previews(ctx, input, clips, 1, true)
        );
        let failures = previewed?;
        reviewed?;
        Ok(failures)
    }

    /// Unless the run was told not to, waits for review decisions on `ids`, for as long as it
    /// takes, starting an `EpisodePublish` child for each approved episode.
    async fn await_reviews(
        ctx: &WorkflowContext<Self>,
        input: &StreamIngestInput,
        ids: Vec<String>,
        out: &mut StreamIngestOutput,
    ) -> Result<(), Stop> {
        if !input.await_review.unwrap_or(true) || ids.is_empty() {
            return Ok(());
        }
        enter_stage(
            ctx,
            IngestStage::AwaitingReview,
            Some("waiting for review".into()),
        )
        .await;
        ctx.state_mut(|s| {
            s.progress.update_percent();
            s.pending = ids;
            s.awaiting_review = true;
        });
        loop {
            ctx.wait_condition(|s| {
                !s.reviews.is_empty()
                    || s.cancel_requested
                    || (s.pending.is_empty() && s.deciding.is_empty())
            })
            .await
            .map_err(|_| Stop::Cancelled)?;
            check_cancel(ctx)?;
            let Some(QueuedReview { decision, recorded }) = ctx.state_mut(|s| {
                if s.reviews.is_empty() {
                    None
                } else {
                    Some(s.reviews.remove(0))
                }
            }) else {
                // Every proposal is decided.
                break;
            };
            let (approve, reject) = if recorded {
                (decision.approve, decision.reject)
            } else {
                // A legacy signal: decisions about episodes this run did not propose (or
                // already decided) are ignored, then recorded here.
                let pending = ctx.state(|s| s.pending.clone());
                let approve: Vec<String> = decision
                    .approve
                    .into_iter()
                    .filter(|id| pending.contains(id))
                    .collect();
                let reject: Vec<String> = decision
                    .reject
                    .into_iter()
                    .filter(|id| pending.contains(id) && !approve.contains(id))
                    .collect();
                if approve.is_empty() && reject.is_empty() {
                    continue;
                }
                ctx.execute_activity(
                    EpisodeActivities::record_review,
                    RecordReview {
                        user_id: input.user_id.clone(),
                        stream_id: input.stream_id.clone(),
                        approve: approve.clone(),
                        reject: reject.clone(),
                    },
                    store_options(),
                )
                .await
                .map_err(|e| {
                    Stop::Failed(format!("recording the review: {}", failure_message(&e)))
                })?;
                ctx.state_mut(|s| {
                    s.pending
                        .retain(|id| !approve.contains(id) && !reject.contains(id))
                });
                (approve, reject)
            };
            if approve.is_empty() && reject.is_empty() {
                continue;
            }
            enter_stage(ctx, IngestStage::Publishing, None).await;
            let owner_ids = ctx.patched(PATCH_OWNER_IDS);
            for id in &approve {
                let workflow_id = if owner_ids {
                    episode_publish_workflow_id(&input.user_id, id)
                } else {
                    format!("episode-publish-{id}")
                };
                // Publishing goes on even if this ingestion is later cancelled.
                let opts = ChildWorkflowOptions::builder()
                    .workflow_id(workflow_id)
                    .parent_close_policy(ParentClosePolicy::Abandon)
                    .build();
                let started = ctx
                    .start_child_workflow(
                        EpisodePublish::run,
                        EpisodePublishInput {
                            user_id: input.user_id.clone(),
                            episode_id: id.clone(),
                            upload: true,
                        },
                        opts,
                    )
                    .await;
                match started {
                    Ok(_) => {}
                    // A run for the episode is already going (`POST /render` started it):
                    // ask it to upload as well.
                    Err(ChildWorkflowStartError::StartFailed {
                        cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
                        ..
                    }) if owner_ids && ctx.patched(PATCH_JOIN_RUNNING_PUBLISH) => {
                        let signalled = ctx
                            .external_workflow(
                                episode_publish_workflow_id(&input.user_id, id),
                                None,
                            )
                            .signal(
                                EpisodePublish::request_upload,
                                (),
                                SignalWorkflowOptions::default(),
                            )
                            .await;
                        if let Err(e) = signalled {
                            return Err(Stop::Failed(format!(
                                "asking the running publish of {id} to upload: {e:?}"
                            )));
                        }
                    }
                    Err(e) => {
                        return Err(Stop::Failed(format!("starting the publish of {id}: {e}")));
                    }
                }
            }
            out.episodes_approved.extend(approve);
            out.episodes_rejected.extend(reject);
            let decided = (out.episodes_approved.len() + out.episodes_rejected.len()) as u32;
            ctx.state_mut(|s| s.progress.episodes_reviewed = decided);
            if ctx.state(|s| !s.pending.is_empty() || !s.deciding.is_empty()) {
                set_stage(
                    ctx,
                    IngestStage::AwaitingReview,
                    Some("waiting for review".into()),
                );
            }
        }
        ctx.state_mut(|s| s.awaiting_review = false);
        Ok(())
    }

    /// Speech maps for every clip; then transcripts (GPU queue, in order, each prompted with
    /// the previous one's tail), alongside previews (CPU) in runs recorded before
    /// [`PATCH_PREVIEWS_AFTER_PROPOSALS`]. A clip that fails is recorded and skipped.
    async fn analyse(
        ctx: &mut WorkflowContext<Self>,
        input: &StreamIngestInput,
        clips: &[ClipStart],
        speech_track: Option<u32>,
        previews: Previews,
    ) -> Result<Analysed, Stop> {
        let params = input.analysis.unwrap_or_default();
        let mut failures = Vec::new();
        let mut speech_seconds = 0.0;
        let mut analysed = Vec::new();
        enter_stage(ctx, IngestStage::Analyzing, None).await;
        for chunk in clips.chunks(MAX_PARALLEL_ANALYSES) {
            ctx.state_mut(|s| {
                s.progress.current = Some(format!(
                    "speech map of {}",
                    chunk
                        .iter()
                        .map(|c| c.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            });
            let jobs = chunk.iter().map(|clip| {
                ctx.execute_activity(
                    MediaActivities::analyze_speech,
                    AnalyzeClip {
                        user_id: input.user_id.clone(),
                        stream_id: input.stream_id.clone(),
                        key: clip.key.clone(),
                        start_time: clip.start_time,
                        speech_track,
                        params,
                    },
                    analysis_options(clip),
                )
            });
            for (clip, result) in chunk.iter().zip(join_all(jobs).await) {
                match result {
                    Ok(a) => {
                        speech_seconds += a.speech_seconds;
                        analysed.push(clip.clone());
                    }
                    Err(e) => failures.push(ClipFailure {
                        key: clip.key.clone(),
                        reason: failure_message(&e),
                    }),
                }
                ctx.state_mut(|s| {
                    s.progress.clips_analyzed += 1;
                    s.progress.update_percent();
                });
            }
            check_cancel(ctx)?;
        }
        let mut segments = 0;
        let mut transcribed_clips = Vec::new();
        if ctx.patched(PATCH_TRANSCRIPTION) {
            let (transcribed, previewed) = if previews == Previews::AfterProposals {
                ctx.state_mut(|s| s.progress.current = Some("transcribing".into()));
                (
                    Self::transcribe(ctx, input, &analysed).await,
                    Ok(Vec::new()),
                )
            } else {
                ctx.state_mut(|s| {
                    s.progress.current = Some("transcribing and building previews".into())
                });
                join!(
                    Self::transcribe(ctx, input, &analysed),
                    Self::previews(ctx, input, clips, MAX_PARALLEL_ANALYSES, false)
                )
            };
            let (n, done, f) = transcribed?;
            segments = n;
            transcribed_clips = done;
            failures.extend(f);
            failures.extend(previewed?);
        } else {
            failures.extend(Self::previews(ctx, input, clips, MAX_PARALLEL_ANALYSES, false).await?);
        }
        Ok(Analysed {
            speech_seconds,
            segments,
            transcribed: transcribed_clips,
            failures,
        })
    }

    /// Transcripts of the clips in stream order; each prompt carries the previous one's tail.
    async fn transcribe(
        ctx: &WorkflowContext<Self>,
        input: &StreamIngestInput,
        clips: &[ClipStart],
    ) -> Result<(u32, Vec<ClipStart>, Vec<ClipFailure>), Stop> {
        let queue = input
            .gpu_task_queue
            .clone()
            .unwrap_or_else(|| GPU_TASK_QUEUE.into());
        let mut prompt = input.initial_prompt.clone();
        let mut segments = 0;
        let mut failures = Vec::new();
        let mut done = Vec::new();
        for clip in clips {
            let result = ctx
                .execute_activity(
                    GpuActivities::transcribe_clip,
                    TranscribeClip {
                        user_id: input.user_id.clone(),
                        stream_id: input.stream_id.clone(),
                        key: clip.key.clone(),
                        start_time: clip.start_time,
                        initial_prompt: prompt.clone(),
                        language: input.language.clone(),
                    },
                    transcription_options(clip, &queue),
                )
                .await;
            match result {
                Ok(t) => {
                    segments += t.segments;
                    done.push(clip.clone());
                    // A clip with no speech keeps the context of the one before.
                    if !t.tail.is_empty() {
                        prompt = t.tail;
                    }
                }
                Err(e) => failures.push(ClipFailure {
                    key: clip.key.clone(),
                    reason: format!("transcription: {}", failure_message(&e)),
                }),
            }
            ctx.state_mut(|s| {
                s.progress.clips_transcribed += 1;
                s.progress.update_percent();
            });
            check_cancel(ctx)?;
        }
        Ok((segments, done, failures))
    }

    /// Thumbnails and HLS previews, `parallel` clips at a time; with `announce`, the task row
    /// is written after each (the previews built after the proposals).
    async fn previews(
        ctx: &WorkflowContext<Self>,
        input: &StreamIngestInput,
        clips: &[ClipStart],
        parallel: usize,
        announce: bool,
    ) -> Result<Vec<ClipFailure>, Stop> {
        let mut failures = Vec::new();
        for chunk in clips.chunks(parallel.max(1)) {
            let jobs = chunk.iter().map(|clip| {
                ctx.execute_activity(
                    MediaActivities::make_preview,
                    ClipRef {
                        user_id: input.user_id.clone(),
                        stream_id: input.stream_id.clone(),
                        key: clip.key.clone(),
                    },
                    preview_options(clip),
                )
            });
            for (clip, result) in chunk.iter().zip(join_all(jobs).await) {
                if let Err(e) = result {
                    failures.push(ClipFailure {
                        key: clip.key.clone(),
                        reason: format!("preview: {}", failure_message(&e)),
                    });
                }
                ctx.state_mut(|s| {
                    s.progress.clips_previewed += 1;
                    s.progress.update_percent();
                });
            }
            if announce {
                // Built while the run waits for review: the page shows it without a reload.
                write_task_progress(ctx).await;
            }
            check_cancel(ctx)?;
        }
        Ok(failures)
    }

    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> IngestProgress {
        self.progress.clone()
    }

    /// Stops the ingestion at the next step boundary (a running activity finishes first).
    #[signal]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.cancel_requested = true;
    }

    /// Legacy review decisions (before the `review` update); acted on in the order received.
    #[signal(name = "review")]
    pub fn review_signal(&mut self, _ctx: &mut SyncWorkflowContext<Self>, decision: ReviewSignal) {
        self.reviews.push(QueuedReview {
            decision,
            recorded: false,
        });
    }

    /// Refuses a review unless this run waits for one and every id it names is one of the
    /// run's undecided proposals. Runs before anything is written.
    #[update_validator(review)]
    pub fn validate_review(
        &self,
        _ctx: &WorkflowContextView,
        review: &ReviewUpdate,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if !self.awaiting_review {
            return Err(format!(
                "{NOT_WAITING}: the ingestion is at stage {:?}",
                self.progress.stage
            )
            .into());
        }
        if let Some(e) = review.shape_error() {
            return Err(e.into());
        }
        let unknown: Vec<&str> = review
            .ids()
            .filter(|id| !self.pending.iter().any(|p| p == id))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "not proposals of this stream awaiting review: {}",
                unknown.join(", ")
            )
            .into());
        }
        Ok(())
    }

    /// Writes the review (edits and decisions, one transaction) and hands the decisions to the
    /// main loop, which starts a publish child per approval.
    #[update(name = "review")]
    pub async fn review(
        ctx: &mut WorkflowContext<Self>,
        review: ReviewUpdate,
    ) -> Result<ReviewOutcome, Box<dyn std::error::Error + Send + Sync>> {
        let input = ctx.state(|s| s.input.clone());
        let decided: Vec<String> = review
            .approve
            .iter()
            .chain(&review.reject)
            .cloned()
            .collect();
        // Claim the ids at once: a second review naming them is refused by the validator.
        ctx.state_mut(|s| {
            s.pending.retain(|id| !decided.contains(id));
            s.deciding.extend(decided.iter().cloned());
        });
        let written = ctx
            .execute_activity(
                EpisodeActivities::apply_review,
                ApplyReview {
                    user_id: input.user_id.clone(),
                    stream_id: input.stream_id.clone(),
                    approve: review.approve.clone(),
                    reject: review.reject.clone(),
                    edits: review.edits.clone(),
                },
                store_options(),
            )
            .await;
        ctx.state_mut(|s| {
            s.deciding.retain(|id| !decided.contains(id));
            if written.is_err() {
                // Nothing was written: the proposals are undecided again.
                s.pending.extend(decided.iter().cloned());
            } else if !decided.is_empty() {
                s.reviews.push(QueuedReview {
                    decision: ReviewSignal {
                        approve: review.approve.clone(),
                        reject: review.reject.clone(),
                    },
                    recorded: true,
                });
            }
        });
        written.map_err(|e| failure_message(&e))?;
        Ok(ReviewOutcome {
            approved: review.approve,
            rejected: review.reject,
            edited: review.edits.into_iter().map(|e| e.id).collect(),
        })
    }
}

/// When a run builds its previews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Previews {
    /// Beside transcription, two clips at a time (runs recorded before
    /// [`PATCH_PREVIEWS_AFTER_PROPOSALS`]).
    BesideTranscription,
    /// After the proposals are written, one clip at a time.
    AfterProposals,
}

struct Analysed {
    speech_seconds: f64,
    segments: u32,
    transcribed: Vec<ClipStart>,
    failures: Vec<ClipFailure>,
}

enum Stop {
    Cancelled,
    Failed(String),
}

/// Sets the stage (for the `progress` query) and writes it to the run's task row: stage name
/// as the message, percent as `progress` (the API pushes the row to the owner's `/ws`). A
/// failed task write does not stop the ingestion.
async fn enter_stage(
    ctx: &WorkflowContext<StreamIngest>,
    stage: IngestStage,
    current: Option<String>,
) {
    set_stage(ctx, stage, current);
    if !ctx.patched(PATCH_STAGE_TASKS) {
        return;
    }
    write_task_progress(ctx).await;
}

/// Writes the run's task row: the current stage as the message, percent as `progress` (the
/// API pushes the row to the owner's `/ws`, and the page reloads what changed). A failed write
/// does not stop the ingestion.
async fn write_task_progress(ctx: &WorkflowContext<StreamIngest>) {
    let (input, percent, stage) = ctx.state(|s| {
        let mut p = s.progress.clone();
        p.update_percent();
        (s.input.clone(), p.percent, p.stage)
    });
    let name = serde_json::to_value(stage)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let update = TaskUpdate {
        user_id: input.user_id.clone(),
        task_id: ctx.run_id().to_string(),
        task_type: TaskType::Ingestion,
        status: TaskStatus::Running,
        record_id: input.stream_id.clone(),
        workflow_id: ctx.workflow_id().to_string(),
        message: Some(name),
        progress: Some(percent / 100.0),
    };
    let _ = ctx
        .execute_activity(TaskActivities::update_task, update, store_options())
        .await;
}

fn set_stage(ctx: &WorkflowContext<StreamIngest>, stage: IngestStage, current: Option<String>) {
    ctx.state_mut(|s| {
        s.progress.stage = stage;
        s.progress.current = current;
    });
}

fn check_cancel(ctx: &WorkflowContext<StreamIngest>) -> Result<(), Stop> {
    if ctx.state(|s| s.cancel_requested) {
        Err(Stop::Cancelled)
    } else {
        Ok(())
    }
}

pub use stream_ingest::Run as StreamIngestRun;
