//! Connecting a user's YouTube channel (Google's authorization-code flow with offline access),
//! as the front end's profile page and OAuth callback page call it.
//!
//! - `POST /auth/youtube/url` `{scopes, redirect_uri}` → `{url}`: Google's consent screen.
//!   A fresh random `state` is kept for the user with where to return afterwards; tokens
//!   already stored stay until new ones arrive (reconnecting never disconnects).
//! - `POST /auth/youtube/callback` `{code, state, scope}` → `{url}`: the `state` must be the
//!   one issued to this user (else 400 and nothing changes); the code is exchanged and the
//!   tokens are stored sealed (AES-256-GCM under `GT_TOKEN_KEY`); `url` is where the user
//!   wanted to return.
//! - `GET /auth/youtube/token` → `{access_token, broadcaster_id, login}` (refreshed when about
//!   to expire), or `{connected: false, needs_reconnect}`: the front end treats a body without
//!   `access_token` as "not connected", and a 401 here would log the user out.

use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use gt_store::Provider;
use gt_types::api::{AuthCallbackRequest, AuthUrlRequest, UrlResponse};
use gt_youtube::oauth::{SCOPE_FORCE_SSL, SCOPE_UPLOAD, SCOPE_YOUTUBE};
use gt_youtube::{OAuthClient, YouTubeApp, YouTubeError, token_box};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonObject;
use crate::routes::oauth::{self, MAX_URL_CHARS};

/// Scopes a user may grant: upload, manage (playlists, captions), read.
const ALLOWED_SCOPES: &[&str] = &[
    SCOPE_UPLOAD,
    SCOPE_YOUTUBE,
    SCOPE_FORCE_SSL,
    "https://www.googleapis.com/auth/youtube.readonly",
];
/// What publishing needs when the front end asks for nothing in particular.
const DEFAULT_SCOPES: &[&str] = &[SCOPE_UPLOAD, SCOPE_YOUTUBE];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/youtube/url", post(authorization_url))
        .route("/auth/youtube/callback", post(callback))
        .route("/auth/youtube/token", get(token))
}

fn app(state: &AppState) -> ApiResult<&YouTubeApp> {
    state.youtube.as_deref().ok_or_else(|| {
        ApiError::Unavailable(
            "YouTube is not configured on this server (GT_YOUTUBE_CLIENT_ID, \
             GT_YOUTUBE_CLIENT_SECRET, GT_YOUTUBE_REDIRECT_URL, GT_TOKEN_KEY)"
                .into(),
        )
    })
}

fn youtube_failure(e: YouTubeError) -> ApiError {
    match e {
        YouTubeError::Reauthorize(m) | YouTubeError::Rejected { message: m, .. } => {
            ApiError::BadRequest(format!("Google refused the authorization: {m}"))
        }
        other => ApiError::Unavailable(format!("Google's token endpoint: {other}")),
    }
}

async fn authorization_url(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(req): JsonObject<AuthUrlRequest>,
) -> ApiResult<Json<UrlResponse>> {
    let app = app(&state)?;
    let back = oauth::return_url(&req.redirect_uri)?;
    oauth::check_scopes(&req.scopes, ALLOWED_SCOPES)?;
    let mut scopes: Vec<String> = if req.scopes.is_empty() {
        DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
    } else {
        req.scopes.clone()
    };
    scopes.dedup();
    let csrf = oauth::new_state();
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let url = gt_youtube::authorization_url(&app.config, &app.redirect_url, &scope_refs, &csrf)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    state
        .publish
        .begin_oauth(
            &user.user_id,
            Provider::YouTube,
            &csrf,
            back.as_str(),
            &scopes,
        )
        .await?;
    Ok(Json(UrlResponse {
        url: url.to_string(),
    }))
}

async fn callback(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(req): JsonObject<AuthCallbackRequest>,
) -> ApiResult<Json<UrlResponse>> {
    let app = app(&state)?;
    let pending = state
        .publish
        .oauth(&user.user_id, Provider::YouTube)
        .await?
        .filter(|c| c.csrf_token.is_some())
        .ok_or_else(|| {
            ApiError::BadRequest("no YouTube authorization is in progress for you".into())
        })?;
    let expected = pending.csrf_token.unwrap_or_default();
    if !constant_time_eq(expected.as_bytes(), req.state.as_bytes()) {
        return Err(ApiError::BadRequest(
            "the state does not match the authorization in progress".into(),
        ));
    }
    if req.code.trim().is_empty() || req.code.len() > MAX_URL_CHARS {
        return Err(ApiError::BadRequest("code is empty or too long".into()));
    }
    let oauth = OAuthClient::new(app.config.clone()).map_err(youtube_failure)?;
    let tokens = oauth
        .exchange_code(&req.code, &app.redirect_url)
        .await
        .map_err(youtube_failure)?;
    state
        .publish
        .save_oauth_tokens(
            &user.user_id,
            Provider::YouTube,
            &token_box::seal(&app.key, &tokens),
        )
        .await?;
    Ok(Json(UrlResponse {
        url: pending.redirect_url.unwrap_or_else(|| "/".into()),
    }))
}

async fn token(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Value>> {
    // Not configured is "not connected" for the front end, which calls this on every page (a
    // 503 would only add noise); connecting still says what is missing.
    let Some(app) = state.youtube.as_deref() else {
        return Ok(Json(json!({"connected": false, "needs_reconnect": false})));
    };
    let connection = state
        .publish
        .oauth(&user.user_id, Provider::YouTube)
        .await?;
    let Some((sealed, _)) = connection
        .as_ref()
        .and_then(|c| c.sealed_tokens.clone().map(|s| (s, c)))
    else {
        return Ok(Json(json!({
            "connected": false,
            "needs_reconnect": connection.is_some_and(|c| c.needs_reconnect),
        })));
    };
    let mut tokens: gt_youtube::OAuthTokens = token_box::open(&app.key, &sealed).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "stored YouTube tokens cannot be opened: {e}"
        ))
    })?;
    if tokens.expires_within(Duration::from_secs(60), chrono::Utc::now()) {
        let oauth = OAuthClient::new(app.config.clone()).map_err(youtube_failure)?;
        match oauth.refresh(&tokens.refresh_token).await {
            Ok(fresh) => {
                tokens = fresh;
                state
                    .publish
                    .save_oauth_tokens(
                        &user.user_id,
                        Provider::YouTube,
                        &token_box::seal(&app.key, &tokens),
                    )
                    .await?;
            }
            Err(YouTubeError::Reauthorize(_)) => {
                state
                    .publish
                    .mark_oauth_reconnect(&user.user_id, Provider::YouTube)
                    .await?;
                return Ok(Json(json!({"connected": false, "needs_reconnect": true})));
            }
            Err(e) => return Err(youtube_failure(e)),
        }
    }
    Ok(Json(json!({
        "access_token": tokens.access_token,
        "broadcaster_id": "",
        "login": "",
        "connected": true,
    })))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// This router's entries in the OpenAPI document.
pub fn openapi_paths(paths: &mut serde_json::Map<String, Value>) {
    use crate::routes::openapi::{json_content, with_errors};
    let url = schemars::schema_for!(UrlResponse).to_value();
    let body = |schema: Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    paths.insert("/auth/youtube/url".into(), json!({"post": {
        "tags": ["youtube"], "summary": "Google's consent screen for connecting YouTube (offline access)",
        "requestBody": body(schemars::schema_for!(AuthUrlRequest).to_value()),
        "responses": with_errors("200", json_content(url.clone(), "Where to send the browser"))
    }}));
    paths.insert("/auth/youtube/callback".into(), json!({"post": {
        "tags": ["youtube"], "summary": "Finish connecting: checks state, exchanges the code, stores the tokens sealed",
        "requestBody": body(schemars::schema_for!(AuthCallbackRequest).to_value()),
        "responses": with_errors("200", json_content(url, "Where the user wanted to return"))
    }}));
    paths.insert("/auth/youtube/token".into(), json!({"get": {
        "tags": ["youtube"], "summary": "The connected channel's access token (refreshed when about to expire), or {connected: false, needs_reconnect}",
        "responses": with_errors("200", json!({"description": "Token or not connected"}))
    }}));
}
