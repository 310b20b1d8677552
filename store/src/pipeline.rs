//! Typed store operations the pipeline's activities need. Each is idempotent: upserts keyed by
//! natural ids, so a retried or replayed activity leaves the same rows behind.

use async_trait::async_trait;
use gt_types::media::MediaInfo;
use gt_types::records::Stream;
use gt_types::workflow::{FinalizeClips, FinalizedClips, TaskUpdate};
use sqlx::Row;
use sqlx::types::Json;

use crate::error::{StoreError, StoreResult};
use crate::pg::PgStore;

#[async_trait]
pub trait PipelineStore: Send + Sync {
    async fn get_stream(&self, user_id: &str, stream_id: &str) -> StoreResult<Stream>;

    /// Records a probed clip (creating the row if needed) and clears any earlier error.
    async fn upsert_clip_probe(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        info: &MediaInfo,
    ) -> StoreResult<()>;

    /// Records that a clip could not be used, and why.
    async fn mark_clip_failed(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        reason: &str,
    ) -> StoreResult<()>;

    /// Sets cumulative start times in stream order, drops clips of the stream whose files are
    /// gone, and sets the stream's `video_clip_count` and `duration`.
    async fn finalize_clips(&self, input: &FinalizeClips) -> StoreResult<FinalizedClips>;

    async fn upsert_task(&self, task: &TaskUpdate) -> StoreResult<()>;
}

#[async_trait]
impl PipelineStore for PgStore {
    async fn get_stream(&self, user_id: &str, stream_id: &str) -> StoreResult<Stream> {
        let row = sqlx::query("SELECT to_jsonb(t) FROM streams t WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(stream_id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!(
                "stream '{stream_id}' not found"
            )));
        };
        let Json(stream): Json<Stream> = row.try_get(0)?;
        Ok(stream)
    }

    async fn upsert_clip_probe(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        info: &MediaInfo,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO video_clips (user_id, id, key, stream_id, metadata) VALUES ($1, $2, $2, $3, $4)
             ON CONFLICT (user_id, id) DO UPDATE
             SET stream_id = EXCLUDED.stream_id, metadata = EXCLUDED.metadata, error = NULL, updated_at = now()",
        )
        .bind(user_id)
        .bind(key)
        .bind(stream_id)
        .bind(Json(info))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn mark_clip_failed(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        reason: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO video_clips (user_id, id, key, stream_id, error) VALUES ($1, $2, $2, $3, $4)
             ON CONFLICT (user_id, id) DO UPDATE
             SET stream_id = EXCLUDED.stream_id, error = EXCLUDED.error, metadata = NULL,
                 start_time = NULL, updated_at = now()",
        )
        .bind(user_id)
        .bind(key)
        .bind(stream_id)
        .bind(reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn finalize_clips(&self, input: &FinalizeClips) -> StoreResult<FinalizedClips> {
        let mut tx = self.pool().begin().await?;
        // Durations come from the rows the probes wrote, so this step needs nothing else.
        let rows = sqlx::query(
            "SELECT id, (metadata -> 'format' ->> 'duration')::double precision, error
             FROM video_clips WHERE user_id = $1 AND id = ANY($2)",
        )
        .bind(&input.user_id)
        .bind(&input.keys)
        .fetch_all(&mut *tx)
        .await?;
        let mut durations = std::collections::HashMap::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            let duration: Option<f64> = row.try_get(1)?;
            let error: Option<String> = row.try_get(2)?;
            if error.is_none() {
                durations.insert(id, duration);
            }
        }
        let mut start = 0.0;
        let mut count = 0u32;
        for key in &input.keys {
            if input.failures.iter().any(|f| &f.key == key) {
                continue;
            }
            let Some(duration) = durations.get(key) else {
                return Err(StoreError::Invalid(format!(
                    "clip '{key}' was not probed before finalizing"
                )));
            };
            sqlx::query(
                "UPDATE video_clips SET start_time = $3, updated_at = now() WHERE user_id = $1 AND id = $2",
            )
            .bind(&input.user_id)
            .bind(key)
            .bind(start)
            .execute(&mut *tx)
            .await?;
            start += duration.unwrap_or(0.0);
            count += 1;
        }
        sqlx::query(
            "DELETE FROM video_clips WHERE user_id = $1 AND stream_id = $2 AND NOT (id = ANY($3))",
        )
        .bind(&input.user_id)
        .bind(&input.stream_id)
        .bind(&input.keys)
        .execute(&mut *tx)
        .await?;
        let updated = sqlx::query(
            "UPDATE streams SET video_clip_count = $3, duration = $4, updated_at = now()
             WHERE user_id = $1 AND id = $2",
        )
        .bind(&input.user_id)
        .bind(&input.stream_id)
        .bind(i64::from(count))
        .bind(start)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "stream '{}' not found",
                input.stream_id
            )));
        }
        tx.commit().await?;
        Ok(FinalizedClips {
            clip_count: count,
            duration: start,
        })
    }

    async fn upsert_task(&self, task: &TaskUpdate) -> StoreResult<()> {
        let status = serde_json::to_value(task.status).map_err(anyhow::Error::from)?;
        let task_type = serde_json::to_value(task.task_type).map_err(anyhow::Error::from)?;
        sqlx::query(
            "INSERT INTO tasks (user_id, id, status, task_type, record_id, workflow_id, message)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (user_id, id) DO UPDATE
             SET status = EXCLUDED.status, message = EXCLUDED.message, updated_at = now()",
        )
        .bind(&task.user_id)
        .bind(&task.task_id)
        .bind(status.as_str())
        .bind(task_type.as_str())
        .bind(&task.record_id)
        .bind(&task.workflow_id)
        .bind(&task.message)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
