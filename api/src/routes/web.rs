//! The web UI and, in local mode, the JWKS the local tokens verify against.
//!
//! The page (`web/index.html`) and its styles are compiled in. The script is TypeScript
//! bundled by esbuild (with hls.js) into `web/dist/app.js`, which `./gt up` and `./gt test` build
//! from the npm registry before the API; it is read from `GT_WEB_DIR` (default: this crate's
//! `web/dist`) on first use and kept in memory, so building the API never needs Node. Every
//! page of the UI is a real path answered with the same HTML: `/streams/{id}?t=` is the link
//! search hits carry, the other pages live under `/ui/`.
//!
//! OBS browser sources load `/widgets/{id}?token=…`: a standalone page (`web/widget.html`,
//! compiled in) whose script, `web/dist/widget.js`, is the second esbuild bundle. The page
//! itself is the same for every widget and needs no authentication: the token in its URL is
//! checked by `/ws`, which is all the page talks to.

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
const WIDGET_HTML: &str = include_str!("../../web/widget.html");

/// What the OBS page may load: its own script, the WebSocket of this host, and images (chat
/// emotes come from Twitch's CDN or the configured `emoteBaseUrl`). No other script, style or
/// font source, so a widget never depends on a CDN.
const WIDGET_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: https: http:; connect-src 'self'; base-uri 'none'; form-action 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/streams/{stream_id}", get(index))
        .route("/ui/{page}", get(index))
        .route("/youtube/callback", get(index))
        .route("/twitch/callback", get(index))
        .route("/widgets/{widget_id}", get(widget_page))
        .route("/app.js", get(app_js))
        .route("/widget.js", get(widget_js))
        .route("/app.css", get(app_css))
        .route("/.well-known/jwks.json", get(jwks))
}

/// Where the built script lives.
fn web_dir() -> PathBuf {
    std::env::var_os("GT_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/web/dist")))
}

/// The bundles esbuild builds into [`web_dir`].
#[derive(Debug, Clone, Copy)]
enum Bundle {
    /// The web UI (`src/main.ts`).
    App,
    /// The OBS widget page (`src/widget.ts`).
    Widget,
}

impl Bundle {
    fn file_name(self) -> &'static str {
        match self {
            Bundle::App => "app.js",
            Bundle::Widget => "widget.js",
        }
    }

    /// The bundle, read once (a missing bundle is retried on the next request, so building it
    /// while the API runs is enough).
    fn bytes(self) -> Option<&'static [u8]> {
        static APP: OnceLock<Vec<u8>> = OnceLock::new();
        static WIDGET: OnceLock<Vec<u8>> = OnceLock::new();
        let cell = match self {
            Bundle::App => &APP,
            Bundle::Widget => &WIDGET,
        };
        if let Some(b) = cell.get() {
            return Some(b);
        }
        let bytes = std::fs::read(web_dir().join(self.file_name())).ok()?;
        Some(cell.get_or_init(|| bytes))
    }
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

/// The OBS page. Its URL carries the widget's token, so no referrer leaves it (chat emotes
/// are images from another host) and no cache keeps it.
async fn widget_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, WIDGET_CSP),
        ],
        WIDGET_HTML,
    )
}

async fn app_js() -> Response {
    script(Bundle::App)
}

async fn widget_js() -> Response {
    script(Bundle::Widget)
}

fn script(bundle: Bundle) -> Response {
    match bundle.bytes() {
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
                    "The web UI is not built: no {} in {} (./gt build-web builds it; \
                     GT_WEB_DIR points elsewhere).",
                    bundle.file_name(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn widget_page_is_standalone_and_sends_no_referrer() {
        let response = widget_page().await.into_response();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        // The URL carries the widget's token: never in a Referer, never cached.
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(directive), "{directive} missing from {csp}");
        }
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let html = std::str::from_utf8(&body).unwrap();
        assert!(html.contains(r#"<script src="/widget.js"></script>"#));
        // Nothing from another host: no CDN script, stylesheet or font.
        assert!(!html.contains("://"), "the OBS page names another host");
        assert!(!html.contains("@import") && !html.contains("url("));
        // The elements src/widget.ts looks up by id.
        for id in [r#"id="widget""#, r#"id="status""#, r#"id="error""#] {
            assert!(html.contains(id), "{id} missing");
        }
    }

    #[test]
    fn bundles_are_distinct_files() {
        assert_eq!(Bundle::App.file_name(), "app.js");
        assert_eq!(Bundle::Widget.file_name(), "widget.js");
    }
}
