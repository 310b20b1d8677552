//! The deployment's YouTube settings from `GT_YOUTUBE_*` variables, shared by the API (OAuth
//! routes) and the workers (upload): both must agree on the app, the endpoints and the key
//! that seals users' tokens.

use crate::config::YouTubeConfig;
use crate::token_box::TokenKey;

/// A YouTube app this server can connect users to.
#[derive(Debug, Clone)]
pub struct YouTubeApp {
    pub config: YouTubeConfig,
    /// Google redirects the browser here after consent: the front end's `/youtube/callback`
    /// page, which posts the code to `POST /auth/youtube/callback` (`GT_YOUTUBE_REDIRECT_URL`).
    pub redirect_url: String,
    /// Seals tokens at rest (`GT_TOKEN_KEY`).
    pub key: TokenKey,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl YouTubeApp {
    /// `None` when no app is configured (`GT_YOUTUBE_CLIENT_ID` unset): uploads are then
    /// refused with a clear message. An app without `GT_TOKEN_KEY`, or with a malformed
    /// setting, is an error at start-up rather than at the first upload.
    pub fn from_env() -> Result<Option<Self>, String> {
        let Some(client_id) = var("GT_YOUTUBE_CLIENT_ID") else {
            return Ok(None);
        };
        let mut config = YouTubeConfig {
            client_id,
            client_secret: var("GT_YOUTUBE_CLIENT_SECRET")
                .ok_or("GT_YOUTUBE_CLIENT_SECRET is required with GT_YOUTUBE_CLIENT_ID")?,
            ..YouTubeConfig::default()
        };
        if let Some(v) = var("GT_YOUTUBE_API_BASE") {
            config.api_base = v;
        }
        if let Some(v) = var("GT_YOUTUBE_UPLOAD_BASE") {
            config.upload_base = v;
        }
        if let Some(v) = var("GT_YOUTUBE_AUTH_URL") {
            config.oauth_auth_url = v;
        }
        if let Some(v) = var("GT_YOUTUBE_TOKEN_URL") {
            config.oauth_token_url = v;
        }
        if let Some(v) = var("GT_YOUTUBE_CHUNK_BYTES") {
            config.chunk_size = v
                .parse()
                .map_err(|_| format!("GT_YOUTUBE_CHUNK_BYTES must be a number, got {v:?}"))?;
        }
        config.validate()?;
        let secret = var("GT_TOKEN_KEY")
            .ok_or("GT_TOKEN_KEY is required with GT_YOUTUBE_CLIENT_ID (it seals users' tokens)")?;
        let key = TokenKey::derive(secret.as_bytes(), crate::token_box::YOUTUBE_TOKENS)
            .map_err(|e| format!("GT_TOKEN_KEY: {e}"))?;
        let redirect_url = var("GT_YOUTUBE_REDIRECT_URL")
            .ok_or("GT_YOUTUBE_REDIRECT_URL is required with GT_YOUTUBE_CLIENT_ID")?;
        url::Url::parse(&redirect_url)
            .map_err(|e| format!("GT_YOUTUBE_REDIRECT_URL {redirect_url:?} is not a URL: {e}"))?;
        Ok(Some(Self {
            config,
            redirect_url,
            key,
        }))
    }
}

/// The video fields publishing chose for an episode (`gt_types::publish::youtube_fields`) as
/// the upload's metadata; check it with [`crate::VideoMetadata::validate`].
pub fn episode_metadata(fields: &gt_types::publish::YouTubeFields) -> crate::VideoMetadata {
    use crate::Privacy;
    crate::VideoMetadata {
        title: fields.title.clone(),
        description: fields.description.clone(),
        tags: fields.tags.clone(),
        category_id: fields.category_id.clone(),
        privacy: match fields.privacy.as_str() {
            "public" => Privacy::Public,
            "unlisted" => Privacy::Unlisted,
            _ => Privacy::Private,
        },
        publish_at: fields.publish_at,
        made_for_kids: false,
        notify_subscribers: fields.notify_subscribers,
        default_language: None,
    }
}
