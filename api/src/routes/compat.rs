//! Calls the original React front end makes that have no other home yet
//! (`reference/anchor-frontend.md` §2.3), answered in the shapes it reads:
//!
//! - `GET /ingestion/streams/{id}/s3-status` → the storage chip's
//!   `{exists, storage_class, size_bytes, retrieval_required, estimated_*}`, from the local
//!   recordings store: the files under the stream's prefix in the owner's recordings folder.
//!   Local disk is always at hand, so `storage_class` is `STANDARD`, nothing needs retrieval
//!   and there are no cost estimates (`null`). Another user's stream is a 404.
//! - `POST /ai/chat` `{messages: [{role, content}]}` → `{messages: [...messages, reply]}`: the
//!   conversation sent to the configured OpenAI-compatible chat model (`GT_OPENAI_API_KEY`,
//!   `GT_OPENAI_BASE_URL`, `GT_SUMMARY_MODEL`); 503 with a message saying what to set when no
//!   key is configured.
//!
//! Also [`localize_times`]: date-times the front end's forms send without a zone; and
//! [`fill_create_defaults`]: the keys the front end's episode creation insists on, which its
//! own create forms leave out.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use gt_store::catalog::{PROFILES, Resource, STREAMS};
use gt_store::{BlobStore, StoreError};
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

/// The storage chip's answer (`FE:src/components/atoms/StorageStatusField.tsx`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct StorageStatus {
    /// The stream's id (the front end's react-admin record id).
    pub id: String,
    /// Whether any recording is stored under the stream's prefix.
    pub exists: bool,
    /// `STANDARD` when it exists (local disk), else `null`.
    pub storage_class: Option<String>,
    /// Total bytes of the recordings under the prefix.
    pub size_bytes: Option<u64>,
    /// Recordings on local disk never need a retrieval.
    pub retrieval_required: bool,
    pub estimated_retrieval_cost_usd: Option<Map<String, Value>>,
    pub estimated_retrieval_time_hours: Option<Map<String, Value>>,
    pub estimated_compute_cost_usd: Option<f64>,
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
    let prefix = stream["prefix"]
        .as_str()
        .map(|p| p.trim().trim_matches('/'))
        .filter(|p| !p.is_empty());
    let objects = match (prefix, &state.recordings_dir) {
        (Some(prefix), Some(dir)) => {
            // The prefix names a folder of the owner's recordings root, never anyone else's.
            let root = format!("{}/", gt_store::recording_key(&user.user_id, prefix)?);
            gt_store::LocalDirStore::new(dir).list_all(&root).await?
        }
        _ => Vec::new(),
    };
    let exists = !objects.is_empty();
    Ok(Json(StorageStatus {
        id: stream_id,
        exists,
        storage_class: exists.then(|| "STANDARD".to_string()),
        size_bytes: exists.then(|| objects.iter().map(|o| o.size).sum()),
        retrieval_required: false,
        estimated_retrieval_cost_usd: None,
        estimated_retrieval_time_hours: None,
        estimated_compute_cost_usd: None,
    }))
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
    paths.insert("/ingestion/streams/{id}/s3-status".into(), json!({"get": {
        "tags": ["compat"], "summary": "Storage of a stream's recordings (local disk: STANDARD, no retrieval)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with_errors("200", json_content(schemars::schema_for!(StorageStatus).to_value(), "Storage status"))
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
