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
use crate::extract::{JsonBody, PathParams};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stream", post(start_ingest))
        .route("/stream/{stream_id}/progress", get(progress))
        .route("/stream/{stream_id}/cancel", post(cancel))
}

/// The caller's stream, or 404: workflow ids carry only the stream id, so ownership is checked
/// against the store before any workflow is touched.
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
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<WorkflowStarted>)> {
    if !body.is_object() {
        return Err(ApiError::BadRequest(
            "invalid ingestion request: the body must be a JSON object".into(),
        ));
    }
    let req: StreamIngestRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid ingestion request: {e}")))?;
    if req.stream_id.trim().is_empty() {
        return Err(ApiError::BadRequest("streamId must not be empty".into()));
    }
    if let Some(lang) = &req.language
        && !(lang.len() == 2 && lang.chars().all(|c| c.is_ascii_lowercase()))
    {
        return Err(ApiError::BadRequest(format!(
            "language must be a two-letter ISO 639-1 code such as \"en\", got {lang:?}"
        )));
    }
    if let Some(p) = &req.episodes {
        p.validate()
            .map_err(|e| ApiError::BadRequest(format!("invalid episode parameters: {e}")))?;
    }
    if let Some(p) = &req.analysis {
        p.validate()
            .map_err(|e| ApiError::BadRequest(format!("invalid analysis parameters: {e}")))?;
    }
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
    Ok(Json(state.workflows.ingest_status(&stream_id).await?))
}

async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(stream_id): PathParams<String>,
) -> ApiResult<StatusCode> {
    owned_stream(&state, &user, &stream_id).await?;
    state.workflows.cancel_ingest(&stream_id).await?;
    Ok(StatusCode::ACCEPTED)
}
