//! Helix: EventSub subscriptions (create, list, delete) and users.
//!
//! Webhook subscriptions need an app access token; WebSocket subscriptions need the user's token
//! and a live session id. The [`Subscription`] type serialises in the JSON shape Twitch uses, so
//! the API can hand it to the front end unchanged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::oauth::{TwitchConfig, TwitchError, execute, failure};

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
}
