//! OBS widgets' live state. A widget's state changes only through [`WidgetStore::apply_widget_input`]:
//! the row is locked, the pure state machine of its kind (`gt_widgets::apply`) computes the next
//! state, and the new state is written in the same transaction, so a user's action and a timer
//! firing at the same moment are applied one after the other, never lost. The table's trigger
//! publishes the change on `widget_updates` at commit.
//!
//! A chat overlay's state is not stored: it is the user's recent captured chat, read here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gt_widgets::chat::ChatLine;
use gt_widgets::{Effect, Input, WidgetKind};
use serde_json::Value;
use sqlx::Row;

use crate::error::{StoreError, StoreResult};
use crate::pg::PgStore;

/// What the WebSocket hubs listen on (see migration 0010).
pub const WIDGET_CHANNEL: &str = "widget_updates";

/// A widget as the live side needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Widget {
    pub user_id: String,
    pub id: String,
    /// `None` for the types without behaviour yet (poll, name_queue, ...).
    pub kind: Option<WidgetKind>,
    pub config: Value,
    pub state: Value,
    pub active: bool,
    /// What the widget's OBS URL carries.
    pub access_token: Option<String>,
}

/// The result of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedInput {
    pub kind: WidgetKind,
    pub state: Value,
    /// Helix calls the action asks for; the caller performs them and applies their results.
    pub effects: Vec<Effect>,
    /// When the new state next needs a server transition (the widget's durable timer).
    pub wake_at: Option<DateTime<Utc>>,
    pub changed: bool,
}

#[async_trait]
pub trait WidgetStore: Send + Sync {
    /// The widget an OBS page's token opens: `(user_id, widget_id)`.
    async fn widget_by_token(&self, token: &str) -> StoreResult<Option<(String, String)>>;
    async fn widget(&self, user_id: &str, id: &str) -> StoreResult<Option<Widget>>;
    /// Applies one input to the widget's state (see the module docs). A refused input
    /// (unknown action, bad payload, not possible in this state) is `Invalid` and changes
    /// nothing; a widget of another user is `NotFound`.
    async fn apply_widget_input(
        &self,
        user_id: &str,
        id: &str,
        input: &Input,
        now: DateTime<Utc>,
    ) -> StoreResult<AppliedInput>;
    /// The ids of the user's active widgets of one kind (e.g. the ad timers an ad break drives).
    async fn widgets_of_kind(&self, user_id: &str, kind: WidgetKind) -> StoreResult<Vec<String>>;
    /// The user's most recent captured chat that is still shown (not deleted), oldest first.
    async fn recent_chat(&self, user_id: &str, limit: i64) -> StoreResult<Vec<ChatLine>>;
}

fn widget_from_row(row: &sqlx::postgres::PgRow) -> StoreResult<Widget> {
    let kind: String = row.try_get("type")?;
    Ok(Widget {
        user_id: row.try_get("user_id")?,
        id: row.try_get("id")?,
        kind: WidgetKind::from_type(&kind),
        config: row
            .try_get::<Option<Value>, _>("config")?
            .unwrap_or(Value::Null),
        state: row
            .try_get::<Option<Value>, _>("state")?
            .unwrap_or(Value::Null),
        active: row.try_get::<Option<bool>, _>("active")?.unwrap_or(true),
        access_token: row.try_get("access_token")?,
    })
}

/// One widget's row (a literal, so it can be extended with `concat!`).
macro_rules! select_widget {
    () => {
        "SELECT user_id, id, type, config, state, active, access_token FROM stream_widgets \
         WHERE user_id = $1 AND id = $2"
    };
}

#[async_trait]
impl WidgetStore for PgStore {
    async fn widget_by_token(&self, token: &str) -> StoreResult<Option<(String, String)>> {
        if token.is_empty() {
            return Ok(None);
        }
        let row = sqlx::query("SELECT user_id, id FROM stream_widgets WHERE access_token = $1")
            .bind(token)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    async fn widget(&self, user_id: &str, id: &str) -> StoreResult<Option<Widget>> {
        let row = sqlx::query(select_widget!())
            .bind(user_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(widget_from_row).transpose()
    }

    async fn apply_widget_input(
        &self,
        user_id: &str,
        id: &str,
        input: &Input,
        now: DateTime<Utc>,
    ) -> StoreResult<AppliedInput> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(concat!(select_widget!(), " FOR UPDATE"))
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("stream_widgets/{id} not found")))?;
        let widget = widget_from_row(&row)?;
        let kind = widget.kind.ok_or_else(|| {
            StoreError::Invalid(
                "this widget's type has no live behaviour yet (live types: countdown, \
                 text_overlay, ad_timer, chat_overlay)"
                    .into(),
            )
        })?;
        let transition = gt_widgets::apply(kind, &widget.config, &widget.state, input, now)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let changed = transition.state != widget.state;
        if changed {
            sqlx::query(
                "UPDATE stream_widgets SET state = $3, updated_at = now() \
                 WHERE user_id = $1 AND id = $2",
            )
            .bind(user_id)
            .bind(id)
            .bind(&transition.state)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(AppliedInput {
            kind,
            state: transition.state,
            effects: transition.effects,
            wake_at: transition.wake_at,
            changed,
        })
    }

    async fn widgets_of_kind(&self, user_id: &str, kind: WidgetKind) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM stream_widgets WHERE user_id = $1 AND type = $2 \
             AND active IS DISTINCT FROM false ORDER BY id",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .fetch_all(self.pool())
        .await?)
    }

    async fn recent_chat(&self, user_id: &str, limit: i64) -> StoreResult<Vec<ChatLine>> {
        let rows = sqlx::query(
            "SELECT id, coalesce(sender_id, '') AS sender_id, coalesce(user_login, '') AS user_login, \
             coalesce(user_name, '') AS user_name, color, coalesce(badges, '[]') AS badges, \
             coalesce(fragments, '[]') AS fragments, coalesce(message, '') AS message, \"timestamp\" \
             FROM chat_messages WHERE user_id = $1 AND NOT deleted AND \"timestamp\" IS NOT NULL \
             ORDER BY \"timestamp\" DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut lines = rows
            .iter()
            .map(|r| {
                Ok(ChatLine {
                    id: r.try_get("id")?,
                    user_id: r.try_get("sender_id")?,
                    user_login: r.try_get("user_login")?,
                    user_name: r.try_get("user_name")?,
                    color: r.try_get("color")?,
                    badges: r.try_get("badges")?,
                    fragments: r.try_get("fragments")?,
                    text: r.try_get("message")?,
                    timestamp: r.try_get("timestamp")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        lines.reverse();
        Ok(lines)
    }
}
