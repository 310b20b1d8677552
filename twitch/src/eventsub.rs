//! The EventSub message model and the webhook verifier.
//!
//! Twitch signs each webhook request with HMAC-SHA256, key = the subscription's secret, over
//! `message id ‖ timestamp header ‖ raw body` — the header bytes as received and the body before
//! any parsing, so [`verify_webhook`] takes the raw bytes. A request is accepted only when the
//! signature matches (compared in constant time) and its timestamp lies within
//! [`MAX_MESSAGE_AGE`] of the caller's clock (injectable, so tests can replay fixed vectors).
//! Delivery is at least once and a redelivery reuses the message id: the caller dedupes on it.
//!
//! The chat event carries no time of its own: the message time is the timestamp header
//! (webhook) or `metadata.message_timestamp` (WebSocket), never the time we processed it.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

pub const HEADER_MESSAGE_ID: &str = "twitch-eventsub-message-id";
pub const HEADER_MESSAGE_RETRY: &str = "twitch-eventsub-message-retry";
pub const HEADER_MESSAGE_TYPE: &str = "twitch-eventsub-message-type";
pub const HEADER_MESSAGE_SIGNATURE: &str = "twitch-eventsub-message-signature";
pub const HEADER_MESSAGE_TIMESTAMP: &str = "twitch-eventsub-message-timestamp";
pub const HEADER_SUBSCRIPTION_TYPE: &str = "twitch-eventsub-subscription-type";
pub const HEADER_SUBSCRIPTION_VERSION: &str = "twitch-eventsub-subscription-version";

/// Older messages are refused (Twitch's recommendation): it also bounds how long message ids
/// must be remembered for deduplication.
pub const MAX_MESSAGE_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// How far ahead of our clock a timestamp may be (clock skew) before it is refused.
pub const MAX_CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The subscription types chat capture uses, with their versions.
pub mod types {
    pub const CHAT_MESSAGE: &str = "channel.chat.message";
    pub const CHAT_MESSAGE_DELETE: &str = "channel.chat.message_delete";
    pub const CHAT_CLEAR: &str = "channel.chat.clear";
    pub const CHAT_CLEAR_USER_MESSAGES: &str = "channel.chat.clear_user_messages";
    pub const STREAM_ONLINE: &str = "stream.online";
    pub const STREAM_OFFLINE: &str = "stream.offline";
    pub const AD_BREAK_BEGIN: &str = "channel.ad_break.begin";
}

/// Everything chat capture subscribes to for a broadcaster: `(type, version, condition needs
/// user_id)`. Chat events name the reading user as well as the broadcaster.
pub const CHAT_CAPTURE_SUBSCRIPTIONS: &[(&str, &str, bool)] = &[
    (types::CHAT_MESSAGE, "1", true),
    (types::CHAT_MESSAGE_DELETE, "1", true),
    (types::CHAT_CLEAR, "1", true),
    (types::CHAT_CLEAR_USER_MESSAGES, "1", true),
    (types::STREAM_ONLINE, "1", false),
    (types::STREAM_OFFLINE, "1", false),
    (types::AD_BREAK_BEGIN, "1", false),
];

/// The condition Twitch expects for a chat-capture subscription of this type.
pub fn capture_condition(broadcaster_id: &str, with_user: bool) -> Value {
    if with_user {
        serde_json::json!({"broadcaster_user_id": broadcaster_id, "user_id": broadcaster_id})
    } else {
        serde_json::json!({"broadcaster_user_id": broadcaster_id})
    }
}

/// `Twitch-Eventsub-Message-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    Notification,
    WebhookCallbackVerification,
    Revocation,
}

impl MessageType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "notification" => Some(Self::Notification),
            "webhook_callback_verification" => Some(Self::WebhookCallbackVerification),
            "revocation" => Some(Self::Revocation),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "notification",
            Self::WebhookCallbackVerification => "webhook_callback_verification",
            Self::Revocation => "revocation",
        }
    }
}

/// Why a webhook request was refused. All of them mean: answer 4xx, change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("the signature header is not sha256=<64 hex digits>")]
    MalformedSignature,
    #[error("the signature does not match the message")]
    BadSignature,
    #[error("the timestamp header is not an RFC 3339 time")]
    MalformedTimestamp,
    #[error("the message is {0} s old (at most 600 s are accepted)")]
    Stale(i64),
    #[error("the message is dated {0} s in the future")]
    Future(i64),
    #[error("unknown message type {0:?}")]
    UnknownMessageType(String),
}

/// A webhook request whose signature and freshness were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    pub message_id: String,
    /// The message time (Twitch's send time, from the signed header).
    pub timestamp: DateTime<Utc>,
    pub message_type: MessageType,
    pub subscription_type: Option<String>,
    pub subscription_version: Option<String>,
    /// How many times Twitch already tried to deliver this message.
    pub retry: u32,
}

/// The `sha256=<hex>` signature Twitch sends for this message.
pub fn sign(secret: &[u8], message_id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(message_id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or(VerifyError::MissingHeader(name))
}

/// Checks a webhook request: the headers, the signature over the raw body (constant time) and
/// the timestamp against `now`. Nothing in the body is trusted or parsed here.
pub fn verify_webhook(
    secret: &[u8],
    headers: &HeaderMap,
    raw_body: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifiedWebhook, VerifyError> {
    let message_id = header(headers, HEADER_MESSAGE_ID)?;
    let timestamp_raw = header(headers, HEADER_MESSAGE_TIMESTAMP)?;
    let signature = header(headers, HEADER_MESSAGE_SIGNATURE)?;
    let message_type_raw = header(headers, HEADER_MESSAGE_TYPE)?;

    let expected = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|bytes| bytes.len() == 32)
        .ok_or(VerifyError::MalformedSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(message_id.as_bytes());
    mac.update(timestamp_raw.as_bytes());
    mac.update(raw_body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| VerifyError::BadSignature)?;

    let timestamp = DateTime::parse_from_rfc3339(timestamp_raw)
        .map_err(|_| VerifyError::MalformedTimestamp)?
        .with_timezone(&Utc);
    let age = now - timestamp;
    if age > MAX_MESSAGE_AGE {
        return Err(VerifyError::Stale(age.num_seconds()));
    }
    if -age > MAX_CLOCK_SKEW {
        return Err(VerifyError::Future((-age).num_seconds()));
    }
    let message_type = MessageType::parse(message_type_raw)
        .ok_or_else(|| VerifyError::UnknownMessageType(message_type_raw.to_string()))?;
    let optional = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Ok(VerifiedWebhook {
        message_id: message_id.to_string(),
        timestamp,
        message_type,
        subscription_type: optional(HEADER_SUBSCRIPTION_TYPE),
        subscription_version: optional(HEADER_SUBSCRIPTION_VERSION),
        retry: optional(HEADER_MESSAGE_RETRY)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
    })
}

/// The subscription a message belongs to, as every EventSub message carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRef {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub condition: Value,
}

impl SubscriptionRef {
    /// The broadcaster the subscription is about.
    pub fn broadcaster_id(&self) -> Option<&str> {
        self.condition.get("broadcaster_user_id")?.as_str()
    }

    pub fn revocation_reason(&self) -> RevocationReason {
        RevocationReason::parse(&self.status)
    }
}

/// A webhook body: `challenge` on verification, `event` on notification, neither on revocation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WebhookBody {
    pub subscription: SubscriptionRef,
    #[serde(default)]
    pub challenge: Option<String>,
    #[serde(default)]
    pub event: Option<Value>,
}

/// Why Twitch revoked a subscription (`subscription.status` of a revocation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// The user no longer exists (or closed the account): nothing to do.
    UserRemoved,
    /// The user revoked our authorization: they must connect Twitch again.
    AuthorizationRevoked,
    /// Our endpoint failed too often: subscribe again.
    NotificationFailuresExceeded,
    /// The subscription's version is gone: subscribe again with a current version.
    VersionRemoved,
    /// Chat-specific: the reading user lost moderator status or was banned.
    ModeratorRemoved,
    ChatUserBanned,
    Other(String),
}

impl RevocationReason {
    pub fn parse(status: &str) -> Self {
        match status {
            "user_removed" => Self::UserRemoved,
            "authorization_revoked" => Self::AuthorizationRevoked,
            "notification_failures_exceeded" => Self::NotificationFailuresExceeded,
            "version_removed" => Self::VersionRemoved,
            "moderator_removed" => Self::ModeratorRemoved,
            "chat_user_banned" => Self::ChatUserBanned,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::UserRemoved => "user_removed",
            Self::AuthorizationRevoked => "authorization_revoked",
            Self::NotificationFailuresExceeded => "notification_failures_exceeded",
            Self::VersionRemoved => "version_removed",
            Self::ModeratorRemoved => "moderator_removed",
            Self::ChatUserBanned => "chat_user_banned",
            Self::Other(s) => s,
        }
    }

    /// Whether subscribing again can succeed without the user doing anything.
    pub fn resubscribable(&self) -> bool {
        matches!(
            self,
            Self::NotificationFailuresExceeded | Self::VersionRemoved
        )
    }
}

/// One part of a chat message: text, an emote, a mention or a cheermote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emote: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mention: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cheermote: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatText {
    pub text: String,
    #[serde(default)]
    pub fragments: Vec<Fragment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Badge {
    pub set_id: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub info: String,
}

/// `channel.chat.message` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessageEvent {
    pub broadcaster_user_id: String,
    #[serde(default)]
    pub broadcaster_user_login: String,
    #[serde(default)]
    pub broadcaster_user_name: String,
    pub chatter_user_id: String,
    #[serde(default)]
    pub chatter_user_login: String,
    #[serde(default)]
    pub chatter_user_name: String,
    pub message_id: String,
    pub message: ChatText,
    #[serde(default)]
    pub message_type: Option<String>,
    #[serde(default)]
    pub badges: Vec<Badge>,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub reply: Option<Value>,
    #[serde(default)]
    pub cheer: Option<Value>,
    #[serde(default)]
    pub channel_points_custom_reward_id: Option<String>,
}

impl ChatMessageEvent {
    /// How many emotes the message holds.
    pub fn emote_count(&self) -> usize {
        self.message
            .fragments
            .iter()
            .filter(|f| f.kind == "emote")
            .count()
    }
}

/// `channel.chat.message_delete` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDeleteEvent {
    pub broadcaster_user_id: String,
    #[serde(default)]
    pub target_user_id: String,
    pub message_id: String,
}

/// `channel.chat.clear_user_messages` v1 (a timeout or ban removes the user's messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClearUserMessagesEvent {
    pub broadcaster_user_id: String,
    pub target_user_id: String,
    #[serde(default)]
    pub target_user_login: String,
}

/// `channel.chat.clear` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatClearEvent {
    pub broadcaster_user_id: String,
}

/// `stream.online` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamOnlineEvent {
    /// Twitch's stream id.
    pub id: String,
    pub broadcaster_user_id: String,
    #[serde(default)]
    pub broadcaster_user_login: String,
    #[serde(default)]
    pub broadcaster_user_name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    pub started_at: DateTime<Utc>,
}

/// `stream.offline` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamOfflineEvent {
    pub broadcaster_user_id: String,
    #[serde(default)]
    pub broadcaster_user_login: String,
}

/// `channel.ad_break.begin` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdBreakBeginEvent {
    pub broadcaster_user_id: String,
    #[serde(deserialize_with = "number_or_string")]
    pub duration_seconds: u32,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub is_automatic: bool,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| serde::de::Error::custom("not a duration in seconds")),
        Value::String(s) => s.trim().parse().map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("not a duration in seconds")),
    }
}

/// A notification's event, typed by its subscription type.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ChatMessage(Box<ChatMessageEvent>),
    MessageDelete(MessageDeleteEvent),
    ClearUserMessages(ClearUserMessagesEvent),
    ChatClear(ChatClearEvent),
    StreamOnline(StreamOnlineEvent),
    StreamOffline(StreamOfflineEvent),
    AdBreakBegin(AdBreakBeginEvent),
    /// A type we do not subscribe to: kept, not acted on.
    Other(String),
}

impl Event {
    /// Types the event of a notification; an event that does not match its type's shape is an
    /// error (the sender is broken, or the subscription's version changed).
    pub fn parse(subscription_type: &str, event: Value) -> Result<Self, serde_json::Error> {
        use types::*;
        Ok(match subscription_type {
            CHAT_MESSAGE => Self::ChatMessage(Box::new(serde_json::from_value(event)?)),
            CHAT_MESSAGE_DELETE => Self::MessageDelete(serde_json::from_value(event)?),
            CHAT_CLEAR_USER_MESSAGES => Self::ClearUserMessages(serde_json::from_value(event)?),
            CHAT_CLEAR => Self::ChatClear(serde_json::from_value(event)?),
            STREAM_ONLINE => Self::StreamOnline(serde_json::from_value(event)?),
            STREAM_OFFLINE => Self::StreamOffline(serde_json::from_value(event)?),
            AD_BREAK_BEGIN => Self::AdBreakBegin(serde_json::from_value(event)?),
            other => Self::Other(other.to_string()),
        })
    }
}

/// Why a verified message could not be turned into something to store.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not an EventSub message: {0}")]
    Shape(serde_json::Error),
    #[error("the {kind} event does not have that type's fields: {error}")]
    Event {
        kind: String,
        error: serde_json::Error,
    },
    #[error("the subscription type header says {header:?}, the body {body:?}")]
    TypeMismatch { header: String, body: String },
}

/// What a transport stores for one notification or revocation (`payload` is the
/// `{subscription, event}` JSON, the same over webhook and WebSocket). A chat message becomes a
/// chat row; every other event keeps its payload for the processor.
pub fn incoming_event(
    message_id: &str,
    message_type: MessageType,
    message_time: DateTime<Utc>,
    subscription_type_header: Option<&str>,
    payload: Value,
) -> Result<gt_types::chat::IncomingEvent, PayloadError> {
    use gt_types::chat::{IncomingEvent, NewChatMessage, StoredMessageType};
    // Read through a reference: the payload itself is kept for the processor.
    let parsed = WebhookBody::deserialize(&payload).map_err(PayloadError::Shape)?;
    let kind = parsed.subscription.kind.clone();
    if let Some(header) = subscription_type_header
        && header != kind
    {
        return Err(PayloadError::TypeMismatch {
            header: header.to_string(),
            body: kind,
        });
    }
    let broadcaster_id = parsed
        .subscription
        .broadcaster_id()
        .map(str::to_string)
        .or_else(|| {
            parsed
                .event
                .as_ref()?
                .get("broadcaster_user_id")?
                .as_str()
                .map(str::to_string)
        });
    let mut incoming = IncomingEvent {
        message_id: message_id.to_string(),
        message_type: match message_type {
            MessageType::Revocation => StoredMessageType::Revocation,
            _ => StoredMessageType::Notification,
        },
        subscription_type: Some(kind.clone()),
        broadcaster_id,
        message_time,
        chat: None,
        body: None,
    };
    if message_type == MessageType::Notification && kind == types::CHAT_MESSAGE {
        let event = parsed.event.unwrap_or(Value::Null);
        let chat: ChatMessageEvent =
            serde_json::from_value(event).map_err(|error| PayloadError::Event {
                kind: kind.clone(),
                error,
            })?;
        incoming.chat = Some(NewChatMessage {
            emote_count: chat.emote_count() as i64,
            id: chat.message_id,
            channel_id: chat.broadcaster_user_id,
            sender_id: chat.chatter_user_id,
            user_name: chat.chatter_user_name,
            user_login: chat.chatter_user_login,
            message: chat.message.text,
            timestamp: message_time,
            badges: serde_json::to_value(&chat.badges).unwrap_or_default(),
            fragments: serde_json::to_value(&chat.message.fragments).unwrap_or_default(),
            color: chat.color.filter(|c| !c.is_empty()),
            reply: chat.reply.filter(|r| !r.is_null()),
            message_type: chat.message_type,
        });
    } else {
        if message_type == MessageType::Notification
            && let Some(event) = parsed.event
        {
            // Refuse now what the processor could never act on.
            Event::parse(&kind, event).map_err(|error| PayloadError::Event {
                kind: kind.clone(),
                error,
            })?;
        }
        incoming.body = Some(payload);
    }
    Ok(incoming)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const SECRET: &[u8] = b"test-secret-key";
    const ID: &str = "test-message-id-123";
    const TS: &str = "2024-01-01T00:00:00Z";

    fn headers(id: &str, ts: &str, sig: &str, kind: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [
            (HEADER_MESSAGE_ID, id),
            (HEADER_MESSAGE_TIMESTAMP, ts),
            (HEADER_MESSAGE_SIGNATURE, sig),
            (HEADER_MESSAGE_TYPE, kind),
        ] {
            h.insert(name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn at(ts: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(ts)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The vector from the original system's tests, recomputed with Python's hmac.
    #[test]
    fn known_vectors() {
        assert_eq!(
            sign(SECRET, ID, TS, br#"{"test":"data"}"#),
            "sha256=b257174013e15a2639799213400806fa60814be8aa347dfd44c6d24e530d3f3a"
        );
        assert_eq!(
            sign(SECRET, ID, TS, b""),
            "sha256=ec31b9690e6b4a416f3d716caef67e06c9342c526d47c2594945ebaf92e2837a"
        );
    }

    #[test]
    fn verifies_signature_and_freshness_against_an_injected_clock() {
        let body = br#"{"test":"data"}"#;
        let sig = sign(SECRET, ID, TS, body);
        let ok = verify_webhook(
            SECRET,
            &headers(ID, TS, &sig, "notification"),
            body,
            at("2024-01-01T00:09:59Z"),
        )
        .unwrap();
        assert_eq!(ok.message_id, ID);
        assert_eq!(ok.timestamp, at(TS));
        assert_eq!(ok.message_type, MessageType::Notification);

        let h = headers(ID, TS, &sig, "notification");
        assert_eq!(
            verify_webhook(SECRET, &h, body, at("2024-01-01T00:10:01Z")),
            Err(VerifyError::Stale(601))
        );
        assert_eq!(
            verify_webhook(SECRET, &h, body, at("2023-12-31T23:58:00Z")),
            Err(VerifyError::Future(120))
        );
        let now = at("2024-01-01T00:00:05Z");
        assert_eq!(
            verify_webhook(b"wrong-secret-key", &h, body, now),
            Err(VerifyError::BadSignature)
        );
        // The same JSON re-serialised with a space is not what was signed.
        assert_eq!(
            verify_webhook(SECRET, &h, br#"{"test": "data"}"#, now),
            Err(VerifyError::BadSignature)
        );
        for bad in [
            "b257",
            "sha256=zz",
            "sha1=b257174013e15a2639799213400806fa60814be8aa347dfd44c6d24e530d3f3a",
        ] {
            assert_eq!(
                verify_webhook(SECRET, &headers(ID, TS, bad, "notification"), body, now),
                Err(VerifyError::MalformedSignature),
                "{bad}"
            );
        }
        let mut missing = h.clone();
        missing.remove(HEADER_MESSAGE_TIMESTAMP);
        assert_eq!(
            verify_webhook(SECRET, &missing, body, now),
            Err(VerifyError::MissingHeader(HEADER_MESSAGE_TIMESTAMP))
        );
        assert_eq!(
            verify_webhook(SECRET, &headers(ID, TS, &sig, "gossip"), body, now),
            Err(VerifyError::UnknownMessageType("gossip".into()))
        );
        // A timestamp written differently is different bytes: signed as sent, or refused.
        let other_form = "2024-01-01T00:00:00.000000000Z";
        assert_eq!(
            verify_webhook(
                SECRET,
                &headers(ID, other_form, &sig, "notification"),
                body,
                now
            ),
            Err(VerifyError::BadSignature)
        );
        let resigned = sign(SECRET, ID, other_form, body);
        assert!(
            verify_webhook(
                SECRET,
                &headers(ID, other_form, &resigned, "notification"),
                body,
                now
            )
            .is_ok()
        );
    }

    #[test]
    fn types_events_by_subscription_type() {
        let chat = serde_json::json!({
            "broadcaster_user_id": "1971641", "broadcaster_user_login": "streamer",
            "broadcaster_user_name": "streamer", "chatter_user_id": "4145994",
            "chatter_user_login": "viewer32", "chatter_user_name": "viewer32",
            "message_id": "cc106a89-1814-919d-454c-f4f2f970aae7",
            "message": {"text": "Hi chat Kappa", "fragments": [
                {"type": "text", "text": "Hi chat ", "cheermote": null, "emote": null, "mention": null},
                {"type": "emote", "text": "Kappa", "cheermote": null, "mention": null,
                 "emote": {"id": "25", "emote_set_id": "0", "owner_id": "0", "format": ["static"]}}]},
            "color": "#00FF7F", "badges": [{"set_id": "moderator", "id": "1", "info": ""}],
            "message_type": "text", "cheer": null, "reply": null,
            "channel_points_custom_reward_id": null
        });
        let Event::ChatMessage(m) = Event::parse(types::CHAT_MESSAGE, chat).unwrap() else {
            panic!("not a chat message")
        };
        assert_eq!(m.emote_count(), 1);
        assert_eq!(m.badges[0].set_id, "moderator");

        let ad = serde_json::json!({"broadcaster_user_id": "1", "duration_seconds": "60",
            "started_at": "2019-11-16T10:11:12.634234626Z", "is_automatic": false});
        let Event::AdBreakBegin(ad) = Event::parse(types::AD_BREAK_BEGIN, ad).unwrap() else {
            panic!("not an ad break")
        };
        assert_eq!(ad.duration_seconds, 60);
        assert!(Event::parse(types::STREAM_ONLINE, serde_json::json!({"id": 1})).is_err());
        assert_eq!(
            Event::parse("channel.follow", serde_json::json!({})).unwrap(),
            Event::Other("channel.follow".into())
        );
        assert!(RevocationReason::parse("notification_failures_exceeded").resubscribable());
        assert!(!RevocationReason::parse("authorization_revoked").resubscribable());
    }
}
