//! Helix: EventSub subscriptions (create, list, delete), users, and ads (schedule, snooze,
//! commercial).
//!
//! Webhook subscriptions need an app access token; WebSocket subscriptions need the user's token
//! and a live session id. The [`Subscription`] type serialises in the JSON shape Twitch uses, so
//! the API can hand it to the front end unchanged.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::oauth::{TwitchConfig, TwitchError, error_message, execute, failure, retry_after};

/// Where Twitch delivers a subscription's events, as sent when creating it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Transport {
    /// Signed POSTs to an HTTPS callback (port 443). `secret`: 10–100 ASCII characters.
    Webhook { callback: String, secret: String },
    /// Frames on an EventSub WebSocket session (`session_welcome`'s `payload.session.id`).
    #[serde(rename = "websocket")]
    WebSocket { session_id: String },
}

impl std::fmt::Debug for Transport {
    // The webhook secret signs every message: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Webhook { callback, .. } => f
                .debug_struct("Webhook")
                .field("callback", callback)
                .field("secret", &"<redacted>")
                .finish(),
            Transport::WebSocket { session_id } => f
                .debug_struct("WebSocket")
                .field("session_id", session_id)
                .finish(),
        }
    }
}

/// The body of `POST /helix/eventsub/subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRequest {
    /// The subscription type, e.g. `channel.chat.message` (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
    /// Type-specific, e.g. `{"broadcaster_user_id": "…", "user_id": "…"}`.
    pub condition: serde_json::Value,
    pub transport: Transport,
}

/// A subscription's status as Twitch reports it. Unknown values are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SubscriptionStatus {
    Enabled,
    WebhookCallbackVerificationPending,
    WebhookCallbackVerificationFailed,
    NotificationFailuresExceeded,
    AuthorizationRevoked,
    ModeratorRemoved,
    UserRemoved,
    ChatUserBanned,
    VersionRemoved,
    BetaMaintenance,
    WebsocketDisconnected,
    WebsocketFailedPingPong,
    WebsocketReceivedInboundTraffic,
    WebsocketConnectionUnused,
    WebsocketInternalError,
    WebsocketNetworkTimeout,
    WebsocketNetworkError,
    WebsocketFailedToReconnect,
    Other(String),
}

const STATUS_NAMES: &[(SubscriptionStatus, &str)] = &[
    (SubscriptionStatus::Enabled, "enabled"),
    (
        SubscriptionStatus::WebhookCallbackVerificationPending,
        "webhook_callback_verification_pending",
    ),
    (
        SubscriptionStatus::WebhookCallbackVerificationFailed,
        "webhook_callback_verification_failed",
    ),
    (
        SubscriptionStatus::NotificationFailuresExceeded,
        "notification_failures_exceeded",
    ),
    (
        SubscriptionStatus::AuthorizationRevoked,
        "authorization_revoked",
    ),
    (SubscriptionStatus::ModeratorRemoved, "moderator_removed"),
    (SubscriptionStatus::UserRemoved, "user_removed"),
    (SubscriptionStatus::ChatUserBanned, "chat_user_banned"),
    (SubscriptionStatus::VersionRemoved, "version_removed"),
    (SubscriptionStatus::BetaMaintenance, "beta_maintenance"),
    (
        SubscriptionStatus::WebsocketDisconnected,
        "websocket_disconnected",
    ),
    (
        SubscriptionStatus::WebsocketFailedPingPong,
        "websocket_failed_ping_pong",
    ),
    (
        SubscriptionStatus::WebsocketReceivedInboundTraffic,
        "websocket_received_inbound_traffic",
    ),
    (
        SubscriptionStatus::WebsocketConnectionUnused,
        "websocket_connection_unused",
    ),
    (
        SubscriptionStatus::WebsocketInternalError,
        "websocket_internal_error",
    ),
    (
        SubscriptionStatus::WebsocketNetworkTimeout,
        "websocket_network_timeout",
    ),
    (
        SubscriptionStatus::WebsocketNetworkError,
        "websocket_network_error",
    ),
    (
        SubscriptionStatus::WebsocketFailedToReconnect,
        "websocket_failed_to_reconnect",
    ),
];

impl SubscriptionStatus {
    /// The wire name, e.g. `enabled`.
    pub fn as_str(&self) -> &str {
        if let SubscriptionStatus::Other(other) = self {
            return other;
        }
        STATUS_NAMES
            .iter()
            .find(|(status, _)| status == self)
            .map(|(_, name)| *name)
            .expect("every named status is in the table")
    }

    /// Whether Twitch delivers events for a subscription in this status.
    pub fn is_active(&self) -> bool {
        *self == SubscriptionStatus::Enabled
    }
}

impl From<String> for SubscriptionStatus {
    fn from(name: String) -> Self {
        STATUS_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(status, _)| status.clone())
            .unwrap_or(SubscriptionStatus::Other(name))
    }
}

impl From<SubscriptionStatus> for String {
    fn from(status: SubscriptionStatus) -> Self {
        status.as_str().to_string()
    }
}

impl std::fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a subscription's events travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportMethod {
    Webhook,
    #[serde(rename = "websocket")]
    WebSocket,
    Conduit,
}

/// A subscription's transport as Twitch returns it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionTransport {
    pub method: TransportMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conduit_id: Option<String>,
}

/// An EventSub subscription, in Twitch's JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub status: SubscriptionStatus,
    /// The subscription type (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
    pub condition: serde_json::Value,
    pub transport: SubscriptionTransport,
    pub created_at: DateTime<Utc>,
    /// What it counts against `max_total_cost` (0 when the user authorized the client).
    #[serde(default)]
    pub cost: u64,
}

/// Which subscriptions to list. Twitch accepts at most one filter per request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SubscriptionFilter {
    #[default]
    All,
    Status(SubscriptionStatus),
    /// By subscription type.
    Type(String),
    /// Subscriptions whose condition names this user.
    UserId(String),
}

/// A Twitch user (`GET /helix/users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub login: String,
    pub display_name: String,
    #[serde(default)]
    pub broadcaster_type: String,
    #[serde(default)]
    pub profile_image_url: String,
}

#[derive(Deserialize)]
struct DataReply<T> {
    data: Vec<T>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default)]
    cursor: Option<String>,
}

/// Helix calls made with one access token (an app token for webhook subscriptions, the user's
/// token for WebSocket subscriptions). 401 is [`TwitchError::Unauthorized`]: get a new token and
/// call [`HelixClient::set_token`].
#[derive(Clone)]
pub struct HelixClient {
    config: TwitchConfig,
    http: reqwest::Client,
    token: String,
}

impl std::fmt::Debug for HelixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelixClient")
            .field("config", &self.config)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl HelixClient {
    pub fn new(config: TwitchConfig, access_token: impl Into<String>) -> Result<Self, TwitchError> {
        config.validate()?;
        let http = config.http()?;
        Ok(Self {
            config,
            http,
            token: access_token.into(),
        })
    }

    /// Replaces the access token (after a refresh or a new app token).
    pub fn set_token(&mut self, access_token: impl Into<String>) {
        self.token = access_token.into();
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/helix{path}",
            self.config.helix_base.trim_end_matches('/')
        )
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("Client-Id", &self.config.client_id)
    }

    /// `POST /helix/eventsub/subscriptions`. Twitch answers 202 with the subscription, for a
    /// webhook in status `webhook_callback_verification_pending` until the callback answered the
    /// challenge. A duplicate (same type, condition and transport) is [`TwitchError::Conflict`];
    /// since 5xx replies are retried inside the call, a create whose first reply was lost may
    /// also end in `Conflict`: treat it as "already subscribed" and list to find it.
    pub async fn create_subscription(
        &self,
        request: &SubscriptionRequest,
    ) -> Result<Subscription, TwitchError> {
        let url = self.url("/eventsub/subscriptions");
        let reply = execute(&self.config.retry, "create EventSub subscription", || {
            self.request(reqwest::Method::POST, &url).json(request)
        })
        .await?;
        if !(200..300).contains(&reply.status) {
            return Err(failure(&reply));
        }
        let parsed: DataReply<Subscription> = serde_json::from_str(&reply.body)
            .map_err(|e| TwitchError::Protocol(format!("create subscription reply: {e}")))?;
        parsed
            .data
            .into_iter()
            .next()
            .ok_or_else(|| TwitchError::Protocol("create subscription: empty data".into()))
    }

    /// `GET /helix/eventsub/subscriptions`, every page (following `pagination.cursor`).
    pub async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<Subscription>, TwitchError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = url::Url::parse(&self.url("/eventsub/subscriptions"))
                .map_err(|e| TwitchError::Config(format!("helix_base: {e}")))?;
            {
                let mut q = url.query_pairs_mut();
                match filter {
                    SubscriptionFilter::All => {}
                    SubscriptionFilter::Status(status) => {
                        q.append_pair("status", status.as_str());
                    }
                    SubscriptionFilter::Type(kind) => {
                        q.append_pair("type", kind);
                    }
                    SubscriptionFilter::UserId(user_id) => {
                        q.append_pair("user_id", user_id);
                    }
                }
                if let Some(after) = &cursor {
                    q.append_pair("after", after);
                }
            }
            let url = url.to_string();
            let reply = execute(&self.config.retry, "list EventSub subscriptions", || {
                self.request(reqwest::Method::GET, &url)
            })
            .await?;
            if !(200..300).contains(&reply.status) {
                return Err(failure(&reply));
            }
            let page: DataReply<Subscription> = serde_json::from_str(&reply.body)
                .map_err(|e| TwitchError::Protocol(format!("list subscriptions reply: {e}")))?;
            let got = page.data.len();
            all.extend(page.data);
            match page
                .pagination
                .and_then(|p| p.cursor)
                .filter(|c| !c.is_empty())
            {
                // An empty page with a cursor would loop forever: stop there.
                Some(next) if got > 0 && cursor.as_deref() != Some(next.as_str()) => {
                    cursor = Some(next)
                }
                _ => return Ok(all),
            }
        }
    }

    /// `DELETE /helix/eventsub/subscriptions?id=`. A subscription Twitch no longer has (404)
    /// counts as deleted.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), TwitchError> {
        let mut url = url::Url::parse(&self.url("/eventsub/subscriptions"))
            .map_err(|e| TwitchError::Config(format!("helix_base: {e}")))?;
        url.query_pairs_mut().append_pair("id", id);
        let url = url.to_string();
        let reply = execute(&self.config.retry, "delete EventSub subscription", || {
            self.request(reqwest::Method::DELETE, &url)
        })
        .await?;
        match reply.status {
            200..=299 | 404 => Ok(()),
            _ => Err(failure(&reply)),
        }
    }

    /// `GET /helix/users?id=…&login=…`; with neither, the user of a user token.
    pub async fn get_users(&self, ids: &[&str], logins: &[&str]) -> Result<Vec<User>, TwitchError> {
        let mut url = url::Url::parse(&self.url("/users"))
            .map_err(|e| TwitchError::Config(format!("helix_base: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            for id in ids {
                q.append_pair("id", id);
            }
            for login in logins {
                q.append_pair("login", login);
            }
        }
        let url = url.to_string();
        let reply = execute(&self.config.retry, "get users", || {
            self.request(reqwest::Method::GET, &url)
        })
        .await?;
        if !(200..300).contains(&reply.status) {
            return Err(failure(&reply));
        }
        let parsed: DataReply<User> = serde_json::from_str(&reply.body)
            .map_err(|e| TwitchError::Protocol(format!("users reply: {e}")))?;
        Ok(parsed.data)
    }
}

// ---------------------------------------------------------------------------------------------
// Ads: Get Ad Schedule, Snooze Next Ad, Start Commercial

/// Scope of `GET /helix/channels/ads`.
pub const SCOPE_READ_ADS: &str = "channel:read:ads";
/// Scope of `POST /helix/channels/ads/schedule/snooze`.
pub const SCOPE_MANAGE_ADS: &str = "channel:manage:ads";
/// Scope of `POST /helix/channels/commercial`.
pub const SCOPE_EDIT_COMMERCIAL: &str = "channel:edit:commercial";
/// The longest commercial Twitch runs, in seconds.
pub const MAX_COMMERCIAL_SECONDS: u32 = 180;

/// A channel's ad schedule (`GET /helix/channels/ads`). Serialises with RFC 3339 times (or
/// `null`); reads every shape Twitch has been seen to send (see [`AdSchedule`]'s fields).
///
/// Times on the wire: Twitch's reference documents RFC 3339 strings, while live responses (and
/// twurple) use Unix seconds, as a number or a numeric string; `""`, `0` and `null` mean "none".
/// All of these are accepted. Counts are numbers or numeric strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdSchedule {
    /// Snoozes left.
    #[serde(default, deserialize_with = "count_from_wire")]
    pub snooze_count: u32,
    /// When one more snooze becomes available; `None` when all are available.
    #[serde(default, deserialize_with = "time_from_wire")]
    pub snooze_refresh_at: Option<DateTime<Utc>>,
    /// When the next automatic ad break starts; `None` when not live or nothing is scheduled.
    #[serde(default, deserialize_with = "time_from_wire")]
    pub next_ad_at: Option<DateTime<Utc>>,
    /// Length of the upcoming ad break, in seconds.
    #[serde(default, deserialize_with = "count_from_wire")]
    pub duration: u32,
    /// When the last ad break started; `None` when not live or no ad has run.
    #[serde(default, deserialize_with = "time_from_wire")]
    pub last_ad_at: Option<DateTime<Utc>>,
    /// Pre-roll-free time left, in seconds (0 when none).
    #[serde(default, deserialize_with = "count_from_wire")]
    pub preroll_free_time: u32,
}

/// What `POST /helix/channels/ads/schedule/snooze` answers: the schedule after the snooze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnoozeResult {
    /// Snoozes left after this one.
    #[serde(default, deserialize_with = "count_from_wire")]
    pub snooze_count: u32,
    #[serde(default, deserialize_with = "time_from_wire")]
    pub snooze_refresh_at: Option<DateTime<Utc>>,
    /// The next ad break, pushed back (Twitch: by 5 minutes).
    #[serde(default, deserialize_with = "time_from_wire")]
    pub next_ad_at: Option<DateTime<Utc>>,
}

/// What `POST /helix/channels/commercial` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommercialStarted {
    /// The length Twitch runs, in seconds (a longer request is cut to 180).
    #[serde(default, deserialize_with = "count_from_wire")]
    pub length: u32,
    /// Whether Twitch could serve an ad (often empty).
    #[serde(default)]
    pub message: String,
    /// Seconds until another commercial may start.
    #[serde(default, deserialize_with = "count_from_wire")]
    pub retry_after: u32,
}

/// How an ads call failed, grouped by what the caller (and the streamer) can do about it.
#[derive(Debug, thiserror::Error)]
pub enum AdsError {
    /// 401 for the token itself (expired, revoked, another client's): refresh it
    /// ([`crate::OAuthClient::ensure_valid`]) and call again; if the refresh fails too, the
    /// streamer has to connect Twitch again.
    #[error("Twitch refused the access token: {0}")]
    Unauthorized(String),
    /// The token was granted without the scope this call needs: the streamer has to connect
    /// Twitch again and grant it.
    #[error("the Twitch connection lacks the {scope} scope ({message}); connect Twitch again")]
    MissingScope {
        scope: &'static str,
        message: String,
    },
    /// The token is not the broadcaster's: only the broadcaster may read or change their ads.
    #[error("only the broadcaster may do this: {0}")]
    NotBroadcaster(String),
    /// Snooze refused (429): no snoozes left until the schedule's `snooze_refresh_at`.
    #[error("no snoozes left: {0}")]
    NoSnoozesLeft(String),
    /// Start commercial refused (429): the previous commercial's `retry_after` has not elapsed.
    #[error("a commercial ran too recently: {0}")]
    CommercialCooldown(String),
    /// 400: the channel is not live (ads run and are snoozed only during a stream).
    #[error("the channel is not live: {0}")]
    NotLive(String),
    /// Helix's request budget is used up (429 with `Ratelimit-Remaining: 0`) beyond the waits
    /// done inside the call: try again after `retry_after`.
    #[error("Twitch rate limit reached ({message}); retry after {retry_after:?}")]
    RateLimited {
        retry_after: Duration,
        message: String,
    },
    /// 5xx or a network failure. A snooze or commercial is not repeated after such a failure
    /// (Twitch may have done it): read the schedule to find out.
    #[error("Twitch is temporarily unavailable: {0}")]
    Transient(String),
    /// Any other refusal (unknown broadcaster, not a partner or affiliate, ...).
    #[error("Twitch rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// A reply that does not follow the protocol.
    #[error("unexpected reply from Twitch: {0}")]
    Protocol(String),
    /// An argument we refuse before asking Twitch (empty broadcaster id, commercial length out of
    /// 1..=180) or a bad `helix_base`.
    #[error("invalid ads request: {0}")]
    InvalidArgument(String),
}

impl AdsError {
    /// Whether the same call may succeed later without anyone acting.
    pub fn is_transient(&self) -> bool {
        matches!(self, AdsError::RateLimited { .. } | AdsError::Transient(_))
    }

    /// Whether only connecting Twitch again (as the broadcaster, granting the ads scopes) helps.
    pub fn needs_reconnect(&self) -> bool {
        matches!(
            self,
            AdsError::MissingScope { .. } | AdsError::NotBroadcaster(_)
        )
    }
}

/// Which ads endpoint a reply came from: the same status means different things on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdCall {
    Schedule,
    Snooze,
    Commercial,
}

impl AdCall {
    fn what(self) -> &'static str {
        match self {
            AdCall::Schedule => "get ad schedule",
            AdCall::Snooze => "snooze next ad",
            AdCall::Commercial => "start commercial",
        }
    }

    fn scope(self) -> &'static str {
        match self {
            AdCall::Schedule => SCOPE_READ_ADS,
            AdCall::Snooze => SCOPE_MANAGE_ADS,
            AdCall::Commercial => SCOPE_EDIT_COMMERCIAL,
        }
    }

    /// Whether sending it twice does no harm. A snooze or commercial answered 5xx (or whose
    /// reply was lost) may have happened: repeating it could spend a second snooze.
    fn idempotent(self) -> bool {
        self == AdCall::Schedule
    }
}

/// Classifies a finished non-success reply of an ads endpoint.
fn ad_failure(call: AdCall, status: u16, body: &str) -> AdsError {
    let message = error_message(status, body);
    let lower = message.to_ascii_lowercase();
    // Twitch answers 401 for a missing scope ("Missing scope: channel:read:ads") and for a token
    // of another user ("The ID in broadcaster_id must match the user ID found in the request's
    // OAuth token"), so the message is what tells them from a dead token.
    let not_live =
        lower.contains(" live") || lower.starts_with("live") || lower.contains("offline");
    match status {
        401 | 403 if lower.contains("scope") => AdsError::MissingScope {
            scope: call.scope(),
            message,
        },
        401 | 403 if lower.contains("broadcaster_id") || lower.contains("must match") => {
            AdsError::NotBroadcaster(message)
        }
        401 => AdsError::Unauthorized(message),
        400 if call != AdCall::Schedule && not_live => AdsError::NotLive(message),
        429 => match call {
            AdCall::Snooze => AdsError::NoSnoozesLeft(message),
            AdCall::Commercial => AdsError::CommercialCooldown(message),
            AdCall::Schedule => AdsError::RateLimited {
                retry_after: Duration::ZERO,
                message,
            },
        },
        500..=599 => AdsError::Transient(format!("{}: HTTP {status}: {message}", call.what())),
        _ => AdsError::Rejected { status, message },
    }
}

/// The only element of a `{"data": [...]}` reply.
fn only_data<T: serde::de::DeserializeOwned>(call: AdCall, body: &str) -> Result<T, AdsError> {
    let parsed: DataReply<T> = serde_json::from_str(body)
        .map_err(|e| AdsError::Protocol(format!("{} reply: {e}", call.what())))?;
    parsed
        .data
        .into_iter()
        .next()
        .ok_or_else(|| AdsError::Protocol(format!("{}: empty data", call.what())))
}

/// A time of the ads endpoints: RFC 3339, or Unix seconds as a number or numeric string (with
/// an optional fraction); `null`, `""`, `0` and times not after the Unix epoch (Go's zero time
/// included) are "none".
fn parse_ad_time(value: &Value) -> Result<Option<DateTime<Utc>>, String> {
    let not_a_time = || format!("{value} is not a time");
    let from_seconds = |seconds: &str| -> Result<Option<DateTime<Utc>>, String> {
        let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
        let whole: i64 = whole.parse().map_err(|_| not_a_time())?;
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_time());
        }
        // Nanoseconds from at most 9 fraction digits, right-padded ("5" is 500 ms).
        let digits: String = fraction.chars().take(9).collect();
        let nanos: u32 = if digits.is_empty() {
            0
        } else {
            format!("{digits:0<9}").parse().map_err(|_| not_a_time())?
        };
        if whole == 0 && nanos == 0 {
            return Ok(None);
        }
        DateTime::from_timestamp(whole, nanos)
            .map(Some)
            .ok_or_else(not_a_time)
    };
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let text = n.to_string();
            if text.starts_with('-') || text.contains(['e', 'E']) {
                return Err(not_a_time());
            }
            from_seconds(&text)
        }
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                from_seconds(s)
            } else {
                let at = DateTime::parse_from_rfc3339(s)
                    .map_err(|e| format!("{value} is not a time: {e}"))?
                    .with_timezone(&Utc);
                Ok((at.timestamp() > 0).then_some(at))
            }
        }
        _ => Err(not_a_time()),
    }
}

fn time_from_wire<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    parse_ad_time(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// A count (seconds, snoozes): a number or a numeric string; `null` and `""` are 0.
fn count_from_wire<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let value = Value::deserialize(d)?;
    let bad = || serde::de::Error::custom(format!("{value} is not a count"));
    match &value {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad),
        Value::String(s) if s.trim().is_empty() => Ok(0),
        Value::String(s) => s.trim().parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

impl HelixClient {
    fn user_request(
        &self,
        method: reqwest::Method,
        url: &str,
        user_token: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(user_token)
            .header("Client-Id", &self.config.client_id)
    }

    fn ads_url(&self, path: &str, broadcaster_id: &str) -> Result<String, AdsError> {
        if broadcaster_id.trim().is_empty() {
            return Err(AdsError::InvalidArgument("broadcaster_id is empty".into()));
        }
        let mut url = url::Url::parse(&self.url(path))
            .map_err(|e| AdsError::InvalidArgument(format!("helix_base: {e}")))?;
        url.query_pairs_mut()
            .append_pair("broadcaster_id", broadcaster_id);
        Ok(url.to_string())
    }

    /// Sends an ads request, retrying per the retry policy what cannot have taken effect: an
    /// exhausted request budget (429 with `Ratelimit-Remaining: 0`) and connection failures;
    /// for the read-only schedule also 5xx and lost replies. Another 429 is the endpoint's own
    /// answer (no snoozes left, commercial cooldown) and comes back as the reply.
    async fn send_ads(
        &self,
        call: AdCall,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(u16, String), AdsError> {
        let policy = &self.config.retry;
        let mut attempt = 0;
        loop {
            let (wait, failure) = match build().send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let named_wait = retry_after(response.headers());
                    let budget_empty = response
                        .headers()
                        .get("ratelimit-remaining")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.trim() == "0");
                    let body = response.text().await.unwrap_or_default();
                    match status {
                        429 if budget_empty || call == AdCall::Schedule => {
                            let wait = named_wait.unwrap_or_else(|| policy.backoff(attempt));
                            let message =
                                format!("{}: {}", call.what(), error_message(status, &body));
                            (
                                wait,
                                AdsError::RateLimited {
                                    retry_after: wait,
                                    message,
                                },
                            )
                        }
                        500..=599 if call.idempotent() => (
                            named_wait.unwrap_or_else(|| policy.backoff(attempt)),
                            ad_failure(call, status, &body),
                        ),
                        _ => return Ok((status, body)),
                    }
                }
                Err(e) if call.idempotent() || e.is_connect() => (
                    policy.backoff(attempt),
                    AdsError::Transient(format!("{}: {e}", call.what())),
                ),
                Err(e) => return Err(AdsError::Transient(format!("{}: {e}", call.what()))),
            };
            attempt += 1;
            if attempt >= policy.max_attempts || wait > policy.max_inline_wait {
                return Err(failure);
            }
            tracing::warn!(error = %failure, ?wait, "retrying a Twitch ads request");
            tokio::time::sleep(wait).await;
        }
    }

    /// `GET /helix/channels/ads?broadcaster_id=` with the broadcaster's user token (scope
    /// `channel:read:ads`). The client's own token is not used: ads belong to the broadcaster.
    pub async fn get_ad_schedule(
        &self,
        user_token: &str,
        broadcaster_id: &str,
    ) -> Result<AdSchedule, AdsError> {
        let call = AdCall::Schedule;
        let url = self.ads_url("/channels/ads", broadcaster_id)?;
        let (status, body) = self
            .send_ads(call, || {
                self.user_request(reqwest::Method::GET, &url, user_token)
            })
            .await?;
        if !(200..300).contains(&status) {
            return Err(ad_failure(call, status, &body));
        }
        only_data(call, &body)
    }

    /// `POST /helix/channels/ads/schedule/snooze?broadcaster_id=` with the broadcaster's user
    /// token (scope `channel:manage:ads`): pushes the next automatic ad back. No snoozes left is
    /// [`AdsError::NoSnoozesLeft`].
    pub async fn snooze_next_ad(
        &self,
        user_token: &str,
        broadcaster_id: &str,
    ) -> Result<SnoozeResult, AdsError> {
        let call = AdCall::Snooze;
        let url = self.ads_url("/channels/ads/schedule/snooze", broadcaster_id)?;
        let (status, body) = self
            .send_ads(call, || {
                self.user_request(reqwest::Method::POST, &url, user_token)
            })
            .await?;
        if !(200..300).contains(&status) {
            return Err(ad_failure(call, status, &body));
        }
        only_data(call, &body)
    }

    /// `POST /helix/channels/commercial` `{broadcaster_id, length}` with the broadcaster's user
    /// token (scope `channel:edit:commercial`); `length` in seconds, 1..=180. A channel that is
    /// not live is [`AdsError::NotLive`]; one whose last commercial's `retry_after` has not
    /// elapsed is [`AdsError::CommercialCooldown`].
    pub async fn start_commercial(
        &self,
        user_token: &str,
        broadcaster_id: &str,
        length: u32,
    ) -> Result<CommercialStarted, AdsError> {
        let call = AdCall::Commercial;
        if broadcaster_id.trim().is_empty() {
            return Err(AdsError::InvalidArgument("broadcaster_id is empty".into()));
        }
        if !(1..=MAX_COMMERCIAL_SECONDS).contains(&length) {
            return Err(AdsError::InvalidArgument(format!(
                "commercial length {length} s is outside 1..={MAX_COMMERCIAL_SECONDS}"
            )));
        }
        let url = self.url("/channels/commercial");
        let request = serde_json::json!({ "broadcaster_id": broadcaster_id, "length": length });
        let (status, body) = self
            .send_ads(call, || {
                self.user_request(reqwest::Method::POST, &url, user_token)
                    .json(&request)
            })
            .await?;
        if !(200..300).contains(&status) {
            return Err(ad_failure(call, status, &body));
        }
        only_data(call, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_serialises_like_twitch() {
        let webhook = Transport::Webhook {
            callback: "https://example.com/eventsub".into(),
            secret: "0123456789abc".into(),
        };
        assert_eq!(
            serde_json::to_value(&webhook).unwrap(),
            serde_json::json!({"method": "webhook", "callback": "https://example.com/eventsub", "secret": "0123456789abc"})
        );
        assert!(!format!("{webhook:?}").contains("0123456789abc"));
        let ws = Transport::WebSocket {
            session_id: "AQoQ".into(),
        };
        assert_eq!(
            serde_json::to_value(&ws).unwrap(),
            serde_json::json!({"method": "websocket", "session_id": "AQoQ"})
        );
    }

    #[test]
    fn subscription_round_trips_twitchs_shape() {
        // The example of Twitch's "Create EventSub Subscription" reference.
        let wire = serde_json::json!({
            "id": "26b1c993-bfcf-44d9-b876-379dacafe75a",
            "status": "webhook_callback_verification_pending",
            "type": "channel.follow",
            "version": "2",
            "condition": {"broadcaster_user_id": "1234", "moderator_user_id": "1234"},
            "created_at": "2020-11-10T14:32:18.730260295Z",
            "transport": {"method": "webhook", "callback": "https://this-is-a-callback.com"},
            "cost": 1
        });
        let sub: Subscription = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(
            sub.status,
            SubscriptionStatus::WebhookCallbackVerificationPending
        );
        assert_eq!(sub.kind, "channel.follow");
        assert_eq!(sub.transport.method, TransportMethod::Webhook);
        assert_eq!(serde_json::to_value(&sub).unwrap(), wire);
        // An unknown status survives verbatim.
        let odd: SubscriptionStatus = serde_json::from_str("\"brand_new_status\"").unwrap();
        assert_eq!(odd, SubscriptionStatus::Other("brand_new_status".into()));
        assert_eq!(serde_json::to_string(&odd).unwrap(), "\"brand_new_status\"");
        for (status, name) in STATUS_NAMES {
            assert_eq!(SubscriptionStatus::from(name.to_string()), *status);
            assert_eq!(status.as_str(), *name);
        }
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn ad_times_parse_in_every_shape_seen() {
        use serde_json::json;
        // 1_700_000_000 s after the epoch is 2023-11-14 22:13:20 UTC.
        let t = at(2023, 11, 14, 22, 13, 20);
        for (wire, expected) in [
            (json!(1_700_000_000), Some(t)),
            (json!("1700000000"), Some(t)),
            (json!(" 1700000000 "), Some(t)),
            (json!("2023-11-14T22:13:20Z"), Some(t)),
            (json!("2023-11-14T23:13:20+01:00"), Some(t)),
            (json!(""), None),
            (json!(0), None),
            (json!("0"), None),
            (json!(null), None),
            (json!("0001-01-01T00:00:00Z"), None),
            (json!("1970-01-01T00:00:00Z"), None),
        ] {
            assert_eq!(parse_ad_time(&wire), Ok(expected), "{wire}");
        }
        let half = parse_ad_time(&json!("1700000000.5")).unwrap().unwrap();
        assert_eq!(half - t, chrono::TimeDelta::milliseconds(500));
        let float = parse_ad_time(&json!(1_700_000_000.25)).unwrap().unwrap();
        assert_eq!(float - t, chrono::TimeDelta::milliseconds(250));
        for bad in [
            json!(-5),
            json!("-5"),
            json!("soon"),
            json!("17e8"),
            json!("1.2.3"),
            json!(true),
            json!([1]),
        ] {
            assert!(parse_ad_time(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ad_schedule_reads_documented_and_observed_replies() {
        // The shape of Twitch's reference example (RFC 3339 times, counts as strings).
        let documented: AdSchedule = serde_json::from_value(serde_json::json!({
            "next_ad_at": "2023-08-01T23:08:18+00:00",
            "last_ad_at": "2023-08-01T23:08:18+00:00",
            "duration": "60",
            "preroll_free_time": "90",
            "snooze_count": "1",
            "snooze_refresh_at": "2023-08-01T23:08:18+00:00"
        }))
        .unwrap();
        let t = at(2023, 8, 1, 23, 8, 18);
        assert_eq!(
            documented,
            AdSchedule {
                snooze_count: 1,
                snooze_refresh_at: Some(t),
                next_ad_at: Some(t),
                duration: 60,
                last_ad_at: Some(t),
                preroll_free_time: 90,
            }
        );
        // Unix seconds as numbers with "none" as 0 and "", as live replies come.
        let observed: AdSchedule = serde_json::from_value(serde_json::json!({
            "snooze_count": 3, "snooze_refresh_at": 0, "next_ad_at": 1_690_931_298,
            "duration": 90, "last_ad_at": "", "preroll_free_time": 0
        }))
        .unwrap();
        assert_eq!(observed.next_ad_at, Some(t));
        assert_eq!(observed.snooze_refresh_at, None);
        assert_eq!(observed.last_ad_at, None);
        assert_eq!((observed.snooze_count, observed.duration), (3, 90));
        // It serialises with RFC 3339 times and numbers, and reads that back unchanged.
        let out = serde_json::to_value(&observed).unwrap();
        assert_eq!(out["next_ad_at"], "2023-08-01T23:08:18Z");
        assert!(out["last_ad_at"].is_null());
        assert_eq!(out["duration"], 90);
        assert_eq!(serde_json::from_value::<AdSchedule>(out).unwrap(), observed);
        // A count that is not one is an error, not a zero.
        assert!(
            serde_json::from_value::<AdSchedule>(serde_json::json!({"snooze_count": "three"}))
                .is_err()
        );
        assert!(serde_json::from_value::<AdSchedule>(serde_json::json!({"duration": -1})).is_err());
    }

    #[test]
    fn ad_failures_are_grouped_by_what_to_do() {
        let body =
            |m: &str| serde_json::json!({"error": "x", "status": 0, "message": m}).to_string();
        let scope = ad_failure(
            AdCall::Snooze,
            401,
            &body("Missing scope: channel:manage:ads"),
        );
        assert!(
            matches!(
                scope,
                AdsError::MissingScope {
                    scope: "channel:manage:ads",
                    ..
                }
            ),
            "{scope:?}"
        );
        assert!(scope.needs_reconnect());
        let other = ad_failure(
            AdCall::Schedule,
            401,
            &body(
                "The ID in broadcaster_id must match the user ID found in the request's OAuth token.",
            ),
        );
        assert!(matches!(other, AdsError::NotBroadcaster(_)), "{other:?}");
        let dead = ad_failure(AdCall::Schedule, 401, &body("Invalid OAuth token"));
        assert!(matches!(dead, AdsError::Unauthorized(_)) && !dead.needs_reconnect());
        let offline = ad_failure(
            AdCall::Commercial,
            400,
            &body("To start a commercial, the broadcaster must be streaming live."),
        );
        assert!(matches!(offline, AdsError::NotLive(_)), "{offline:?}");
        // "delivery" contains "live" but says nothing about the stream.
        let other_400 = ad_failure(AdCall::Commercial, 400, &body("bad delivery option"));
        assert!(matches!(other_400, AdsError::Rejected { status: 400, .. }));
        assert!(matches!(
            ad_failure(AdCall::Snooze, 429, &body("no snoozes")),
            AdsError::NoSnoozesLeft(_)
        ));
        assert!(matches!(
            ad_failure(AdCall::Commercial, 429, &body("cooldown")),
            AdsError::CommercialCooldown(_)
        ));
        let server = ad_failure(AdCall::Snooze, 503, &body("down"));
        assert!(matches!(server, AdsError::Transient(_)) && server.is_transient());
        assert!(matches!(
            ad_failure(
                AdCall::Commercial,
                404,
                &body("The ID in broadcaster_id was not found")
            ),
            AdsError::Rejected { status: 404, .. }
        ));
    }
}
