//! Task bookkeeping: the records behind the front end's task drawer.

use std::sync::Arc;

use gt_store::PipelineStore;
use gt_types::workflow::TaskUpdate;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::store_error;

pub struct TaskActivitiesImpl {
    pub store: Arc<dyn PipelineStore>,
}

#[activities]
impl TaskActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::UpdateTask)]
    pub async fn update_task(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: TaskUpdate,
    ) -> Result<(), ActivityError> {
        self.store.upsert_task(&input).await.map_err(store_error)
    }
}
