//! The HTTP API: a thin axum server over the store and Temporal.
//!
//! Routers per resource live in [`routes`]; [`error::ApiError`] is the one error type; request
//! bodies and parameters go through [`extract`] so every rejection is JSON `{message}`;
//! [`auth`] verifies JWTs. Configuration is [`config::ApiConfig`].

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod routes;
pub mod widgets;
pub mod workflows;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use gt_store::RecordStore;
use jsonwebtoken::jwk::JwkSet;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::workflows::Workflows;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub records: Arc<dyn RecordStore>,
    pub workflows: Workflows,
    pub auth: Arc<auth::Authenticator>,
    /// Published at `/.well-known/jwks.json` in local mode.
    pub public_jwks: Option<JwkSet>,
    /// Derived files (previews, thumbnails, speech audio) served under `/media/`.
    pub artifacts: Arc<dyn gt_store::BlobStore>,
    pub media_signer: routes::media::MediaSigner,
    /// Search, proposals and transcript edits.
    pub insight: Arc<dyn gt_store::InsightStore>,
    /// Embeds search queries with the model the windows were embedded with.
    pub embedder: gt_ai::TextEmbedder,
    /// Live task updates for `/ws`.
    pub hub: routes::ws::Hub,
    pub widgets: Arc<dyn gt_store::WidgetStore>,
    /// Episodes with their sources, upload state, OAuth connections.
    pub publish: Arc<dyn gt_store::PublishStore>,
    /// The YouTube app users connect to, when configured.
    pub youtube: Option<Arc<gt_youtube::YouTubeApp>>,
    /// The recordings root when recordings are local, for the source paths in editor exports.
    pub recordings_dir: Option<std::path::PathBuf>,
    /// The recordings store (storage status, archive), when configured.
    pub recordings: Option<Arc<dyn gt_store::BlobStore>>,
    /// The chat model behind `POST /ai/chat`, when an OpenAI key is configured.
    pub chat: Option<gt_ai::ChatModel>,
    /// Twitch connections, EventSub messages and chat rows.
    pub chat_store: Arc<dyn gt_store::ChatStore>,
    /// The Twitch app users connect to, when configured.
    pub twitch: Option<Arc<gt_twitch::app::TwitchApp>>,
    /// Stores verified EventSub messages in batches (present when Twitch is configured).
    pub eventsub: Option<routes::eventsub::EventSubIngest>,
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// The whole API.
pub fn router(state: AppState, config: &config::ApiConfig) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|o| o.parse().ok())
                .collect::<Vec<_>>(),
        ))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::header::ACCEPT,
        ]);
    Router::new()
        .merge(routes::records::router())
        .merge(routes::stream::router())
        .merge(routes::review::router())
        .merge(routes::publish::router())
        .merge(routes::youtube_auth::router())
        .merge(routes::twitch_auth::router())
        .merge(routes::eventsub::router())
        .merge(routes::chat::router())
        .merge(routes::compat::router())
        .merge(routes::export::router())
        .merge(routes::search::router())
        .merge(routes::ws::router())
        .merge(routes::media::router())
        .merge(routes::health::router())
        .merge(routes::openapi::router())
        .merge(routes::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::media::issue_media_cookie,
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Binds and serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Connects everything the configuration names and returns the state handlers share.
pub async fn build_state(config: &config::ApiConfig) -> anyhow::Result<AppState> {
    let pool = gt_store::pg::connect(&config.database_url, 16).await?;
    gt_store::pg::migrate(&pool).await?;
    let (auth_config, public_jwks) = match &config.auth {
        config::AuthMode::Local {
            key_file,
            issuer,
            audience,
        } => {
            let signer = auth::LocalSigner::load_or_create(key_file, issuer, audience)?;
            (auth::AuthConfig::local(&signer), Some(signer.jwks()))
        }
        config::AuthMode::External(c) => (c.clone(), None),
    };
    let client =
        gt_workflows::client::connect(&config.temporal, std::time::Duration::from_secs(60)).await?;
    let store = config.records.open(pool.clone()).await?;
    let workflows = Workflows::new(
        client,
        config.cpu_task_queue.clone(),
        config.gpu_task_queue.clone(),
    );
    let twitch = config.twitch.clone().map(Arc::new);
    if twitch.is_some() {
        workflows
            .ensure_twitch_maintenance()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let eventsub = twitch.as_ref().map(|app| {
        routes::eventsub::EventSubIngest::start(
            store.clone(),
            store.clone(),
            store.clone(),
            workflows.clone(),
            app.eventsub_secret.clone(),
            app.chat_retention_secs(),
        )
    });
    let recordings = match &config.recordings {
        Some(location) => Some(location.open().await?),
        None => None,
    };
    Ok(AppState {
        chat_store: store.clone(),
        twitch,
        eventsub,
        records: store.clone(),
        insight: store.clone(),
        publish: store.clone(),
        youtube: config.youtube.clone().map(Arc::new),
        recordings_dir: config
            .recordings
            .as_ref()
            .and_then(|r| r.local_dir())
            .map(Into::into),
        recordings,
        embedder: config.ai.embedder()?,
        chat: config.ai.chat(),
        hub: routes::ws::Hub::start(routes::ws::HubSources {
            pool,
            records: store.clone(),
            widgets: store.clone(),
        }),
        widgets: store.clone(),
        workflows,
        auth: Arc::new(auth::Authenticator::new(auth_config).await?),
        public_jwks,
        artifacts: config.artifacts.open().await?,
        media_signer: routes::media::MediaSigner::new(match &config.media_key {
            Some(k) => k.as_bytes().to_vec(),
            None => {
                // Links then stop working at restart, which only costs a playlist reload.
                let mut k = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut k);
                k
            }
        }),
    })
}
