//! The Data API client: one place that sends a request with a bearer token, refreshes once on 401,
//! and retries transient failures; the calls besides the upload.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::config::YouTubeConfig;
use crate::error::{Failure, YouTubeError};
use crate::oauth::TokenSource;

/// Largest custom thumbnail YouTube takes (the classic reference's limit).
pub const MAX_THUMBNAIL_BYTES: usize = 2 * 1024 * 1024;

/// A video as YouTube returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Video {
    pub id: String,
    pub title: Option<String>,
}

impl Video {
    /// The public watch URL.
    pub fn url(&self) -> String {
        format!("https://www.youtube.com/watch?v={}", self.id)
    }
}

#[derive(Deserialize)]
pub(crate) struct VideoResource {
    id: String,
    #[serde(default)]
    snippet: Option<SnippetTitle>,
}

#[derive(Deserialize)]
struct SnippetTitle {
    title: Option<String>,
}

impl From<VideoResource> for Video {
    fn from(r: VideoResource) -> Self {
        Video {
            id: r.id,
            title: r.snippet.and_then(|s| s.title),
        }
    }
}

/// `status.uploadStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    Uploaded,
    Processed,
    Failed,
    Rejected,
    Deleted,
    #[serde(other)]
    Unknown,
}

/// `processingDetails.processingStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessingStatus {
    Processing,
    Succeeded,
    Failed,
    Terminated,
    #[serde(other)]
    Unknown,
}

/// Where YouTube is with a video after the upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoProcessing {
    pub upload_status: UploadStatus,
    /// Absent when YouTube does not report processing details (e.g. for another owner's video).
    pub processing_status: Option<ProcessingStatus>,
    pub failure_reason: Option<String>,
    pub rejection_reason: Option<String>,
}

impl VideoProcessing {
    /// Processing is over, one way or the other.
    pub fn is_final(&self) -> bool {
        matches!(
            self.upload_status,
            UploadStatus::Processed
                | UploadStatus::Failed
                | UploadStatus::Rejected
                | UploadStatus::Deleted
        ) || matches!(
            self.processing_status,
            Some(
                ProcessingStatus::Succeeded
                    | ProcessingStatus::Failed
                    | ProcessingStatus::Terminated
            )
        )
    }
}

/// Caption file formats accepted by captions.insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaptionFormat {
    Srt,
    WebVtt,
}

impl CaptionFormat {
    pub fn mime_type(self) -> &'static str {
        match self {
            CaptionFormat::Srt => "application/x-subrip",
            CaptionFormat::WebVtt => "text/vtt",
        }
    }
}

/// The YouTube Data API v3 client. Cheap to clone.
#[derive(Clone)]
pub struct YouTubeClient {
    pub(crate) cfg: YouTubeConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) tokens: Arc<dyn TokenSource>,
}

/// Which replies a call takes as success (the upload takes 308 as "go on").
#[derive(Clone, Copy)]
pub(crate) enum Accept {
    Success,
    SuccessOr308,
}

impl YouTubeClient {
    pub fn new(cfg: YouTubeConfig, tokens: Arc<dyn TokenSource>) -> Result<Self, YouTubeError> {
        cfg.validate().map_err(YouTubeError::Config)?;
        let http = reqwest::Client::builder()
            // 308 is "Resume Incomplete" in this protocol, never a redirect to follow.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .timeout(cfg.request_timeout)
            .build()
            .map_err(|e| YouTubeError::Config(e.to_string()))?;
        Ok(Self { cfg, http, tokens })
    }

    pub fn config(&self) -> &YouTubeConfig {
        &self.cfg
    }

    /// Waits before retrying a transient failure, or ends the call when the wait is longer than
    /// the policy allows inside a call or the attempts are used up.
    pub(crate) async fn wait_before_retry(
        &self,
        attempt: &mut u32,
        retry_after: Option<Duration>,
        message: String,
    ) -> Result<(), YouTubeError> {
        let policy = &self.cfg.retry;
        let wait = retry_after.unwrap_or_else(|| policy.backoff(*attempt));
        *attempt += 1;
        if *attempt >= policy.max_attempts || wait > policy.max_inline_wait {
            return Err(YouTubeError::RetryAfter {
                after: wait.max(policy.base_delay),
                message,
            });
        }
        tracing::warn!(%message, ?wait, attempt = *attempt, "retrying a YouTube request");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Sends the request `build` makes (plus the bearer token) until it gets an accepted reply:
    /// transient failures are retried per the policy, a 401 refreshes the token once. Everything
    /// else comes back as the [`Failure`] for the caller to interpret.
    pub(crate) async fn execute(
        &self,
        accept: Accept,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let mut token = self
            .tokens
            .access_token(false)
            .await
            .map_err(Failure::Fatal)?;
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            let failure = match build()
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .send()
                .await
            {
                Ok(response) if accepted(accept, response.status()) => return Ok(response),
                Ok(response) => Failure::from_response(response).await,
                Err(e) => Failure::Transient {
                    retry_after: None,
                    message: transport_message(&e),
                },
            };
            match failure {
                Failure::AuthExpired(message) => {
                    if refreshed {
                        return Err(Failure::Fatal(YouTubeError::Unauthorized(message)));
                    }
                    refreshed = true;
                    token = self
                        .tokens
                        .access_token(true)
                        .await
                        .map_err(Failure::Fatal)?;
                }
                Failure::Transient {
                    retry_after,
                    message,
                } => self
                    .wait_before_retry(&mut attempt, retry_after, message)
                    .await
                    .map_err(Failure::Fatal)?,
                other => return Err(other),
            }
        }
    }

    /// Sets the video's custom thumbnail (JPEG or PNG, at most 2 MB). A 403 (the channel may not
    /// use custom thumbnails) is [`YouTubeError::ThumbnailForbidden`], which callers treat as a
    /// warning.
    pub async fn thumbnails_set(&self, video_id: &str, image: Bytes) -> Result<(), YouTubeError> {
        if image.len() > MAX_THUMBNAIL_BYTES {
            return Err(YouTubeError::File(format!(
                "the thumbnail has {} bytes; YouTube takes at most {MAX_THUMBNAIL_BYTES}",
                image.len()
            )));
        }
        let content_type = if image.starts_with(&[0xFF, 0xD8, 0xFF]) {
            "image/jpeg"
        } else if image.starts_with(b"\x89PNG\r\n\x1a\n") {
            "image/png"
        } else {
            return Err(YouTubeError::File(
                "the thumbnail is neither a JPEG nor a PNG image".into(),
            ));
        };
        let url = format!("{}/upload/youtube/v3/thumbnails/set", self.cfg.upload_base);
        let result = self
            .execute(Accept::Success, || {
                self.http
                    .post(&url)
                    .query(&[("videoId", video_id), ("uploadType", "media")])
                    .header(CONTENT_TYPE, content_type)
                    .body(image.clone())
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(Failure::Fatal(YouTubeError::Rejected {
                status: 403,
                message,
                ..
            })) => Err(YouTubeError::ThumbnailForbidden(message)),
            Err(failure) => Err(final_error(failure)),
        }
    }

    /// Adds the video to a playlist; returns the playlist item's id. Needs the `youtube` or
    /// `youtube.force-ssl` scope.
    ///
    /// Idempotent: when the video is already in the playlist (an earlier attempt whose reply was
    /// lost, a retried activity) that item's id is returned instead of adding the video twice.
    /// The check is a `playlistItems.list` filtered by video (1 quota unit; the insert costs 50).
    pub async fn playlist_items_insert(
        &self,
        playlist_id: &str,
        video_id: &str,
    ) -> Result<String, YouTubeError> {
        let url = format!("{}/youtube/v3/playlistItems", self.cfg.api_base);
        let existing = self
            .execute(Accept::Success, || {
                self.http.get(&url).query(&[
                    ("part", "id"),
                    ("playlistId", playlist_id),
                    ("videoId", video_id),
                ])
            })
            .await
            .map_err(final_error)?;
        let existing: ItemList<WithId> = existing
            .json()
            .await
            .map_err(|e| YouTubeError::Protocol(format!("playlistItems.list reply: {e}")))?;
        if let Some(item) = existing.items.into_iter().next() {
            return Ok(item.id);
        }
        let body = serde_json::json!({
            "snippet": {
                "playlistId": playlist_id,
                "resourceId": { "kind": "youtube#video", "videoId": video_id },
            }
        });
        let response = self
            .execute(Accept::Success, || {
                self.http
                    .post(&url)
                    .query(&[("part", "snippet")])
                    .json(&body)
            })
            .await
            .map_err(final_error)?;
        resource_id(response).await
    }

    /// Uploads a caption track (multipart/related: the caption resource, then the file); returns
    /// the caption's id.
    ///
    /// Idempotent: a track of the video with the same language and name (an earlier attempt
    /// whose reply was lost) is returned instead of inserting a second one. The check is a
    /// `captions.list` (50 quota units; the insert costs 400).
    pub async fn captions_insert(
        &self,
        video_id: &str,
        language: &str,
        name: &str,
        file: Bytes,
        format: CaptionFormat,
    ) -> Result<String, YouTubeError> {
        #[derive(Deserialize)]
        struct Caption {
            id: String,
            snippet: CaptionSnippet,
        }
        #[derive(Deserialize)]
        struct CaptionSnippet {
            #[serde(default)]
            language: String,
            #[serde(default)]
            name: String,
        }
        let list_url = format!("{}/youtube/v3/captions", self.cfg.api_base);
        let existing = self
            .execute(Accept::Success, || {
                self.http
                    .get(&list_url)
                    .query(&[("part", "snippet"), ("videoId", video_id)])
            })
            .await
            .map_err(final_error)?;
        let existing: ItemList<Caption> = existing
            .json()
            .await
            .map_err(|e| YouTubeError::Protocol(format!("captions.list reply: {e}")))?;
        if let Some(caption) = existing
            .items
            .into_iter()
            .find(|c| c.snippet.language == language && c.snippet.name == name)
        {
            return Ok(caption.id);
        }
        let metadata = serde_json::json!({
            "snippet": { "videoId": video_id, "language": language, "name": name, "isDraft": false }
        });
        let (content_type, body) = multipart_related(
            &serde_json::to_vec(&metadata).expect("json"),
            format.mime_type(),
            &file,
        );
        let url = format!("{}/upload/youtube/v3/captions", self.cfg.upload_base);
        let response = self
            .execute(Accept::Success, || {
                self.http
                    .post(&url)
                    .query(&[("uploadType", "multipart"), ("part", "snippet")])
                    .header(CONTENT_TYPE, content_type.as_str())
                    .body(body.clone())
            })
            .await
            .map_err(final_error)?;
        resource_id(response).await
    }

    /// Upload and processing status (`videos.list?part=status,processingDetails`, 1 quota unit).
    pub async fn video_status(&self, video_id: &str) -> Result<VideoProcessing, YouTubeError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            items: Vec<Item>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Item {
            status: Status,
            processing_details: Option<Details>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Status {
            upload_status: UploadStatus,
            failure_reason: Option<String>,
            rejection_reason: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Details {
            processing_status: Option<ProcessingStatus>,
        }
        let url = format!("{}/youtube/v3/videos", self.cfg.api_base);
        let response = self
            .execute(Accept::Success, || {
                self.http
                    .get(&url)
                    .query(&[("part", "status,processingDetails"), ("id", video_id)])
            })
            .await
            .map_err(final_error)?;
        let list: List = response
            .json()
            .await
            .map_err(|e| YouTubeError::Protocol(format!("videos.list reply: {e}")))?;
        // An unknown (or deleted, or not ours) video is an empty list, not a 404.
        let item = list
            .items
            .into_iter()
            .next()
            .ok_or_else(|| YouTubeError::Rejected {
                status: 404,
                reason: Some("videoNotFound".into()),
                message: format!("video {video_id} not found"),
            })?;
        Ok(VideoProcessing {
            upload_status: item.status.upload_status,
            processing_status: item.processing_details.and_then(|d| d.processing_status),
            failure_reason: item.status.failure_reason,
            rejection_reason: item.status.rejection_reason,
        })
    }
}

fn accepted(accept: Accept, status: StatusCode) -> bool {
    status.is_success() || (matches!(accept, Accept::SuccessOr308) && status.as_u16() == 308)
}

/// A failure that is not about an upload session, as the caller sees it.
pub(crate) fn final_error(failure: Failure) -> YouTubeError {
    match failure {
        Failure::Fatal(e) => e,
        Failure::NotFound {
            status,
            reason,
            message,
        } => YouTubeError::Rejected {
            status,
            reason,
            message,
        },
        Failure::AuthExpired(message) => YouTubeError::Unauthorized(message),
        Failure::Transient {
            retry_after,
            message,
        } => YouTubeError::RetryAfter {
            after: retry_after.unwrap_or(Duration::from_secs(60)),
            message,
        },
    }
}

/// Connection-level failures, with the cause chain (reqwest's top-level message alone is vague).
pub(crate) fn transport_message(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[derive(Deserialize)]
struct WithId {
    id: String,
}

/// The `items` of a list reply.
#[derive(Deserialize)]
struct ItemList<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

async fn resource_id(response: Response) -> Result<String, YouTubeError> {
    response
        .json::<WithId>()
        .await
        .map(|r| r.id)
        .map_err(|e| YouTubeError::Protocol(format!("reply without a resource id: {e}")))
}

/// A multipart/related body of a JSON part and a media part, with a boundary that occurs in
/// neither.
fn multipart_related(json: &[u8], media_type: &str, media: &[u8]) -> (String, Bytes) {
    let boundary = loop {
        let candidate = format!("gt_youtube_{:032x}", rand::random::<u128>());
        let occurs = |hay: &[u8]| {
            hay.windows(candidate.len())
                .any(|w| w == candidate.as_bytes())
        };
        if !occurs(json) && !occurs(media) {
            break candidate;
        }
    };
    let mut body = Vec::with_capacity(json.len() + media.len() + 256);
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(json);
    body.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Type: {media_type}\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(media);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/related; boundary={boundary}"),
        Bytes::from(body),
    )
}
