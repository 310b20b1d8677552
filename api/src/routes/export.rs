//! Editor exports and subtitles of an episode: `GET /episodes/{id}/export.otio`, `.edl`,
//! `.srt`, `.vtt` (`gt-export` builds them from the episode's cut list, its chapters and the
//! cut list's clips: their frame rates, lengths, stored transcripts with reviewer edits, and
//! summary highlights).
//!
//! Owner-scoped like every route: the episode and each clip are read as the caller's, so
//! another user's episode is "not found" and a cut list naming a clip the caller does not have
//! is refused (409). An episode without a usable cut list is 409 with the reason. Nothing is
//! written.
//!
//! Source files are named by `file://` URLs under the caller's recordings root
//! (`GT_RECORDINGS_DIR/{owner}/{key}`, `ApiConfig::recordings_dir`, the layout the workers read recordings from); when the
//! API does not know that root, by the relative reference `{owner}/{key}` (relative to it).
//! The URL is always built from the caller's own owner segment and a checked key, whatever the
//! cut list says, so an export never names another user's file.

use std::collections::HashMap;
use std::path::Path;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gt_export::{EpisodeTimeline, ExportFormat, SourceMedia};
use gt_store::StoreError;
use gt_store::catalog::{EPISODES, VIDEO_CLIPS};
use gt_types::episode::Chapter;
use gt_types::records::{CutList, VideoClip};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathParams;

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for format in ExportFormat::ALL {
        router = router.route(
            &format!("/episodes/{{id}}/export.{}", format.extension()),
            get(
                move |state: State<AppState>,
                      user: AuthUser,
                      PathParams(id): PathParams<String>| {
                    export(state, user, id, format)
                },
            ),
        );
    }
    router
}

/// Where editors find `key` of `user_id` under the recordings root (see the module docs).
fn source_url(root: Option<&Path>, user_id: &str, key: &str) -> String {
    let relative = Path::new(&gt_store::user_segment(user_id)).join(key);
    match root.and_then(|r| std::path::absolute(r).ok()) {
        Some(root) => gt_export::file_url(&root.join(relative)),
        None => gt_export::url_path(&relative),
    }
}

/// A download name from the episode's title: ASCII letters, digits, ` `, `-`, `_`, `.` kept,
/// anything else `_`, at most 80 characters; the id (or `episode`) when nothing is left.
fn file_stem(title: &str, id: &str) -> String {
    let clean = |s: &str| -> String {
        let mapped: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        mapped
            .trim_matches(|c: char| c == ' ' || c == '.' || c == '_')
            .chars()
            .take(80)
            .collect()
    };
    [clean(title), clean(id)]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "episode".into())
}

fn conflict(id: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::Conflict(format!("episode '{id}' cannot be exported: {why}"))
}

async fn export(
    State(state): State<AppState>,
    user: AuthUser,
    id: String,
    format: ExportFormat,
) -> ApiResult<Response> {
    let episode = state.records.get(&user.user_id, &EPISODES, &id).await?;
    let cut: CutList = match episode.get("cut_list") {
        None | Some(Value::Null) => {
            return Err(conflict(&id, "it has no cut list yet"));
        }
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| conflict(&id, format!("its cut list is malformed: {e}")))?,
    };
    let chapters: Vec<Chapter> = match episode.get("chapters") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| conflict(&id, format!("its chapters are malformed: {e}")))?,
    };
    let title = episode
        .get("title")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(&id)
        .to_string();

    let mut clips: HashMap<String, VideoClip> = HashMap::new();
    let mut media = Vec::with_capacity(cut.input_media.len());
    for (i, input) in cut.input_media.iter().enumerate() {
        let key = &input.s3_location;
        gt_store::blob::check_key(key)
            .map_err(|e| conflict(&id, format!("inputMedia {i}: {e}")))?;
        if !clips.contains_key(key) {
            let record = match state.records.get(&user.user_id, &VIDEO_CLIPS, key).await {
                Ok(v) => v,
                Err(StoreError::NotFound(_)) => {
                    return Err(conflict(
                        &id,
                        format!("inputMedia {i} names '{key}', which is not one of your clips"),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            let clip: VideoClip = serde_json::from_value(record)
                .map_err(|e| conflict(&id, format!("clip '{key}' is malformed: {e}")))?;
            clips.insert(key.clone(), clip);
        }
        let clip = &clips[key];
        media.push(SourceMedia::from_clip(
            clip,
            source_url(state.recordings_dir.as_deref(), &user.user_id, &clip.key),
        ));
    }
    let timeline =
        EpisodeTimeline::build(&title, &cut, media, chapters).map_err(|e| conflict(&id, e))?;
    let body = format.render(&timeline);
    let stem = file_stem(&title, &id);
    let disposition = format!(
        "attachment; filename=\"{stem}.{ext}\"; filename*=UTF-8''{}.{ext}",
        url::form_urlencoded::byte_serialize(title.as_bytes())
            .collect::<String>()
            .replace('+', "%20"),
        ext = format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

/// The routes' entries for `/openapi.json`.
pub fn openapi_paths(paths: &mut Map<String, Value>) {
    let err = |what: &str| json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    for (format, what) in [
        (
            ExportFormat::Otio,
            "OpenTimelineIO timeline (video and audio tracks, crossfades as dissolves, chapters and highlights as markers, file URLs to the sources)",
        ),
        (
            ExportFormat::Edl,
            "CMX 3600 EDL (non-drop-frame; sources named by FROM CLIP NAME comments, chapters as LOC comments)",
        ),
        (
            ExportFormat::Srt,
            "SubRip subtitles in episode time from the edited transcript (at most 2 lines of 42 characters, 1 to 7 s a cue)",
        ),
        (
            ExportFormat::WebVtt,
            "WebVTT subtitles in episode time from the edited transcript (at most 2 lines of 42 characters, 1 to 7 s a cue)",
        ),
    ] {
        let media = format.content_type().split(';').next().unwrap_or_default();
        paths.insert(
            format!("/episodes/{{id}}/export.{}", format.extension()),
            json!({"get": {
                "tags": ["exports"],
                "summary": what,
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The file, as an attachment", "content": {media: {"schema": {"type": "string"}}}},
                    "401": err("Missing, expired or forged token"),
                    "404": err("No such episode (or it belongs to another user)"),
                    "409": err("The episode has no usable cut list, or it names clips the caller does not have")
                }
            }}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_plain_ascii() {
        assert_eq!(
            file_stem("Castle night - Episode 5", "x"),
            "Castle night - Episode 5"
        );
        assert_eq!(file_stem("Ça/va?", "x"), "a_va");
        assert_eq!(file_stem("…", "ep-1"), "ep-1");
        assert_eq!(file_stem("", "/"), "episode");
        assert!(file_stem(&"a".repeat(200), "x").len() == 80);
    }

    #[test]
    fn source_urls_use_the_callers_segment() {
        let url = source_url(None, "a/b", "2024-05-01/x y.mkv");
        assert_eq!(url, "a_2Fb/2024-05-01/x%20y.mkv");
        let url = source_url(Some(Path::new("/rec")), "a/b", "c.mkv");
        assert_eq!(url, "file:///rec/a_2Fb/c.mkv");
    }
}
