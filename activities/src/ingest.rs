//! Activities that turn a stream's recordings into clip records.

use std::sync::Arc;
use std::time::Duration;

use gt_store::{BlobStore, PipelineStore, recording_key};
use gt_types::workflow::{
    ClipRef, FinalizeClips, FinalizedClips, MediaObject, ProbedClip, StreamMedia, StreamRef,
};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::media::MediaSource;
use crate::media::probe::probe;
use crate::{invalid_input, store_error, with_heartbeats};

/// File extensions of recordings (OBS and friends). Other files in a stream's folder
/// (thumbnails, notes, partial downloads) are not clips.
pub const MEDIA_EXTENSIONS: &[&str] = &[
    "mkv", "mp4", "flv", "mov", "ts", "m2ts", "mts", "m4v", "webm", "avi", "wmv", "mpg", "mpeg",
];

pub fn is_media_key(key: &str) -> bool {
    key.rsplit_once('.')
        .is_some_and(|(_, ext)| MEDIA_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// How long a presigned recording URL handed to FFmpeg stays valid: longer than any one probe,
/// scan or preview encode of a long recording (the activity heartbeats for as long as it runs;
/// the URL must outlive it, and FFmpeg re-sends it on every range request).
pub const RECORDING_URL_TTL: Duration = Duration::from_secs(6 * 3600);

/// Where FFmpeg reads a user's recording: a presigned URL it reads with range requests when
/// the recordings live in S3 (no download of the whole file), else the local file.
pub async fn recording_source(
    recordings: &dyn BlobStore,
    user_id: &str,
    key: &str,
) -> Result<MediaSource, ActivityError> {
    let key = recording_key(user_id, key).map_err(store_error)?;
    recordings
        .media_source(&key, RECORDING_URL_TTL)
        .await
        .map_err(store_error)
}

pub struct IngestActivitiesImpl {
    pub store: Arc<dyn PipelineStore>,
    pub recordings: Arc<dyn BlobStore>,
}

/// The folder prefix of a stream as stored: `2024-01-01` or `2024-01-01/` both mean the folder.
fn folder_prefix(prefix: &str) -> String {
    let p = prefix.trim();
    if p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

#[activities]
impl IngestActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::ListStreamMedia)]
    pub async fn list_stream_media(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: StreamRef,
    ) -> Result<StreamMedia, ActivityError> {
        let stream = self
            .store
            .get_stream(&input.user_id, &input.stream_id)
            .await
            .map_err(store_error)?;
        let prefix = stream
            .prefix
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                invalid_input(format!(
                    "stream '{}' has no prefix: set it to the folder that holds its recordings",
                    input.stream_id
                ))
            })?;
        let prefix = folder_prefix(prefix);
        // The prefix is a folder of the owner's recordings root, never anyone else's.
        let root = recording_key(&input.user_id, &prefix)
            .map_err(|e| invalid_input(format!("stream '{}': {e}", input.stream_id)))?;
        let owner_root = &root[..root.len() - prefix.len()];
        let objects = self
            .recordings
            .list_all(&root)
            .await
            .map_err(store_error)?
            .into_iter()
            .filter(|o| is_media_key(&o.key))
            .filter_map(|o| {
                // Clip keys are relative to the owner's root.
                Some(MediaObject {
                    key: o.key.strip_prefix(owner_root)?.to_string(),
                    size: o.size,
                })
            })
            .collect();
        let speech_track = self
            .store
            .speech_track(&input.user_id, &input.stream_id)
            .await
            .map_err(store_error)?;
        Ok(StreamMedia {
            prefix,
            objects,
            speech_track,
        })
    }

    #[activity(definition = gt_workflows::contracts::ProbeClip)]
    pub async fn probe_clip(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ClipRef,
    ) -> Result<ProbedClip, ActivityError> {
        let source = recording_source(&*self.recordings, &input.user_id, &input.key).await?;
        let key = input.key.clone();
        let probed = with_heartbeats(
            &ctx,
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || probe(&source, &key)),
        )
        .await?
        .map_err(|e| ActivityError::from(anyhow::anyhow!("probe task panicked: {e}")))?;
        match probed {
            Ok(info) => {
                self.store
                    .upsert_clip_probe(&input.user_id, &input.stream_id, &input.key, &info)
                    .await
                    .map_err(store_error)?;
                Ok(ProbedClip {
                    key: input.key,
                    info,
                })
            }
            Err(e) => {
                let reason = e.to_string();
                // Leave the reason on the clip so the front end can show it.
                self.store
                    .mark_clip_failed(&input.user_id, &input.stream_id, &input.key, &reason)
                    .await
                    .map_err(store_error)?;
                Err(invalid_input(reason))
            }
        }
    }

    #[activity(definition = gt_workflows::contracts::FinalizeStreamClips)]
    pub async fn finalize_stream_clips(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: FinalizeClips,
    ) -> Result<FinalizedClips, ActivityError> {
        self.store.finalize_clips(&input).await.map_err(store_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_keys() {
        assert!(is_media_key("2024-01-01/2024-01-01 10-00-00.mkv"));
        assert!(is_media_key("a/B.MP4"));
        assert!(!is_media_key("a/notes.txt"));
        assert!(!is_media_key("a/mkv"));
        assert_eq!(folder_prefix("2024-01-01"), "2024-01-01/");
        assert_eq!(folder_prefix("2024-01-01/"), "2024-01-01/");
    }
}
