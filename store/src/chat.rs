//! Twitch chat capture: the channel a user connected, EventSub messages (deduplicated on their
//! message id and kept as an outbox until processed) and chat rows.
//!
//! The webhook accepts messages in batches: [`ChatStore::accept_eventsub`] commits the message
//! ids and the chat rows of a whole batch in one transaction, so a message is either stored
//! once or not acknowledged at all.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

pub use gt_types::chat::{IncomingEvent, NewChatMessage, StoredMessageType};

use crate::error::{StoreError, StoreResult};
use crate::pg::PgStore;

/// How chat capture receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CaptureTransport {
    /// Twitch posts to our public `/eventsub/webhook`.
    #[default]
    Webhook,
    /// A worker holds an EventSub WebSocket session (no public URL needed).
    Websocket,
}

impl CaptureTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Websocket => "websocket",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "websocket" {
            Self::Websocket
        } else {
            Self::Webhook
        }
    }
}

/// The Twitch account a user connected, with what chat capture last reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwitchChannel {
    pub user_id: String,
    pub broadcaster_id: String,
    pub login: String,
    pub capture_enabled: bool,
    pub capture_transport: CaptureTransport,
    /// The EventSub subscriptions as last listed or created (Twitch's JSON shape).
    pub subscriptions: Value,
    pub last_revocation: Option<String>,
    pub last_revocation_at: Option<DateTime<Utc>>,
    /// Twitch refused the user's tokens: capture cannot resubscribe until they reconnect.
    pub token_lost: bool,
    pub token_validated_at: Option<DateTime<Utc>>,
    /// The stream record of the broadcast in progress (set by `stream.online`).
    pub live_stream_id: Option<String>,
}

/// A stored event not processed yet.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub message_id: String,
    pub message_type: StoredMessageType,
    pub subscription_type: Option<String>,
    pub broadcaster_id: Option<String>,
    pub message_time: DateTime<Utc>,
    pub body: Value,
}

/// A chat row as the pipeline and the editor read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatLine {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub sender_id: String,
    pub user_name: String,
    pub message: String,
    pub emote_count: i64,
    /// The emotes' names (from the message's fragments), in order.
    pub emotes: Vec<String>,
}

#[async_trait]
pub trait ChatStore: Send + Sync {
    async fn twitch_channel(&self, user_id: &str) -> StoreResult<Option<TwitchChannel>>;
    async fn twitch_channel_of_broadcaster(
        &self,
        broadcaster_id: &str,
    ) -> StoreResult<Option<TwitchChannel>>;
    /// Records the Twitch account the user connected; the same account connected by another
    /// user is a conflict (its events can only have one owner).
    async fn connect_twitch_channel(
        &self,
        user_id: &str,
        broadcaster_id: &str,
        login: &str,
    ) -> StoreResult<()>;
    async fn disconnect_twitch_channel(&self, user_id: &str) -> StoreResult<()>;
    /// Every connected channel (the hourly token validation walks them).
    async fn all_twitch_channels(&self) -> StoreResult<Vec<TwitchChannel>>;
    async fn set_capture(
        &self,
        user_id: &str,
        enabled: bool,
        transport: CaptureTransport,
    ) -> StoreResult<()>;
    /// What ChatCapture found or created, and whether the user's token still works.
    async fn record_capture_state(
        &self,
        user_id: &str,
        subscriptions: &Value,
        token_lost: bool,
    ) -> StoreResult<()>;
    async fn record_revocation(
        &self,
        broadcaster_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn record_token_validation(
        &self,
        user_id: &str,
        valid: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn set_live_stream(&self, user_id: &str, stream_id: Option<&str>) -> StoreResult<()>;

    /// Stores a batch: message ids not seen before, their chat rows (for a connected
    /// broadcaster) and other events' bodies, in one transaction. Returns which message ids
    /// were new (the rest are redeliveries, acknowledged without processing).
    async fn accept_eventsub(
        &self,
        batch: &[IncomingEvent],
        chat_retention_secs: i64,
    ) -> StoreResult<Vec<String>>;
    /// Stored events still to act on, oldest first.
    async fn pending_events(&self, limit: i64) -> StoreResult<Vec<PendingEvent>>;
    async fn mark_event_processed(&self, message_id: &str, error: Option<&str>) -> StoreResult<()>;

    /// A moderator deleted one message.
    async fn mark_chat_deleted(&self, broadcaster_id: &str, message_id: &str) -> StoreResult<u64>;
    /// A timeout/ban (`target = Some`) or a clear: every message up to `before` is deleted.
    async fn clear_chat(
        &self,
        broadcaster_id: &str,
        target_user_id: Option<&str>,
        before: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// The owner's chat lines in `[from, to)`, in time order (deleted ones left out).
    async fn chat_between(
        &self,
        user_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<ChatLine>>;
    /// When the stream started (`streams.stream_date`), if known: chat is aligned to it.
    async fn stream_start(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<Option<DateTime<Utc>>>;
    /// The stream's chat peaks as ingestion found them (server-managed).
    async fn set_stream_chat_highlights(
        &self,
        user_id: &str,
        stream_id: &str,
        peaks: &[gt_types::chat::ChatPeak],
    ) -> StoreResult<()>;
    /// The stream's chat peaks as its last ingestion stored them (none when never computed).
    async fn stream_chat_highlights(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<Vec<gt_types::chat::ChatPeak>>;
    /// Removes chat rows past their retention and EventSub ids older than `ids_before`.
    async fn purge_chat(&self, now: DateTime<Utc>, ids_before: DateTime<Utc>) -> StoreResult<u64>;
}

fn channel_from_row(row: &sqlx::postgres::PgRow) -> StoreResult<TwitchChannel> {
    Ok(TwitchChannel {
        user_id: row.try_get("user_id")?,
        broadcaster_id: row.try_get("broadcaster_id")?,
        login: row.try_get("login")?,
        capture_enabled: row.try_get("capture_enabled")?,
        capture_transport: CaptureTransport::parse(row.try_get("capture_transport")?),
        subscriptions: row.try_get("subscriptions")?,
        last_revocation: row.try_get("last_revocation")?,
        last_revocation_at: row.try_get("last_revocation_at")?,
        token_lost: row.try_get("token_lost")?,
        token_validated_at: row.try_get("token_validated_at")?,
        live_stream_id: row.try_get("live_stream_id")?,
    })
}

fn message_type_str(t: StoredMessageType) -> &'static str {
    match t {
        StoredMessageType::Notification => "notification",
        StoredMessageType::Revocation => "revocation",
    }
}

#[async_trait]
impl ChatStore for PgStore {
    async fn twitch_channel(&self, user_id: &str) -> StoreResult<Option<TwitchChannel>> {
        sqlx::query("SELECT * FROM twitch_channels WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(channel_from_row)
            .transpose()
    }

    async fn twitch_channel_of_broadcaster(
        &self,
        broadcaster_id: &str,
    ) -> StoreResult<Option<TwitchChannel>> {
        sqlx::query("SELECT * FROM twitch_channels WHERE broadcaster_id = $1")
            .bind(broadcaster_id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(channel_from_row)
            .transpose()
    }

    async fn connect_twitch_channel(
        &self,
        user_id: &str,
        broadcaster_id: &str,
        login: &str,
    ) -> StoreResult<()> {
        // Connecting another account replaces the old one (and its capture state). The same
        // account connected by another user violates the unique `broadcaster_id`: a conflict.
        let result = sqlx::query(
            "INSERT INTO twitch_channels (user_id, broadcaster_id, login) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET
               login = EXCLUDED.login, token_lost = false, updated_at = now(),
               broadcaster_id = EXCLUDED.broadcaster_id,
               subscriptions = CASE WHEN twitch_channels.broadcaster_id = EXCLUDED.broadcaster_id
                                    THEN twitch_channels.subscriptions ELSE '[]' END,
               live_stream_id = CASE WHEN twitch_channels.broadcaster_id = EXCLUDED.broadcaster_id
                                    THEN twitch_channels.live_stream_id END",
        )
        .bind(user_id)
        .bind(broadcaster_id)
        .bind(login)
        .execute(self.pool())
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                "this Twitch account is already connected to another user".into(),
            )),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    async fn disconnect_twitch_channel(&self, user_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM twitch_channels WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn all_twitch_channels(&self) -> StoreResult<Vec<TwitchChannel>> {
        sqlx::query("SELECT * FROM twitch_channels ORDER BY user_id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(channel_from_row)
            .collect()
    }

    async fn set_capture(
        &self,
        user_id: &str,
        enabled: bool,
        transport: CaptureTransport,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE twitch_channels SET capture_enabled = $2, capture_transport = $3,
               updated_at = now() WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(enabled)
        .bind(transport.as_str())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(
                "no Twitch account is connected".into(),
            ));
        }
        Ok(())
    }

    async fn record_capture_state(
        &self,
        user_id: &str,
        subscriptions: &Value,
        token_lost: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE twitch_channels SET subscriptions = $2, token_lost = $3, updated_at = now()
             WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(subscriptions)
        .bind(token_lost)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn record_revocation(
        &self,
        broadcaster_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE twitch_channels SET last_revocation = $2, last_revocation_at = $3,
               updated_at = now()
             WHERE broadcaster_id = $1",
        )
        .bind(broadcaster_id)
        .bind(reason)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn record_token_validation(
        &self,
        user_id: &str,
        valid: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE twitch_channels SET token_lost = NOT $2,
               token_validated_at = CASE WHEN $2 THEN $3 ELSE token_validated_at END,
               updated_at = now() WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(valid)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn set_live_stream(&self, user_id: &str, stream_id: Option<&str>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE twitch_channels SET live_stream_id = $2, updated_at = now() WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(stream_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn accept_eventsub(
        &self,
        batch: &[IncomingEvent],
        chat_retention_secs: i64,
    ) -> StoreResult<Vec<String>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = batch.iter().map(|e| e.message_id.as_str()).collect();
        let types: Vec<&str> = batch
            .iter()
            .map(|e| message_type_str(e.message_type))
            .collect();
        let sub_types: Vec<Option<&str>> = batch
            .iter()
            .map(|e| e.subscription_type.as_deref())
            .collect();
        let broadcasters: Vec<Option<&str>> =
            batch.iter().map(|e| e.broadcaster_id.as_deref()).collect();
        let times: Vec<DateTime<Utc>> = batch.iter().map(|e| e.message_time).collect();
        let bodies: Vec<Option<Value>> = batch.iter().map(|e| e.body.clone()).collect();

        // The chat rows of the batch, each with its EventSub message id: only rows whose id
        // is new in this statement are inserted.
        let chats: Vec<Value> = batch
            .iter()
            .filter_map(|e| {
                let mut row = serde_json::to_value(e.chat.as_ref()?).ok()?;
                row["eventsub_id"] = Value::String(e.message_id.clone());
                Some(row)
            })
            .collect();
        // One statement (one implicit transaction, one round trip): the ids not seen before,
        // then their chat rows for a connected broadcaster (rows of a broadcaster nobody
        // connected have no owner and are not kept). A redelivery, within this batch or from
        // before, inserts nothing.
        let fresh: Vec<String> = sqlx::query_scalar(
            "WITH fresh AS (
               INSERT INTO eventsub_messages
                 (message_id, message_type, subscription_type, broadcaster_id, message_time,
                  body, processed_at)
               SELECT id, kind, sub_type, broadcaster, at, body,
                      CASE WHEN body IS NULL THEN now() END
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                           $6::jsonb[]) AS x(id, kind, sub_type, broadcaster, at, body)
               ON CONFLICT (message_id) DO NOTHING
               RETURNING message_id
             ), chat AS (
               INSERT INTO chat_messages
                 (user_id, id, channel_id, sender_id, message, user_name, user_login,
                  event_type, \"timestamp\", ttl, badges, fragments, color, reply,
                  message_type, emote_count)
               SELECT c.user_id, x.id, x.channel_id, x.sender_id, x.message, x.user_name,
                      x.user_login, 'channel.chat.message', x.timestamp,
                      extract(epoch FROM x.timestamp)::bigint + $8, x.badges, x.fragments,
                      x.color, x.reply, x.message_type, x.emote_count
               FROM jsonb_to_recordset($7) AS x(
                      eventsub_id text, id text, channel_id text, sender_id text, message text,
                      user_name text, user_login text, timestamp timestamptz, badges jsonb,
                      fragments jsonb, color text, reply jsonb, message_type text,
                      emote_count bigint)
               JOIN fresh f ON f.message_id = x.eventsub_id
               JOIN twitch_channels c ON c.broadcaster_id = x.channel_id
               ON CONFLICT (user_id, id) DO NOTHING
             )
             SELECT message_id FROM fresh",
        )
        .bind(&ids)
        .bind(&types)
        .bind(&sub_types)
        .bind(&broadcasters)
        .bind(&times)
        .bind(&bodies)
        .bind(Value::Array(chats))
        .bind(chat_retention_secs)
        .fetch_all(self.pool())
        .await?;
        Ok(fresh)
    }

    async fn pending_events(&self, limit: i64) -> StoreResult<Vec<PendingEvent>> {
        let rows = sqlx::query(
            "SELECT message_id, message_type, subscription_type, broadcaster_id, message_time,
                    body
             FROM eventsub_messages WHERE processed_at IS NULL AND body IS NOT NULL
             ORDER BY message_time, received_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("message_type")?;
                Ok(PendingEvent {
                    message_id: r.try_get("message_id")?,
                    message_type: if kind == "revocation" {
                        StoredMessageType::Revocation
                    } else {
                        StoredMessageType::Notification
                    },
                    subscription_type: r.try_get("subscription_type")?,
                    broadcaster_id: r.try_get("broadcaster_id")?,
                    message_time: r.try_get("message_time")?,
                    body: r.try_get("body")?,
                })
            })
            .collect()
    }

    async fn mark_event_processed(&self, message_id: &str, error: Option<&str>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE eventsub_messages SET processed_at = now(), process_error = $2
             WHERE message_id = $1",
        )
        .bind(message_id)
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn mark_chat_deleted(&self, broadcaster_id: &str, message_id: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE chat_messages SET deleted = true, updated_at = now()
             WHERE channel_id = $1 AND id = $2 AND NOT deleted",
        )
        .bind(broadcaster_id)
        .bind(message_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn clear_chat(
        &self,
        broadcaster_id: &str,
        target_user_id: Option<&str>,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE chat_messages SET deleted = true, updated_at = now()
             WHERE channel_id = $1 AND ($2::text IS NULL OR sender_id = $2)
               AND \"timestamp\" <= $3 AND NOT deleted",
        )
        .bind(broadcaster_id)
        .bind(target_user_id)
        .bind(before)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn chat_between(
        &self,
        user_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<ChatLine>> {
        let rows = sqlx::query(
            "SELECT id, \"timestamp\", coalesce(sender_id, '') AS sender_id,
                    coalesce(user_name, '') AS user_name, coalesce(message, '') AS message,
                    coalesce(emote_count, 0) AS emote_count,
                    coalesce(ARRAY(SELECT f->>'text'
                                   FROM jsonb_array_elements(
                                        CASE WHEN jsonb_typeof(fragments) = 'array'
                                             THEN fragments ELSE '[]' END) f
                                   WHERE f->>'type' = 'emote'), '{}') AS emotes
             FROM chat_messages
             WHERE user_id = $1 AND \"timestamp\" >= $2 AND \"timestamp\" < $3 AND NOT deleted
             ORDER BY \"timestamp\", id",
        )
        .bind(user_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChatLine {
                    id: r.try_get("id")?,
                    timestamp: r.try_get("timestamp")?,
                    sender_id: r.try_get("sender_id")?,
                    user_name: r.try_get("user_name")?,
                    message: r.try_get("message")?,
                    emote_count: r.try_get("emote_count")?,
                    emotes: r.try_get("emotes")?,
                })
            })
            .collect()
    }

    async fn stream_start(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let start: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT stream_date FROM streams WHERE user_id = $1 AND id = $2")
                .bind(user_id)
                .bind(stream_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(start.flatten())
    }

    async fn set_stream_chat_highlights(
        &self,
        user_id: &str,
        stream_id: &str,
        peaks: &[gt_types::chat::ChatPeak],
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE streams SET chat_highlights = $3, updated_at = now()
             WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(stream_id)
        .bind(sqlx::types::Json(peaks))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn stream_chat_highlights(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<Vec<gt_types::chat::ChatPeak>> {
        let peaks: Option<Option<Value>> = sqlx::query_scalar(
            "SELECT chat_highlights FROM streams WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(stream_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(peaks
            .flatten()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default())
    }

    async fn purge_chat(&self, now: DateTime<Utc>, ids_before: DateTime<Utc>) -> StoreResult<u64> {
        let chat = sqlx::query("DELETE FROM chat_messages WHERE ttl IS NOT NULL AND ttl < $1")
            .bind(now.timestamp())
            .execute(self.pool())
            .await?;
        sqlx::query(
            "DELETE FROM eventsub_messages WHERE received_at < $1
               AND (processed_at IS NOT NULL OR body IS NULL)",
        )
        .bind(ids_before)
        .execute(self.pool())
        .await?;
        Ok(chat.rows_affected())
    }
}
