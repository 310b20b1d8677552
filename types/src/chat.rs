//! Twitch chat capture: the `ChatCapture` workflow's input, signals and status, its activities'
//! inputs and outputs, and chat activity peaks (highlight candidates from chat).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Input of `ChatCapture` (`chat-{owner}-{broadcaster_id}`) and of its activities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCaptureInput {
    pub user_id: String,
    pub broadcaster_id: String,
}

/// Where capture stands, as the `status` query and the profile show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureState {
    /// Creating or checking the EventSub subscriptions.
    #[default]
    Subscribing,
    /// Subscriptions are in place (webhook) or the WebSocket session is held.
    Capturing,
    /// Twitch refused the user's tokens or the user revoked the authorization: nothing can be
    /// subscribed until they connect Twitch again.
    NeedsReconnect,
    /// The user turned capture off; the subscriptions were deleted.
    Disabled,
}

/// The `status` query of `ChatCapture`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCaptureStatus {
    pub state: CaptureState,
    /// Whether the broadcaster is live (`stream.online` seen, no `stream.offline` since).
    pub live: bool,
    /// The stream record of the broadcast in progress.
    pub live_stream_id: Option<String>,
    pub subscriptions: u32,
    pub revocations: u32,
    pub last_revocation: Option<String>,
    pub note: Option<String>,
}

/// Signal `online` (from `stream.online`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamWentLive {
    /// The stream record created for the broadcast.
    pub stream_id: String,
    pub twitch_stream_id: String,
}

/// Signal `revoked` (a `revocation` message for one of the broadcaster's subscriptions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionRevoked {
    pub subscription_type: String,
    /// Twitch's `subscription.status`, e.g. `authorization_revoked`.
    pub reason: String,
    /// Whether subscribing again can work without the user (e.g. `notification_failures_exceeded`).
    pub resubscribable: bool,
}

/// What `chat.ensure_subscriptions` found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CaptureReport {
    /// Webhook subscriptions exist for every chat-capture type (`created` of them just now).
    Subscribed { subscriptions: u32, created: u32 },
    /// No public callback is configured: a worker holds a WebSocket session instead.
    UseWebSocket,
    /// The user must connect Twitch again (`reason`).
    NeedsReconnect { reason: String },
}

/// Output of `chat.validate_tokens` (the hourly maintenance).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenSweep {
    pub checked: u32,
    pub refreshed: u32,
    /// Connections whose tokens Twitch refused (marked "reconnect Twitch").
    pub lost: u32,
    pub purged_chat_messages: u64,
}

/// A burst of chat activity: a highlight candidate in stream time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatPeak {
    /// Stream seconds where the burst starts and ends.
    pub start: f64,
    pub end: f64,
    /// How far above the stream's usual chat rate (robust z-score of the combined activity).
    pub score: f64,
    pub messages: u32,
    pub unique_chatters: u32,
    pub emotes: u32,
    /// `!clip` / `!highlight` commands in the burst.
    pub commands: u32,
    /// What chat said most (an emote or word), for the chapter title.
    pub label: String,
}

/// One chat line in stream time, as the editor's `chat_history` wants it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatHistoryLine {
    /// Stream seconds.
    pub timestamp: f64,
    pub username: String,
    pub message: String,
}

/// `eventsub_messages.message_type`: challenges are answered, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredMessageType {
    Notification,
    Revocation,
}

/// A chat row to store, from a `channel.chat.message` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewChatMessage {
    /// Twitch's chat message id (`event.message_id`).
    pub id: String,
    pub channel_id: String,
    pub sender_id: String,
    pub user_name: String,
    pub user_login: String,
    pub message: String,
    /// The message time: the signed EventSub timestamp, never our processing time.
    pub timestamp: DateTime<Utc>,
    pub badges: Value,
    pub fragments: Value,
    pub color: Option<String>,
    pub reply: Option<Value>,
    pub message_type: Option<String>,
    pub emote_count: i64,
}

/// One EventSub message accepted by a transport (webhook or WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingEvent {
    /// EventSub's message id: the deduplication key.
    pub message_id: String,
    pub message_type: StoredMessageType,
    pub subscription_type: Option<String>,
    pub broadcaster_id: Option<String>,
    pub message_time: DateTime<Utc>,
    /// A chat message: stored in the same transaction as the id.
    pub chat: Option<NewChatMessage>,
    /// Anything else (lifecycle, deletes, revocations): kept until processed.
    pub body: Option<Value>,
}
