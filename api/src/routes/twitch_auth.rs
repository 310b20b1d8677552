//! Connecting a user's Twitch account (authorization-code flow), as the front end's profile
//! page, OAuth callback page and Twitch-calling screens use it.
//!
//! - `POST /auth/twitch/url` `{scopes, redirect_uri}` → `{url}`: Twitch's consent screen with a
//!   fresh random `state` kept for this user; the scopes are the front end's plus those chat
//!   capture needs (`user:read:chat user:bot channel:bot`). Tokens already stored stay until new
//!   ones arrive.
//! - `POST /auth/twitch/callback` `{code, state, scope}` → `{url}`: the `state` must be the one
//!   issued to this user and is used up by the attempt (a replay, or another user's state, is a
//!   400 and changes nothing). The code is exchanged, the new token validated (which names the
//!   Twitch account), the account recorded (409 if another user connected it) and the tokens
//!   stored sealed. A capture waiting for a reconnect is woken.
//! - `GET /auth/twitch/token` → `{access_token, broadcaster_id, login}`: validated with Twitch
//!   (refreshed when expired or refused; the rotated refresh token is stored), or
//!   `{connected: false, needs_reconnect}` — the front end treats a body without `access_token`
//!   as "not connected", and a 401 here would log the user out.
//! - `DELETE /auth/twitch`: disconnect — capture off, the token revoked at Twitch, everything of
//!   the connection forgotten.

use std::time::Duration;

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use gt_store::Provider;
use gt_twitch::app::{FRONT_END_SCOPES, TwitchApp};
use gt_twitch::oauth::{CheckedTokens, TwitchError, TwitchTokens};
use gt_types::api::{AuthCallbackRequest, AuthUrlRequest, UrlResponse};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonObject;
use crate::routes::oauth::{self, MAX_URL_CHARS};
use crate::workflows::ChatSignal;

/// Scopes chat capture cannot work without (added to what the front end asks for).
const CAPTURE_SCOPES: &[&str] = &["user:read:chat", "user:bot", "channel:bot"];
/// Read-only scopes a client may add besides the front end's.
const EXTRA_ALLOWED: &[&str] = &["moderator:read:chatters", "channel:read:subscriptions"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/twitch/url", post(authorization_url))
        .route("/auth/twitch/callback", post(callback))
        .route("/auth/twitch/token", get(token))
        .route("/auth/twitch", delete(disconnect))
}

/// The Twitch app, or 503 naming what to configure.
pub(crate) fn app(state: &AppState) -> ApiResult<&TwitchApp> {
    state.twitch.as_deref().ok_or_else(|| {
        ApiError::Unavailable(
            "Twitch is not configured on this server (GT_TWITCH_CLIENT_ID, \
             GT_TWITCH_CLIENT_SECRET, GT_TWITCH_REDIRECT_URL, GT_TOKEN_KEY)"
                .into(),
        )
    })
}

pub(crate) fn twitch_failure(e: TwitchError) -> ApiError {
    match e {
        TwitchError::Reauthorize(m) | TwitchError::Rejected { message: m, .. } => {
            ApiError::BadRequest(format!("Twitch refused the authorization: {m}"))
        }
        other => ApiError::Unavailable(format!("Twitch's token endpoint: {other}")),
    }
}

async fn authorization_url(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(req): JsonObject<AuthUrlRequest>,
) -> ApiResult<Json<UrlResponse>> {
    let app = app(&state)?;
    let back = oauth::return_url(&req.redirect_uri)?;
    let allowed: Vec<&str> = FRONT_END_SCOPES
        .iter()
        .chain(EXTRA_ALLOWED)
        .copied()
        .collect();
    oauth::check_scopes(&req.scopes, &allowed)?;
    let mut scopes: Vec<String> = if req.scopes.is_empty() {
        FRONT_END_SCOPES.iter().map(|s| s.to_string()).collect()
    } else {
        req.scopes.clone()
    };
    scopes.extend(CAPTURE_SCOPES.iter().map(|s| s.to_string()));
    scopes.sort();
    scopes.dedup();
    let csrf = oauth::new_state();
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let url =
        gt_twitch::oauth::authorization_url(&app.config, &app.redirect_url, &scope_refs, &csrf)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    state
        .publish
        .begin_oauth(
            &user.user_id,
            Provider::Twitch,
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
    if req.code.trim().is_empty() || req.code.len() > MAX_URL_CHARS {
        return Err(ApiError::BadRequest("code is empty or too long".into()));
    }
    if req.state.is_empty() || req.state.len() > 200 {
        return Err(ApiError::BadRequest("state is empty or too long".into()));
    }
    let back = state
        .publish
        .take_oauth_state(&user.user_id, Provider::Twitch, &req.state)
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest(
                "this state is not a Twitch authorization in progress for you (expired, used \
                 already, or someone else's): connect Twitch again"
                    .into(),
            )
        })?;
    let oauth = app.oauth().map_err(twitch_failure)?;
    let tokens = oauth
        .exchange_code(&req.code, &app.redirect_url)
        .await
        .map_err(twitch_failure)?;
    let who = oauth
        .validate(&tokens.access_token)
        .await
        .map_err(twitch_failure)?;
    let (Some(broadcaster_id), Some(login)) = (who.user_id, who.login) else {
        return Err(ApiError::BadRequest(
            "Twitch returned a token without a user".into(),
        ));
    };
    state
        .chat_store
        .connect_twitch_channel(&user.user_id, &broadcaster_id, &login)
        .await?;
    save_tokens(&state, app, &user.user_id, &tokens).await?;
    if let Some(channel) = state.chat_store.twitch_channel(&user.user_id).await?
        && channel.capture_enabled
    {
        state
            .workflows
            .signal_chat_capture(&user.user_id, &broadcaster_id, ChatSignal::Reconnected)
            .await?;
    }
    Ok(Json(UrlResponse { url: back }))
}

/// Seals and stores the user's token set (and ends any authorization in flight).
async fn save_tokens(
    state: &AppState,
    app: &TwitchApp,
    user_id: &str,
    tokens: &TwitchTokens,
) -> ApiResult<()> {
    Ok(state
        .publish
        .save_oauth_tokens(
            user_id,
            Provider::Twitch,
            &gt_auth::token_box::seal(&app.key, tokens),
        )
        .await?)
}

/// The user's stored tokens, or `None` when not connected.
async fn stored_tokens(
    state: &AppState,
    app: &TwitchApp,
    user_id: &str,
) -> ApiResult<Option<TwitchTokens>> {
    let connection = state.publish.oauth(user_id, Provider::Twitch).await?;
    let Some(sealed) = connection.and_then(|c| c.sealed_tokens) else {
        return Ok(None);
    };
    gt_auth::token_box::open(&app.key, &sealed)
        .map(Some)
        .map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "stored Twitch tokens cannot be opened: {e}"
            ))
        })
}

/// The user's Twitch access, checked (refreshed and the rotated set stored when needed).
pub(crate) enum TwitchAccess {
    Connected(Box<CheckedTokens>),
    NotConnected { needs_reconnect: bool },
}

/// Checks the user's stored Twitch tokens: validated, refreshed when expired or refused (the
/// rotated refresh token stored at once), marked "reconnect" when Twitch refuses the refresh.
pub(crate) async fn twitch_access(
    state: &AppState,
    app: &TwitchApp,
    user_id: &str,
) -> ApiResult<TwitchAccess> {
    let Some(tokens) = stored_tokens(state, app, user_id).await? else {
        let needs_reconnect = state
            .publish
            .oauth(user_id, Provider::Twitch)
            .await?
            .is_some_and(|c| c.needs_reconnect);
        return Ok(TwitchAccess::NotConnected { needs_reconnect });
    };
    let oauth = app.oauth().map_err(twitch_failure)?;
    let checked = match oauth
        .ensure_valid(tokens, Duration::from_secs(60), chrono::Utc::now())
        .await
    {
        Ok(checked) => checked,
        Err(TwitchError::Reauthorize(_)) => {
            state
                .publish
                .mark_oauth_reconnect(user_id, Provider::Twitch)
                .await?;
            state
                .chat_store
                .record_token_validation(user_id, false, chrono::Utc::now())
                .await?;
            return Ok(TwitchAccess::NotConnected {
                needs_reconnect: true,
            });
        }
        Err(e) => return Err(twitch_failure(e)),
    };
    if checked.refreshed {
        // Twitch rotated the refresh token: the old one is dead, store the new set now.
        save_tokens(state, app, user_id, &checked.tokens).await?;
    }
    state
        .chat_store
        .record_token_validation(user_id, true, chrono::Utc::now())
        .await?;
    Ok(TwitchAccess::Connected(Box::new(checked)))
}

async fn token(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Value>> {
    // Not configured is "not connected" for the front end (a 503 would break its profile).
    let Some(app) = state.twitch.as_deref() else {
        return Ok(Json(json!({"connected": false, "needs_reconnect": false})));
    };
    match twitch_access(&state, app, &user.user_id).await? {
        TwitchAccess::NotConnected { needs_reconnect } => Ok(Json(
            json!({"connected": false, "needs_reconnect": needs_reconnect}),
        )),
        TwitchAccess::Connected(checked) => Ok(Json(json!({
            "access_token": checked.tokens.access_token,
            "broadcaster_id": checked.validation.user_id.clone().unwrap_or_default(),
            "login": checked.validation.login.clone().unwrap_or_default(),
            "connected": true,
        }))),
    }
}

async fn disconnect(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Value>> {
    let app = app(&state)?;
    if let Some(channel) = state.chat_store.twitch_channel(&user.user_id).await? {
        state
            .workflows
            .signal_chat_capture(&user.user_id, &channel.broadcaster_id, ChatSignal::Disable)
            .await?;
    }
    if let Some(tokens) = stored_tokens(&state, app, &user.user_id).await? {
        // Best effort: a token Twitch no longer knows is as good as revoked.
        if let Err(e) = app
            .oauth()
            .map_err(twitch_failure)?
            .revoke(&tokens.access_token)
            .await
        {
            tracing::warn!(error = %e, "revoking the Twitch token failed");
        }
    }
    state
        .publish
        .forget_oauth(&user.user_id, Provider::Twitch)
        .await?;
    state
        .chat_store
        .disconnect_twitch_channel(&user.user_id)
        .await?;
    Ok(Json(json!({"connected": false})))
}

/// This router's entries in the OpenAPI document.
pub fn openapi_paths(paths: &mut serde_json::Map<String, Value>) {
    use crate::routes::openapi::{json_content, with_errors};
    let url = schemars::schema_for!(UrlResponse).to_value();
    let body = |schema: Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    paths.insert("/auth/twitch/url".into(), json!({"post": {
        "tags": ["twitch"], "summary": "Twitch's consent screen for connecting the user's account",
        "requestBody": body(schemars::schema_for!(AuthUrlRequest).to_value()),
        "responses": with_errors("200", json_content(url.clone(), "Where to send the browser"))
    }}));
    paths.insert("/auth/twitch/callback".into(), json!({"post": {
        "tags": ["twitch"], "summary": "Finish connecting: single-use state, code exchange, account recorded, tokens sealed",
        "requestBody": body(schemars::schema_for!(AuthCallbackRequest).to_value()),
        "responses": with_errors("200", json_content(url, "Where the user wanted to return"))
    }}));
    paths.insert("/auth/twitch/token".into(), json!({"get": {
        "tags": ["twitch"], "summary": "The user's validated Twitch token {access_token, broadcaster_id, login}, or {connected: false, needs_reconnect}",
        "responses": with_errors("200", json!({"description": "Token or not connected"}))
    }}));
    paths.insert("/auth/twitch".into(), json!({"delete": {
        "tags": ["twitch"], "summary": "Disconnect Twitch: capture off, token revoked, connection forgotten",
        "responses": with_errors("200", json!({"description": "Disconnected"}))
    }}));
}
