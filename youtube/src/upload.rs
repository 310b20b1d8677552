//! The resumable upload protocol, in two steps that make durability natural:
//!
//! 1. [`YouTubeClient::begin_upload`] validates the metadata, fingerprints the file and opens a
//!    session; it sends no video bytes. The caller **persists the returned [`UploadSession`]**
//!    (heartbeat details, a database row) before going on.
//! 2. [`YouTubeClient::resume_upload`] asks the server how much it has (a status query), sends the
//!    rest in chunks and returns the video. It is the same call for the first attempt, after a
//!    dropped connection, and in a new worker after the old one was killed: the server's
//!    confirmed offset is the only truth about what was received.
//!
//! A session that already completed answers the status query with its video, so resuming a
//! finished upload returns the same video instead of creating another.
//! [`YouTubeError::SessionGone`] is the only outcome that calls for a new session.

use std::io::{Read, SeekFrom};
use std::path::Path;

use reqwest::Response;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::client::{Accept, Video, VideoResource, YouTubeClient, transport_message};
use crate::error::{Failure, YouTubeError};
use crate::metadata::VideoMetadata;

/// An open resumable upload: everything needed to continue it from another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSession {
    /// The session URI (`Location` of the insert). It carries the upload id; treat it as a secret.
    pub uri: String,
    /// File size in bytes.
    pub total: u64,
    /// SHA-256 (lowercase hex) of the file the session was opened for; resuming with another file
    /// is refused.
    pub sha256: String,
    /// `X-Upload-Content-Type` of the session, sent again with every chunk.
    pub content_type: String,
}

/// What the server has of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    /// Bytes `0..offset` are stored; continue from `offset`.
    Incomplete { offset: u64 },
    /// The upload completed and created this video.
    Complete(Video),
}

impl YouTubeClient {
    /// Validates `metadata` (nothing is sent when it is invalid), fingerprints the file and opens a
    /// resumable session (`videos.insert`, `uploadType=resumable`). No video bytes are sent:
    /// persist the session, then call [`YouTubeClient::resume_upload`].
    pub async fn begin_upload(
        &self,
        path: &Path,
        metadata: &VideoMetadata,
        content_type: &str,
    ) -> Result<UploadSession, YouTubeError> {
        metadata.validate()?;
        let (total, sha256) = fingerprint(path).await?;
        if total == 0 {
            return Err(YouTubeError::File(format!("{} is empty", path.display())));
        }
        let url = format!("{}/upload/youtube/v3/videos", self.cfg.upload_base);
        let resource = metadata.to_resource();
        let notify = if metadata.notify_subscribers {
            "true"
        } else {
            "false"
        };
        let response = self
            .execute(Accept::Success, || {
                self.http
                    .post(&url)
                    .query(&[
                        ("uploadType", "resumable"),
                        ("part", "snippet,status"),
                        ("notifySubscribers", notify),
                    ])
                    .header("X-Upload-Content-Length", total.to_string())
                    .header("X-Upload-Content-Type", content_type)
                    .json(&resource)
            })
            .await
            .map_err(crate::client::final_error)?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| YouTubeError::Protocol("session start without a Location".into()))?;
        // The Location may be relative in principle; resolve it against the request URL.
        let uri = response
            .url()
            .join(location)
            .map_err(|e| YouTubeError::Protocol(format!("session Location {location:?}: {e}")))?
            .to_string();
        tracing::info!(total, %sha256, "opened a YouTube upload session");
        Ok(UploadSession {
            uri,
            total,
            sha256,
            content_type: content_type.to_string(),
        })
    }

    /// Asks the server how much of the session it has (`PUT` with `Content-Range: bytes */TOTAL`).
    pub async fn query_offset(&self, session: &UploadSession) -> Result<UploadState, YouTubeError> {
        let result = self
            .execute(Accept::SuccessOr308, || {
                self.http
                    .put(&session.uri)
                    .header(CONTENT_RANGE, format!("bytes */{}", session.total))
                    .header(CONTENT_LENGTH, "0")
            })
            .await;
        match result {
            Ok(response) => upload_state(response, session.total).await,
            Err(Failure::NotFound { status, .. }) => Err(YouTubeError::SessionGone { status }),
            Err(failure) => Err(crate::client::final_error(failure)),
        }
    }

    /// Sends what the server does not have yet and returns the video.
    ///
    /// Starts with a status query, sends chunks of `chunk_size` bytes with `Content-Range`, and
    /// continues from the byte each `308` confirms (never assuming a whole chunk landed). After a
    /// dropped connection, a timeout, a 5xx or 429 it waits (honouring `Retry-After`) and asks for
    /// the status again. A 401 refreshes the token once per stretch without progress.
    /// `on_progress(confirmed, total)` is called with every server-confirmed offset: a good place
    /// for a heartbeat.
    ///
    /// The file must be the one the session was opened for (same size and SHA-256); it is hashed
    /// again here, which reads it once.
    pub async fn resume_upload<F>(
        &self,
        session: &UploadSession,
        path: &Path,
        mut on_progress: F,
    ) -> Result<Video, YouTubeError>
    where
        F: FnMut(u64, u64) + Send,
    {
        let (size, sha256) = fingerprint(path).await?;
        if size != session.total || sha256 != session.sha256 {
            return Err(YouTubeError::File(format!(
                "{} is not the file the upload session was opened for ({size} bytes, sha256 {sha256}; the session expects {} bytes, sha256 {})",
                path.display(),
                session.total,
                session.sha256
            )));
        }
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| YouTubeError::File(format!("{}: {e}", path.display())))?;
        let total = session.total;
        let chunk_size = self.cfg.chunk_size as u64;
        let mut attempt = 0;
        let mut refreshed = false;
        let mut state = self.query_offset(session).await?;
        loop {
            let offset = match state {
                UploadState::Complete(video) => {
                    on_progress(total, total);
                    return Ok(video);
                }
                UploadState::Incomplete { offset } => offset,
            };
            on_progress(offset, total);
            if offset >= total {
                return Err(YouTubeError::Protocol(format!(
                    "the server confirmed all {total} bytes but did not complete the upload"
                )));
            }
            let len = chunk_size.min(total - offset);
            let mut chunk = vec![0u8; len as usize];
            file.seek(SeekFrom::Start(offset))
                .await
                .and(file.read_exact(&mut chunk).await.map(|_| ()))
                .map_err(|e| YouTubeError::File(format!("{}: {e}", path.display())))?;
            let token = self.tokens.access_token(false).await?;
            let sent = self
                .http
                .put(&session.uri)
                .bearer_auth(&token)
                .header(
                    CONTENT_RANGE,
                    format!("bytes {offset}-{}/{total}", offset + len - 1),
                )
                .header(CONTENT_TYPE, session.content_type.as_str())
                .body(chunk)
                .send()
                .await;
            let failure = match sent {
                Ok(response)
                    if response.status().as_u16() == 308 || response.status().is_success() =>
                {
                    let next = upload_state(response, total).await?;
                    if let UploadState::Incomplete { offset: confirmed } = next {
                        if confirmed > offset {
                            attempt = 0;
                            refreshed = false;
                        } else {
                            // Nothing of the chunk was kept: back off rather than spin.
                            self.wait_before_retry(
                                &mut attempt,
                                None,
                                format!("no bytes of the chunk at {offset} were kept"),
                            )
                            .await?;
                        }
                    }
                    state = next;
                    continue;
                }
                Ok(response) => Failure::from_response(response).await,
                Err(e) => Failure::Transient {
                    retry_after: None,
                    message: transport_message(&e),
                },
            };
            match failure {
                Failure::AuthExpired(message) => {
                    if refreshed {
                        return Err(YouTubeError::Unauthorized(message));
                    }
                    refreshed = true;
                    self.tokens.access_token(true).await?;
                }
                Failure::Transient {
                    retry_after,
                    message,
                } => {
                    tracing::warn!(offset, %message, "upload chunk failed; asking the server what it kept");
                    self.wait_before_retry(&mut attempt, retry_after, message)
                        .await?;
                }
                Failure::NotFound { status, .. } => {
                    return Err(YouTubeError::SessionGone { status });
                }
                Failure::Fatal(e) => return Err(e),
            }
            // Whatever happened to the chunk, only the server knows how much of it arrived.
            state = self.query_offset(session).await?;
        }
    }
}

/// Reads a `308` (with `Range: bytes=0-LAST`, or none for nothing) or the completed video.
async fn upload_state(response: Response, total: u64) -> Result<UploadState, YouTubeError> {
    if response.status().as_u16() == 308 {
        let offset = match response.headers().get(RANGE) {
            None => 0,
            Some(value) => {
                let text = value.to_str().unwrap_or_default();
                parse_range_end(text)
                    .map(|last| last + 1)
                    .filter(|&next| next <= total)
                    .ok_or_else(|| {
                        YouTubeError::Protocol(format!("308 with an unusable Range {text:?}"))
                    })?
            }
        };
        return Ok(UploadState::Incomplete { offset });
    }
    let resource: VideoResource = response
        .json()
        .await
        .map_err(|e| YouTubeError::Protocol(format!("completed upload without a video: {e}")))?;
    Ok(UploadState::Complete(resource.into()))
}

/// `bytes=0-LAST` → `LAST`. Google always confirms from byte 0.
fn parse_range_end(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes=")?;
    let (first, last) = range.split_once('-')?;
    if first.trim() != "0" {
        return None;
    }
    last.trim().parse().ok()
}

/// Size and SHA-256 (lowercase hex) of a file, read on the blocking pool.
pub(crate) async fn fingerprint(path: &Path) -> Result<(u64, String), YouTubeError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)
            .map_err(|e| YouTubeError::File(format!("{}: {e}", path.display())))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file
                .read(&mut buffer)
                .map_err(|e| YouTubeError::File(format!("{}: {e}", path.display())))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size += n as u64;
        }
        Ok((size, hex(&hasher.finalize())))
    })
    .await
    .map_err(|e| YouTubeError::File(format!("hashing task failed: {e}")))?
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::parse_range_end;

    #[test]
    fn range_header() {
        assert_eq!(parse_range_end("bytes=0-262143"), Some(262_143));
        assert_eq!(parse_range_end("bytes=0-0"), Some(0));
        assert_eq!(parse_range_end("bytes=5-9"), None);
        assert_eq!(parse_range_end("0-9"), None);
        assert_eq!(parse_range_end("bytes=0-x"), None);
    }
}
