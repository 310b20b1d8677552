//! The API's handle on Temporal: start, query, signal, update and describe workflows by type.
//! The API links workflow definitions (for their names and message types), never their
//! activities.
//!
//! Every workflow id carries its owner (`stream-ingest-{owner}-{stream_id}`, …) and every run
//! started here carries the owner's user id in its memo. Before a run is described, queried,
//! signalled, updated or cancelled, its memo is compared with the caller: another user's run
//! is "not found", whatever its id.

use gt_types::api::{IngestStatus, PublishStatus, WorkflowStarted};
use gt_types::chat::{ChatCaptureInput, ChatCaptureStatus, StreamWentLive, SubscriptionRevoked};
use gt_types::widget::{WidgetTimerInput, WidgetWake};
use gt_types::workflow::{
    EmbedClip, EpisodePublishInput, ReviewOutcome, ReviewUpdate, StreamIngestInput,
};
use gt_types::{
    OWNER_MEMO, chat_capture_workflow_id, clip_reembed_workflow_id, episode_publish_workflow_id,
    stream_ingest_workflow_id, widget_timer_workflow_id,
};
use gt_workflows::stream_ingest::NOT_WAITING;
use gt_workflows::{
    ChatCapture, ChatCaptureRun, ClipReembed, EpisodePublish, EpisodePublishRun, StreamIngest,
    WidgetTimer, WidgetTimerRun,
};
use temporalio_client::errors::{
    WorkflowGetResultError, WorkflowInteractionError, WorkflowQueryError, WorkflowStartError,
    WorkflowUpdateError,
};
use temporalio_client::{
    Client, RpcOptions, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions,
    WorkflowExecutionDescription, WorkflowExecutionInfo, WorkflowExecutionStatus,
    WorkflowGetResultOptions, WorkflowHandle, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowQueryOptions, WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_common::MemoValues;

use crate::error::ApiError;

/// How long a progress query may wait for a worker to answer.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a review may take (validation, one database transaction).
const UPDATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone)]
pub struct Workflows {
    client: Client,
    cpu_task_queue: String,
    gpu_task_queue: String,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("{what}: Temporal error: {e}"))
}

/// The innermost message of an error chain (for workflow failures: the activity's reason).
fn root_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn status_name(s: WorkflowExecutionStatus) -> &'static str {
    match s {
        WorkflowExecutionStatus::Running => "RUNNING",
        WorkflowExecutionStatus::Completed => "COMPLETED",
        WorkflowExecutionStatus::Failed => "FAILED",
        WorkflowExecutionStatus::Canceled => "CANCELED",
        WorkflowExecutionStatus::Terminated => "TERMINATED",
        WorkflowExecutionStatus::ContinuedAsNew => "CONTINUED_AS_NEW",
        WorkflowExecutionStatus::TimedOut => "TIMED_OUT",
        WorkflowExecutionStatus::Paused => "PAUSED",
        _ => "UNKNOWN",
    }
}

/// The memo a run started for `user_id` carries.
fn owner_memo(user_id: &str) -> MemoValues {
    let mut memo = MemoValues::new();
    memo.insert(OWNER_MEMO, user_id.to_string());
    memo
}

/// The owner in a run's memo, if it has one.
fn memo_owner(desc: &WorkflowExecutionDescription) -> Option<String> {
    desc.memo().get::<String>(OWNER_MEMO).ok().flatten()
}

/// What a user can ask of a running publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishSignal {
    Cancel,
    Resume,
}

/// The answer for a start that joined the run already going.
fn joined(workflow_id: String, run: OwnedRun) -> WorkflowStarted {
    WorkflowStarted {
        id: workflow_id.clone(),
        workflow_id,
        run_id: run.run_id,
        started: false,
    }
}

/// What the API reports of a run (see [`Workflows::report`]).
struct RunReport<P, O> {
    run_id: String,
    status: String,
    progress: P,
    note: Option<String>,
    result: Option<O>,
    error: Option<String>,
}

/// A run of the caller's: its latest run id and status.
struct OwnedRun {
    run_id: String,
    status: WorkflowExecutionStatus,
}

impl Workflows {
    pub fn new(
        client: Client,
        cpu_task_queue: impl Into<String>,
        gpu_task_queue: impl Into<String>,
    ) -> Self {
        Self {
            client,
            cpu_task_queue: cpu_task_queue.into(),
            gpu_task_queue: gpu_task_queue.into(),
        }
    }

    /// Whether the frontend answers: describing an execution that does not exist is a cheap
    /// round trip that needs no worker.
    pub async fn ping(&self) -> Result<(), String> {
        let h = self
            .client
            .get_workflow_handle::<StreamIngest>("gt-readiness-probe");
        match h.describe(WorkflowDescribeOptions::default()).await {
            Ok(_) | Err(WorkflowInteractionError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn handle<R: temporalio_common::HasWorkflowDefinition>(
        &self,
        workflow_id: &str,
        run_id: Option<String>,
    ) -> WorkflowHandle<Client, R> {
        let info = WorkflowExecutionInfo::builder()
            .namespace(self.client.options().namespace.clone())
            .workflow_id(workflow_id.to_string())
            .maybe_run_id(run_id)
            .build();
        WorkflowHandle::new(self.client.clone(), info)
    }

    /// The latest run of `workflow_id` if `user_id` owns it (its memo says so); `None` when
    /// there is no run or it is someone else's.
    async fn owned_run(
        &self,
        user_id: &str,
        workflow_id: &str,
    ) -> Result<Option<OwnedRun>, ApiError> {
        let desc = match self
            .handle::<gt_workflows::StreamIngestRun>(workflow_id, None)
            .describe(WorkflowDescribeOptions::default())
            .await
        {
            Ok(d) => d,
            Err(WorkflowInteractionError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(unavailable("describing a workflow", e)),
        };
        if memo_owner(&desc).as_deref() != Some(user_id) {
            tracing::warn!(workflow_id, "a run not owned by the caller was asked for");
            return Ok(None);
        }
        Ok(Some(OwnedRun {
            run_id: desc.run_id().to_string(),
            status: desc.status(),
        }))
    }

    /// Starts `StreamIngest` for the stream, or returns the execution already running for it.
    /// A finished ingestion may be started again (re-ingest).
    pub async fn start_ingest(
        &self,
        mut input: StreamIngestInput,
    ) -> Result<WorkflowStarted, ApiError> {
        input.gpu_task_queue = Some(self.gpu_task_queue.clone());
        let workflow_id = stream_ingest_workflow_id(&input.user_id, &input.stream_id);
        let user_id = input.user_id.clone();
        self.start_or_join(
            StreamIngest::run,
            input,
            &user_id,
            workflow_id,
            "StreamIngest",
        )
        .await
    }

    /// Starts `workflow` under `workflow_id` for `user_id` (owner memo, a finished run may be
    /// started again), or finds the caller's run already going under that id (`Err(run)`);
    /// someone else's run under the id is a 409.
    async fn start_or_find<W>(
        &self,
        workflow: W,
        input: W::Input,
        user_id: &str,
        workflow_id: &str,
        what: &str,
    ) -> Result<Result<WorkflowStarted, OwnedRun>, ApiError>
    where
        W: temporalio_common::HasWorkflowDefinition,
        W::Input: Send,
    {
        let opts = WorkflowStartOptions::new(self.cpu_task_queue.clone(), workflow_id.to_string())
            .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
            .memo(owner_memo(user_id))
            .build();
        match self.client.start_workflow(workflow, input, opts).await {
            Ok(handle) => Ok(Ok(WorkflowStarted {
                id: workflow_id.to_string(),
                workflow_id: workflow_id.to_string(),
                run_id: handle.run_id().unwrap_or_default().to_string(),
                started: true,
            })),
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                Ok(Err(self.running_of(user_id, workflow_id).await?))
            }
            Err(e) => Err(unavailable(&format!("starting {what}"), e)),
        }
    }

    /// [`Self::start_or_find`], joining the caller's running run.
    async fn start_or_join<W>(
        &self,
        workflow: W,
        input: W::Input,
        user_id: &str,
        workflow_id: String,
        what: &str,
    ) -> Result<WorkflowStarted, ApiError>
    where
        W: temporalio_common::HasWorkflowDefinition,
        W::Input: Send,
    {
        Ok(
            match self
                .start_or_find(workflow, input, user_id, &workflow_id, what)
                .await?
            {
                Ok(started) => started,
                Err(run) => joined(workflow_id, run),
            },
        )
    }

    /// The run already going under `workflow_id`, if it is the caller's; 409 otherwise (the id
    /// is taken by someone else's run).
    async fn running_of(&self, user_id: &str, workflow_id: &str) -> Result<OwnedRun, ApiError> {
        self.owned_run(user_id, workflow_id).await?.ok_or_else(|| {
            ApiError::Conflict(format!(
                "workflow id {workflow_id} is taken by a run that is not yours"
            ))
        })
    }

    /// The caller's latest ingestion of the stream, or 404.
    async fn owned_ingest(&self, user_id: &str, stream_id: &str) -> Result<OwnedRun, ApiError> {
        self.owned_run(user_id, &stream_ingest_workflow_id(user_id, stream_id))
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("stream '{stream_id}' has not been ingested"))
            })
    }

    /// Status, progress and (when finished) result of the stream's latest ingestion.
    pub async fn ingest_status(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> Result<IngestStatus, ApiError> {
        let workflow_id = stream_ingest_workflow_id(user_id, stream_id);
        let run = self.owned_ingest(user_id, stream_id).await?;
        let r = self
            .report::<gt_workflows::StreamIngestRun, _>(&workflow_id, run, StreamIngest::progress)
            .await?;
        Ok(IngestStatus {
            workflow_id,
            run_id: r.run_id,
            status: r.status,
            progress: r.progress,
            result: r.result,
            error: r.error,
            note: r.note,
        })
    }

    /// A run's status, what `query` answers (a note instead when no worker answers in time)
    /// and, once it has ended, its result or the reason it failed.
    async fn report<W, Q>(
        &self,
        workflow_id: &str,
        run: OwnedRun,
        query: Q,
    ) -> Result<RunReport<Q::Output, W::Output>, ApiError>
    where
        W: temporalio_common::HasWorkflowDefinition,
        Q: temporalio_common::QueryDefinition<Workflow = W::Run, Input = ()>,
        Q::Output: Default,
    {
        let handle = self.handle::<W>(workflow_id, Some(run.run_id.clone()));
        // Queries are answered by a worker; don't hang when none is polling.
        let query_options = WorkflowQueryOptions::builder()
            .rpc_options(RpcOptions::builder().timeout(QUERY_TIMEOUT).build())
            .build();
        let (progress, note) = match handle.query(query, (), query_options).await {
            Ok(p) => (p, None),
            Err(e @ (WorkflowQueryError::Rpc(_) | WorkflowQueryError::Rejected { .. })) => (
                Q::Output::default(),
                Some(format!(
                    "no worker answered the progress query ({e}); is worker-cpu running?"
                )),
            ),
            Err(e) => return Err(unavailable("querying a workflow's progress", e)),
        };
        let mut out = RunReport {
            run_id: run.run_id,
            status: status_name(run.status).to_string(),
            progress,
            note,
            result: None,
            error: None,
        };
        if run.status != WorkflowExecutionStatus::Running {
            match handle.get_result(WorkflowGetResultOptions::default()).await {
                Ok(result) => out.result = Some(result),
                Err(e @ WorkflowGetResultError::Failed(_)) => out.error = Some(root_message(&e)),
                Err(e) => out.error = Some(e.to_string()),
            }
        }
        Ok(out)
    }

    /// Asks the stream's running ingestion to stop at its next step.
    pub async fn cancel_ingest(&self, user_id: &str, stream_id: &str) -> Result<(), ApiError> {
        let run = self.owned_ingest(user_id, stream_id).await?;
        if run.status != WorkflowExecutionStatus::Running {
            return Err(ApiError::NotFound(format!(
                "stream '{stream_id}' has no running ingestion"
            )));
        }
        let workflow_id = stream_ingest_workflow_id(user_id, stream_id);
        match self
            .handle::<gt_workflows::StreamIngestRun>(&workflow_id, Some(run.run_id))
            .signal(StreamIngest::cancel, (), WorkflowSignalOptions::default())
            .await
        {
            Ok(()) => Ok(()),
            Err(WorkflowInteractionError::NotFound(_)) => Err(ApiError::NotFound(format!(
                "stream '{stream_id}' has no running ingestion"
            ))),
            Err(e) => Err(unavailable("signalling StreamIngest", e)),
        }
    }

    /// The run id of the stream's ingestion if it is running; 409 otherwise.
    pub async fn running_ingest(&self, user_id: &str, stream_id: &str) -> Result<String, ApiError> {
        let run = self.owned_ingest(user_id, stream_id).await?;
        if run.status != WorkflowExecutionStatus::Running {
            return Err(ApiError::Conflict(format!(
                "the ingestion of stream '{stream_id}' is not waiting for review (it is {})",
                status_name(run.status)
            )));
        }
        Ok(run.run_id)
    }

    /// Hands a review to run `run_id` of the stream's ingestion as its `review` update: the
    /// workflow validates it against its undecided proposals before anything is written, then
    /// writes edits and decisions in one transaction.
    pub async fn review(
        &self,
        user_id: &str,
        stream_id: &str,
        run_id: String,
        review: ReviewUpdate,
    ) -> Result<ReviewOutcome, ApiError> {
        let workflow_id = stream_ingest_workflow_id(user_id, stream_id);
        let options = WorkflowExecuteUpdateOptions::builder()
            .rpc_options(RpcOptions::builder().timeout(UPDATE_TIMEOUT).build())
            .build();
        match self
            .handle::<gt_workflows::StreamIngestRun>(&workflow_id, Some(run_id))
            .execute_update(StreamIngest::review, review, options)
            .await
        {
            Ok(outcome) => Ok(outcome),
            Err(WorkflowUpdateError::NotFound(_)) => Err(ApiError::Conflict(format!(
                "the ingestion of stream '{stream_id}' finished before the review arrived"
            ))),
            Err(e @ WorkflowUpdateError::Failed(_)) => {
                let message = root_message(&e);
                Err(if message.starts_with(NOT_WAITING) {
                    ApiError::Conflict(format!("review refused: {message}"))
                } else {
                    ApiError::BadRequest(format!("review refused: {message}"))
                })
            }
            Err(e) => Err(unavailable("updating StreamIngest", e)),
        }
    }

    /// Re-embeds a clip's transcript windows (after an edit) in a workflow of its own, so the
    /// edit is durable at once and the index follows even if the API restarts.
    pub async fn start_reembed(&self, input: EmbedClip) -> Result<String, ApiError> {
        let workflow_id =
            clip_reembed_workflow_id(&input.user_id, &uuid::Uuid::new_v4().to_string());
        let opts = WorkflowStartOptions::new(self.cpu_task_queue.clone(), workflow_id.clone())
            .memo(owner_memo(&input.user_id))
            .build();
        self.client
            .start_workflow(ClipReembed::run, input, opts)
            .await
            .map_err(|e| unavailable("starting ClipReembed", e))?;
        Ok(workflow_id)
    }

    /// Starts `EpisodePublish` for the episode (`upload`: render, export and upload; else
    /// render and export only), or joins the caller's run already going, asking it to upload
    /// too when `upload` is set. A finished run may be started again: its steps reuse what is
    /// done.
    pub async fn start_publish(
        &self,
        user_id: &str,
        episode_id: &str,
        upload: bool,
    ) -> Result<WorkflowStarted, ApiError> {
        let workflow_id = episode_publish_workflow_id(user_id, episode_id);
        let input = EpisodePublishInput {
            user_id: user_id.to_string(),
            episode_id: episode_id.to_string(),
            upload,
        };
        let run = match self
            .start_or_find(
                EpisodePublish::run,
                input,
                user_id,
                &workflow_id,
                "EpisodePublish",
            )
            .await?
        {
            Ok(started) => return Ok(started),
            Err(run) => run,
        };
        if upload {
            self.handle::<EpisodePublishRun>(&workflow_id, Some(run.run_id.clone()))
                .signal(
                    EpisodePublish::request_upload,
                    (),
                    WorkflowSignalOptions::default(),
                )
                .await
                .map_err(|e| unavailable("signalling EpisodePublish", e))?;
        }
        Ok(joined(workflow_id, run))
    }

    /// Starts `RestoreStream` for the stream, or joins the caller's restore already going.
    /// A finished restore may be started again (a stream archived since).
    pub async fn start_restore(
        &self,
        input: gt_workflows::restore_stream::RestoreStreamInput,
    ) -> Result<WorkflowStarted, ApiError> {
        let workflow_id = gt_workflows::restore_stream::restore_stream_workflow_id(
            &input.user_id,
            &input.stream_id,
        );
        let user_id = input.user_id.clone();
        self.start_or_join(
            gt_workflows::RestoreStream::run,
            input,
            &user_id,
            workflow_id,
            "RestoreStream",
        )
        .await
    }

    /// Starts `ArchiveStream` for the stream, or joins the caller's archive already going.
    pub async fn start_archive(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> Result<WorkflowStarted, ApiError> {
        let workflow_id =
            gt_workflows::restore_stream::archive_stream_workflow_id(user_id, stream_id);
        let input = gt_types::workflow::StreamRef {
            user_id: user_id.to_string(),
            stream_id: stream_id.to_string(),
        };
        self.start_or_join(
            gt_workflows::ArchiveStream::run,
            input,
            user_id,
            workflow_id,
            "ArchiveStream",
        )
        .await
    }

    /// The caller's latest publish run of the episode, or 404.
    async fn owned_publish(&self, user_id: &str, episode_id: &str) -> Result<OwnedRun, ApiError> {
        self.owned_run(user_id, &episode_publish_workflow_id(user_id, episode_id))
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("episode '{episode_id}' has not been published"))
            })
    }

    /// Status, progress and (when finished) result of the episode's latest publish run.
    pub async fn publish_status(
        &self,
        user_id: &str,
        episode_id: &str,
    ) -> Result<PublishStatus, ApiError> {
        let workflow_id = episode_publish_workflow_id(user_id, episode_id);
        let run = self.owned_publish(user_id, episode_id).await?;
        let r = self
            .report::<EpisodePublishRun, _>(&workflow_id, run, EpisodePublish::progress)
            .await?;
        Ok(PublishStatus {
            workflow_id,
            run_id: r.run_id,
            status: r.status,
            progress: r.progress,
            result: r.result,
            error: r.error,
            note: r.note,
        })
    }

    /// Tells the user's `ChatCapture` run about `signal`. `Enable`, `Reconnected` and `Online`
    /// start the run when none is going (signal-with-start: the run sees the signal before its
    /// first step); the others only matter to a running one and are dropped otherwise.
    pub async fn signal_chat_capture(
        &self,
        user_id: &str,
        broadcaster_id: &str,
        signal: ChatSignal,
    ) -> Result<(), ApiError> {
        let workflow_id = chat_capture_workflow_id(user_id, broadcaster_id);
        let input = ChatCaptureInput {
            user_id: user_id.to_string(),
            broadcaster_id: broadcaster_id.to_string(),
        };
        let opts = || {
            WorkflowStartOptions::new(self.cpu_task_queue.clone(), workflow_id.clone())
                .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
                .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
                .memo(owner_memo(user_id))
                .build()
        };
        let started = match signal {
            ChatSignal::Enable => {
                self.client
                    .signal_with_start_workflow(
                        ChatCapture::run,
                        input,
                        ChatCapture::enable,
                        (),
                        opts(),
                    )
                    .await
            }
            ChatSignal::Reconnected => {
                self.client
                    .signal_with_start_workflow(
                        ChatCapture::run,
                        input,
                        ChatCapture::reconnected,
                        (),
                        opts(),
                    )
                    .await
            }
            ChatSignal::Online(live) => {
                self.client
                    .signal_with_start_workflow(
                        ChatCapture::run,
                        input,
                        ChatCapture::online,
                        live,
                        opts(),
                    )
                    .await
            }
            other => {
                let Some(run) = self.owned_run(user_id, &workflow_id).await? else {
                    return Ok(());
                };
                if run.status != WorkflowExecutionStatus::Running {
                    return Ok(());
                }
                let handle = self.handle::<ChatCaptureRun>(&workflow_id, Some(run.run_id));
                let o = WorkflowSignalOptions::default;
                let sent = match other {
                    ChatSignal::Disable => handle.signal(ChatCapture::disable, (), o()).await,
                    ChatSignal::Offline => handle.signal(ChatCapture::offline, (), o()).await,
                    ChatSignal::Revoked(r) => handle.signal(ChatCapture::revoked, r, o()).await,
                    _ => unreachable!("handled above"),
                };
                return match sent {
                    Ok(()) | Err(WorkflowInteractionError::NotFound(_)) => Ok(()),
                    Err(e) => Err(unavailable("signalling ChatCapture", e)),
                };
            }
        };
        started
            .map(|_| ())
            .map_err(|e| unavailable("starting ChatCapture", e))
    }

    /// Tells the widget's `WidgetTimer` (starting it if needed) when the widget's state next
    /// needs a transition; an ad timer's run also follows Twitch's ad schedule.
    pub async fn wake_widget(
        &self,
        user_id: &str,
        widget_id: &str,
        follows_ad_schedule: bool,
        wake_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), ApiError> {
        let workflow_id = widget_timer_workflow_id(user_id, widget_id);
        let input = WidgetTimerInput {
            user_id: user_id.to_string(),
            widget_id: widget_id.to_string(),
            follows_ad_schedule,
            wake_at_ms: None,
        };
        let opts = WorkflowStartOptions::new(self.cpu_task_queue.clone(), workflow_id)
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
            .memo(owner_memo(user_id))
            .build();
        self.client
            .signal_with_start_workflow(
                WidgetTimer::run,
                input,
                WidgetTimer::wake,
                WidgetWake {
                    at_ms: wake_at.map(|t| t.timestamp_millis()),
                },
                opts,
            )
            .await
            .map(|_| ())
            .map_err(|e| unavailable("waking WidgetTimer", e))
    }

    /// Ends the widget's timers (it was deleted), if they run and are the user's.
    pub async fn stop_widget(&self, user_id: &str, widget_id: &str) -> Result<(), ApiError> {
        let workflow_id = widget_timer_workflow_id(user_id, widget_id);
        let Some(run) = self.owned_run(user_id, &workflow_id).await? else {
            return Ok(());
        };
        if run.status != WorkflowExecutionStatus::Running {
            return Ok(());
        }
        let handle = self.handle::<WidgetTimerRun>(&workflow_id, Some(run.run_id));
        match handle
            .signal(WidgetTimer::stop, (), WorkflowSignalOptions::default())
            .await
        {
            Ok(()) | Err(WorkflowInteractionError::NotFound(_)) => Ok(()),
            Err(e) => Err(unavailable("stopping WidgetTimer", e)),
        }
    }

    /// The `status` query of the user's running `ChatCapture`, if one is running.
    pub async fn chat_capture_status(
        &self,
        user_id: &str,
        broadcaster_id: &str,
    ) -> Result<Option<ChatCaptureStatus>, ApiError> {
        let workflow_id = chat_capture_workflow_id(user_id, broadcaster_id);
        let Some(run) = self.owned_run(user_id, &workflow_id).await? else {
            return Ok(None);
        };
        if run.status != WorkflowExecutionStatus::Running {
            return Ok(None);
        }
        let query_options = WorkflowQueryOptions::builder()
            .rpc_options(RpcOptions::builder().timeout(QUERY_TIMEOUT).build())
            .build();
        match self
            .handle::<ChatCaptureRun>(&workflow_id, Some(run.run_id))
            .query(ChatCapture::status, (), query_options)
            .await
        {
            Ok(status) => Ok(Some(status)),
            Err(e) => {
                tracing::warn!(error = %e, "ChatCapture status query failed");
                Ok(None)
            }
        }
    }

    /// The hourly `TwitchMaintenance` schedule (token validation Twitch requires, chat
    /// retention), created once per task queue; an existing one is left as it is.
    pub async fn ensure_twitch_maintenance(&self) -> Result<String, ApiError> {
        use temporalio_client::schedules::{CreateScheduleOptions, ScheduleAction, ScheduleSpec};
        let schedule_id = format!("twitch-maintenance-{}", self.cpu_task_queue);
        let options = CreateScheduleOptions::builder()
            .action(ScheduleAction::start_workflow(
                gt_workflows::TwitchMaintenance::run,
                (),
                self.cpu_task_queue.clone(),
                schedule_id.clone(),
            ))
            .spec(ScheduleSpec::from_interval(std::time::Duration::from_secs(
                3600,
            )))
            .note("Twitch token validation (hourly, as Twitch requires) and chat retention")
            .build();
        match self
            .client
            .create_schedule(schedule_id.clone(), options)
            .await
        {
            Ok(_) => Ok(schedule_id),
            Err(temporalio_client::schedules::ScheduleError::Rpc(status))
                if status.code() == temporalio_client::tonic::Code::AlreadyExists =>
            {
                Ok(schedule_id)
            }
            Err(e) => Err(unavailable("creating the Twitch maintenance schedule", e)),
        }
    }

    /// Asks the episode's running publish to stop (`cancel`) or to end a quota wait (`resume`).
    pub async fn signal_publish(
        &self,
        user_id: &str,
        episode_id: &str,
        signal: PublishSignal,
    ) -> Result<(), ApiError> {
        let run = self.owned_publish(user_id, episode_id).await?;
        let not_running =
            || ApiError::NotFound(format!("episode '{episode_id}' has no running publish"));
        if run.status != WorkflowExecutionStatus::Running {
            return Err(not_running());
        }
        let workflow_id = episode_publish_workflow_id(user_id, episode_id);
        let handle = self.handle::<EpisodePublishRun>(&workflow_id, Some(run.run_id));
        let sent = match signal {
            PublishSignal::Cancel => {
                handle
                    .signal(EpisodePublish::cancel, (), WorkflowSignalOptions::default())
                    .await
            }
            PublishSignal::Resume => {
                handle
                    .signal(EpisodePublish::resume, (), WorkflowSignalOptions::default())
                    .await
            }
        };
        match sent {
            Ok(()) => Ok(()),
            Err(WorkflowInteractionError::NotFound(_)) => Err(not_running()),
            Err(e) => Err(unavailable("signalling EpisodePublish", e)),
        }
    }
}

/// What the API tells a `ChatCapture` run.
#[derive(Debug, Clone)]
pub enum ChatSignal {
    Enable,
    Disable,
    Reconnected,
    Online(StreamWentLive),
    Offline,
    Revoked(SubscriptionRevoked),
}
