//! The deployment's Twitch settings (`GT_TWITCH_*`, `GT_EVENTSUB_*`), shared by the API and the
//! workers.

use gt_auth::token_box::{self, TokenKey};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::helix::HelixClient;
use crate::oauth::{AppToken, OAuthClient, TwitchConfig, TwitchError};

/// Scopes the front end asks for, plus `channel:bot` (chat capture with an app token needs the
/// broadcaster's `channel:bot` besides `user:read:chat` and `user:bot`).
pub const FRONT_END_SCOPES: &[&str] = &[
    "channel:manage:broadcast",
    "channel:edit:commercial",
    "channel:read:ads",
    "channel:manage:ads",
    "user:read:chat",
    "user:bot",
    "channel:bot",
];

/// Default chat retention (the original kept chat 365 days).
pub const DEFAULT_CHAT_RETENTION_DAYS: i64 = 365;

/// The Twitch application users connect to, and how EventSub reaches us.
#[derive(Clone)]
pub struct TwitchApp {
    pub config: TwitchConfig,
    /// Registered OAuth redirect (the front end's `/twitch/callback` page).
    pub redirect_url: String,
    /// Seals users' token sets (HKDF of `GT_TOKEN_KEY` for Twitch).
    pub key: TokenKey,
    /// The webhook subscriptions' secret (10–100 characters, Twitch's limits).
    pub eventsub_secret: String,
    /// Our public HTTPS `/eventsub/webhook`; without one chat capture uses the WebSocket
    /// transport.
    pub webhook_callback: Option<String>,
    pub chat_retention_days: i64,
    /// The app access token, fetched once and reused until it nears expiry.
    app_token: std::sync::Arc<tokio::sync::Mutex<Option<AppToken>>>,
}

impl std::fmt::Debug for TwitchApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchApp")
            .field("client_id", &self.config.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("webhook_callback", &self.webhook_callback)
            .finish_non_exhaustive()
    }
}

impl TwitchApp {
    /// From `GT_TWITCH_CLIENT_ID`, `GT_TWITCH_CLIENT_SECRET`, `GT_TWITCH_REDIRECT_URL` and
    /// `GT_TOKEN_KEY` (all required together; none set = Twitch not configured), with optional
    /// `GT_TWITCH_AUTH_BASE`, `GT_TWITCH_HELIX_BASE`, `GT_TWITCH_EVENTSUB_WS_URL` (a local
    /// stand-in), `GT_EVENTSUB_SECRET` (default: derived from `GT_TOKEN_KEY`),
    /// `GT_EVENTSUB_CALLBACK_URL` and `GT_CHAT_RETENTION_DAYS`.
    pub fn from_env() -> Result<Option<Self>, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let (Some(client_id), Some(client_secret), Some(redirect_url)) = (
            var("GT_TWITCH_CLIENT_ID"),
            var("GT_TWITCH_CLIENT_SECRET"),
            var("GT_TWITCH_REDIRECT_URL"),
        ) else {
            return Ok(None);
        };
        let secret = var("GT_TOKEN_KEY").ok_or("GT_TOKEN_KEY is required with GT_TWITCH_*")?;
        let mut config = TwitchConfig {
            client_id,
            client_secret,
            ..TwitchConfig::default()
        };
        if let Some(v) = var("GT_TWITCH_AUTH_BASE") {
            config.auth_base = v;
        }
        if let Some(v) = var("GT_TWITCH_HELIX_BASE") {
            config.helix_base = v;
        }
        if let Some(v) = var("GT_TWITCH_EVENTSUB_WS_URL") {
            config.eventsub_ws_url = v;
        }
        let eventsub_secret = match var("GT_EVENTSUB_SECRET") {
            Some(s) if (10..=100).contains(&s.len()) => s,
            Some(_) => return Err("GT_EVENTSUB_SECRET must have 10 to 100 characters".into()),
            None => derived_eventsub_secret(secret.as_bytes()),
        };
        let chat_retention_days = match var("GT_CHAT_RETENTION_DAYS") {
            None => DEFAULT_CHAT_RETENTION_DAYS,
            Some(d) => d
                .parse::<i64>()
                .ok()
                .filter(|d| *d >= 1)
                .ok_or("GT_CHAT_RETENTION_DAYS must be a whole number of days, at least 1")?,
        };
        Ok(Some(Self {
            config,
            redirect_url,
            key: TokenKey::derive(secret.as_bytes(), token_box::TWITCH_TOKENS)
                .map_err(|e| format!("GT_TOKEN_KEY: {e}"))?,
            eventsub_secret,
            webhook_callback: var("GT_EVENTSUB_CALLBACK_URL"),
            chat_retention_days,
            app_token: Default::default(),
        }))
    }

    /// The same settings pointed elsewhere (tests: a local stand-in for Twitch).
    pub fn new(
        config: TwitchConfig,
        redirect_url: String,
        key: TokenKey,
        eventsub_secret: String,
        webhook_callback: Option<String>,
    ) -> Self {
        Self {
            config,
            redirect_url,
            key,
            eventsub_secret,
            webhook_callback,
            chat_retention_days: DEFAULT_CHAT_RETENTION_DAYS,
            app_token: Default::default(),
        }
    }

    pub fn oauth(&self) -> Result<OAuthClient, TwitchError> {
        OAuthClient::new(self.config.clone())
    }

    /// Helix with the app access token (webhook subscriptions), fetched when there is none or
    /// it expires within five minutes.
    pub async fn app_helix(&self) -> Result<HelixClient, TwitchError> {
        let mut cached = self.app_token.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|t| t.expires_at > chrono::Utc::now() + chrono::TimeDelta::minutes(5));
        if !fresh {
            *cached = Some(self.oauth()?.app_token().await?);
        }
        let token = cached.as_ref().expect("just set").access_token.clone();
        HelixClient::new(self.config.clone(), token)
    }

    /// Drops the cached app token (after Twitch answered 401 to it).
    pub async fn forget_app_token(&self) {
        *self.app_token.lock().await = None;
    }

    pub fn chat_retention_secs(&self) -> i64 {
        self.chat_retention_days * 86_400
    }
}

/// 64 hex characters from the server secret (HKDF, its own `info`), stable across restarts.
fn derived_eventsub_secret(server_secret: &[u8]) -> String {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"glowing-telegram/eventsub"), server_secret)
        .expand(b"eventsub-webhook-secret/v1", &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    hex::encode(out)
}
