//! Publishing episodes: the front end's Render and Upload to YouTube buttons, and a publish
//! run's progress and cancellation.
//!
//! - `POST /render` `{episodeIds}`: renders and exports each episode (`EpisodePublish` without
//!   upload), or joins the run already going.
//! - `POST /upload/youtube` `{episode_ids}`: 403 unless YouTube is connected; every episode is
//!   checked first (it exists, has a cut list, its title, description and tags pass YouTube's
//!   rules) and any problem is a 400 listing them, with nothing started or changed. Then each
//!   episode is marked `ready_to_upload` and its run started, or the running one asked to
//!   upload.
//! - `GET /episodes/{id}/publish`: the latest run's status, progress and result.
//! - `POST /episodes/{id}/publish/cancel`: stops the running step; what is done is kept.
//! - `POST /episodes/{id}/publish/resume`: ends a quota wait now (after raising the quota).

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use gt_store::{EpisodePatch, Provider};
use gt_types::api::{
    EpisodeValidationError, PublishStarted, PublishStatus, RenderRequest, YouTubeUploadRequest,
};
use gt_types::publish::youtube_fields;
use gt_types::records::{Episode, UploadStatus};
use serde_json::json;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonObject, PathParams};
use crate::workflows::PublishSignal;

/// Episodes one request may name.
pub const MAX_EPISODES_PER_REQUEST: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/render", post(render))
        .route("/upload/youtube", post(upload_youtube))
        .route("/episodes/{episode_id}/publish", get(publish_status))
        .route(
            "/episodes/{episode_id}/publish/cancel",
            post(cancel_publish),
        )
        .route(
            "/episodes/{episode_id}/publish/resume",
            post(resume_publish),
        )
}

/// The ids, deduplicated in order; 400 for none, too many or empty ones.
fn episode_ids(ids: Vec<String>) -> ApiResult<Vec<String>> {
    if ids.is_empty() {
        return Err(ApiError::BadRequest("name at least one episode".into()));
    }
    if ids.len() > MAX_EPISODES_PER_REQUEST {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_EPISODES_PER_REQUEST} episodes per request, got {}",
            ids.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for id in ids {
        if id.trim().is_empty() {
            return Err(ApiError::BadRequest("an episode id is empty".into()));
        }
        if seen.insert(id.clone()) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Why `episode` cannot be rendered, if it cannot.
fn render_problem(episode: &Episode) -> Option<String> {
    match &episode.cut_list {
        None => Some("the episode has no cut list".into()),
        Some(c) if c.output_track.is_empty() => Some("the cut list's outputTrack is empty".into()),
        Some(_) => None,
    }
}

/// The caller's episodes, all of them or a 404 naming the missing ones (another user's
/// episode is missing too).
async fn owned_episodes(
    state: &AppState,
    user: &AuthUser,
    ids: &[String],
) -> ApiResult<Vec<Episode>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        match state.publish.get_episode(&user.user_id, id).await {
            Ok(e) => found.push(e),
            Err(gt_store::StoreError::NotFound(_)) => missing.push(id.as_str()),
            Err(e) => return Err(e.into()),
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::NotFound(format!(
            "episodes not found: {}",
            missing.join(", ")
        )));
    }
    Ok(found)
}

/// 400 listing every episode's problems, if any.
fn refuse_invalid(problems: Vec<EpisodeValidationError>) -> ApiResult<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let summary = problems
        .iter()
        .map(|p| format!("{}: {}", p.episode_id, p.error))
        .collect::<Vec<_>>()
        .join("; ");
    Err(ApiError::BadRequestWith(
        format!("nothing was started: {summary}"),
        json!({ "validation_errors": problems }),
    ))
}

async fn render(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(req): JsonObject<RenderRequest>,
) -> ApiResult<(StatusCode, Json<PublishStarted>)> {
    let ids = episode_ids(req.episode_ids)?;
    let episodes = owned_episodes(&state, &user, &ids).await?;
    refuse_invalid(
        episodes
            .iter()
            .filter_map(|e| {
                render_problem(e).map(|error| EpisodeValidationError {
                    episode_id: e.id.clone(),
                    error,
                })
            })
            .collect(),
    )?;
    start_all(&state, &user, &ids, false, "rendering").await
}

/// Starts (or joins) a publish run for each episode: `202 {message, queued_count, workflows}`.
async fn start_all(
    state: &AppState,
    user: &AuthUser,
    ids: &[String],
    upload: bool,
    doing: &str,
) -> ApiResult<(StatusCode, Json<PublishStarted>)> {
    let mut workflows = Vec::new();
    for id in ids {
        if upload {
            state
                .publish
                .patch_episode(
                    &user.user_id,
                    id,
                    &EpisodePatch {
                        upload_status: Some(UploadStatus::ReadyToUpload),
                        error_message: Some(None),
                        ..Default::default()
                    },
                )
                .await?;
        }
        workflows.push(
            state
                .workflows
                .start_publish(&user.user_id, id, upload)
                .await?,
        );
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(PublishStarted {
            message: format!("{doing} {} episode(s)", ids.len()),
            queued_count: ids.len(),
            workflows,
        }),
    ))
}

async fn upload_youtube(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(req): JsonObject<YouTubeUploadRequest>,
) -> ApiResult<(StatusCode, Json<PublishStarted>)> {
    let ids = episode_ids(req.episode_ids)?;
    if state.youtube.is_none() {
        return Err(ApiError::Forbidden(
            "YouTube authentication required: this server has no YouTube app configured \
             (GT_YOUTUBE_CLIENT_ID)"
                .into(),
        ));
    }
    let connection = state
        .publish
        .oauth(&user.user_id, Provider::YouTube)
        .await?;
    match connection {
        Some(c) if c.sealed_tokens.is_some() => {}
        Some(c) if c.needs_reconnect => {
            return Err(ApiError::Forbidden(
                "YouTube authentication required: YouTube refused the stored authorization; \
                 reconnect YouTube in your profile"
                    .into(),
            ));
        }
        _ => {
            return Err(ApiError::Forbidden(
                "YouTube authentication required: connect YouTube in your profile".into(),
            ));
        }
    }
    let episodes = owned_episodes(&state, &user, &ids).await?;
    let profile = state.publish.profile(&user.user_id).await?;
    let mut problems = Vec::new();
    for e in &episodes {
        if let Some(error) = render_problem(e) {
            problems.push(EpisodeValidationError {
                episode_id: e.id.clone(),
                error,
            });
            continue;
        }
        let series = match e.series_id.as_deref() {
            Some(s) => state.publish.get_series(&user.user_id, s).await?,
            None => None,
        };
        let fields = youtube_fields(e, series.as_ref(), &profile);
        if let Err(invalid) = gt_youtube::episode_metadata(&fields).validate() {
            problems.push(EpisodeValidationError {
                episode_id: e.id.clone(),
                error: invalid.to_string(),
            });
        }
    }
    refuse_invalid(problems)?;
    start_all(&state, &user, &ids, true, "publishing to YouTube").await
}

async fn publish_status(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(episode_id): PathParams<String>,
) -> ApiResult<Json<PublishStatus>> {
    Ok(Json(
        state
            .workflows
            .publish_status(&user.user_id, &episode_id)
            .await?,
    ))
}

async fn cancel_publish(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(episode_id): PathParams<String>,
) -> ApiResult<StatusCode> {
    state
        .workflows
        .signal_publish(&user.user_id, &episode_id, PublishSignal::Cancel)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume_publish(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(episode_id): PathParams<String>,
) -> ApiResult<StatusCode> {
    state
        .workflows
        .signal_publish(&user.user_id, &episode_id, PublishSignal::Resume)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// This router's entries in the OpenAPI document.
pub fn openapi_paths(paths: &mut serde_json::Map<String, serde_json::Value>) {
    let body = |schema: serde_json::Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    let started = schemars::schema_for!(PublishStarted).to_value();
    let status = schemars::schema_for!(PublishStatus).to_value();
    let episode =
        json!({"name": "episode_id", "in": "path", "required": true, "schema": {"type": "string"}});
    paths.insert("/render".into(), json!({"post": {
        "tags": ["publish"],
        "summary": "Render and export episodes (EpisodePublish without upload); a running publish is joined. 400 lists every episode that cannot be rendered; nothing starts then",
        "requestBody": body(schemars::schema_for!(RenderRequest).to_value()),
        "responses": crate::routes::openapi::with_errors("202", crate::routes::openapi::json_content(started.clone(), "Started or joined"))
    }}));
    paths.insert("/upload/youtube".into(), json!({"post": {
        "tags": ["publish"],
        "summary": "Render (if needed) and upload episodes to YouTube. 403 when YouTube is not connected; 400 with validation_errors when any episode's cut list, title, description or tags would be refused; nothing starts then",
        "requestBody": body(schemars::schema_for!(YouTubeUploadRequest).to_value()),
        "responses": crate::routes::openapi::with_errors("202", crate::routes::openapi::json_content(started, "Started, or the running publish asked to upload"))
    }}));
    paths.insert("/episodes/{episode_id}/publish".into(), json!({"get": {
        "tags": ["publish"], "summary": "Status, progress (Temporal query) and result of the episode's latest publish",
        "parameters": [episode.clone()],
        "responses": crate::routes::openapi::with_errors("200", crate::routes::openapi::json_content(status, "Status and progress"))
    }}));
    paths.insert("/episodes/{episode_id}/publish/cancel".into(), json!({"post": {
        "tags": ["publish"], "summary": "Stop the episode's running publish; its running step is cancelled, what is done is kept",
        "parameters": [episode.clone()],
        "responses": crate::routes::openapi::with_errors("202", json!({"description": "Cancel requested"}))
    }}));
    paths.insert("/episodes/{episode_id}/publish/resume".into(), json!({"post": {
        "tags": ["publish"], "summary": "End a quota wait of the episode's publish now instead of at the quota reset",
        "parameters": [episode],
        "responses": crate::routes::openapi::with_errors("202", json!({"description": "Resume requested"}))
    }}));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deduplicated_and_bounded() {
        assert_eq!(
            episode_ids(vec!["a".into(), "b".into(), "a".into()]).unwrap(),
            ["a", "b"]
        );
        assert!(episode_ids(vec![]).is_err());
        assert!(episode_ids(vec![" ".into()]).is_err());
        assert!(episode_ids((0..51).map(|i| i.to_string()).collect()).is_err());
    }
}
