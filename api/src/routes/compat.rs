//! Calls the original React front end makes that have no other home yet
//! (`reference/anchor-frontend.md` §2.3), answered in the shapes it reads:
//!
//! - `GET /ingestion/streams/{id}/s3-status` → the storage chip's
//!   `{exists, storage_class, size_bytes, retrieval_required, estimated_*}` from the real
//!   storage state of the recordings under the stream's prefix in the owner's recordings
//!   store (a HEAD per object): the coldest class wins (DEEP_ARCHIVE > GLACIER and the local
//!   archive > GLACIER_IR > the rest), retrieval is required while an archived recording has
//!   no readable restored copy, and the estimates use the original's cost configuration
//!   ([`cost`]). Another user's stream is a 404.
//! - `POST /ingestion/streams/{id}/archive` and `POST /ingestion/streams/{id}/restore`
//!   (`{poll_seconds?, days?}`) → 202 with the `ArchiveStream` / `RestoreStream` workflow
//!   (`archive-stream-{owner}-{id}`, `restore-stream-{owner}-{id}`); a repeat while one runs
//!   joins it. Not in the original (its restores ran inside the ingestion Step Function).
//! - `POST /ai/chat` `{messages: [{role, content}]}` → `{messages: [...messages, reply]}`: the
//!   conversation sent to the configured OpenAI-compatible chat model (`GT_OPENAI_API_KEY`,
//!   `GT_OPENAI_BASE_URL`, `GT_SUMMARY_MODEL`); 503 with a message saying what to set when no
//!   key is configured.
//!
//! Also [`localize_times`]: date-times the front end's forms send without a zone; and
//! [`fill_create_defaults`]: the keys the front end's episode creation insists on, which its
//! own create forms leave out.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use gt_store::blob::{LOCAL_ARCHIVE_CLASS, RestoreState, StorageState};
use gt_store::catalog::{PROFILES, Resource, STREAMS};
use gt_store::{BlobStore, StoreError};
use gt_types::api::WorkflowStarted;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonObject, PathParams};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ingestion/streams/{id}/s3-status", get(storage_status))
        .route("/ingestion/streams/{id}/archive", post(archive_stream))
        .route("/ingestion/streams/{id}/restore", post(restore_stream))
        .route("/ai/chat", post(ai_chat))
}

/// YouTube's "Gaming" category, the default for a streamer's series.
pub const DEFAULT_YOUTUBE_CATEGORY: i64 = 20;

/// Fills what the front end's episode creation (`useBulkEpisodeCreate` `validateState`)
/// requires to be present but its Create forms never send: a series from "Create series"
/// (title only) gets `max_episode_order_index: 0`, `notify_subscribers: false`, `tags: []` and
/// YouTube category 20 (Gaming); a stream created without a description gets `""`. Only absent
/// keys are filled; anything the client sent is kept (and validated as usual).
pub fn fill_create_defaults(resource: &Resource, body: &mut Value) {
    let Some(map) = body.as_object_mut() else {
        return;
    };
    let defaults: &[(&str, Value)] = match resource.name {
        "series" => &[
            ("max_episode_order_index", json!(0)),
            ("notify_subscribers", json!(false)),
            ("tags", json!([])),
            ("category", json!(DEFAULT_YOUTUBE_CATEGORY)),
        ],
        "streams" => &[("description", json!(""))],
        _ => &[],
    };
    for (key, value) in defaults {
        map.entry(*key).or_insert_with(|| value.clone());
    }
}

/// Resolves the zone-less date-times in one record body (`stream_date: "2024-07-01T20:30"`
/// from a `datetime-local` input) in the caller's profile `timezone`, when one is set; without
/// one they mean UTC. A time the zone skips or repeats, or a profile zone that is no IANA
/// name, is a 400 and nothing is written. Called by the record routes before validation.
pub async fn localize_times(
    state: &AppState,
    user: &AuthUser,
    resource: &Resource,
    body: &mut Value,
) -> ApiResult<()> {
    if !gt_store::write::has_local_times(resource, body) {
        return Ok(());
    }
    let zone = match state
        .records
        .get(&user.user_id, &PROFILES, &user.user_id)
        .await
    {
        Ok(profile) => profile["timezone"].as_str().map(str::to_string),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    gt_store::write::resolve_local_times(resource, body, zone.as_deref())?;
    Ok(())
}

/// The original's storage cost configuration (`ingestion_management_lambda/
/// storage_cost_config.json`, `reference/anchor-backend.md` §9): retrieval per GB and hours
/// per tier, and the compute an ingestion costs per GB. GB here is 2^30 bytes (the original's
/// tests: 1 GiB → $0.0075 of compute).
pub mod cost {
    /// Retrieval tiers the estimates name, as the front end's tooltip lists them.
    pub const TIERS: [&str; 2] = ["bulk", "standard"];
    /// $ per GB restored, per tier (`bulk`, `standard`), for a class that needs a restore.
    pub fn retrieval_usd_per_gb(storage_class: &str) -> Option<[f64; 2]> {
        match storage_class {
            "GLACIER" => Some([0.0025, 0.01]),
            "DEEP_ARCHIVE" => Some([0.0025, 0.02]),
            _ => None,
        }
    }
    /// Hours a restore takes, per tier.
    pub fn retrieval_hours(storage_class: &str) -> Option<[f64; 2]> {
        match storage_class {
            "GLACIER" => Some([8.0, 4.0]),
            "DEEP_ARCHIVE" => Some([48.0, 12.0]),
            _ => None,
        }
    }
    /// Processing: $0.50 per hour of compute, 0.015 hours per GB.
    pub const COMPUTE_USD_PER_HOUR: f64 = 0.50;
    pub const COMPUTE_HOURS_PER_GB: f64 = 0.015;
    pub const BYTES_PER_GB: f64 = 1024.0 * 1024.0 * 1024.0;
}

/// The storage chip's answer (`FE:src/components/atoms/StorageStatusField.tsx`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct StorageStatus {
    /// The stream's id (the front end's react-admin record id).
    pub id: String,
    /// Whether any recording is stored under the stream's prefix.
    pub exists: bool,
    /// The coldest storage class among the recordings (`STANDARD`, `GLACIER`,
    /// `DEEP_ARCHIVE`, … or `LOCAL_ARCHIVE` for the local archive directory); `null` when
    /// none exists.
    pub storage_class: Option<String>,
    /// Total bytes of the recordings under the prefix.
    pub size_bytes: Option<u64>,
    /// Whether an archived recording has no readable copy (a restore is needed or running).
    pub retrieval_required: bool,
    /// `{bulk, standard}` dollars to restore everything, when retrieval is required from a
    /// class with a price.
    pub estimated_retrieval_cost_usd: Option<Map<String, Value>>,
    /// `{bulk, standard}` hours a restore takes.
    pub estimated_retrieval_time_hours: Option<Map<String, Value>>,
    /// Dollars of compute to ingest the recordings.
    pub estimated_compute_cost_usd: Option<f64>,
    /// The stream's `archive_state` (`standard`, `archived`, `restoring`).
    pub archive_state: String,
}

/// How cold a class is: the coldest one names the stream's storage (the original's order).
fn coldness(storage_class: &str) -> u8 {
    match storage_class {
        "DEEP_ARCHIVE" => 4,
        "GLACIER" | LOCAL_ARCHIVE_CLASS => 3,
        "GLACIER_IR" => 2,
        _ => 1,
    }
}

/// The recordings store the workers read, as configured for the API.
fn recordings_store(state: &AppState) -> Option<Arc<dyn BlobStore>> {
    state.recordings.clone().or_else(|| {
        state
            .recordings_dir
            .as_ref()
            .map(|dir| Arc::new(gt_store::LocalDirStore::new(dir)) as Arc<dyn BlobStore>)
    })
}

/// The stream's folder in the owner's recordings root (`{owner}/{prefix}/`), or `None` when
/// the stream names no prefix.
fn stream_folder(user_id: &str, stream: &Value) -> ApiResult<Option<String>> {
    let prefix = stream["prefix"]
        .as_str()
        .map(|p| p.trim().trim_matches('/'))
        .filter(|p| !p.is_empty());
    match prefix {
        // The prefix names a folder of the owner's recordings root, never anyone else's.
        Some(prefix) => Ok(Some(format!(
            "{}/",
            gt_store::recording_key(user_id, prefix)?
        ))),
        None => Ok(None),
    }
}

fn tiers(values: [f64; 2]) -> Map<String, Value> {
    cost::TIERS
        .iter()
        .zip(values)
        .map(|(tier, v)| (tier.to_string(), json!(v)))
        .collect()
}

async fn storage_status(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
) -> ApiResult<Json<StorageStatus>> {
    // 404 for a stream that is not the caller's, before anything else is looked at.
    let stream = state
        .records
        .get(&user.user_id, &STREAMS, &stream_id)
        .await?;
    let archive_state = gt_store::archive::StreamArchiveState::of_stream(&stream)?;
    let folder = stream_folder(&user.user_id, &stream)?;
    let mut objects = Vec::new();
    if let (Some(folder), Some(store)) = (folder, recordings_store(&state)) {
        for o in store.list_all(&folder).await? {
            match store.storage(&o.key).await {
                Ok(s) => objects.push(s),
                // Deleted between the listing and the HEAD.
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let exists = !objects.is_empty();
    let size: u64 = objects.iter().map(|o| o.size).sum();
    let coldest = objects
        .iter()
        .map(|o| o.storage_class.as_str())
        .fold(None::<&str>, |cold, c| match cold {
            Some(x) if coldness(x) >= coldness(c) => Some(x),
            _ => Some(c),
        });
    let retrieval_required = objects.iter().any(|o| {
        matches!(
            o.state,
            StorageState::Archived(RestoreState::NotRequested | RestoreState::InProgress)
        )
    });
    let gb = size as f64 / cost::BYTES_PER_GB;
    let priced = coldest.filter(|_| retrieval_required);
    Ok(Json(StorageStatus {
        id: stream_id,
        exists,
        storage_class: coldest.map(str::to_string),
        size_bytes: exists.then_some(size),
        retrieval_required,
        estimated_retrieval_cost_usd: priced
            .and_then(cost::retrieval_usd_per_gb)
            .map(|rates| tiers(rates.map(|r| r * gb))),
        estimated_retrieval_time_hours: priced.and_then(cost::retrieval_hours).map(tiers),
        estimated_compute_cost_usd: exists
            .then_some(gb * cost::COMPUTE_HOURS_PER_GB * cost::COMPUTE_USD_PER_HOUR),
        archive_state: archive_state.as_str().to_string(),
    }))
}

/// Checks the stream is the caller's (404 otherwise) and has recordings to move (400 when it
/// names no prefix or no recordings store is configured).
async fn archivable_stream(state: &AppState, user: &AuthUser, stream_id: &str) -> ApiResult<()> {
    let stream = state
        .records
        .get(&user.user_id, &STREAMS, stream_id)
        .await?;
    if stream_folder(&user.user_id, &stream)?.is_none() {
        return Err(ApiError::BadRequest(format!(
            "stream '{stream_id}' has no prefix: set it to the folder that holds its recordings"
        )));
    }
    if recordings_store(state).is_none() {
        return Err(ApiError::Unavailable(
            "no recordings store is configured (GT_RECORDINGS_DIR or GT_BLOB_BACKEND=s3)".into(),
        ));
    }
    Ok(())
}

/// `POST /ingestion/streams/{id}/archive`: moves the stream's recordings to the archive
/// storage class (`ArchiveStream`). Archiving an archived stream changes nothing.
async fn archive_stream(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<WorkflowStarted>)> {
    archivable_stream(&state, &user, &stream_id).await?;
    let started = state
        .workflows
        .start_archive(&user.user_id, &stream_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// `POST /ingestion/streams/{id}/restore` body (optional).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// Seconds between checks of the restore's progress, 1–3600 (default 60, as the original
    /// polled).
    pub poll_seconds: Option<u64>,
    /// Days the restored copies are kept before they are made standard, 1–30 (default 1).
    pub days: Option<u32>,
}

/// `POST /ingestion/streams/{id}/restore`: brings the stream's archived recordings back
/// (`RestoreStream`: restore requests, a durable wait, then standard again). A repeat while
/// one runs joins it; a stream with nothing archived finishes at once.
async fn restore_stream(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<WorkflowStarted>)> {
    let request: RestoreRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RestoreRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid restore request: {e}")))?
    };
    if request
        .poll_seconds
        .is_some_and(|s| !(1..=3600).contains(&s))
    {
        return Err(ApiError::BadRequest(
            "poll_seconds must be between 1 and 3600".into(),
        ));
    }
    if request.days.is_some_and(|d| !(1..=30).contains(&d)) {
        return Err(ApiError::BadRequest("days must be between 1 and 30".into()));
    }
    archivable_stream(&state, &user, &stream_id).await?;
    let started = state
        .workflows
        .start_restore(gt_workflows::restore_stream::RestoreStreamInput {
            user_id: user.user_id.clone(),
            stream_id,
            poll_seconds: request.poll_seconds,
            days: request.days,
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// Who speaks in a chat message (the front end's `ChatMessage.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
    /// Sent by the front end's type but carries no function name: passed on as `user`, as the
    /// original did.
    Function,
    Tool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ChatResponse {
    /// The conversation sent, then the assistant's reply.
    pub messages: Vec<ChatMessage>,
}

/// Most messages one conversation may carry (the front end sends three, then one per turn).
const MAX_CHAT_MESSAGES: usize = 200;

async fn ai_chat(
    State(state): State<AppState>,
    _user: AuthUser,
    JsonObject(request): JsonObject<ChatRequest>,
) -> ApiResult<Json<ChatResponse>> {
    if request.messages.is_empty() {
        return Err(ApiError::BadRequest(
            "messages must hold at least one message".into(),
        ));
    }
    if request.messages.len() > MAX_CHAT_MESSAGES {
        return Err(ApiError::BadRequest(format!(
            "messages holds {} messages; at most {MAX_CHAT_MESSAGES} are allowed",
            request.messages.len()
        )));
    }
    let Some(model) = &state.chat else {
        return Err(ApiError::Unavailable(
            "AI chat is not configured: set GT_OPENAI_API_KEY (and GT_OPENAI_BASE_URL for \
             another OpenAI-compatible server) on the API"
                .into(),
        ));
    };
    let wire: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                ChatRole::System => "system",
                ChatRole::Assistant => "assistant",
                ChatRole::User | ChatRole::Function | ChatRole::Tool => "user",
            };
            json!({"role": role, "content": m.content})
        })
        .collect();
    let reply = model.converse(&wire).await.map_err(|e| {
        tracing::warn!(error = format!("{e:#}"), "AI chat failed");
        ApiError::Unavailable(format!("the AI chat model did not answer: {e:#}"))
    })?;
    let mut messages = request.messages;
    messages.push(ChatMessage {
        role: ChatRole::Assistant,
        content: reply,
    });
    Ok(Json(ChatResponse { messages }))
}

/// This router's entries in the OpenAPI document.
pub fn openapi_paths(paths: &mut Map<String, Value>) {
    use crate::routes::openapi::{json_content, with_errors};
    let id_param =
        json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    paths.insert("/ingestion/streams/{id}/s3-status".into(), json!({"get": {
        "tags": ["compat"], "summary": "Storage of a stream's recordings: coldest class, size, whether a restore is needed, the original's cost estimates",
        "parameters": id_param,
        "responses": with_errors("200", json_content(schemars::schema_for!(StorageStatus).to_value(), "Storage status"))
    }}));
    let started = || {
        with_errors(
            "202",
            json_content(
                schemars::schema_for!(WorkflowStarted).to_value(),
                "The workflow started (or the caller's run already going)",
            ),
        )
    };
    paths.insert("/ingestion/streams/{id}/archive".into(), json!({"post": {
        "tags": ["compat"], "summary": "Move a stream's recordings to the archive storage class (ArchiveStream)",
        "parameters": id_param,
        "responses": started()
    }}));
    paths.insert("/ingestion/streams/{id}/restore".into(), json!({"post": {
        "tags": ["compat"], "summary": "Restore a stream's archived recordings and make them standard again (RestoreStream)",
        "parameters": id_param,
        "requestBody": {"required": false, "content": {"application/json": {"schema": schemars::schema_for!(RestoreRequest).to_value()}}},
        "responses": started()
    }}));
    let mut responses = with_errors(
        "200",
        json_content(
            schemars::schema_for!(ChatResponse).to_value(),
            "The conversation with the reply appended",
        ),
    );
    responses["503"] = json!({"description": "No chat model configured, or it did not answer"});
    paths.insert("/ai/chat".into(), json!({"post": {
        "tags": ["compat"], "summary": "One turn of an OpenAI-compatible chat (episode titles and descriptions)",
        "requestBody": {"required": true, "content": {"application/json": {"schema": schemars::schema_for!(ChatRequest).to_value()}}},
        "responses": responses
    }}));
}
