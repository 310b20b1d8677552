//! The web UI (one static page that talks to this API) and, in local mode, the JWKS the local
//! tokens verify against.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("../../web/index.html");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/.well-known/jwks.json", get(jwks))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
}

async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match &state.public_jwks {
        Some(set) => Ok(Json(set.clone())),
        None => Err(ApiError::NotFound(
            "this server verifies tokens from an external issuer; it publishes no keys".into(),
        )),
    }
}
