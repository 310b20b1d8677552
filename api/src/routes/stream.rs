//! Workflow endpoints for stream ingestion.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use gt_store::StoreError;
use gt_store::catalog::STREAMS;
use gt_types::api::{IngestStatus, StreamIngestRequest, WorkflowStarted};
use gt_types::workflow::StreamIngestInput;
use serde_json::Value;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonObject, PathParams};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stream", post(start_ingest))
        .route("/stream/{stream_id}/progress", get(progress))
        .route("/stream/{stream_id}/cancel", post(cancel))
}

/// The caller's stream, or 404.
pub(crate) async fn owned_stream(
    state: &AppState,
    user: &AuthUser,
    stream_id: &str,
) -> ApiResult<Value> {
    match state.records.get(&user.user_id, &STREAMS, stream_id).await {
        Ok(v) => Ok(v),
        Err(StoreError::NotFound(_)) => Err(ApiError::NotFound(format!(
            "stream '{stream_id}' not found"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn start_ingest(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(req): JsonObject<StreamIngestRequest>,
) -> ApiResult<(StatusCode, Json<WorkflowStarted>)> {
    req.validate().map_err(ApiError::BadRequest)?;
    let stream = owned_stream(&state, &user, &req.stream_id).await?;
    let has_prefix = stream
        .get("prefix")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.trim().is_empty());
    if !has_prefix {
        return Err(ApiError::BadRequest(format!(
            "stream '{}' has no prefix: set it to the folder that holds its recordings",
            req.stream_id
        )));
    }
    let started = state
        .workflows
        .start_ingest(StreamIngestInput {
            user_id: user.user_id,
            stream_id: req.stream_id,
            initial_prompt: req.initial_prompt,
            initial_summary: req.initial_summary,
            analysis: req.analysis,
            language: req.language,
            gpu_task_queue: None,
            await_review: req.await_review,
            episodes: req.episodes,
        })
        .await?;
    let code = if started.started {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(started)))
}

async fn progress(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
) -> ApiResult<Json<IngestStatus>> {
    owned_stream(&state, &user, &stream_id).await?;
    Ok(Json(
        state
            .workflows
            .ingest_status(&user.user_id, &stream_id)
            .await?,
    ))
}

async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
) -> ApiResult<StatusCode> {
    owned_stream(&state, &user, &stream_id).await?;
    state
        .workflows
        .cancel_ingest(&user.user_id, &stream_id)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
