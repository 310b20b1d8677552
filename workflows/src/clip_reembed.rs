//! `ClipReembed`: refreshes one clip's search windows after its transcript was edited.

use std::time::Duration;

use gt_types::workflow::{EmbedClip, EmbeddedClip};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, RetryPolicy, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::contracts::{TextActivities, failure};

#[workflow]
pub struct ClipReembed {
    input: EmbedClip,
}

#[workflow_methods]
impl ClipReembed {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: EmbedClip) -> Self {
        Self { input }
    }

    #[run(name = "ClipReembed")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<EmbeddedClip> {
        let input = ctx.state(|s| s.input.clone());
        let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(600))
            .heartbeat_timeout(Duration::from_secs(60))
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_attempts(10)
                    .non_retryable_error_types([failure::INVALID_INPUT])
                    .build(),
            )
            .build();
        Ok(ctx
            .execute_activity(TextActivities::embed_clip, input, options)
            .await?)
    }
}
