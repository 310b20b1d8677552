//! Google's OAuth 2.0 authorization-code flow with offline access, and where API calls get their
//! access tokens from.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::YouTubeConfig;
use crate::error::{YouTubeError, parse_retry_after};

/// Upload videos (videos.insert, thumbnails.set).
pub const SCOPE_UPLOAD: &str = "https://www.googleapis.com/auth/youtube.upload";
/// Manage the account: needed for playlistItems.insert, captions.insert (`youtube.upload` alone is
/// not enough for those).
pub const SCOPE_YOUTUBE: &str = "https://www.googleapis.com/auth/youtube";
/// Same as [`SCOPE_YOUTUBE`] over SSL only; also accepted by captions and playlists.
pub const SCOPE_FORCE_SSL: &str = "https://www.googleapis.com/auth/youtube.force-ssl";

/// A user's tokens. The refresh token is the long-lived secret; store them sealed
/// ([`crate::token_box`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token stops working (from `expires_in` at the time it was issued).
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for OAuthTokens {
    // Tokens are credentials: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl OAuthTokens {
    /// Whether the access token is expired or will be within `margin`.
    pub fn expires_within(&self, margin: Duration, now: DateTime<Utc>) -> bool {
        now + chrono::Duration::from_std(margin).unwrap_or(chrono::TimeDelta::MAX)
            >= self.expires_at
    }
}

/// The URL of Google's consent screen: the authorization-code flow with offline access (a refresh
/// token), `prompt=consent` (so that Google returns a refresh token again on reconnect) and
/// incremental authorization.
pub fn authorization_url(
    cfg: &YouTubeConfig,
    redirect_uri: &str,
    scopes: &[&str],
    state: &str,
) -> Result<url::Url, YouTubeError> {
    if scopes.is_empty() {
        return Err(YouTubeError::Config("no OAuth scopes requested".into()));
    }
    let mut url = url::Url::parse(&cfg.oauth_auth_url)
        .map_err(|e| YouTubeError::Config(format!("oauth_auth_url: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .append_pair("access_type", "offline")
        .append_pair("prompt", "consent")
        .append_pair("include_granted_scopes", "true");
    Ok(url)
}

/// The token endpoint: code exchange and refresh.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    cfg: YouTubeConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: i64,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorReply {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl OAuthClient {
    pub fn new(cfg: YouTubeConfig) -> Result<Self, YouTubeError> {
        cfg.validate().map_err(YouTubeError::Config)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| YouTubeError::Config(e.to_string()))?;
        Ok(Self { cfg, http })
    }

    /// Exchanges the `code` of the callback for tokens. `redirect_uri` must be the one the
    /// authorization URL used.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<OAuthTokens, YouTubeError> {
        let reply = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ])
            .await?;
        let refresh_token = reply.refresh_token.ok_or_else(|| {
            // With access_type=offline and prompt=consent Google always sends one.
            YouTubeError::Protocol("the token endpoint returned no refresh token".into())
        })?;
        Ok(OAuthTokens {
            access_token: reply.access_token,
            refresh_token,
            expires_at: Utc::now() + chrono::Duration::seconds(reply.expires_in),
        })
    }

    /// A new access token. Google normally keeps the refresh token; when it sends a new one, that
    /// one replaces it. `invalid_grant` is [`YouTubeError::Reauthorize`].
    pub async fn refresh(&self, refresh_token: &str) -> Result<OAuthTokens, YouTubeError> {
        let reply = self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .await?;
        Ok(OAuthTokens {
            access_token: reply.access_token,
            refresh_token: reply
                .refresh_token
                .unwrap_or_else(|| refresh_token.to_string()),
            expires_at: Utc::now() + chrono::Duration::seconds(reply.expires_in),
        })
    }

    async fn token_request(&self, params: &[(&str, &str)]) -> Result<TokenReply, YouTubeError> {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("client_id", &self.cfg.client_id));
        form.push(("client_secret", &self.cfg.client_secret));
        let policy = &self.cfg.retry;
        let mut attempt = 0;
        loop {
            let (retry_after, message) = match self
                .http
                .post(&self.cfg.oauth_token_url)
                .form(&form)
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => {
                    return response
                        .json::<TokenReply>()
                        .await
                        .map_err(|e| YouTubeError::Protocol(format!("token reply: {e}")));
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                    let body = response.text().await.unwrap_or_default();
                    let parsed = serde_json::from_str::<TokenErrorReply>(&body).ok();
                    match (status, parsed) {
                        (_, Some(e)) if e.error == "invalid_grant" => {
                            return Err(YouTubeError::Reauthorize(
                                if e.error_description.is_empty() {
                                    e.error
                                } else {
                                    format!("{}: {}", e.error, e.error_description)
                                },
                            ));
                        }
                        (429 | 500..=599, _) => {
                            (retry_after, format!("token endpoint HTTP {status}"))
                        }
                        (_, Some(e)) => {
                            return Err(YouTubeError::Rejected {
                                status,
                                reason: Some(e.error),
                                message: e.error_description,
                            });
                        }
                        (_, None) => {
                            return Err(YouTubeError::Rejected {
                                status,
                                reason: None,
                                message: body.chars().take(500).collect(),
                            });
                        }
                    }
                }
                Err(e) => (None, format!("token endpoint: {e}")),
            };
            let wait = retry_after.unwrap_or_else(|| policy.backoff(attempt));
            attempt += 1;
            if attempt >= policy.max_attempts || wait > policy.max_inline_wait {
                return Err(YouTubeError::RetryAfter {
                    after: wait,
                    message,
                });
            }
            tracing::warn!(%message, ?wait, "retrying the token request");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Where API calls get an access token. The caller owns refreshing and persisting: an
/// implementation refreshes when asked to (`force_refresh`, after a 401) or when its token is about
/// to expire, and stores the result.
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn access_token(&self, force_refresh: bool) -> Result<String, YouTubeError>;
}

/// A ready-made [`TokenSource`]: refreshes through an [`OAuthClient`] a minute before expiry or when
/// forced. Read [`RefreshingTokenSource::tokens`] afterwards to persist what changed.
pub struct RefreshingTokenSource {
    oauth: OAuthClient,
    tokens: tokio::sync::Mutex<OAuthTokens>,
}

impl RefreshingTokenSource {
    pub fn new(oauth: OAuthClient, tokens: OAuthTokens) -> Self {
        Self {
            oauth,
            tokens: tokio::sync::Mutex::new(tokens),
        }
    }

    /// The current tokens (after any refresh).
    pub async fn tokens(&self) -> OAuthTokens {
        self.tokens.lock().await.clone()
    }
}

#[async_trait]
impl TokenSource for RefreshingTokenSource {
    async fn access_token(&self, force_refresh: bool) -> Result<String, YouTubeError> {
        let mut tokens = self.tokens.lock().await;
        if force_refresh || tokens.expires_within(Duration::from_secs(60), Utc::now()) {
            *tokens = self.oauth.refresh(&tokens.refresh_token).await?;
        }
        Ok(tokens.access_token.clone())
    }
}
