//! Moving a stream's raw recordings to the archive storage class once its episodes are
//! published, and bringing them back (`RestoreStream`) before a re-ingest or re-render. The
//! recordings store does the moving ([`BlobStore::archive`] and friends: S3 storage classes
//! and RestoreObject, or the local archive directory); these activities apply it to every
//! recording of a stream and keep `streams.archive_state` in step.

use std::sync::Arc;

use gt_store::archive::{
    StreamArchiveState, episode_stream, stream_archive_state, stream_publication,
};
use gt_store::blob::{BlobObject, RestoreState, StorageState};
use gt_store::{BlobStore, PipelineStore, Store, recording_key};
use gt_types::publish::EpisodeRef;
use gt_types::workflow::StreamRef;
use gt_workflows::contracts::{
    ArchiveAfterPublish, ArchiveState, EpisodeStream, RecordingsStorage, RestoreRecordings,
};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::ingest::is_media_key;
use crate::{invalid_input, store_error};

pub struct ArchiveActivitiesImpl {
    pub store: Arc<dyn Store>,
    pub recordings: Arc<dyn BlobStore>,
}

fn workflow_state(state: StreamArchiveState) -> ArchiveState {
    match state {
        StreamArchiveState::Standard => ArchiveState::Standard,
        StreamArchiveState::Archived => ArchiveState::Archived,
        StreamArchiveState::Restoring => ArchiveState::Restoring,
    }
}

impl ArchiveActivitiesImpl {
    /// The stream's recordings: every object under its folder in the owner's recordings root.
    async fn recordings_of(&self, stream: &StreamRef) -> Result<Vec<BlobObject>, ActivityError> {
        let record = self
            .store
            .get_stream(&stream.user_id, &stream.stream_id)
            .await
            .map_err(store_error)?;
        let prefix = record
            .prefix
            .as_deref()
            .map(|p| p.trim().trim_matches('/'))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                invalid_input(format!(
                    "stream '{}' has no prefix: no recordings to archive or restore",
                    stream.stream_id
                ))
            })?;
        // The prefix is a folder of the owner's recordings root, never anyone else's.
        let root = recording_key(&stream.user_id, prefix)
            .map_err(|e| invalid_input(format!("stream '{}': {e}", stream.stream_id)))?;
        self.recordings
            .list_all(&format!("{root}/"))
            .await
            .map_err(store_error)
    }

    /// Counts the recordings by where they are (one HEAD each).
    async fn survey(
        &self,
        stream: &StreamRef,
        objects: &[BlobObject],
        state: ArchiveState,
    ) -> Result<RecordingsStorage, ActivityError> {
        let mut out = RecordingsStorage {
            stream_id: stream.stream_id.clone(),
            state,
            recordings: 0,
            standard: 0,
            archived: 0,
            restoring: 0,
            restored: 0,
            bytes: 0,
        };
        for o in objects {
            let storage = self.recordings.storage(&o.key).await.map_err(store_error)?;
            out.recordings += 1;
            out.bytes += storage.size;
            match storage.state {
                StorageState::Standard => out.standard += 1,
                StorageState::Archived(RestoreState::NotRequested) => out.archived += 1,
                StorageState::Archived(RestoreState::InProgress) => out.restoring += 1,
                StorageState::Archived(RestoreState::Restored { .. }) => out.restored += 1,
            }
        }
        Ok(out)
    }

    async fn set_state(
        &self,
        stream: &StreamRef,
        state: StreamArchiveState,
    ) -> Result<(), ActivityError> {
        PipelineStore::set_stream_archive_state(
            self.store.as_ref(),
            &stream.user_id,
            &stream.stream_id,
            state,
        )
        .await
        .map_err(store_error)
    }

    async fn archive(&self, stream: &StreamRef) -> Result<RecordingsStorage, ActivityError> {
        let objects = self.recordings_of(stream).await?;
        // The state first: a stream marked archived with some recordings still standard is
        // harmless (a restore skips them), recordings archived under a stream that says
        // standard would make a re-render skip the restore and fail.
        self.set_state(stream, StreamArchiveState::Archived).await?;
        // Only the recordings: notes or thumbnails beside them stay at hand (and a tiny
        // object in Glacier costs its 40 KB minimum anyway).
        for o in objects.iter().filter(|o| is_media_key(&o.key)) {
            self.recordings.archive(&o.key).await.map_err(store_error)?;
        }
        self.survey(stream, &objects, ArchiveState::Archived).await
    }
}

#[activities]
impl ArchiveActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::ArchiveStreamActivity)]
    pub async fn archive_stream(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: StreamRef,
    ) -> Result<RecordingsStorage, ActivityError> {
        self.archive(&input).await
    }

    #[activity(definition = gt_workflows::contracts::ArchiveIfPublished)]
    pub async fn archive_if_published(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: EpisodeRef,
    ) -> Result<ArchiveAfterPublish, ActivityError> {
        let Some(stream_id) =
            episode_stream(self.store.as_ref(), &input.user_id, &input.episode_id)
                .await
                .map_err(store_error)?
        else {
            return Ok(ArchiveAfterPublish::NoStream);
        };
        let publication = stream_publication(self.store.as_ref(), &input.user_id, &stream_id)
            .await
            .map_err(store_error)?;
        if !publication.all_published() {
            return Ok(ArchiveAfterPublish::NotYet {
                stream_id,
                unpublished: publication.unpublished,
            });
        }
        let stream = StreamRef {
            user_id: input.user_id,
            stream_id,
        };
        Ok(ArchiveAfterPublish::Archived(self.archive(&stream).await?))
    }

    #[activity(definition = gt_workflows::contracts::RequestRestore)]
    pub async fn request_restore(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RestoreRecordings,
    ) -> Result<RecordingsStorage, ActivityError> {
        let stream = StreamRef {
            user_id: input.user_id.clone(),
            stream_id: input.stream_id.clone(),
        };
        let objects = self.recordings_of(&stream).await?;
        for o in &objects {
            let storage = self.recordings.storage(&o.key).await.map_err(store_error)?;
            if storage.state == StorageState::Archived(RestoreState::NotRequested) {
                self.recordings
                    .request_restore(&o.key, input.days)
                    .await
                    .map_err(store_error)?;
            }
        }
        let mut out = self
            .survey(&stream, &objects, ArchiveState::Restoring)
            .await?;
        if out.archived + out.restoring + out.restored == 0 {
            // Nothing archived (never was, or made standard by an earlier run).
            out.state = ArchiveState::Standard;
            self.set_state(&stream, StreamArchiveState::Standard)
                .await?;
        } else {
            self.set_state(&stream, StreamArchiveState::Restoring)
                .await?;
        }
        Ok(out)
    }

    #[activity(definition = gt_workflows::contracts::RestoreProgress)]
    pub async fn restore_progress(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: StreamRef,
    ) -> Result<RecordingsStorage, ActivityError> {
        let state = stream_archive_state(self.store.as_ref(), &input.user_id, &input.stream_id)
            .await
            .map_err(store_error)?;
        let objects = self.recordings_of(&input).await?;
        self.survey(&input, &objects, workflow_state(state)).await
    }

    #[activity(definition = gt_workflows::contracts::MakeStandard)]
    pub async fn make_standard(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: StreamRef,
    ) -> Result<RecordingsStorage, ActivityError> {
        let objects = self.recordings_of(&input).await?;
        for o in &objects {
            match self
                .recordings
                .storage(&o.key)
                .await
                .map_err(store_error)?
                .state
            {
                StorageState::Standard => {}
                StorageState::Archived(RestoreState::Restored { .. }) => self
                    .recordings
                    .make_standard(&o.key)
                    .await
                    .map_err(store_error)?,
                // Retryable: the workflow only gets here once all were restored, so this is a
                // copy that expired or a race with another archive; the retry sees the next
                // state.
                StorageState::Archived(_) => {
                    return Err(crate::retryable(format!(
                        "recording {:?} of stream '{}' is archived and not restored",
                        o.key, input.stream_id
                    )));
                }
            }
        }
        self.set_state(&input, StreamArchiveState::Standard).await?;
        self.survey(&input, &objects, ArchiveState::Standard).await
    }

    #[activity(definition = gt_workflows::contracts::EpisodeStreamActivity)]
    pub async fn episode_stream(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: EpisodeRef,
    ) -> Result<EpisodeStream, ActivityError> {
        let Some(stream_id) =
            episode_stream(self.store.as_ref(), &input.user_id, &input.episode_id)
                .await
                .map_err(store_error)?
        else {
            return Ok(EpisodeStream {
                stream_id: None,
                state: ArchiveState::Standard,
            });
        };
        let state =
            match stream_archive_state(self.store.as_ref(), &input.user_id, &stream_id).await {
                Ok(state) => workflow_state(state),
                // A stream deleted since: nothing to restore (the render names what is missing).
                Err(gt_store::StoreError::NotFound(_)) => ArchiveState::Standard,
                Err(e) => return Err(store_error(e)),
            };
        Ok(EpisodeStream {
            stream_id: Some(stream_id),
            state,
        })
    }

    #[activity(definition = gt_workflows::contracts::StreamState)]
    pub async fn stream_state(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: StreamRef,
    ) -> Result<ArchiveState, ActivityError> {
        let state = stream_archive_state(self.store.as_ref(), &input.user_id, &input.stream_id)
            .await
            .map_err(store_error)?;
        Ok(workflow_state(state))
    }
}
