//! A small typed client for the parts of the YouTube Data API v3 that publishing needs.
//!
//! - [`oauth`]: Google's authorization-code flow with offline access ([`authorization_url`],
//!   [`OAuthClient::exchange_code`], [`OAuthClient::refresh`]; `invalid_grant` is
//!   [`YouTubeError::Reauthorize`]) and the [`TokenSource`] API calls take tokens from.
//! - [`token_box`]: tokens sealed with AES-256-GCM for storage.
//! - [`VideoMetadata`]: the video's fields with YouTube's rules, checked before any request.
//! - [`YouTubeClient`]: the resumable upload ([`YouTubeClient::begin_upload`], persist the
//!   [`UploadSession`], [`YouTubeClient::resume_upload`]), thumbnails, playlist items, captions and
//!   processing status.
//! - [`YouTubeError`]: outcomes grouped by what to do next (wait until, reconnect, new session,
//!   give up).
//! - `fake` (feature `fake`): a local server speaking the same wire protocol, with fault injection.
//!
//! All base URLs come from [`YouTubeConfig`]; its `Default` is Google's.

mod client;
mod config;
mod error;
mod metadata;
pub mod oauth;
/// Token sets sealed for storage (shared with the Twitch client; see `gt_auth::token_box`).
pub use gt_auth::token_box;
mod upload;

#[cfg(feature = "fake")]
pub mod fake;

pub use client::{
    CaptionFormat, MAX_THUMBNAIL_BYTES, ProcessingStatus, UploadStatus, Video, VideoProcessing,
    YouTubeClient,
};
pub use config::{RetryPolicy, UPLOAD_GRANULARITY, YouTubeConfig};
pub use error::{YouTubeError, next_pacific_midnight, parse_retry_after};
pub use metadata::{
    InvalidMetadata, MAX_DESCRIPTION_BYTES, MAX_TAGS_CHARS, MAX_TITLE_CHARS, MetadataIssue,
    Privacy, VideoMetadata, tags_length,
};
pub use oauth::{OAuthClient, OAuthTokens, RefreshingTokenSource, TokenSource, authorization_url};
pub use upload::{UploadSession, UploadState};

// Added by the lead: the deployment settings from GT_YOUTUBE_* (shared by API and workers).
mod env;
pub use env::{YouTubeApp, episode_metadata};
