//! The web UI and, in local mode, the JWKS the local tokens verify against.
//!
//! The page (`web/index.html`) and its styles are compiled in. The script is TypeScript
//! bundled by esbuild (with hls.js) into `web/dist/app.js`, which `./gt up` and `./gt test` build
//! from the npm registry before the API; it is read from `GT_WEB_DIR` (default: this crate's
//! `web/dist`) on first use and kept in memory, so building the API never needs Node. Every
//! page of the UI is a real path answered with the same HTML: `/streams/{id}?t=` is the link
//! search hits carry, the other pages live under `/ui/`.

use std::path::PathBuf;
use std::sync::OnceLock;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_CSS: &str = include_str!("../../web/app.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/streams/{stream_id}", get(index))
        .route("/ui/{page}", get(index))
        .route("/youtube/callback", get(index))
        .route("/twitch/callback", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/.well-known/jwks.json", get(jwks))
}

/// Where the built script lives.
fn web_dir() -> PathBuf {
    std::env::var_os("GT_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/web/dist")))
}

/// The bundle, read once (a missing bundle is retried on the next request, so building it
/// while the API runs is enough).
fn bundle() -> Option<&'static [u8]> {
    static BUNDLE: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(b) = BUNDLE.get() {
        return Some(b);
    }
    let bytes = std::fs::read(web_dir().join("app.js")).ok()?;
    Some(BUNDLE.get_or_init(|| bytes))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // The local token arrives in the URL fragment; no page of ours sends a referrer.
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        INDEX_HTML,
    )
}

async fn app_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
}

async fn app_js() -> Response {
    match bundle() {
        Some(js) => (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            js,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            format!(
                "document.body.textContent = {:?};",
                format!(
                    "The web UI is not built: no app.js in {} (./gt build-web builds it; \
                     GT_WEB_DIR points elsewhere).",
                    web_dir().display()
                )
            ),
        )
            .into_response(),
    }
}

async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match &state.public_jwks {
        Some(set) => Ok(Json(set.clone())),
        None => Err(ApiError::NotFound(
            "this server verifies tokens from an external issuer; it publishes no keys".into(),
        )),
    }
}
