//! Twitch's OAuth endpoints (`id.twitch.tv`): the authorization-code flow with rotating refresh
//! tokens, token validation, revocation and the app access token (client credentials); plus the
//! client configuration, the error type and the retry policy shared with [`crate::helix`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// Where the client talks to, who it is, and how patient it is.
///
/// `Default` points at Twitch; tests point every URL at a `fake::FakeTwitch`.
#[derive(Clone)]
pub struct TwitchConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Base of the OAuth endpoints (`{auth_base}/oauth2/token`, ...).
    pub auth_base: String,
    /// Base of the Helix API (`{helix_base}/helix/...`).
    pub helix_base: String,
    /// The EventSub WebSocket endpoint.
    pub eventsub_ws_url: String,
    /// Retries of transient failures done inside one call.
    pub retry: RetryPolicy,
    /// Limit for one HTTP request.
    pub request_timeout: Duration,
}

impl Default for TwitchConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            auth_base: "https://id.twitch.tv".into(),
            helix_base: "https://api.twitch.tv".into(),
            eventsub_ws_url: "wss://eventsub.wss.twitch.tv/ws".into(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for TwitchConfig {
    // The client secret is a credential: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("auth_base", &self.auth_base)
            .field("helix_base", &self.helix_base)
            .field("eventsub_ws_url", &self.eventsub_ws_url)
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl TwitchConfig {
    /// Checks what would otherwise fail on the first request.
    pub fn validate(&self) -> Result<(), TwitchError> {
        for (name, value) in [
            ("auth_base", &self.auth_base),
            ("helix_base", &self.helix_base),
            ("eventsub_ws_url", &self.eventsub_ws_url),
        ] {
            url::Url::parse(value)
                .map_err(|e| TwitchError::Config(format!("{name} {value:?} is not a URL: {e}")))?;
        }
        if self.client_id.is_empty() {
            return Err(TwitchError::Config("client_id is empty".into()));
        }
        if self.retry.max_attempts == 0 {
            return Err(TwitchError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn http(&self) -> Result<reqwest::Client, TwitchError> {
        reqwest::Client::builder()
            .timeout(self.request_timeout)
            .build()
            .map_err(|e| TwitchError::Config(e.to_string()))
    }
}

/// How transient failures (5xx, 429, network errors) are retried inside a call. A server asking
/// for a longer wait than `max_inline_wait`, or running out of attempts, ends the call with
/// [`TwitchError::RateLimited`] or [`TwitchError::Transient`] so that the caller waits durably.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// First backoff, doubled per attempt (with jitter) when the server names no wait.
    pub base_delay: Duration,
    /// The longest wait done inside a call.
    pub max_inline_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_inline_wait: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_inline_wait);
        // Jitter keeps many workers from retrying in lockstep.
        ceiling.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

/// Everything a Twitch call can end with, grouped by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum TwitchError {
    /// The refresh token is dead (400 "Invalid refresh token": revoked, rotated away, or the user
    /// disconnected the app). Never retried: the user has to connect Twitch again.
    #[error("Twitch authorization is no longer valid ({0}); reconnect Twitch")]
    Reauthorize(String),
    /// 401 for an access token (validate, Helix): refresh it (user token) or fetch a new app token.
    #[error("Twitch rejected the access token: {0}")]
    Unauthorized(String),
    /// 429 that outlasted the waits done inside the call: try again after `retry_after`.
    #[error("Twitch rate limit reached ({message}); retry after {retry_after:?}")]
    RateLimited {
        retry_after: Duration,
        message: String,
    },
    /// 5xx or a network failure that outlasted the retries inside the call: try again later.
    #[error("Twitch is temporarily unavailable: {0}")]
    Transient(String),
    /// 409: the subscription already exists.
    #[error("Twitch reports a conflict: {0}")]
    Conflict(String),
    /// Any other 4xx: retrying the same request cannot succeed.
    #[error("Twitch rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// A reply that does not follow the protocol (unparsable JSON, missing welcome, ...).
    #[error("unexpected reply from Twitch: {0}")]
    Protocol(String),
    /// EventSub WebSocket: no message, not even a keepalive, within the keepalive window. The
    /// session is dead: connect again and recreate the subscriptions.
    #[error("no EventSub message within {0:?} (keepalive timeout); reconnect and resubscribe")]
    KeepaliveTimeout(Duration),
    /// EventSub WebSocket: the server closed the connection (4003 unused, 4004 reconnect grace
    /// time expired, ...) or it ended. Connect again and resubscribe.
    #[error("EventSub WebSocket closed (code {code:?}): {reason}")]
    SocketClosed { code: Option<u16>, reason: String },
    /// Bad configuration or arguments on our side.
    #[error("invalid Twitch client configuration: {0}")]
    Config(String),
}

impl TwitchError {
    /// Whether the same call may succeed later without anyone acting (a durable retry).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TwitchError::RateLimited { .. }
                | TwitchError::Transient(_)
                | TwitchError::KeepaliveTimeout(_)
                | TwitchError::SocketClosed { .. }
        )
    }
}

/// Twitch's error body: `{"error":"Bad Request","status":400,"message":"..."}` (the OAuth
/// endpoints leave out `error`).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The human-readable message of an error reply (`message`, else `error`, else the raw body).
pub(crate) fn error_message(status: u16, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody {
            message: Some(m), ..
        }) if !m.is_empty() => m,
        Ok(ErrorBody { error: Some(e), .. }) if !e.is_empty() => e,
        _ if body.trim().is_empty() => format!("HTTP {status}"),
        _ => body.chars().take(500).collect(),
    }
}

/// A finished HTTP exchange: status, headers, body.
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
}

/// When to try again after a 429: `Ratelimit-Reset` (Unix seconds when the bucket refills, what
/// Helix sends) or `Retry-After` (seconds).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(reset) = header("ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok()) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now)));
    }
    header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Sends the request built by `build` and retries 5xx, 429 and network failures per `policy`.
/// Returns the final reply (a success or a failure that retrying cannot fix), or the transient
/// error once the attempts or the inline wait are used up.
pub(crate) async fn execute(
    policy: &RetryPolicy,
    what: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Reply, TwitchError> {
    let mut attempt = 0;
    loop {
        let (wait, failure) = match build().send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let named_wait = retry_after(response.headers());
                let body = response.text().await.unwrap_or_default();
                match status {
                    429 => {
                        let message = format!("{what}: {}", error_message(status, &body));
                        let wait = named_wait.unwrap_or_else(|| policy.backoff(attempt));
                        (
                            wait,
                            TwitchError::RateLimited {
                                retry_after: wait,
                                message,
                            },
                        )
                    }
                    500..=599 => (
                        named_wait.unwrap_or_else(|| policy.backoff(attempt)),
                        TwitchError::Transient(format!(
                            "{what}: HTTP {status}: {}",
                            error_message(status, &body)
                        )),
                    ),
                    _ => return Ok(Reply { status, body }),
                }
            }
            Err(e) => (
                policy.backoff(attempt),
                TwitchError::Transient(format!("{what}: {e}")),
            ),
        };
        attempt += 1;
        if attempt >= policy.max_attempts || wait > policy.max_inline_wait {
            return Err(failure);
        }
        tracing::warn!(error = %failure, ?wait, "retrying a Twitch request");
        tokio::time::sleep(wait).await;
    }
}

/// Classifies a non-success reply that [`execute`] handed back (no 429/5xx by then).
pub(crate) fn failure(reply: &Reply) -> TwitchError {
    let message = error_message(reply.status, &reply.body);
    match reply.status {
        401 => TwitchError::Unauthorized(message),
        409 => TwitchError::Conflict(message),
        status => TwitchError::Rejected { status, message },
    }
}

/// The URL of Twitch's consent screen (authorization-code flow). `force_verify=true` shows the
/// consent again even when the user already authorized the app, so that reconnecting lets them
/// pick another account.
pub fn authorization_url(
    config: &TwitchConfig,
    redirect_uri: &str,
    scopes: &[&str],
    state: &str,
) -> Result<url::Url, TwitchError> {
    let mut url = url::Url::parse(&format!(
        "{}/oauth2/authorize",
        config.auth_base.trim_end_matches('/')
    ))
    .map_err(|e| TwitchError::Config(format!("auth_base: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .append_pair("force_verify", "true");
    Ok(url)
}

/// Scopes as Twitch's token endpoint sends them (an array) or as RFC 6749 says (one
/// space-separated string), or absent.
fn scopes_from_wire<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scopes {
        List(Vec<String>),
        Joined(String),
    }
    Ok(match Option::<Scopes>::deserialize(d)? {
        Some(Scopes::List(list)) => list,
        Some(Scopes::Joined(joined)) => joined.split_whitespace().map(str::to_string).collect(),
        None => Vec::new(),
    })
}

/// A user's tokens. Twitch rotates the refresh token on every refresh: always store the latest.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwitchTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token stops working (from `expires_in` when it was issued).
    pub expires_at: DateTime<Utc>,
    /// The granted scopes (`scope` on the wire, an array; a space-separated string is accepted).
    #[serde(alias = "scope", default, deserialize_with = "scopes_from_wire")]
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for TwitchTokens {
    // Tokens are credentials: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchTokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl TwitchTokens {
    /// Whether the access token is expired or will be within `margin`.
    pub fn expires_within(&self, margin: Duration, now: DateTime<Utc>) -> bool {
        now + chrono::Duration::from_std(margin).unwrap_or(chrono::TimeDelta::MAX)
            >= self.expires_at
    }
}

/// An app access token (client credentials): for webhook subscriptions. It has no refresh
/// token; fetch a new one when it expires or a call answers 401.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppToken {
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppToken")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What `GET /oauth2/validate` says about a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub client_id: String,
    /// The user's login; absent for an app token.
    #[serde(default)]
    pub login: Option<String>,
    /// The user's id; absent for an app token.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "scopes_from_wire")]
    pub scopes: Vec<String>,
    /// Seconds until the token expires (0 when Twitch leaves it out).
    #[serde(default)]
    pub expires_in: u64,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: i64,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "scopes_from_wire")]
    scope: Vec<String>,
}

/// What [`OAuthClient::ensure_valid`] found: working tokens and whom they belong to.
#[derive(Debug, Clone)]
pub struct CheckedTokens {
    pub tokens: TwitchTokens,
    pub validation: Validation,
    /// The tokens were refreshed (the refresh token rotated): store them.
    pub refreshed: bool,
}

/// The OAuth endpoints.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    config: TwitchConfig,
    http: reqwest::Client,
}

impl OAuthClient {
    pub fn new(config: TwitchConfig) -> Result<Self, TwitchError> {
        config.validate()?;
        let http = config.http()?;
        Ok(Self { config, http })
    }

    pub fn config(&self) -> &TwitchConfig {
        &self.config
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.auth_base.trim_end_matches('/'))
    }

    async fn token_request(
        &self,
        what: &str,
        params: &[(&str, &str)],
    ) -> Result<Result<TokenReply, Reply>, TwitchError> {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("client_id", &self.config.client_id));
        form.push(("client_secret", &self.config.client_secret));
        let url = self.url("/oauth2/token");
        let reply = execute(&self.config.retry, what, || {
            self.http.post(&url).form(&form)
        })
        .await?;
        if (200..300).contains(&reply.status) {
            serde_json::from_str::<TokenReply>(&reply.body)
                .map(Ok)
                .map_err(|e| TwitchError::Protocol(format!("{what} reply: {e}")))
        } else {
            Ok(Err(reply))
        }
    }

    fn user_tokens(reply: TokenReply, what: &str) -> Result<TwitchTokens, TwitchError> {
        let refresh_token = reply
            .refresh_token
            .filter(|r| !r.is_empty())
            .ok_or_else(|| TwitchError::Protocol(format!("{what}: no refresh token")))?;
        Ok(TwitchTokens {
            access_token: reply.access_token,
            refresh_token,
            expires_at: Utc::now() + chrono::Duration::seconds(reply.expires_in),
            scopes: reply.scope,
        })
    }

    /// Exchanges the `code` of the callback for tokens. `redirect_uri` must be the one the
    /// authorization URL used. A used or unknown code is [`TwitchError::Rejected`] (400).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TwitchTokens, TwitchError> {
        let what = "authorization code exchange";
        match self
            .token_request(
                what,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                ],
            )
            .await?
        {
            Ok(reply) => Self::user_tokens(reply, what),
            Err(reply) => Err(failure(&reply)),
        }
    }

    /// New tokens for a refresh token. Twitch rotates refresh tokens: the returned
    /// `refresh_token` replaces the old one, which stops working. 400 (invalid refresh token) is
    /// [`TwitchError::Reauthorize`].
    pub async fn refresh(&self, refresh_token: &str) -> Result<TwitchTokens, TwitchError> {
        let what = "token refresh";
        match self
            .token_request(
                what,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?
        {
            Ok(reply) => Self::user_tokens(reply, what),
            Err(reply) if reply.status == 400 => Err(TwitchError::Reauthorize(error_message(
                reply.status,
                &reply.body,
            ))),
            Err(reply) => Err(failure(&reply)),
        }
    }

    /// An app access token (client credentials grant).
    pub async fn app_token(&self) -> Result<AppToken, TwitchError> {
        match self
            .token_request("app token", &[("grant_type", "client_credentials")])
            .await?
        {
            Ok(reply) => Ok(AppToken {
                access_token: reply.access_token,
                expires_at: Utc::now() + chrono::Duration::seconds(reply.expires_in),
            }),
            Err(reply) => Err(failure(&reply)),
        }
    }

    /// Validates a token (`Authorization: OAuth <token>`), as Twitch requires at startup and
    /// hourly. An invalid token is [`TwitchError::Unauthorized`].
    pub async fn validate(&self, access_token: &str) -> Result<Validation, TwitchError> {
        let url = self.url("/oauth2/validate");
        let authorization = format!("OAuth {access_token}");
        let reply = execute(&self.config.retry, "token validation", || {
            self.http
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, &authorization)
        })
        .await?;
        if (200..300).contains(&reply.status) {
            serde_json::from_str(&reply.body)
                .map_err(|e| TwitchError::Protocol(format!("validate reply: {e}")))
        } else {
            Err(failure(&reply))
        }
    }

    /// A user's stored tokens made usable: the access token is validated (Twitch requires apps
    /// that keep user tokens to validate them) unless it expires within `margin`; when it is
    /// expired or refused, the tokens are refreshed and the *new* access token is validated.
    /// Twitch rotates the refresh token, so when `refreshed` is set the caller must store
    /// `tokens` at once. A refused refresh is [`TwitchError::Reauthorize`].
    pub async fn ensure_valid(
        &self,
        tokens: TwitchTokens,
        margin: Duration,
        now: DateTime<Utc>,
    ) -> Result<CheckedTokens, TwitchError> {
        if !tokens.expires_within(margin, now) {
            match self.validate(&tokens.access_token).await {
                Ok(validation) => {
                    return Ok(CheckedTokens {
                        tokens,
                        validation,
                        refreshed: false,
                    });
                }
                Err(TwitchError::Unauthorized(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let tokens = self.refresh(&tokens.refresh_token).await?;
        let validation = self.validate(&tokens.access_token).await?;
        Ok(CheckedTokens {
            tokens,
            validation,
            refreshed: true,
        })
    }

    /// Revokes a token (on disconnect). A token Twitch no longer knows answers 400, which
    /// counts as done.
    pub async fn revoke(&self, access_token: &str) -> Result<(), TwitchError> {
        let url = self.url("/oauth2/revoke");
        let form = [
            ("client_id", self.config.client_id.as_str()),
            ("token", access_token),
        ];
        let reply = execute(&self.config.retry, "token revocation", || {
            self.http.post(&url).form(&form)
        })
        .await?;
        match reply.status {
            200..=299 => Ok(()),
            // "Invalid token": already revoked or expired, which is what the caller wanted.
            400 if error_message(reply.status, &reply.body)
                .to_ascii_lowercase()
                .contains("invalid token") =>
            {
                Ok(())
            }
            _ => Err(failure(&reply)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_accept_an_array_or_a_string() {
        let array: TokenReply = serde_json::from_str(
            r#"{"access_token":"a","expires_in":10,"refresh_token":"r","scope":["user:read:chat","user:bot"],"token_type":"bearer"}"#,
        )
        .unwrap();
        assert_eq!(array.scope, ["user:read:chat", "user:bot"]);
        let joined: TokenReply = serde_json::from_str(
            r#"{"access_token":"a","expires_in":10,"scope":"user:read:chat user:bot"}"#,
        )
        .unwrap();
        assert_eq!(joined.scope, ["user:read:chat", "user:bot"]);
        let none: TokenReply =
            serde_json::from_str(r#"{"access_token":"a","expires_in":10}"#).unwrap();
        assert!(none.scope.is_empty());
        // Stored tokens round-trip, and a stored `scope` string is read too.
        let tokens: TwitchTokens = serde_json::from_str(
            r#"{"access_token":"a","refresh_token":"r","expires_at":"2026-01-01T00:00:00Z","scope":"x y"}"#,
        )
        .unwrap();
        assert_eq!(tokens.scopes, ["x", "y"]);
        let back: TwitchTokens =
            serde_json::from_str(&serde_json::to_string(&tokens).unwrap()).unwrap();
        assert_eq!(back, tokens);
    }

    #[test]
    fn debug_redacts_secrets() {
        let config = TwitchConfig {
            client_id: "cid".into(),
            client_secret: "very-secret".into(),
            ..TwitchConfig::default()
        };
        let text = format!("{config:?}");
        assert!(
            text.contains("cid") && !text.contains("very-secret"),
            "{text}"
        );
        let tokens = TwitchTokens {
            access_token: "acc-123".into(),
            refresh_token: "ref-456".into(),
            expires_at: Utc::now(),
            scopes: vec![],
        };
        let text = format!("{tokens:?}");
        assert!(
            !text.contains("acc-123") && !text.contains("ref-456"),
            "{text}"
        );
    }

    #[test]
    fn error_messages_come_from_the_body() {
        assert_eq!(
            error_message(400, r#"{"status":400,"message":"Invalid refresh token"}"#),
            "Invalid refresh token"
        );
        assert_eq!(
            error_message(404, r#"{"error":"Not Found","status":404}"#),
            "Not Found"
        );
        assert_eq!(error_message(502, ""), "HTTP 502");
    }
}
