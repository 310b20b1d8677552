//! Typed store operations the pipeline's activities need. Each is idempotent: upserts keyed by
//! natural ids, so a retried or replayed activity leaves the same rows behind.

use async_trait::async_trait;
use gt_types::media::{MediaInfo, Preview, SpeechMap};
use gt_types::records::{Stream, TaskStatus, VideoClip};
use gt_types::transcript::Transcript;
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

    /// Creates or updates a task row. A task that ended (see [`TaskStatus::FINAL`]) stays as
    /// it ended: a late progress write from a step still winding down after a cancel must not
    /// turn an aborted task back into a running one.
    async fn upsert_task(&self, task: &TaskUpdate) -> StoreResult<()>;

    async fn get_clip(&self, user_id: &str, key: &str) -> StoreResult<VideoClip>;

    /// The speech track configured for the stream, else for the user's profile.
    async fn speech_track(&self, user_id: &str, stream_id: &str) -> StoreResult<Option<u32>>;

    /// Stores a speech map; also the clip's `silence` and `audio` fields the front end reads.
    async fn save_speech(&self, user_id: &str, key: &str, map: &SpeechMap) -> StoreResult<()>;

    /// Stores a clip's transcript (replacing any earlier one): on the clip, and as one row per
    /// segment with stream times (`start_time` is the clip's start in the stream).
    async fn save_transcript(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        start_time: f64,
        transcript: &Transcript,
    ) -> StoreResult<()>;

    /// Stores a preview; also the clip's `keyframes` and `transcode` fields.
    async fn save_preview(&self, user_id: &str, key: &str, preview: &Preview) -> StoreResult<()>;

    /// Sets where the stream's recordings are (`archive_state`, server-managed, and
    /// `archive_state_at`); `NotFound` for no such stream of this user.
    async fn set_stream_archive_state(
        &self,
        user_id: &str,
        stream_id: &str,
        state: crate::archive::StreamArchiveState,
    ) -> StoreResult<()>;
}

/// A stored record as its typed shape. Records written through the generic API can hold odd
/// values in loosely typed JSON fields; that is bad input, not a store failure.
pub fn typed_record<T: serde::de::DeserializeOwned>(
    doc: serde_json::Value,
    what: &str,
    id: &str,
) -> StoreResult<T> {
    serde_json::from_value(doc)
        .map_err(|e| StoreError::Invalid(format!("{what} '{id}' has a malformed field: {e}")))
}

#[async_trait]
impl PipelineStore for PgStore {
    async fn set_stream_archive_state(
        &self,
        user_id: &str,
        stream_id: &str,
        state: crate::archive::StreamArchiveState,
    ) -> StoreResult<()> {
        self.write_stream_archive_state(user_id, stream_id, state)
            .await
    }

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
        typed_record(row.try_get(0)?, "stream", stream_id)
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
        let mut starts = Vec::new();
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
            starts.push(gt_types::workflow::ClipStart {
                key: key.clone(),
                start_time: start,
                duration: duration.unwrap_or(0.0),
            });
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
            clips: starts,
        })
    }

    async fn upsert_task(&self, task: &TaskUpdate) -> StoreResult<()> {
        let status = serde_json::to_value(task.status).map_err(anyhow::Error::from)?;
        let task_type = serde_json::to_value(task.task_type).map_err(anyhow::Error::from)?;
        sqlx::query(
            "INSERT INTO tasks (user_id, id, status, task_type, record_id, workflow_id, message,
                                progress)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (user_id, id) DO UPDATE
             SET status = EXCLUDED.status, message = EXCLUDED.message,
                 progress = EXCLUDED.progress, updated_at = now()
             WHERE tasks.status <> ALL($9)",
        )
        .bind(&task.user_id)
        .bind(&task.task_id)
        .bind(status.as_str())
        .bind(task_type.as_str())
        .bind(&task.record_id)
        .bind(&task.workflow_id)
        .bind(&task.message)
        .bind(task.progress)
        .bind(TaskStatus::FINAL)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn get_clip(&self, user_id: &str, key: &str) -> StoreResult<VideoClip> {
        let row =
            sqlx::query("SELECT to_jsonb(t) FROM video_clips t WHERE user_id = $1 AND id = $2")
                .bind(user_id)
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("clip '{key}' not found")));
        };
        typed_record(row.try_get(0)?, "clip", key)
    }

    async fn speech_track(&self, user_id: &str, stream_id: &str) -> StoreResult<Option<u32>> {
        let track: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE(
                 (SELECT speech_track FROM streams WHERE user_id = $1 AND id = $2),
                 (SELECT \"speechTrack\" FROM profiles WHERE user_id = $1 AND id = $1))",
        )
        .bind(user_id)
        .bind(stream_id)
        .fetch_one(self.pool())
        .await?;
        match track {
            None => Ok(None),
            Some(t) if (0..=64).contains(&t) => Ok(Some(t as u32)),
            Some(t) => Err(StoreError::Invalid(format!(
                "speech track {t} is not a valid audio track index"
            ))),
        }
    }

    async fn save_speech(&self, user_id: &str, key: &str, map: &SpeechMap) -> StoreResult<()> {
        let audio = map.audio.as_ref().map(|a| a.key.clone());
        let done = sqlx::query(
            "UPDATE video_clips SET speech = $3, silence = $4, audio = $5, updated_at = now()
             WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(key)
        .bind(Json(map))
        .bind(Json(&map.silence))
        .bind(audio)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("clip '{key}' not found")));
        }
        Ok(())
    }

    async fn save_preview(&self, user_id: &str, key: &str, preview: &Preview) -> StoreResult<()> {
        // The original's shape: `transcode: [{path, duration}]`.
        let transcode: Vec<serde_json::Value> = preview
            .segments
            .iter()
            .map(|s| serde_json::json!({"path": s.key, "duration": s.duration}))
            .collect();
        let done = sqlx::query(
            "UPDATE video_clips SET preview = $3, keyframes = $4, transcode = $5, updated_at = now()
             WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(key)
        .bind(Json(preview))
        .bind(Json(&preview.keyframes))
        .bind(Json(&transcode))
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("clip '{key}' not found")));
        }
        Ok(())
    }

    async fn save_transcript(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        start_time: f64,
        transcript: &Transcript,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE video_clips SET transcription = $3, updated_at = now() WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(key)
        .bind(Json(transcript))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("clip '{key}' not found")));
        }
        replace_segments(&mut tx, user_id, stream_id, key, start_time, transcript).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Replaces a clip's transcript segment rows (one per segment, with stream times: `start_time`
/// is the clip's start in the stream). Shared by the Postgres store and by deployments that
/// keep the clip record elsewhere but search transcripts here.
pub(crate) async fn replace_segments(
    conn: &mut sqlx::PgConnection,
    user_id: &str,
    stream_id: &str,
    key: &str,
    start_time: f64,
    transcript: &Transcript,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM transcript_segments WHERE user_id = $1 AND clip_key = $2")
        .bind(user_id)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    for (i, s) in transcript.segments.iter().enumerate() {
        sqlx::query(
            "INSERT INTO transcript_segments (user_id, clip_key, idx, stream_id, start, \"end\",
                 stream_start, stream_end, text, words, avg_logprob, no_speech_prob, compression_ratio)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(user_id)
        .bind(key)
        .bind(i as i32)
        .bind(stream_id)
        .bind(s.start)
        .bind(s.end)
        .bind(s.start + start_time)
        .bind(s.end + start_time)
        .bind(&s.text)
        .bind(Json(&s.words))
        .bind(s.avg_logprob)
        .bind(s.no_speech_prob)
        .bind(s.compression_ratio)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl PgStore {
    /// [`replace_segments`] in its own transaction.
    pub async fn replace_transcript_segments(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        start_time: f64,
        transcript: &Transcript,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        replace_segments(&mut tx, user_id, stream_id, key, start_time, transcript).await?;
        tx.commit().await?;
        Ok(())
    }
}
