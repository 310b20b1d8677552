//! Episode proposals and their review, and transcript corrections.
//!
//! - `GET /stream/{stream_id}/episodes`: the stream's proposals, any review state.
//! - `POST /stream/{stream_id}/review`: `{approve, reject, edits}`; edits are written at once,
//!   decisions go to the waiting ingestion as its `review` signal.
//! - `POST /transcripts/edit`: `{clipKey, segments: [{idx, text}]}`; corrections persist on
//!   the segment rows and the clip, and the clip's search windows are re-embedded.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use gt_store::catalog::EPISODES;
use gt_types::workflow::{EmbedClip, ReviewSignal};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, PathParams};
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
    let items = state.pg.proposals(&user.user_id, &stream_id).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    #[serde(default)]
    approve: Vec<String>,
    #[serde(default)]
    reject: Vec<String>,
    #[serde(default)]
    edits: Vec<EpisodeEdit>,
}

/// Fields a reviewer may change on a proposal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EpisodeEdit {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tracks: Option<Value>,
    #[serde(default)]
    chapters: Option<Value>,
    #[serde(default)]
    tags: Option<Value>,
}

async fn review(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: ReviewRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid review: {e}")))?;
    if req.approve.is_empty() && req.reject.is_empty() && req.edits.is_empty() {
        return Err(ApiError::BadRequest(
            "a review needs at least one of approve, reject or edits".into(),
        ));
    }
    let approve: HashSet<&str> = req.approve.iter().map(String::as_str).collect();
    if let Some(both) = req.reject.iter().find(|id| approve.contains(id.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "episode '{both}' is both approved and rejected"
        )));
    }
    owned_stream(&state, &user, &stream_id).await?;
    // Every id must be one of this stream's proposals still awaiting review.
    let proposals = state.pg.proposals(&user.user_id, &stream_id).await?;
    let awaiting: HashSet<&str> = proposals
        .iter()
        .filter(|p| p["review_status"] == "awaiting_review")
        .filter_map(|p| p["id"].as_str())
        .collect();
    let unknown: Vec<&str> = req
        .approve
        .iter()
        .chain(&req.reject)
        .map(String::as_str)
        .chain(req.edits.iter().map(|e| e.id.as_str()))
        .filter(|id| !awaiting.contains(id))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "not proposals of stream '{stream_id}' awaiting review: {}",
            unknown.join(", ")
        )));
    }
    let patches: Vec<(String, Value)> = req
        .edits
        .iter()
        .map(|e| {
            let mut m = Map::new();
            let fields = [
                ("title", e.title.clone().map(Value::String)),
                ("description", e.description.clone().map(Value::String)),
                ("tracks", e.tracks.clone()),
                ("chapters", e.chapters.clone()),
                ("tags", e.tags.clone()),
            ];
            for (k, v) in fields {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            (e.id.clone(), Value::Object(m))
        })
        .collect();
    if patches
        .iter()
        .any(|(_, p)| p.as_object().is_some_and(Map::is_empty))
    {
        return Err(ApiError::BadRequest(
            "an edit must change at least one field".into(),
        ));
    }
    // Refuse before writing anything if nobody is waiting for the decisions.
    let waiting_run = if !req.approve.is_empty() || !req.reject.is_empty() {
        Some(state.workflows.ensure_awaiting_review(&stream_id).await?)
    } else {
        None
    };
    for (id, patch) in &patches {
        state
            .records
            .update(&user.user_id, &EPISODES, id, patch)
            .await?;
    }
    if let Some(run_id) = waiting_run {
        state
            .workflows
            .review(
                &stream_id,
                run_id,
                ReviewSignal {
                    approve: req.approve.clone(),
                    reject: req.reject.clone(),
                },
            )
            .await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "approved": req.approve,
            "rejected": req.reject,
            "edited": patches.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        })),
    ))
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
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: TranscriptEdit = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid transcript edit: {e}")))?;
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
        .pg
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
            .pg
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
