//! A stream's chat for the editor: `GET /streams/{id}/chat` → `{chat_history, highlights}`.
//!
//! `chat_history` is the editor's `ChatMessage[]` (`{timestamp, username, message}`, stream
//! seconds: the message's EventSub time minus the stream's start), which the original always
//! left empty; deleted messages are left out. `highlights` are chat's peaks as the stream's
//! last ingestion found them. Another user's stream is a 404.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use gt_types::chat::ChatHistoryLine;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::extract::PathParams;
use crate::routes::stream::owned_stream;

/// At most this many lines are returned (about 14 h of a busy chat at 2 messages/s).
const MAX_LINES: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/streams/{stream_id}/chat", get(stream_chat))
}

async fn stream_chat(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let stream = owned_stream(&state, &user, &stream_id).await?;
    let highlights = stream.get("chat_highlights").cloned().unwrap_or(json!([]));
    let Some(started) = state
        .chat_store
        .stream_start(&user.user_id, &stream_id)
        .await?
    else {
        return Ok(Json(json!({"chat_history": [], "highlights": highlights})));
    };
    // Until the recorded duration, or a day when the stream has none yet (still live).
    let seconds = stream["duration"]
        .as_f64()
        .filter(|d| *d > 0.0)
        .unwrap_or(86_400.0);
    let until = started + chrono::TimeDelta::milliseconds((seconds * 1000.0) as i64);
    let lines = state
        .chat_store
        .chat_between(&user.user_id, started, until)
        .await?;
    let history: Vec<ChatHistoryLine> = lines
        .into_iter()
        .take(MAX_LINES)
        .map(|l| ChatHistoryLine {
            timestamp: (l.timestamp - started).num_milliseconds() as f64 / 1000.0,
            username: l.user_name,
            message: l.message,
        })
        .collect();
    Ok(Json(
        json!({"chat_history": history, "highlights": highlights}),
    ))
}

/// This router's entries in the OpenAPI document.
pub fn openapi_paths(paths: &mut serde_json::Map<String, Value>) {
    use crate::routes::openapi::{json_content, with_errors};
    paths.insert("/streams/{stream_id}/chat".into(), json!({"get": {
        "tags": ["twitch"], "summary": "The stream's chat in stream time (the editor's chat_history) and chat's peaks",
        "parameters": [{"name": "stream_id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with_errors("200", json_content(json!({"type": "object", "properties": {
            "chat_history": {"type": "array", "items": schemars::schema_for!(ChatHistoryLine).to_value()},
            "highlights": {"type": "array", "items": schemars::schema_for!(gt_types::chat::ChatPeak).to_value()}
        }}), "Chat and peaks"))
    }}));
}
