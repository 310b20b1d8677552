//! Publishing one approved episode: render (smart cut where the sources allow, verified), the
//! subtitle and editor files, the YouTube upload (resumable, resumed from the byte YouTube
//! confirmed), thumbnail, playlist item, captions, processing status.
//!
//! Every step is idempotent. A render's key is derived from what was rendered (cut list,
//! source files, settings), and a verified render of the same input is reused. The upload
//! session is written to the episode before a byte is sent and reused by every later attempt,
//! so a killed worker or a quota wall resumes the same upload; a session that completed
//! answers with its video, and an episode that has a video is never uploaded again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gt_export::{EpisodeTimeline, ExportFormat, SourceMedia};
use gt_render::{RenderJob, RenderMethod, RenderProfile};
use gt_store::{BlobStore, EpisodePatch, Provider, Store, recording_key, user_segment};
use gt_types::publish::{
    EpisodeRef, FinishYouTube, FinishedYouTube, PublishRecord, RenderMethodKind, RenderedEpisode,
    StepOutcome, UploadEpisode, UploadOutcome, VideoProcessing, VideoStatusRequest, WrittenExports,
    youtube_fields,
};
use gt_types::records::{Episode, TaskStatus, TaskType, UploadStatus};
use gt_types::workflow::TaskUpdate;
use gt_youtube::{
    OAuthClient, TokenSource, UploadSession, YouTubeApp, YouTubeClient, YouTubeError, token_box,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{invalid_input, needs_user, retryable, store_error, with_beats};

/// Bump to render again what was rendered before (a fix in the renderer).
pub const RENDER_VERSION: &str = "render-1";
/// How often long steps heartbeat and write their progress to the task row.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub struct PublishActivitiesImpl {
    pub store: Arc<dyn Store>,
    pub recordings: Arc<dyn BlobStore>,
    pub artifacts: Arc<dyn BlobStore>,
    /// The YouTube app, when this deployment has one.
    pub youtube: Option<Arc<YouTubeApp>>,
    /// `GT_RENDER_ENCODER`: the encoder for full re-encodes when the user's render profile
    /// names none (e.g. `h264_nvenc` on a GPU worker); used only if it opens here.
    pub encoder: Option<String>,
}

fn render_failure(e: gt_render::RenderError) -> ActivityError {
    match e {
        gt_render::RenderError::InvalidInput(m) => invalid_input(m),
        gt_render::RenderError::Failed(m) => retryable(m),
    }
}

/// Hex SHA-256 of a file, read off the async runtime.
async fn sha256_file(path: &Path) -> std::io::Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(format!("{:x}", hasher.finalize()))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// What the upload activity heartbeats: enough to see where it is and to resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadHeartbeat {
    session: String,
    offset: u64,
    total: u64,
    sha256: String,
}

/// A token source over the user's stored, sealed tokens: refreshes when asked or near expiry,
/// stores what it got, and turns a refused refresh into "reconnect YouTube" on the connection.
struct StoredTokens {
    store: Arc<dyn Store>,
    app: Arc<YouTubeApp>,
    user_id: String,
    tokens: tokio::sync::Mutex<gt_youtube::OAuthTokens>,
}

impl StoredTokens {
    async fn load(
        store: Arc<dyn Store>,
        app: Arc<YouTubeApp>,
        user_id: &str,
    ) -> Result<Self, ActivityError> {
        let connection = store
            .oauth(user_id, Provider::YouTube)
            .await
            .map_err(store_error)?;
        let sealed = match connection {
            Some(c) if c.sealed_tokens.is_some() => c.sealed_tokens.unwrap_or_default(),
            Some(c) if c.needs_reconnect => {
                return Err(needs_user(
                    "YouTube refused the stored authorization: reconnect YouTube in your \
                     profile, then upload again",
                ));
            }
            _ => {
                return Err(needs_user(
                    "YouTube is not connected: connect it in your profile, then upload again",
                ));
            }
        };
        let tokens: gt_youtube::OAuthTokens = token_box::open(&app.key, &sealed).map_err(|e| {
            needs_user(format!(
                "the stored YouTube authorization cannot be read ({e}): reconnect YouTube"
            ))
        })?;
        Ok(Self {
            store,
            app,
            user_id: user_id.to_string(),
            tokens: tokio::sync::Mutex::new(tokens),
        })
    }
}

#[async_trait]
impl TokenSource for StoredTokens {
    async fn access_token(&self, force_refresh: bool) -> Result<String, YouTubeError> {
        let mut tokens = self.tokens.lock().await;
        if force_refresh || tokens.expires_within(Duration::from_secs(60), chrono::Utc::now()) {
            let oauth = OAuthClient::new(self.app.config.clone())?;
            match oauth.refresh(&tokens.refresh_token).await {
                Ok(fresh) => {
                    *tokens = fresh;
                    if let Err(e) = self
                        .store
                        .save_oauth_tokens(
                            &self.user_id,
                            Provider::YouTube,
                            &token_box::seal(&self.app.key, &*tokens),
                        )
                        .await
                    {
                        // The fresh token still works for this call; the next one refreshes again.
                        tracing::warn!(error = %e, "storing refreshed YouTube tokens");
                    }
                }
                Err(e @ YouTubeError::Reauthorize(_)) => {
                    let _ = self
                        .store
                        .mark_oauth_reconnect(&self.user_id, Provider::YouTube)
                        .await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(tokens.access_token.clone())
    }
}

/// What a YouTube failure means for the publish.
enum Next {
    /// Wait durably (quota, upload limit, a long `Retry-After`), then try again.
    Wait(UploadOutcome),
    /// Only the user can fix it (connect or reconnect YouTube).
    UserMustAct(String),
    /// The request itself is wrong (metadata, file, configuration): retrying cannot help.
    Invalid(String),
    /// Try the activity again (Temporal's retry policy).
    Retry(String),
}

impl Next {
    fn of(e: YouTubeError) -> Self {
        let now = chrono::Utc::now();
        match e {
            YouTubeError::QuotaExceeded { resume_at } => Next::Wait(UploadOutcome::WaitUntil {
                until: resume_at.timestamp(),
                reason: "YouTube API quota exceeded (it resets at midnight Pacific time)".into(),
            }),
            YouTubeError::UploadLimitExceeded { resume_at } => {
                Next::Wait(UploadOutcome::WaitUntil {
                    until: resume_at.timestamp(),
                    reason: "the channel's daily YouTube upload limit was reached".into(),
                })
            }
            YouTubeError::RetryAfter { after, message } => Next::Wait(UploadOutcome::WaitUntil {
                until: (now + chrono::Duration::from_std(after).unwrap_or(chrono::TimeDelta::MAX))
                    .timestamp(),
                reason: format!("YouTube asked us to wait: {message}"),
            }),
            e @ (YouTubeError::Reauthorize(_) | YouTubeError::Unauthorized(_)) => {
                Next::UserMustAct(e.to_string())
            }
            e @ (YouTubeError::InvalidMetadata(_)
            | YouTubeError::Rejected { .. }
            | YouTubeError::File(_)
            | YouTubeError::Config(_)) => Next::Invalid(e.to_string()),
            e => Next::Retry(e.to_string()),
        }
    }

    /// As an activity failure; a wait outside the upload (follow-ups, status) is a retry.
    fn into_error(self) -> ActivityError {
        match self {
            Next::UserMustAct(m) => needs_user(m),
            Next::Invalid(m) => invalid_input(m),
            Next::Retry(m) => retryable(m),
            Next::Wait(UploadOutcome::WaitUntil { reason, .. }) => retryable(reason),
            Next::Wait(UploadOutcome::Uploaded { .. }) => retryable("unexpected"),
        }
    }
}

fn youtube_error(e: YouTubeError) -> ActivityError {
    Next::of(e).into_error()
}

impl PublishActivitiesImpl {
    async fn task_progress(
        &self,
        ctx: &ActivityContext,
        user_id: &str,
        episode_id: &str,
        kind: TaskType,
        message: String,
        fraction: f64,
    ) {
        let info = ctx.info();
        let run = info.workflow_run_id.clone().unwrap_or_default();
        let suffix = gt_workflows::episode_publish::task_suffix(kind);
        let update = TaskUpdate {
            user_id: user_id.to_string(),
            task_id: format!("{run}-{suffix}"),
            task_type: kind,
            status: TaskStatus::Running,
            record_id: episode_id.to_string(),
            workflow_id: info.workflow_id.clone().unwrap_or_default(),
            message: Some(message),
            progress: Some(fraction.clamp(0.0, 1.0)),
        };
        if let Err(e) = self.store.upsert_task(&update).await {
            tracing::warn!(error = %e, "writing task progress");
        }
    }

    async fn episode(&self, input: &EpisodeRef) -> Result<Episode, ActivityError> {
        self.store
            .get_episode(&input.user_id, &input.episode_id)
            .await
            .map_err(store_error)
    }

    /// The local files of the cut list's inputs, all under the user's recordings root (a key
    /// written into a cut list can name nothing else).
    async fn sources(
        &self,
        user_id: &str,
        episode: &Episode,
    ) -> Result<Vec<(String, PathBuf)>, ActivityError> {
        let cut = episode
            .cut_list
            .as_ref()
            .ok_or_else(|| invalid_input(format!("episode '{}' has no cut list", episode.id)))?;
        let mut out = Vec::new();
        for (i, input) in cut.input_media.iter().enumerate() {
            let key = recording_key(user_id, &input.s3_location)
                .map_err(|e| invalid_input(format!("inputMedia {i}: {e}")))?;
            let path = match self.recordings.local_path(&key).await {
                Ok(p) => p,
                Err(gt_store::StoreError::NotFound(_)) => {
                    return Err(invalid_input(format!(
                        "inputMedia {i}: '{}' is not one of your recordings",
                        input.s3_location
                    )));
                }
                Err(e) => return Err(store_error(e)),
            };
            out.push((input.s3_location.clone(), path));
        }
        Ok(out)
    }

    /// A client for the user's channel, with their stored tokens.
    async fn youtube_client(&self, user_id: &str) -> Result<YouTubeClient, ActivityError> {
        let app = self.youtube.clone().ok_or_else(|| {
            needs_user("this server has no YouTube app configured (GT_YOUTUBE_CLIENT_ID)")
        })?;
        let tokens = Arc::new(StoredTokens::load(self.store.clone(), app.clone(), user_id).await?);
        YouTubeClient::new(app.config.clone(), tokens).map_err(|e| invalid_input(e.to_string()))
    }

    /// What the upload sets on the video: the episode's fields, else its series', else the
    /// defaults, with the user's profile.
    async fn youtube_fields(
        &self,
        user_id: &str,
        episode: &Episode,
    ) -> Result<gt_types::publish::YouTubeFields, ActivityError> {
        let series = match episode.series_id.as_deref() {
            Some(s) => self
                .store
                .get_series(user_id, s)
                .await
                .map_err(store_error)?,
            None => None,
        };
        let profile = self.store.profile(user_id).await.map_err(store_error)?;
        Ok(youtube_fields(episode, series.as_ref(), &profile))
    }

    fn profile_of(
        &self,
        profile: &gt_types::records::Profile,
    ) -> Result<RenderProfile, ActivityError> {
        let mut out: RenderProfile = match &profile.render_profile {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                invalid_input(format!("the profile's renderProfile is invalid: {e}"))
            })?,
            None => RenderProfile::default(),
        };
        let named = profile
            .render_profile
            .as_ref()
            .is_some_and(|v| v.get("encoder").is_some());
        if !named
            && let Some(enc) = &self.encoder
            && gt_render::encoder_available(enc)
        {
            out.encoder = enc.clone();
        }
        Ok(out)
    }
}

#[activities]
impl PublishActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::RenderEpisode)]
    pub async fn render_episode(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EpisodeRef,
    ) -> Result<RenderedEpisode, ActivityError> {
        let episode = self.episode(&input).await?;
        let cut_list = episode
            .cut_list
            .clone()
            .ok_or_else(|| invalid_input(format!("episode '{}' has no cut list", episode.id)))?;
        let sources = self.sources(&input.user_id, &episode).await?;
        let profile = self.profile_of(
            &self
                .store
                .profile(&input.user_id)
                .await
                .map_err(store_error)?,
        )?;

        // Same cut list, same source files, same settings: same key.
        let mut h = Sha256::new();
        h.update(RENDER_VERSION);
        h.update(serde_json::to_vec(&cut_list).unwrap_or_default());
        h.update(serde_json::to_vec(&profile).unwrap_or_default());
        for (key, path) in &sources {
            let meta = std::fs::metadata(path).map_err(|e| invalid_input(format!("{key}: {e}")))?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            h.update(format!("{key}\0{}\0{modified}\0", meta.len()));
        }
        let fingerprint = format!("{:x}", h.finalize())[..16].to_string();
        let key = format!(
            "{}/renders/{}/{fingerprint}.mp4",
            user_segment(&input.user_id),
            episode.id
        );
        if let Some(done) = episode.publish.as_ref().and_then(|p| p.render.clone())
            && done.key == key
            && self.artifacts.exists(&key).await.map_err(store_error)?
        {
            let existing = self.artifacts.local_path(&key).await.map_err(store_error)?;
            if sha256_file(&existing).await.ok().as_deref() == Some(done.sha256.as_str()) {
                return Ok(RenderedEpisode {
                    reused: true,
                    ..done
                });
            }
        }

        // Rendered to scratch space, then stored under its key in one step: a render cut short
        // (a crash, a cancel) never sits at the key.
        let scratch = tempfile::tempdir().map_err(|e| retryable(format!("scratch dir: {e}")))?;
        let partial = scratch.path().join("render.mp4");
        let job = RenderJob {
            cut_list,
            sources: sources.iter().map(|(_, p)| p.clone()).collect(),
            output: partial.clone(),
            profile,
            force_full: false,
        };
        let fraction = Arc::new(Mutex::new(0.0f64));
        let seen = fraction.clone();
        let rendering = tokio::task::spawn_blocking(move || {
            gt_render::render(&job, &mut |f| *seen.lock().expect("progress lock") = f)
        });
        // Cancelled: the render thread finishes into the scratch dir on its own; it is never
        // stored under the key, so nothing half-done is used.
        let report = with_beats(&ctx, PROGRESS_EVERY, rendering, || {
            let f = *fraction.lock().expect("progress lock");
            let (this, ctx, input) = (self.clone(), ctx.clone(), input.clone());
            async move {
                let _ = ctx.record_heartbeat(json!({"fraction": f})).await;
                this.task_progress(
                    &ctx,
                    &input.user_id,
                    &input.episode_id,
                    TaskType::Rendering,
                    format!("rendering {:.0} %", f * 100.0),
                    f,
                )
                .await;
                Ok(())
            }
        })
        .await?
        .map_err(|e| retryable(format!("render task: {e}")))?
        .map_err(render_failure)?;
        self.artifacts
            .put_file(&key, &partial)
            .await
            .map_err(store_error)?;
        let rendered = RenderedEpisode {
            key: key.clone(),
            fingerprint,
            method: match report.method {
                RenderMethod::SmartCut => RenderMethodKind::SmartCut,
                RenderMethod::FullReencode => RenderMethodKind::FullReencode,
            },
            fallback_reason: report.fallback_reason,
            frames: report.frames,
            duration_s: report.duration_s,
            copied_packets: report.copied_packets,
            reencoded_frames: report.reencoded_frames,
            bytes: report.bytes,
            sha256: report.sha256,
            width: report.width,
            height: report.height,
            reused: false,
        };
        self.store
            .patch_episode(
                &input.user_id,
                &input.episode_id,
                &EpisodePatch {
                    render_uri: Some(key),
                    publish: Some(json!({ "render": rendered })),
                    ..Default::default()
                },
            )
            .await
            .map_err(store_error)?;
        Ok(rendered)
    }

    #[activity(definition = gt_workflows::contracts::WriteExports)]
    pub async fn write_exports(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: EpisodeRef,
    ) -> Result<WrittenExports, ActivityError> {
        let episode = self.episode(&input).await?;
        let cut = episode
            .cut_list
            .clone()
            .ok_or_else(|| invalid_input(format!("episode '{}' has no cut list", episode.id)))?;
        let sources = self.sources(&input.user_id, &episode).await?;
        let keys: Vec<String> = sources.iter().map(|(k, _)| k.clone()).collect();
        let clips = self
            .store
            .clips_by_key(&input.user_id, &keys)
            .await
            .map_err(store_error)?;
        let media = clips
            .iter()
            .zip(&sources)
            .map(|(clip, (_, path))| SourceMedia::from_clip(clip, gt_export::file_url(path)))
            .collect();
        let title = episode
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| episode.id.clone());
        let timeline = EpisodeTimeline::build(
            &title,
            &cut,
            media,
            episode.chapters.clone().unwrap_or_default(),
        )
        .map_err(|e| invalid_input(format!("episode '{}': {e}", episode.id)))?;
        let prefix = format!("{}/exports/{}", user_segment(&input.user_id), episode.id);
        let mut written = WrittenExports::default();
        for format in ExportFormat::ALL {
            let key = format!("{prefix}/episode.{}", format.extension());
            self.artifacts
                .put_bytes(&key, format.render(&timeline).into_bytes())
                .await
                .map_err(store_error)?;
            match format {
                ExportFormat::Srt => written.srt = key,
                ExportFormat::WebVtt => written.vtt = key,
                ExportFormat::Otio => written.otio = key,
                ExportFormat::Edl => written.edl = key,
            }
        }
        written.cues = gt_export::subtitles::cues(&timeline).len() as u32;
        self.store
            .patch_episode(
                &input.user_id,
                &input.episode_id,
                &EpisodePatch {
                    publish: Some(json!({ "exports": written })),
                    ..Default::default()
                },
            )
            .await
            .map_err(store_error)?;
        Ok(written)
    }

    #[activity(definition = gt_workflows::contracts::UploadYouTubeActivity)]
    pub async fn upload_youtube(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: UploadEpisode,
    ) -> Result<UploadOutcome, ActivityError> {
        let episode = self
            .episode(&EpisodeRef {
                user_id: input.user_id.clone(),
                episode_id: input.episode_id.clone(),
            })
            .await?;
        // Never a second video for an episode.
        if let Some(video_id) = episode.youtube_video_id.clone().filter(|v| !v.is_empty()) {
            return Ok(UploadOutcome::Uploaded { video_id });
        }
        let metadata =
            gt_youtube::episode_metadata(&self.youtube_fields(&input.user_id, &episode).await?);
        metadata
            .validate()
            .map_err(|e| invalid_input(format!("episode '{}': {e}", episode.id)))?;
        let file = self
            .artifacts
            .local_path(&input.render.key)
            .await
            .map_err(store_error)?;
        let client = self.youtube_client(&input.user_id).await?;

        let patch = |p: EpisodePatch| {
            let store = self.store.clone();
            let (user, id) = (input.user_id.clone(), input.episode_id.clone());
            async move {
                store
                    .patch_episode(&user, &id, &p)
                    .await
                    .map_err(store_error)
            }
        };
        // The session of an earlier attempt, if it was opened for this render.
        let stored: Option<UploadSession> = episode
            .youtube_upload_url
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .filter(|s: &UploadSession| {
                s.sha256 == input.render.sha256 && s.total == input.render.bytes
            });
        let mut session = match stored {
            Some(s) => s,
            None => match client.begin_upload(&file, &metadata, "video/mp4").await {
                Ok(s) => {
                    // Persisted before a single byte is sent: every later attempt resumes it.
                    patch(EpisodePatch {
                        youtube_upload_url: Some(Some(
                            serde_json::to_string(&s).unwrap_or_default(),
                        )),
                        upload_resume_at_byte: Some(0),
                        add_upload_attempt: true,
                        ..Default::default()
                    })
                    .await?;
                    s
                }
                Err(e) => return self.upload_failed(&input, e).await,
            },
        };
        loop {
            let progress = Arc::new(Mutex::new((0u64, session.total)));
            let seen = progress.clone();
            let uploading = client.resume_upload(&session, &file, move |offset, total| {
                *seen.lock().expect("progress lock") = (offset, total);
            });
            let result = with_beats(&ctx, PROGRESS_EVERY, uploading, || {
                let (offset, total) = *progress.lock().expect("progress lock");
                let beat = UploadHeartbeat {
                    session: session.uri.clone(),
                    offset,
                    total,
                    sha256: session.sha256.clone(),
                };
                let this = self.clone();
                let ctx = ctx.clone();
                let input = input.clone();
                async move {
                    let _ = ctx.record_heartbeat(json!(beat)).await;
                    let _ = this
                        .store
                        .patch_episode(
                            &input.user_id,
                            &input.episode_id,
                            &EpisodePatch {
                                upload_resume_at_byte: Some(offset as i64),
                                ..Default::default()
                            },
                        )
                        .await;
                    this.task_progress(
                        &ctx,
                        &input.user_id,
                        &input.episode_id,
                        TaskType::Upload,
                        format!(
                            "uploaded {:.1} of {:.1} MB",
                            offset as f64 / 1e6,
                            total as f64 / 1e6
                        ),
                        offset as f64 / total.max(1) as f64,
                    )
                    .await;
                    Ok(())
                }
            })
            .await?;
            match result {
                Ok(video) => {
                    patch(EpisodePatch {
                        youtube_video_id: Some(video.id.clone()),
                        youtube_upload_url: Some(None),
                        upload_resume_at_byte: Some(session.total as i64),
                        upload_status: Some(UploadStatus::Success),
                        error_message: Some(None),
                        retry_after_seconds: Some(None),
                        is_published: Some(true),
                        publish: Some(json!({ "youtube_url": video.url() })),
                        ..Default::default()
                    })
                    .await?;
                    return Ok(UploadOutcome::Uploaded { video_id: video.id });
                }
                Err(YouTubeError::SessionGone { status }) => {
                    // The session expired (about a week) or was dropped: a new one from byte 0.
                    // It cannot double the video: a session that completed answers with it.
                    tracing::warn!(status, "YouTube upload session gone; opening a new one");
                    session = match client.begin_upload(&file, &metadata, "video/mp4").await {
                        Ok(s) => s,
                        Err(e) => return self.upload_failed(&input, e).await,
                    };
                    patch(EpisodePatch {
                        youtube_upload_url: Some(Some(
                            serde_json::to_string(&session).unwrap_or_default(),
                        )),
                        upload_resume_at_byte: Some(0),
                        add_upload_attempt: true,
                        ..Default::default()
                    })
                    .await?;
                }
                Err(e) => return self.upload_failed(&input, e).await,
            }
        }
    }

    #[activity(definition = gt_workflows::contracts::FinishYouTubeActivity)]
    pub async fn finish_youtube(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: FinishYouTube,
    ) -> Result<FinishedYouTube, ActivityError> {
        let episode = self
            .episode(&EpisodeRef {
                user_id: input.user_id.clone(),
                episode_id: input.episode_id.clone(),
            })
            .await?;
        // Follow-ups already done by an earlier attempt are not repeated.
        let done = episode
            .publish
            .as_ref()
            .and_then(|p| p.youtube.clone())
            .unwrap_or_default();
        let fields = self.youtube_fields(&input.user_id, &episode).await?;
        let client = self.youtube_client(&input.user_id).await?;
        let fail = youtube_error;
        let mut out = done.clone();

        if matches!(done.thumbnail, StepOutcome::Skipped)
            && let Some(render) = episode.publish.as_ref().and_then(|p| p.render.clone())
        {
            // Read in place (ranged reads of a presigned URL on S3): only a few frames are needed.
            let source = self
                .artifacts
                .media_source(&render.key, crate::ingest::RECORDING_URL_TTL)
                .await
                .map_err(store_error)?;
            let duration = render.duration_s;
            let jpeg = tokio::task::spawn_blocking(move || {
                crate::media::video::thumbnails(
                    &source,
                    "render",
                    (duration / 4.0).max(1.0),
                    1280,
                    &|_| {},
                )
            })
            .await
            .map_err(|e| retryable(e.to_string()))?
            .map_err(|e| retryable(format!("thumbnail from the render: {e}")))?;
            // A frame a quarter in: past any fade-in, inside the talk.
            if let Some(t) = jpeg.get(1).or(jpeg.first()) {
                out.thumbnail = match client
                    .thumbnails_set(&input.video_id, bytes::Bytes::from(t.jpeg.clone()))
                    .await
                {
                    Ok(()) => StepOutcome::Done(format!("frame at {:.1} s", t.time)),
                    Err(YouTubeError::ThumbnailForbidden(m)) => StepOutcome::Refused(m),
                    Err(e) => return Err(fail(e)),
                };
            }
        }
        if matches!(done.playlist_item, StepOutcome::Skipped)
            && let Some(playlist) = &fields.playlist_id
        {
            out.playlist_item = match client
                .playlist_items_insert(playlist, &input.video_id)
                .await
            {
                Ok(item) => StepOutcome::Done(item),
                Err(e @ YouTubeError::Rejected { .. }) => StepOutcome::Refused(e.to_string()),
                Err(e) => return Err(fail(e)),
            };
        }
        if matches!(done.captions, StepOutcome::Skipped)
            && fields.captions
            && let Some(vtt) = &input.vtt
        {
            let bytes = self.artifacts.get_bytes(vtt).await.map_err(store_error)?;
            out.captions = match client
                .captions_insert(
                    &input.video_id,
                    "en",
                    "Subtitles",
                    bytes::Bytes::from(bytes),
                    gt_youtube::CaptionFormat::WebVtt,
                )
                .await
            {
                Ok(id) => StepOutcome::Done(id),
                Err(e @ YouTubeError::Rejected { .. }) => StepOutcome::Refused(e.to_string()),
                Err(e) => return Err(fail(e)),
            };
        }
        self.store
            .patch_episode(
                &input.user_id,
                &input.episode_id,
                &EpisodePatch {
                    publish: Some(json!({ "youtube": out })),
                    ..Default::default()
                },
            )
            .await
            .map_err(store_error)?;
        Ok(out)
    }

    #[activity(definition = gt_workflows::contracts::VideoStatus)]
    pub async fn video_status(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: VideoStatusRequest,
    ) -> Result<VideoProcessing, ActivityError> {
        let client = self.youtube_client(&input.user_id).await?;
        let status = client
            .video_status(&input.video_id)
            .await
            .map_err(youtube_error)?;
        let name = |v: serde_json::Value| v.as_str().unwrap_or("unknown").to_string();
        let processing = VideoProcessing {
            processing_status: status
                .processing_status
                .map_or_else(|| "unknown".into(), |p| name(json!(p))),
            upload_status: name(json!(status.upload_status)),
            done: status.is_final(),
        };
        let record = PublishRecord {
            processing: Some(processing.clone()),
            ..Default::default()
        };
        self.store
            .patch_episode(
                &input.user_id,
                &input.episode_id,
                &EpisodePatch {
                    publish: Some(serde_json::to_value(&record).unwrap_or_default()),
                    ..Default::default()
                },
            )
            .await
            .map_err(store_error)?;
        Ok(processing)
    }
}

impl PublishActivitiesImpl {
    /// Records a failed or paused upload on the episode and turns it into the activity's answer:
    /// a wait is an outcome for the workflow's durable timer; a failure only the user or a new
    /// request can fix is final; anything else is retried and not recorded as a failure.
    async fn upload_failed(
        &self,
        input: &UploadEpisode,
        e: YouTubeError,
    ) -> Result<UploadOutcome, ActivityError> {
        let message = e.to_string();
        let next = Next::of(e);
        let record = match &next {
            Next::Wait(UploadOutcome::WaitUntil { until, .. }) => Some((
                UploadStatus::Throttled,
                Some(until - chrono::Utc::now().timestamp()),
            )),
            Next::UserMustAct(_) | Next::Invalid(_) => Some((UploadStatus::Failed, None)),
            _ => None,
        };
        if let Some((status, retry_after)) = record {
            let _ = self
                .store
                .patch_episode(
                    &input.user_id,
                    &input.episode_id,
                    &EpisodePatch {
                        upload_status: Some(status),
                        error_message: Some(Some(message)),
                        retry_after_seconds: Some(retry_after),
                        ..Default::default()
                    },
                )
                .await;
        }
        match next {
            Next::Wait(w) => Ok(w),
            other => Err(other.into_error()),
        }
    }
}
