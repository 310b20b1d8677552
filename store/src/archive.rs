//! Where a stream's raw recordings are (`streams.archive_state`, migration 0012), and what the
//! archive decision reads: whether every episode of a stream that is meant to be published has
//! been. Server-managed: the `/records` API ignores these fields in bodies; only the archive
//! and restore activities write them, through [`PipelineStore::set_stream_archive_state`]
//! (Postgres: [`PgStore::write_stream_archive_state`]). Reads go through the generic
//! [`RecordStore`], so they work on every record backend (a DynamoDB stream is a document
//! holding the same fields).
//!
//! [`PipelineStore::set_stream_archive_state`]: crate::PipelineStore::set_stream_archive_state

use serde_json::Value;

use crate::RecordStore;
use crate::catalog::{EPISODES, STREAMS};
use crate::error::{StoreError, StoreResult};
use crate::pg::PgStore;

/// `streams.archive_state` (see `catalog::ARCHIVE_STATES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamArchiveState {
    /// Readable (also what a stream without the field means).
    Standard,
    /// In the archive class: re-ingesting or re-rendering needs a restore first.
    Archived,
    /// A restore is under way.
    Restoring,
}

impl StreamArchiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamArchiveState::Standard => "standard",
            StreamArchiveState::Archived => "archived",
            StreamArchiveState::Restoring => "restoring",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "standard" => Some(StreamArchiveState::Standard),
            "archived" => Some(StreamArchiveState::Archived),
            "restoring" => Some(StreamArchiveState::Restoring),
            _ => None,
        }
    }

    /// The state a stream record holds (absent or null: standard).
    pub fn of_stream(stream: &Value) -> StoreResult<Self> {
        match &stream["archive_state"] {
            Value::Null => Ok(StreamArchiveState::Standard),
            Value::String(s) => Self::parse(s).ok_or_else(|| {
                StoreError::Backend(anyhow::anyhow!(
                    "stream {} has an unknown archive_state {s:?}",
                    stream["id"]
                ))
            }),
            other => Err(StoreError::Backend(anyhow::anyhow!(
                "stream {} has a non-text archive_state {other}",
                stream["id"]
            ))),
        }
    }
}

/// The stream's archive state; `NotFound` for no such stream of this user.
pub async fn stream_archive_state(
    records: &dyn RecordStore,
    user_id: &str,
    stream_id: &str,
) -> StoreResult<StreamArchiveState> {
    StreamArchiveState::of_stream(&records.get(user_id, &STREAMS, stream_id).await?)
}

/// The stream an episode was cut from (`None` when it names none); `NotFound` for no such
/// episode of this user.
pub async fn episode_stream(
    records: &dyn RecordStore,
    user_id: &str,
    episode_id: &str,
) -> StoreResult<Option<String>> {
    let episode = records.get(user_id, &EPISODES, episode_id).await?;
    Ok(episode["stream_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string))
}

/// The episodes of one stream as the archive decision sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamPublication {
    /// Episodes with a YouTube video.
    pub published: u64,
    /// Episodes still to publish: approved, awaiting review (a render will read the
    /// recordings) or made by hand (no review status), without a video. Rejected ones count
    /// for neither.
    pub unpublished: u64,
}

impl StreamPublication {
    pub fn of_episodes(episodes: &[Value]) -> Self {
        let mut out = Self::default();
        for e in episodes {
            let published = e["youtube_video_id"]
                .as_str()
                .is_some_and(|v| !v.is_empty());
            if published {
                out.published += 1;
            } else if e["review_status"].as_str() != Some("rejected") {
                out.unpublished += 1;
            }
        }
        out
    }

    /// Every episode meant for publishing is published, and there is at least one.
    pub fn all_published(&self) -> bool {
        self.published > 0 && self.unpublished == 0
    }
}

/// How many of the stream's episodes are published and how many are still to be.
pub async fn stream_publication(
    records: &dyn RecordStore,
    user_id: &str,
    stream_id: &str,
) -> StoreResult<StreamPublication> {
    let episodes = records
        .related(user_id, &EPISODES, "stream_id", stream_id)
        .await?;
    Ok(StreamPublication::of_episodes(&episodes))
}

impl PgStore {
    /// Sets the stream's archive state and when it changed; `NotFound` for no such stream of
    /// this user.
    pub async fn write_stream_archive_state(
        &self,
        user_id: &str,
        stream_id: &str,
        state: StreamArchiveState,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE streams SET archive_state = $3, archive_state_at = now(), updated_at = now()
             WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(stream_id)
        .bind(state.as_str())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "stream '{stream_id}' not found"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn publication_counts_what_still_needs_the_recordings() {
        let p = StreamPublication::of_episodes(&[
            json!({"youtube_video_id": "v1", "review_status": "approved"}),
            json!({"youtube_video_id": null, "review_status": "rejected"}),
            json!({"youtube_video_id": "", "review_status": "approved"}),
            json!({"review_status": "awaiting_review"}),
            json!({"title": "made by hand"}),
        ]);
        assert_eq!(
            p,
            StreamPublication {
                published: 1,
                unpublished: 3
            }
        );
        assert!(!p.all_published());
        let done = StreamPublication::of_episodes(&[
            json!({"youtube_video_id": "v1"}),
            json!({"review_status": "rejected"}),
        ]);
        assert!(done.all_published());
        assert!(!StreamPublication::of_episodes(&[]).all_published());
    }

    #[test]
    fn states_read_from_records() {
        assert_eq!(
            StreamArchiveState::of_stream(&json!({"id": "s"})).unwrap(),
            StreamArchiveState::Standard
        );
        for s in [
            StreamArchiveState::Standard,
            StreamArchiveState::Archived,
            StreamArchiveState::Restoring,
        ] {
            assert_eq!(
                StreamArchiveState::of_stream(&json!({"archive_state": s.as_str()})).unwrap(),
                s
            );
        }
        assert!(StreamArchiveState::of_stream(&json!({"archive_state": "cold"})).is_err());
        // Every state is one the catalog (and the migration's CHECK) allows.
        assert_eq!(
            crate::catalog::ARCHIVE_STATES,
            ["standard", "archived", "restoring"]
        );
    }
}
