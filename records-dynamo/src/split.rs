//! [`DynamoPgStore`]: the system of record of a DynamoDB deployment. Records, pipeline state
//! and tasks live in DynamoDB; what needs Postgres stays there.
//!
//! | where | what | why |
//! |---|---|---|
//! | DynamoDB ([`DynamoRecordStore`]) | streams, series, video clips, episodes, projects, profiles, tasks | per-user documents read and written by key: the `/records` API, the pipeline's typed writes, review decisions, publish state |
//! | Postgres ([`PgStore`]) | transcript segments and windows (pgvector + full text), chat messages, EventSub messages, Twitch and OAuth connections, stream widgets | search needs an HNSW index and `tsvector`; chat is a TTL'd time series written in batches; widgets are locked per action (`FOR UPDATE`) and fanned out by Postgres triggers to every API process |
//!
//! Operations that span both write DynamoDB first, then Postgres (a clip's transcript, then its
//! segment rows); each is idempotent, so an activity retried after a failure between the two
//! converges. A task update is written to DynamoDB, then published on Postgres's
//! `task_updates` channel with the payload the trigger of a Postgres deployment sends, so every
//! API process's hub fans it out the same way (DynamoDB Local has no Streams; on AWS the same
//! channel works, since the deployment keeps Postgres for search).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gt_store::archive::StreamArchiveState;
use gt_store::catalog::{
    CHAT_MESSAGES, EPISODES, PROFILES, Resource, SERIES, STREAM_WIDGETS, STREAMS, TASKS,
    VIDEO_CLIPS,
};
use gt_store::chat::{CaptureTransport, ChatLine, IncomingEvent, PendingEvent, TwitchChannel};
use gt_store::insight::{SegmentRow, SeriesTemplates, WindowRow};
use gt_store::pipeline::typed_record;
use gt_store::publish::{EpisodePatch, OAuthConnection, Provider};
use gt_store::widgets::{AppliedInput, Widget};
use gt_store::{
    ChatStore, InsightStore, ListQuery, PgStore, PipelineStore, PublishStore, RecordPage,
    RecordStore, StoreError, StoreResult, WidgetStore,
};
use gt_types::episode::{ClipSummary, ReviewStatus, SearchHit};
use gt_types::media::{MediaInfo, Preview, SpeechMap};
use gt_types::records::{Episode, Profile, Series, Stream, TaskStatus, VideoClip};
use gt_types::transcript::Transcript;
use gt_types::workflow::{ClipStart, FinalizeClips, FinalizedClips, TaskUpdate};
use gt_widgets::{Input, WidgetKind};
use serde_json::{Map, Value, json};

use crate::{DynamoRecordStore, Presence};

/// Serialized size above which a server-written field is kept in Postgres (`record_documents`)
/// and the DynamoDB item holds a marker: DynamoDB refuses items over 400 KB, and a 4-hour
/// clip's transcription with word times is megabytes. A dozen fields at this size stay under.
pub const INLINE_LIMIT: usize = 32 * 1024;

const MARKER_KEY: &str = "$document";

/// What the item holds instead of a document kept in Postgres, shaped like the field (an
/// object, or a one-element array for array fields) so the catalog's types still hold.
fn marker_for(value: &Value) -> Value {
    let marker = json!({ MARKER_KEY: "postgres" });
    if value.is_array() {
        json!([marker])
    } else {
        marker
    }
}

fn is_marker(value: &Value) -> bool {
    let is = |v: &Value| {
        v.as_object()
            .is_some_and(|m| m.len() == 1 && m.contains_key(MARKER_KEY))
    };
    is(value) || value.as_array().is_some_and(|a| a.len() == 1 && is(&a[0]))
}

/// How many times a read-modify-write retries after losing a race to another writer.
const OPTIMISTIC_ATTEMPTS: usize = 8;

/// Records in DynamoDB, search, chat and live widgets in Postgres (see the module docs).
#[derive(Clone)]
pub struct DynamoPgStore {
    pub dynamo: DynamoRecordStore,
    pub pg: PgStore,
}

/// Resources that stay in Postgres in a DynamoDB deployment.
fn in_postgres(resource: &Resource) -> bool {
    [CHAT_MESSAGES.name, STREAM_WIDGETS.name].contains(&resource.name)
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Names a missing record the way the Postgres store does (`clip 'k' not found`); every other
/// error (a DynamoDB or Postgres failure, which a retry may cure) passes through unchanged.
fn not_found_as<'a>(what: &'static str, id: &'a str) -> impl FnOnce(StoreError) -> StoreError + 'a {
    move |e| match e {
        StoreError::NotFound(_) => StoreError::NotFound(format!("{what} '{id}' not found")),
        e => e,
    }
}

fn serialized<T: serde::Serialize>(value: &T) -> StoreResult<Value> {
    serde_json::to_value(value).map_err(|e| StoreError::Backend(e.into()))
}

impl DynamoPgStore {
    pub fn new(dynamo: DynamoRecordStore, pg: PgStore) -> Self {
        Self { dynamo, pg }
    }

    fn records_of(&self, resource: &Resource) -> &dyn RecordStore {
        if in_postgres(resource) {
            &self.pg
        } else {
            &self.dynamo
        }
    }

    async fn merge(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        body: Value,
        presence: Presence,
    ) -> StoreResult<crate::Merged> {
        let mut fields = fields(body);
        // Large documents go to Postgres first, so the item never names one that is missing.
        let mut large = Vec::new();
        let mut small = Vec::new();
        for (name, value) in fields.iter_mut() {
            if serde_json::to_vec(value).map_or(0, |b| b.len()) > INLINE_LIMIT {
                large.push((name.clone(), std::mem::replace(value, marker_for(value))));
            } else {
                small.push(name.clone());
            }
        }
        for (field, doc) in &large {
            sqlx::query(
                "INSERT INTO record_documents (user_id, resource, record_id, field, doc)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, resource, record_id, field)
                 DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()",
            )
            .bind(user_id)
            .bind(resource.name)
            .bind(id)
            .bind(field)
            .bind(sqlx::types::Json(doc))
            .execute(self.pg.pool())
            .await?;
        }
        let merged = self
            .dynamo
            .server_merge(user_id, resource, id, &fields, presence)
            .await?;
        // A field written small again no longer needs its old document.
        sqlx::query(
            "DELETE FROM record_documents
             WHERE user_id = $1 AND resource = $2 AND record_id = $3 AND field = ANY($4)",
        )
        .bind(user_id)
        .bind(resource.name)
        .bind(id)
        .bind(&small)
        .execute(self.pg.pool())
        .await?;
        Ok(merged)
    }

    /// Puts the documents kept in Postgres back into the records that name them.
    async fn inline_documents(
        &self,
        user_id: &str,
        resource: &Resource,
        records: &mut [Value],
    ) -> StoreResult<()> {
        let ids: Vec<String> = records
            .iter()
            .filter(|r| r.as_object().is_some_and(|m| m.values().any(is_marker)))
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, String, Value)> = sqlx::query_as(
            "SELECT record_id, field, doc FROM record_documents
             WHERE user_id = $1 AND resource = $2 AND record_id = ANY($3)",
        )
        .bind(user_id)
        .bind(resource.name)
        .bind(&ids)
        .fetch_all(self.pg.pool())
        .await?;
        for record in records.iter_mut() {
            let id = record["id"].as_str().unwrap_or_default().to_string();
            for (_, field, doc) in rows.iter().filter(|(r, _, _)| *r == id) {
                if record.get(field).is_some_and(is_marker) {
                    record[field] = doc.clone();
                }
            }
        }
        Ok(())
    }

    async fn forget_documents(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM record_documents WHERE user_id = $1 AND resource = $2 AND record_id = $3",
        )
        .bind(user_id)
        .bind(resource.name)
        .bind(id)
        .execute(self.pg.pool())
        .await?;
        Ok(())
    }

    /// Reads a record, changes it with `change` and writes it back only if nobody wrote it in
    /// between (DynamoDB has no transactions across a read and a write; `updated_at` is the
    /// version). `change` returns the fields to merge.
    async fn read_modify_write(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        change: impl Fn(&Value) -> StoreResult<Value>,
    ) -> StoreResult<()> {
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let current = self.get(user_id, resource, id).await?;
            let version = current["updated_at"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let patch = change(&current)?;
            match self
                .merge(user_id, resource, id, patch, Presence::Unchanged(version))
                .await
            {
                Err(StoreError::Conflict(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(StoreError::Conflict(format!(
            "{} record '{id}' kept changing; try again",
            resource.name
        )))
    }

    async fn episodes_of_stream(&self, user_id: &str, stream_id: &str) -> StoreResult<Vec<Value>> {
        self.related(user_id, &EPISODES, "stream_id", stream_id)
            .await
    }
}

#[async_trait]
impl RecordStore for DynamoPgStore {
    async fn ping(&self) -> StoreResult<()> {
        self.dynamo.ping().await?;
        self.pg.ping().await
    }

    async fn list(
        &self,
        user_id: &str,
        resource: &Resource,
        query: &ListQuery,
    ) -> StoreResult<RecordPage> {
        let mut page = self
            .records_of(resource)
            .list(user_id, resource, query)
            .await?;
        self.inline_documents(user_id, resource, &mut page.items)
            .await?;
        Ok(page)
    }

    async fn related(
        &self,
        user_id: &str,
        resource: &Resource,
        field: &str,
        value: &str,
    ) -> StoreResult<Vec<Value>> {
        let mut records = self
            .records_of(resource)
            .related(user_id, resource, field, value)
            .await?;
        self.inline_documents(user_id, resource, &mut records)
            .await?;
        Ok(records)
    }

    async fn get(&self, user_id: &str, resource: &Resource, id: &str) -> StoreResult<Value> {
        let mut record = [self.records_of(resource).get(user_id, resource, id).await?];
        self.inline_documents(user_id, resource, &mut record)
            .await?;
        let [record] = record;
        Ok(record)
    }

    async fn create(
        &self,
        user_id: &str,
        resource: &Resource,
        bodies: &[Value],
    ) -> StoreResult<Vec<Value>> {
        self.records_of(resource)
            .create(user_id, resource, bodies)
            .await
    }

    async fn update(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        patch: &Value,
    ) -> StoreResult<Value> {
        self.records_of(resource)
            .update(user_id, resource, id, patch)
            .await
    }

    async fn upsert(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        patch: &Value,
    ) -> StoreResult<Value> {
        self.records_of(resource)
            .upsert(user_id, resource, id, patch)
            .await
    }

    async fn delete(&self, user_id: &str, resource: &Resource, id: &str) -> StoreResult<()> {
        self.records_of(resource)
            .delete(user_id, resource, id)
            .await?;
        self.forget_documents(user_id, resource, id).await
    }
}

#[async_trait]
impl PipelineStore for DynamoPgStore {
    async fn get_stream(&self, user_id: &str, stream_id: &str) -> StoreResult<Stream> {
        let doc = self
            .get(user_id, &STREAMS, stream_id)
            .await
            .map_err(not_found_as("stream", stream_id))?;
        typed_record(doc, "stream", stream_id)
    }

    async fn upsert_clip_probe(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        info: &MediaInfo,
    ) -> StoreResult<()> {
        let body = json!({"key": key, "stream_id": stream_id, "metadata": serialized(info)?,
                          "error": null});
        self.merge(user_id, &VIDEO_CLIPS, key, body, Presence::Upsert)
            .await
            .map(|_| ())
    }

    async fn mark_clip_failed(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        reason: &str,
    ) -> StoreResult<()> {
        let body = json!({"key": key, "stream_id": stream_id, "error": reason,
                          "metadata": null, "start_time": null});
        self.merge(user_id, &VIDEO_CLIPS, key, body, Presence::Upsert)
            .await
            .map(|_| ())
    }

    async fn finalize_clips(&self, input: &FinalizeClips) -> StoreResult<FinalizedClips> {
        let user = &input.user_id;
        // The stream first: a missing one changes nothing.
        self.get_stream(user, &input.stream_id).await?;
        let mut start = 0.0;
        let mut clips = Vec::new();
        for key in &input.keys {
            if input.failures.iter().any(|f| &f.key == key) {
                continue;
            }
            let clip = match self.get(user, &VIDEO_CLIPS, key).await {
                Ok(clip) if clip.get("error").is_none() => clip,
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "clip '{key}' was not probed before finalizing"
                    )));
                }
            };
            let duration = clip["metadata"]["format"]["duration"]
                .as_f64()
                .unwrap_or(0.0);
            clips.push(ClipStart {
                key: key.clone(),
                start_time: start,
                duration,
            });
            start += duration;
        }
        // Idempotent steps in an order a retry can repeat: starts, then stale clips, then the
        // stream's totals.
        for c in &clips {
            self.merge(
                user,
                &VIDEO_CLIPS,
                &c.key,
                json!({"start_time": c.start_time}),
                Presence::MustExist,
            )
            .await?;
        }
        let kept: HashSet<&String> = input.keys.iter().collect();
        for stale in self
            .related(user, &VIDEO_CLIPS, "stream_id", &input.stream_id)
            .await?
        {
            let id = stale["id"].as_str().unwrap_or_default();
            if !kept.contains(&id.to_string()) {
                match self.delete(user, &VIDEO_CLIPS, id).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let count = clips.len() as u32;
        self.merge(
            user,
            &STREAMS,
            &input.stream_id,
            json!({"video_clip_count": count, "duration": start}),
            Presence::MustExist,
        )
        .await?;
        Ok(FinalizedClips {
            clip_count: count,
            duration: start,
            clips,
        })
    }

    async fn upsert_task(&self, task: &TaskUpdate) -> StoreResult<()> {
        let body = json!({
            "status": task.status,
            "task_type": task.task_type,
            "record_id": task.record_id,
            "workflow_id": task.workflow_id,
            "message": task.message,
            "progress": task.progress,
        });
        let presence = Presence::UpsertUnless {
            field: "status",
            values: TaskStatus::FINAL,
        };
        let merged = match self
            .merge(&task.user_id, &TASKS, &task.task_id, body, presence)
            .await
        {
            Ok(merged) => merged,
            // The task has ended: nothing written, nothing to announce.
            Err(StoreError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let message_included = task.message.as_ref().is_none_or(|m| m.len() <= 2000);
        let payload = json!({
            "user_id": task.user_id,
            "id": task.task_id,
            "status": task.status,
            "old_status": merged.before.as_ref().map(|b| b["status"].clone()),
            "progress": task.progress,
            "updated_at": merged.updated_at,
            "message_included": message_included,
            "message": if message_included { json!(task.message) } else { Value::Null },
        });
        sqlx::query("SELECT pg_notify('task_updates', $1)")
            .bind(payload.to_string())
            .execute(self.pg.pool())
            .await?;
        Ok(())
    }

    async fn get_clip(&self, user_id: &str, key: &str) -> StoreResult<VideoClip> {
        let doc = self
            .get(user_id, &VIDEO_CLIPS, key)
            .await
            .map_err(not_found_as("clip", key))?;
        typed_record(doc, "clip", key)
    }

    async fn speech_track(&self, user_id: &str, stream_id: &str) -> StoreResult<Option<u32>> {
        let from_stream = match self.get(user_id, &STREAMS, stream_id).await {
            Ok(s) => s["speech_track"].as_i64(),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let track = match from_stream {
            Some(t) => Some(t),
            None => match self.get(user_id, &PROFILES, user_id).await {
                Ok(p) => p["speechTrack"].as_i64(),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e),
            },
        };
        match track {
            None => Ok(None),
            Some(t) if (0..=64).contains(&t) => Ok(Some(t as u32)),
            Some(t) => Err(StoreError::Invalid(format!(
                "speech track {t} is not a valid audio track index"
            ))),
        }
    }

    async fn save_speech(&self, user_id: &str, key: &str, map: &SpeechMap) -> StoreResult<()> {
        let body = json!({"speech": serialized(map)?, "silence": serialized(&map.silence)?,
                          "audio": map.audio.as_ref().map(|a| a.key.clone())});
        self.merge(user_id, &VIDEO_CLIPS, key, body, Presence::MustExist)
            .await
            .map(|_| ())
            .map_err(not_found_as("clip", key))
    }

    async fn save_transcript(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        start_time: f64,
        transcript: &Transcript,
    ) -> StoreResult<()> {
        let body = json!({"transcription": serialized(transcript)?});
        self.merge(user_id, &VIDEO_CLIPS, key, body, Presence::MustExist)
            .await
            .map_err(not_found_as("clip", key))?;
        self.pg
            .replace_transcript_segments(user_id, stream_id, key, start_time, transcript)
            .await
    }

    async fn set_stream_archive_state(
        &self,
        user_id: &str,
        stream_id: &str,
        state: StreamArchiveState,
    ) -> StoreResult<()> {
        let body = json!({"archive_state": state.as_str(), "archive_state_at": Utc::now()});
        self.merge(user_id, &STREAMS, stream_id, body, Presence::MustExist)
            .await
            .map(|_| ())
            .map_err(not_found_as("stream", stream_id))
    }

    async fn save_preview(&self, user_id: &str, key: &str, preview: &Preview) -> StoreResult<()> {
        let transcode: Vec<Value> = preview
            .segments
            .iter()
            .map(|s| json!({"path": s.key, "duration": s.duration}))
            .collect();
        let body = json!({"preview": serialized(preview)?, "keyframes": preview.keyframes,
                          "transcode": transcode});
        self.merge(user_id, &VIDEO_CLIPS, key, body, Presence::MustExist)
            .await
            .map(|_| ())
            .map_err(not_found_as("clip", key))
    }
}

#[async_trait]
impl InsightStore for DynamoPgStore {
    async fn transcript_rows(&self, user_id: &str, key: &str) -> StoreResult<Vec<SegmentRow>> {
        self.pg.transcript_rows(user_id, key).await
    }

    async fn edit_segment(
        &self,
        user_id: &str,
        key: &str,
        idx: i32,
        text: &str,
    ) -> StoreResult<String> {
        let stream_id = self.pg.edit_segment_row(user_id, key, idx, text).await?;
        // Keep the clip's transcript (the original's shape) in step with the rows.
        let clip_text = self
            .pg
            .transcript_rows(user_id, key)
            .await?
            .into_iter()
            .map(|r| r.text)
            .collect::<Vec<_>>()
            .join(" ");
        self.read_modify_write(user_id, &VIDEO_CLIPS, key, |clip| {
            let mut transcription = clip["transcription"].clone();
            if let Some(segment) = transcription["segments"].get_mut(idx as usize) {
                segment["text"] = json!(text);
            }
            if transcription.is_object() {
                transcription["text"] = json!(clip_text);
            }
            Ok(json!({"transcription": transcription}))
        })
        .await?;
        Ok(stream_id)
    }

    async fn save_summary(
        &self,
        user_id: &str,
        key: &str,
        summary: &ClipSummary,
    ) -> StoreResult<()> {
        let body = json!({"summary": serialized(summary)?});
        self.merge(user_id, &VIDEO_CLIPS, key, body, Presence::MustExist)
            .await
            .map(|_| ())
            .map_err(not_found_as("clip", key))
    }

    async fn replace_windows(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        model: &str,
        windows: &[WindowRow],
    ) -> StoreResult<()> {
        self.pg
            .replace_windows(user_id, stream_id, key, model, windows)
            .await
    }

    async fn search_windows(
        &self,
        user_id: &str,
        stream_id: Option<&str>,
        model: &str,
        text: &str,
        query: &[f32],
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        self.pg
            .search_windows(user_id, stream_id, model, text, query, limit)
            .await
    }

    async fn window_models(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.pg.window_models(user_id).await
    }

    async fn stream_clips(&self, user_id: &str, stream_id: &str) -> StoreResult<Vec<VideoClip>> {
        let mut clips = self
            .related(user_id, &VIDEO_CLIPS, "stream_id", stream_id)
            .await?
            .into_iter()
            .filter(|c| c.get("start_time").is_some() && c.get("error").is_none())
            .map(|c| {
                let id = c["id"].as_str().unwrap_or_default().to_string();
                typed_record::<VideoClip>(c, "clip", &id)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        clips.sort_by(|a, b| {
            let start = |c: &VideoClip| c.start_time.unwrap_or(0.0);
            start(a)
                .total_cmp(&start(b))
                .then_with(|| a.key.cmp(&b.key))
        });
        Ok(clips)
    }

    async fn series_templates(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<SeriesTemplates> {
        let stream = self.get_stream(user_id, stream_id).await?;
        let series = match &stream.series_id {
            Some(id) => self.get_series(user_id, id).await?,
            None => None,
        };
        Ok(SeriesTemplates::with_defaults(
            stream.series_id.clone(),
            stream
                .title
                .clone()
                .unwrap_or_else(|| stream_id.to_string()),
            stream.description.clone().unwrap_or_default(),
            series
                .as_ref()
                .and_then(|s| s.episode_title_template.clone()),
            series
                .as_ref()
                .and_then(|s| s.episode_description_template.clone()),
            series
                .as_ref()
                .and_then(|s| s.max_episode_order_index)
                .unwrap_or(0),
        ))
    }

    async fn replace_proposals(
        &self,
        user_id: &str,
        stream_id: &str,
        episodes: &[Value],
    ) -> StoreResult<Vec<String>> {
        for old in self.episodes_of_stream(user_id, stream_id).await? {
            if old["review_status"] == ReviewStatus::AwaitingReview.as_str() {
                let id = old["id"].as_str().unwrap_or_default();
                match self.delete(user_id, &EPISODES, id).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut ids = Vec::new();
        for e in episodes {
            let id = e["id"].as_str().unwrap_or_default().to_string();
            let mut body = fields(e.clone());
            body.remove("id");
            body.insert("stream_id".into(), json!(stream_id));
            body.insert(
                "review_status".into(),
                json!(ReviewStatus::AwaitingReview.as_str()),
            );
            body.insert("upload_status".into(), json!("not_ready_to_upload"));
            body.insert("is_published".into(), json!(false));
            body.entry("tags").or_insert_with(|| json!([]));
            // An episode already decided (same id) stays as it is.
            match self
                .merge(
                    user_id,
                    &EPISODES,
                    &id,
                    Value::Object(body),
                    Presence::MustBeAbsent,
                )
                .await
            {
                Ok(_) => ids.push(id),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ids)
    }

    async fn proposals(&self, user_id: &str, stream_id: &str) -> StoreResult<Vec<Value>> {
        let mut episodes: Vec<Value> = self
            .episodes_of_stream(user_id, stream_id)
            .await?
            .into_iter()
            .filter(|e| e.get("review_status").is_some())
            .map(|mut e| {
                if let Some(map) = e.as_object_mut() {
                    map.remove("user_id");
                }
                e
            })
            .collect();
        let start = |e: &Value| e["start_time"].as_f64().unwrap_or(f64::INFINITY);
        episodes.sort_by(|a, b| {
            start(a)
                .total_cmp(&start(b))
                .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
        });
        Ok(episodes)
    }

    async fn apply_review(
        &self,
        user_id: &str,
        stream_id: &str,
        edits: &[(String, Value)],
        approve: &[String],
        reject: &[String],
    ) -> StoreResult<()> {
        // Every write is checked before any is made, like the Postgres transaction.
        for (id, patch) in edits {
            gt_store::write::validate_write(
                &EPISODES,
                patch,
                gt_store::write::WriteKind::Update(id),
            )?;
        }
        let awaiting: HashSet<String> = self
            .episodes_of_stream(user_id, stream_id)
            .await?
            .into_iter()
            .filter(|e| e["review_status"] == ReviewStatus::AwaitingReview.as_str())
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        let named = edits.iter().map(|(id, _)| id).chain(approve).chain(reject);
        for id in named {
            if !awaiting.contains(id) {
                return Err(StoreError::Invalid(format!(
                    "episode '{id}' is not a proposal of stream '{stream_id}' awaiting review"
                )));
            }
        }
        for (id, patch) in edits {
            self.dynamo.update(user_id, &EPISODES, id, patch).await?;
        }
        for (ids, status) in [
            (approve, ReviewStatus::Approved),
            (reject, ReviewStatus::Rejected),
        ] {
            for id in ids {
                let body = json!({"review_status": status.as_str()});
                self.merge(user_id, &EPISODES, id, body, Presence::MustExist)
                    .await?;
            }
        }
        Ok(())
    }

    async fn set_review_status(
        &self,
        user_id: &str,
        stream_id: &str,
        ids: &[String],
        status: ReviewStatus,
    ) -> StoreResult<()> {
        let proposals: HashSet<String> = self
            .episodes_of_stream(user_id, stream_id)
            .await?
            .into_iter()
            .filter(|e| e.get("review_status").is_some())
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        if ids.iter().any(|id| !proposals.contains(id)) {
            return Err(StoreError::NotFound(format!(
                "not every episode in {ids:?} is a proposal of stream '{stream_id}'"
            )));
        }
        for id in ids {
            let body = json!({"review_status": status.as_str()});
            self.merge(user_id, &EPISODES, id, body, Presence::MustExist)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl PublishStore for DynamoPgStore {
    async fn get_episode(&self, user_id: &str, episode_id: &str) -> StoreResult<Episode> {
        let doc = self
            .get(user_id, &EPISODES, episode_id)
            .await
            .map_err(not_found_as("episode", episode_id))?;
        typed_record(doc, "episode", episode_id)
    }

    async fn clips_by_key(&self, user_id: &str, keys: &[String]) -> StoreResult<Vec<VideoClip>> {
        let mut found = HashMap::new();
        for key in keys {
            if !found.contains_key(key) {
                found.insert(key.clone(), self.get_clip(user_id, key).await?);
            }
        }
        Ok(keys.iter().map(|k| found[k].clone()).collect())
    }

    async fn profile(&self, user_id: &str) -> StoreResult<Profile> {
        let page = self
            .list(
                user_id,
                &PROFILES,
                &ListQuery {
                    per_page: Some(1),
                    ..ListQuery::default()
                },
            )
            .await?;
        match page.items.into_iter().next() {
            Some(doc) => typed_record(doc, "profile", user_id),
            None => Ok(Profile::default()),
        }
    }

    async fn get_series(&self, user_id: &str, series_id: &str) -> StoreResult<Option<Series>> {
        match self.get(user_id, &SERIES, series_id).await {
            Ok(doc) => typed_record(doc, "series", series_id).map(Some),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn patch_episode(
        &self,
        user_id: &str,
        episode_id: &str,
        patch: &EpisodePatch,
    ) -> StoreResult<()> {
        self.read_modify_write(user_id, &EPISODES, episode_id, |current| {
            let mut body = Map::new();
            let mut set = |k: &str, v: Value| {
                body.insert(k.to_string(), v);
            };
            if let Some(v) = &patch.render_uri {
                set("render_uri", json!(v));
            }
            if let Some(v) = &patch.youtube_video_id {
                set("youtube_video_id", json!(v));
            }
            if let Some(v) = &patch.youtube_upload_url {
                set("youtube_upload_url", json!(v));
            }
            if let Some(v) = patch.upload_resume_at_byte {
                set("upload_resume_at_byte", json!(v));
            }
            if let Some(v) = patch.upload_status {
                set("upload_status", serialized(&v)?);
            }
            if let Some(v) = &patch.error_message {
                set("error_message", json!(v));
            }
            if let Some(v) = patch.retry_after_seconds {
                set("retry_after_seconds", json!(v));
            }
            if let Some(v) = patch.is_published {
                set("is_published", json!(v));
            }
            if let Some(Value::Object(v)) = &patch.publish {
                // Top-level keys merged, as Postgres's `publish || patch`.
                let mut publish = fields(current["publish"].clone());
                publish.extend(v.clone());
                set("publish", Value::Object(publish));
            }
            if patch.add_upload_attempt {
                let attempts = current["upload_attempts"].as_i64().unwrap_or(0);
                set("upload_attempts", json!(attempts + 1));
            }
            Ok(Value::Object(body))
        })
        .await
        .map_err(not_found_as("episode", episode_id))
    }

    async fn oauth(
        &self,
        user_id: &str,
        provider: Provider,
    ) -> StoreResult<Option<OAuthConnection>> {
        self.pg.oauth(user_id, provider).await
    }

    async fn begin_oauth(
        &self,
        user_id: &str,
        provider: Provider,
        csrf_token: &str,
        redirect_url: &str,
        scopes: &[String],
    ) -> StoreResult<()> {
        self.pg
            .begin_oauth(user_id, provider, csrf_token, redirect_url, scopes)
            .await
    }

    async fn take_oauth_state(
        &self,
        user_id: &str,
        provider: Provider,
        state: &str,
    ) -> StoreResult<Option<String>> {
        self.pg.take_oauth_state(user_id, provider, state).await
    }

    async fn forget_oauth(&self, user_id: &str, provider: Provider) -> StoreResult<()> {
        self.pg.forget_oauth(user_id, provider).await
    }

    async fn save_oauth_tokens(
        &self,
        user_id: &str,
        provider: Provider,
        sealed_tokens: &str,
    ) -> StoreResult<()> {
        self.pg
            .save_oauth_tokens(user_id, provider, sealed_tokens)
            .await
    }

    async fn mark_oauth_reconnect(&self, user_id: &str, provider: Provider) -> StoreResult<()> {
        self.pg.mark_oauth_reconnect(user_id, provider).await
    }
}

/// Chat and Twitch connections stay in Postgres; a stream's start and chat peaks are fields of
/// the stream record.
#[async_trait]
impl ChatStore for DynamoPgStore {
    async fn twitch_channel(&self, user_id: &str) -> StoreResult<Option<TwitchChannel>> {
        self.pg.twitch_channel(user_id).await
    }

    async fn twitch_channel_of_broadcaster(
        &self,
        broadcaster_id: &str,
    ) -> StoreResult<Option<TwitchChannel>> {
        self.pg.twitch_channel_of_broadcaster(broadcaster_id).await
    }

    async fn connect_twitch_channel(
        &self,
        user_id: &str,
        broadcaster_id: &str,
        login: &str,
    ) -> StoreResult<()> {
        self.pg
            .connect_twitch_channel(user_id, broadcaster_id, login)
            .await
    }

    async fn disconnect_twitch_channel(&self, user_id: &str) -> StoreResult<()> {
        self.pg.disconnect_twitch_channel(user_id).await
    }

    async fn all_twitch_channels(&self) -> StoreResult<Vec<TwitchChannel>> {
        self.pg.all_twitch_channels().await
    }

    async fn set_capture(
        &self,
        user_id: &str,
        enabled: bool,
        transport: CaptureTransport,
    ) -> StoreResult<()> {
        self.pg.set_capture(user_id, enabled, transport).await
    }

    async fn record_capture_state(
        &self,
        user_id: &str,
        subscriptions: &Value,
        token_lost: bool,
    ) -> StoreResult<()> {
        self.pg
            .record_capture_state(user_id, subscriptions, token_lost)
            .await
    }

    async fn record_revocation(
        &self,
        broadcaster_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.pg.record_revocation(broadcaster_id, reason, at).await
    }

    async fn record_token_validation(
        &self,
        user_id: &str,
        valid: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.pg.record_token_validation(user_id, valid, at).await
    }

    async fn set_live_stream(&self, user_id: &str, stream_id: Option<&str>) -> StoreResult<()> {
        self.pg.set_live_stream(user_id, stream_id).await
    }

    async fn accept_eventsub(
        &self,
        batch: &[IncomingEvent],
        chat_retention_secs: i64,
    ) -> StoreResult<Vec<String>> {
        self.pg.accept_eventsub(batch, chat_retention_secs).await
    }

    async fn pending_events(&self, limit: i64) -> StoreResult<Vec<PendingEvent>> {
        self.pg.pending_events(limit).await
    }

    async fn mark_event_processed(&self, message_id: &str, error: Option<&str>) -> StoreResult<()> {
        self.pg.mark_event_processed(message_id, error).await
    }

    async fn mark_chat_deleted(&self, broadcaster_id: &str, message_id: &str) -> StoreResult<u64> {
        self.pg.mark_chat_deleted(broadcaster_id, message_id).await
    }

    async fn clear_chat(
        &self,
        broadcaster_id: &str,
        target_user_id: Option<&str>,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.pg
            .clear_chat(broadcaster_id, target_user_id, before)
            .await
    }

    async fn chat_between(
        &self,
        user_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<ChatLine>> {
        self.pg.chat_between(user_id, from, to).await
    }

    async fn stream_start(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        match self.get(user_id, &STREAMS, stream_id).await {
            Ok(stream) => Ok(stream["stream_date"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_stream_chat_highlights(
        &self,
        user_id: &str,
        stream_id: &str,
        peaks: &[gt_types::chat::ChatPeak],
    ) -> StoreResult<()> {
        let body = json!({"chat_highlights": serialized(&peaks)?});
        match self
            .merge(user_id, &STREAMS, stream_id, body, Presence::MustExist)
            .await
        {
            // Like the Postgres UPDATE of no row: a stream deleted meanwhile is not an error.
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn stream_chat_highlights(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<Vec<gt_types::chat::ChatPeak>> {
        match self.get(user_id, &STREAMS, stream_id).await {
            Ok(stream) => {
                Ok(serde_json::from_value(stream["chat_highlights"].clone()).unwrap_or_default())
            }
            Err(StoreError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn purge_chat(&self, now: DateTime<Utc>, ids_before: DateTime<Utc>) -> StoreResult<u64> {
        self.pg.purge_chat(now, ids_before).await
    }
}

/// Widgets stay in Postgres (row locks per action, trigger fan-out).
#[async_trait]
impl WidgetStore for DynamoPgStore {
    async fn widget_by_token(&self, token: &str) -> StoreResult<Option<(String, String)>> {
        self.pg.widget_by_token(token).await
    }

    async fn widget(&self, user_id: &str, id: &str) -> StoreResult<Option<Widget>> {
        self.pg.widget(user_id, id).await
    }

    async fn apply_widget_input(
        &self,
        user_id: &str,
        id: &str,
        input: &Input,
        now: DateTime<Utc>,
    ) -> StoreResult<AppliedInput> {
        self.pg.apply_widget_input(user_id, id, input, now).await
    }

    async fn widgets_of_kind(&self, user_id: &str, kind: WidgetKind) -> StoreResult<Vec<String>> {
        self.pg.widgets_of_kind(user_id, kind).await
    }

    async fn recent_chat(
        &self,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<gt_widgets::chat::ChatLine>> {
        self.pg.recent_chat(user_id, limit).await
    }
}
