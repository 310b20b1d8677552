//! Episode proposals and their review, and transcript corrections.
//!
//! - `GET /stream/{stream_id}/episodes`: the stream's proposals, any review state.
//! - `POST /stream/{stream_id}/review`: `{approve, reject, edits}`, one validated step: the
//!   edits are checked against the episode record's field types here, then the whole review
//!   goes to the waiting ingestion as its `review` update, whose validator refuses anything but
//!   that run's undecided proposals before a byte is written; the handler writes edits and
//!   decisions in one transaction. An edit may move a proposal's range (`start_time`,
//!   `end_time`, stream seconds, inside the stream): its cut list, tracks and chapters are made
//!   again for it. Any refusal (400, 404, 409, 503) changes nothing.
//! - `POST /transcripts/edit`: `{clipKey, segments: [{idx, text}]}`; corrections persist on
//!   the segment rows and the clip, and the clip's search windows are re-embedded.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use gt_store::catalog::EPISODES;
use gt_store::write::{WriteKind, validate_write};
use gt_types::workflow::{EmbedClip, ReviewOutcome, ReviewUpdate};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonObject, PathParams};
use crate::routes::stream::owned_stream;

pub const MAX_SEGMENT_CHARS: usize = 2000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stream/{stream_id}/episodes", get(episodes))
        .route("/stream/{stream_id}/review", post(review))
        .route("/transcripts/edit", post(edit_transcript))
}

async fn episodes(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    owned_stream(&state, &user, &stream_id).await?;
    let items = state.insight.proposals(&user.user_id, &stream_id).await?;
    Ok(Json(json!({ "items": items })))
}

async fn review(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
    JsonObject(req): JsonObject<ReviewUpdate>,
) -> ApiResult<(StatusCode, Json<ReviewOutcome>)> {
    if let Some(e) = req.shape_error() {
        return Err(ApiError::BadRequest(e));
    }
    let stream = owned_stream(&state, &user, &stream_id).await?;
    // Every id must be one of this stream's proposals still awaiting review (the workflow
    // checks again, against its own state, before writing).
    let proposals = state.insight.proposals(&user.user_id, &stream_id).await?;
    let awaiting: HashSet<&str> = proposals
        .iter()
        .filter(|p| p["review_status"] == "awaiting_review")
        .filter_map(|p| p["id"].as_str())
        .collect();
    let unknown: Vec<&str> = req.ids().filter(|id| !awaiting.contains(id)).collect();
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "not proposals of stream '{stream_id}' awaiting review: {}",
            unknown.join(", ")
        )));
    }
    // Edits must be valid episode fields before anything is sent, and a new range must lie
    // inside the stream.
    let duration = stream["duration"].as_f64().unwrap_or(0.0);
    for e in &req.edits {
        validate_write(&EPISODES, &e.patch(), WriteKind::Update(&e.id))?;
        if e.moves_range() {
            let current = proposals.iter().find(|p| p["id"] == e.id.as_str());
            let bound = |k: &str| current.and_then(|p| p[k].as_f64()).unwrap_or(0.0);
            e.range(bound("start_time"), bound("end_time"), duration)
                .map_err(ApiError::BadRequest)?;
        }
    }
    let run_id = state
        .workflows
        .running_ingest(&user.user_id, &stream_id)
        .await?;
    let outcome = state
        .workflows
        .review(&user.user_id, &stream_id, run_id, req)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(outcome)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TranscriptEdit {
    clip_key: String,
    segments: Vec<SegmentEdit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentEdit {
    idx: i32,
    text: String,
}

async fn edit_transcript(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(req): JsonObject<TranscriptEdit>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if req.segments.is_empty() {
        return Err(ApiError::BadRequest("segments must not be empty".into()));
    }
    for s in &req.segments {
        let n = s.text.trim().chars().count();
        if n == 0 || n > MAX_SEGMENT_CHARS {
            return Err(ApiError::BadRequest(format!(
                "segment {}: text must be 1 to {MAX_SEGMENT_CHARS} characters",
                s.idx
            )));
        }
    }
    let rows = state
        .insight
        .transcript_rows(&user.user_id, &req.clip_key)
        .await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "clip '{}' has no transcript",
            req.clip_key
        )));
    }
    let missing: Vec<String> = req
        .segments
        .iter()
        .filter(|s| !rows.iter().any(|r| r.idx == s.idx))
        .map(|s| s.idx.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::NotFound(format!(
            "clip '{}' has no transcript segment {}",
            req.clip_key,
            missing.join(", ")
        )));
    }
    let mut stream_id = String::new();
    for s in &req.segments {
        stream_id = state
            .insight
            .edit_segment(&user.user_id, &req.clip_key, s.idx, s.text.trim())
            .await?;
    }
    let workflow_id = state
        .workflows
        .start_reembed(EmbedClip {
            user_id: user.user_id.clone(),
            stream_id,
            key: req.clip_key.clone(),
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"clipKey": req.clip_key, "edited": req.segments.len(), "reembedWorkflowId": workflow_id}),
        ),
    ))
}
