//! `EpisodePublish` (`episode-publish-{owner}-{episode_id}`): renders, archives and uploads one
//! approved episode. Until rendering and upload exist it records the publish request (a task
//! the streamer sees) and finishes with status `approved`. Started as a child (no memo can be
//! given then), it writes its owner into its own memo first, for the API's ownership check.

use std::time::Duration;

use gt_types::OWNER_MEMO;
use gt_types::workflow::{EpisodePublishInput, EpisodePublishOutput};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, MemoValue, RetryPolicy, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::contracts::{EpisodeActivities, failure};

/// Writes the owner into the memo before anything else.
pub const PATCH_OWNER_MEMO: &str = "owner-memo-v1";

#[workflow]
pub struct EpisodePublish {
    input: EpisodePublishInput,
    status: String,
}

#[workflow_methods]
impl EpisodePublish {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: EpisodePublishInput) -> Self {
        Self {
            input,
            status: "starting".into(),
        }
    }

    #[run(name = "EpisodePublish")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<EpisodePublishOutput> {
        let input = ctx.state(|s| s.input.clone());
        if ctx.patched(PATCH_OWNER_MEMO) {
            ctx.upsert_memo([(OWNER_MEMO, Some(MemoValue::new(input.user_id.clone())))])?;
        }
        let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_attempts(10)
                    .non_retryable_error_types([failure::INVALID_INPUT])
                    .build(),
            )
            .build();
        let out = ctx
            .execute_activity(EpisodeActivities::record_publish_request, input, options)
            .await?;
        ctx.state_mut(|s| s.status = out.status.clone());
        Ok(out)
    }

    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> String {
        self.status.clone()
    }
}

pub use episode_publish::Run as EpisodePublishRun;
