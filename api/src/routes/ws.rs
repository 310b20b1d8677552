//! `GET /ws?token=`: the WebSocket the front end listens on. Task changes are persisted by
//! whoever makes them; a Postgres trigger publishes each committed change on `task_updates`,
//! the [`TaskHub`] listens and fans `TASK_UPDATE {task, old_status}` out to the owner's
//! connections only, in commit order.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::AppState;
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
        let Some(user_id) = payload["user_id"].as_str() else {
            continue;
        };
        let mut task = payload["task"].clone();
        if let Some(t) = task.as_object_mut() {
            t.remove("user_id");
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
    Ok(upgrade.on_upgrade(move |socket| serve(socket, user.user_id, events)))
}

async fn serve(socket: WebSocket, user_id: String, mut events: broadcast::Receiver<TaskEvent>) {
    let (mut sink, mut incoming) = socket.split();
    loop {
        tokio::select! {
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
