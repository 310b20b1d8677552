//! Liveness and readiness.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
}

/// Ready when Postgres and Temporal both answer; the message names whichever does not.
async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let (pg, temporal) = tokio::join!(state.records.ping(), state.workflows.ping());
    let mut down = Vec::new();
    if let Err(e) = &pg {
        down.push(format!("postgres: {e}"));
    }
    if let Err(e) = &temporal {
        down.push(format!("temporal: {e}"));
    }
    if !down.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "not ready: {}",
            down.join("; ")
        )));
    }
    Ok(Json(
        json!({"status": "ready", "postgres": "ok", "temporal": "ok"}),
    ))
}
