//! `GET /ws?token=`: the WebSocket the front end listens on. Task changes are persisted by
//! whoever makes them; a Postgres trigger publishes each committed change's key and status on
//! `task_updates` (never the row: a NOTIFY payload is limited to 8000 bytes), the [`TaskHub`]
//! listens, reads the row and fans `TASK_UPDATE {task, old_status}` out to the owner's
//! connections only, in commit order. A connection is closed when its token expires.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::QueryPairs;

pub const TASK_CHANNEL: &str = "task_updates";

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(connect))
}

/// One published change: whose it is and the message to send.
#[derive(Debug, Clone)]
pub struct TaskEvent {
    pub user_id: String,
    pub message: String,
}

/// Fan-out of task updates from Postgres to WebSocket connections.
#[derive(Clone)]
pub struct TaskHub {
    tx: broadcast::Sender<TaskEvent>,
}

impl TaskHub {
    /// Starts listening on `pool`'s database; reconnects after errors.
    pub fn start(pool: PgPool) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let hub = Self { tx: tx.clone() };
        tokio::spawn(async move {
            loop {
                if let Err(e) = listen(&pool, &tx).await {
                    tracing::warn!("task update listener: {e:#}; reconnecting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        hub
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.tx.subscribe()
    }
}

async fn listen(pool: &PgPool, tx: &broadcast::Sender<TaskEvent>) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(TASK_CHANNEL).await?;
    loop {
        let n = listener.recv().await?;
        let Ok(payload) = serde_json::from_str::<Value>(n.payload()) else {
            tracing::warn!("unreadable task notification: {}", n.payload());
            continue;
        };
        let (Some(user_id), Some(id)) = (payload["user_id"].as_str(), payload["id"].as_str())
        else {
            continue;
        };
        let Some(mut task) = sqlx::query_scalar::<_, Value>(
            "SELECT to_jsonb(t) - 'user_id' FROM tasks t WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(id)
        .fetch_optional(pool)
        .await?
        else {
            continue;
        };
        // The row may already be newer than this change: report the status of this change.
        if let Some(t) = task.as_object_mut() {
            t.insert("status".into(), payload["status"].clone());
        }
        let message = json!({
            "type": "TASK_UPDATE",
            "task": task,
            "old_status": payload["old_status"],
        })
        .to_string();
        // No subscribers is fine.
        let _ = tx.send(TaskEvent {
            user_id: user_id.to_string(),
            message,
        });
    }
}

async fn connect(
    State(state): State<AppState>,
    query: QueryPairs,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let token = query
        .one("token")?
        .ok_or_else(|| ApiError::Unauthorized("the token query parameter is required".into()))?;
    let user = state.auth.verify(token).await?;
    let events = state.hub.subscribe();
    Ok(upgrade.on_upgrade(move |socket| serve(socket, user, events)))
}

/// Time left until `expires_at` (seconds since the epoch).
fn until(expires_at: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(expires_at).saturating_sub(now)
}

async fn serve(socket: WebSocket, user: AuthUser, mut events: broadcast::Receiver<TaskEvent>) {
    let (mut sink, mut incoming) = socket.split();
    let user_id = user.user_id;
    // The connection lives no longer than the token that opened it.
    let expiry = tokio::time::sleep(until(user.expires_at));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            _ = &mut expiry => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: close_code::POLICY,
                        reason: "token expired".into(),
                    })))
                    .await;
                return;
            }
            event = events.recv() => match event {
                Ok(e) if e.user_id == user_id => {
                    if sink.send(Message::Text(e.message.into())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(user_id, "websocket fell {n} task updates behind");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = incoming.next() => match msg {
                // Pings are answered by axum; other client messages are for widgets (later).
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
