//! The API's handle on Temporal: start, query, signal and describe workflows by type. The API
//! links workflow definitions (for their names and message types), never their activities.

use gt_types::api::{IngestStatus, WorkflowStarted};
use gt_types::stream_ingest_workflow_id;
use gt_types::workflow::{EmbedClip, IngestProgress, IngestStage, ReviewSignal, StreamIngestInput};
use gt_workflows::{ClipReembed, StreamIngest};
use temporalio_client::errors::{
    WorkflowGetResultError, WorkflowInteractionError, WorkflowQueryError, WorkflowStartError,
};
use temporalio_client::{
    Client, RpcOptions, WorkflowDescribeOptions, WorkflowExecutionInfo, WorkflowExecutionStatus,
    WorkflowGetResultOptions, WorkflowHandle, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowQueryOptions, WorkflowSignalOptions, WorkflowStartOptions,
};

use crate::error::ApiError;

/// How long a progress query may wait for a worker to answer.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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

    /// Starts `StreamIngest` for the stream, or returns the execution already running for it.
    /// A finished ingestion may be started again (re-ingest).
    pub async fn start_ingest(
        &self,
        mut input: StreamIngestInput,
    ) -> Result<WorkflowStarted, ApiError> {
        input.gpu_task_queue = Some(self.gpu_task_queue.clone());
        let workflow_id = stream_ingest_workflow_id(&input.stream_id);
        let opts = WorkflowStartOptions::new(self.cpu_task_queue.clone(), workflow_id.clone())
            .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
            .build();
        match self
            .client
            .start_workflow(StreamIngest::run, input, opts)
            .await
        {
            Ok(handle) => Ok(WorkflowStarted {
                id: workflow_id.clone(),
                workflow_id,
                run_id: handle.run_id().unwrap_or_default().to_string(),
                started: true,
            }),
            Err(WorkflowStartError::AlreadyStarted { run_id, .. }) => Ok(WorkflowStarted {
                id: workflow_id.clone(),
                workflow_id,
                run_id: run_id.unwrap_or_default(),
                started: false,
            }),
            Err(e) => Err(unavailable("starting StreamIngest", e)),
        }
    }

    fn ingest_handle(
        &self,
        stream_id: &str,
        run_id: Option<String>,
    ) -> WorkflowHandle<Client, gt_workflows::StreamIngestRun> {
        let info = WorkflowExecutionInfo::builder()
            .namespace(self.client.options().namespace.clone())
            .workflow_id(stream_ingest_workflow_id(stream_id))
            .maybe_run_id(run_id)
            .build();
        WorkflowHandle::new(self.client.clone(), info)
    }

    /// Status, progress and (when finished) result of the stream's latest ingestion.
    pub async fn ingest_status(&self, stream_id: &str) -> Result<IngestStatus, ApiError> {
        let latest = self.ingest_handle(stream_id, None);
        let desc = match latest.describe(WorkflowDescribeOptions::default()).await {
            Ok(d) => d,
            Err(WorkflowInteractionError::NotFound(_)) => {
                return Err(ApiError::NotFound(format!(
                    "stream '{stream_id}' has not been ingested"
                )));
            }
            Err(e) => return Err(unavailable("describing StreamIngest", e)),
        };
        let run_id = desc.run_id().to_string();
        let status = desc.status();
        let handle = self.ingest_handle(stream_id, Some(run_id.clone()));
        // Queries are answered by a worker; don't hang when none is polling.
        let query_options = WorkflowQueryOptions::builder()
            .rpc_options(RpcOptions::builder().timeout(QUERY_TIMEOUT).build())
            .build();
        let (progress, note) = match handle
            .query(StreamIngest::progress, (), query_options)
            .await
        {
            Ok(p) => (p, None),
            Err(e @ (WorkflowQueryError::Rpc(_) | WorkflowQueryError::Rejected { .. })) => (
                IngestProgress::default(),
                Some(format!(
                    "no worker answered the progress query ({e}); is worker-cpu running?"
                )),
            ),
            Err(e) => return Err(unavailable("querying StreamIngest progress", e)),
        };
        let mut out = IngestStatus {
            workflow_id: stream_ingest_workflow_id(stream_id),
            run_id,
            status: status_name(status).to_string(),
            progress,
            result: None,
            error: None,
            note,
        };
        if status != WorkflowExecutionStatus::Running {
            match handle.get_result(WorkflowGetResultOptions::default()).await {
                Ok(result) => out.result = Some(result),
                Err(e @ WorkflowGetResultError::Failed(_)) => out.error = Some(root_message(&e)),
                Err(e) => out.error = Some(e.to_string()),
            }
        }
        Ok(out)
    }

    /// Asks the stream's running ingestion to stop at its next step.
    pub async fn cancel_ingest(&self, stream_id: &str) -> Result<(), ApiError> {
        match self
            .ingest_handle(stream_id, None)
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

    /// Hands review decisions to run `run_id` of the stream's ingestion (from
    /// [`Self::ensure_awaiting_review`]).
    pub async fn review(
        &self,
        stream_id: &str,
        run_id: String,
        decision: ReviewSignal,
    ) -> Result<(), ApiError> {
        match self
            .ingest_handle(stream_id, Some(run_id))
            .signal(
                StreamIngest::review,
                decision,
                WorkflowSignalOptions::default(),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(WorkflowInteractionError::NotFound(_)) => Err(ApiError::Conflict(format!(
                "the ingestion of stream '{stream_id}' finished before the review arrived"
            ))),
            Err(e) => Err(unavailable("signalling StreamIngest", e)),
        }
    }

    /// The run id of the stream's ingestion if it is waiting for review; 409 otherwise.
    pub async fn ensure_awaiting_review(&self, stream_id: &str) -> Result<String, ApiError> {
        let status = self.ingest_status(stream_id).await?;
        if status.status != "RUNNING"
            || !matches!(
                status.progress.stage,
                IngestStage::AwaitingReview | IngestStage::Publishing
            )
        {
            return Err(ApiError::Conflict(format!(
                "the ingestion of stream '{stream_id}' is not waiting for review (it is {} at stage {:?})",
                status.status, status.progress.stage
            )));
        }
        Ok(status.run_id)
    }

    /// Re-embeds a clip's transcript windows (after an edit) in a workflow of its own, so the
    /// edit is durable at once and the index follows even if the API restarts.
    pub async fn start_reembed(&self, input: EmbedClip) -> Result<String, ApiError> {
        let workflow_id = format!("clip-reembed-{}", uuid::Uuid::new_v4());
        let opts =
            WorkflowStartOptions::new(self.cpu_task_queue.clone(), workflow_id.clone()).build();
        self.client
            .start_workflow(ClipReembed::run, input, opts)
            .await
            .map_err(|e| unavailable("starting ClipReembed", e))?;
        Ok(workflow_id)
    }
}
