//! `GET /ws?token=`: the WebSocket the front end and the OBS pages listen on.
//!
//! **Tokens.** A user JWT opens a connection that receives the user's `TASK_UPDATE`s and may
//! subscribe to and act on any of the user's widgets. A widget's `access_token` (what an OBS
//! URL carries) opens a read-only connection to that one widget: no task updates, no actions,
//! and it is closed (code 4001) when the token is rotated or the widget deleted.
//!
//! **Fan-out.** Every change is published by Postgres at commit: tasks on `task_updates`,
//! widgets and captured chat on `widget_updates` (triggers, migration 0010), with the key and
//! what changed, never the row. Each API process's [`Hub`] listens, reads the row once and
//! sends one serialised message to the connections subscribed here, so several API processes
//! serve one user and a page connected to any of them sees every change, in commit order.
//!
//! **Protocol** (`reference/anchor-frontend.md` §2.5): `WIDGET_SUBSCRIBE` is idempotent and
//! always answers `WIDGET_INITIAL_STATE`; `WIDGET_ACTION` answers `WIDGET_ACTION_RESPONSE`
//! (also used to refuse a subscribe); changes arrive as `WIDGET_STATE_UPDATE` /
//! `WIDGET_CONFIG_UPDATE`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use gt_store::catalog::{STREAM_WIDGETS, TASKS};
use gt_store::widgets::WIDGET_CHANNEL;
use gt_store::{RecordStore, WidgetStore};
use gt_widgets::WidgetKind;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, mpsc};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::QueryPairs;

pub const TASK_CHANNEL: &str = "task_updates";
/// Close code for a widget-token connection whose token no longer opens the widget.
pub const CLOSE_TOKEN_REVOKED: u16 = 4001;
/// Messages queued for one connection before it counts as too slow and is closed.
const CONNECTION_QUEUE: usize = 256;
/// Actions waiting on one widget of one connection before more are refused.
const ACTIONS_PENDING: usize = 64;
/// Captured chat lines read for an overlay (filters drop some; the overlay keeps ≤ 100).
const CHAT_LINES_READ: i64 = 300;

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(connect))
}

/// One published task change: whose it is and the message to send.
#[derive(Debug, Clone)]
pub struct TaskEvent {
    pub user_id: String,
    pub message: String,
}

/// What the hub hands a connection.
#[derive(Debug, Clone)]
enum Outgoing {
    /// Shared, not copied, by every connection it goes to.
    Text(Utf8Bytes),
    Close(u16, &'static str),
}

type WidgetKey = (String, String);
type ConnId = u64;

struct Subscriber {
    tx: mpsc::Sender<Outgoing>,
    /// Opened with the widget's own token (closed when that token stops working).
    via_widget_token: bool,
}

#[derive(Default)]
struct Subscriptions {
    kind: Option<WidgetKind>,
    subscribers: HashMap<ConnId, Subscriber>,
}

/// The widgets this process's connections are subscribed to.
#[derive(Default)]
struct Registry {
    widgets: HashMap<WidgetKey, Subscriptions>,
}

/// Fan-out of task and widget changes from Postgres to this process's WebSocket connections.
#[derive(Clone)]
pub struct Hub {
    tasks: broadcast::Sender<TaskEvent>,
    registry: Arc<Mutex<Registry>>,
    next_conn: Arc<AtomicU64>,
}

/// What the listener needs to turn a notification into messages.
#[derive(Clone)]
pub struct HubSources {
    pub pool: PgPool,
    pub records: Arc<dyn RecordStore>,
    pub widgets: Arc<dyn WidgetStore>,
}

impl Hub {
    /// Starts listening on the database; reconnects after errors.
    pub fn start(sources: HubSources) -> Self {
        let (tasks, _) = broadcast::channel(1024);
        let hub = Self {
            tasks,
            registry: Arc::default(),
            next_conn: Arc::new(AtomicU64::new(1)),
        };
        let listening = hub.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = listening.listen(&sources).await {
                    tracing::warn!("change listener: {e:#}; reconnecting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        hub
    }

    pub fn subscribe_tasks(&self) -> broadcast::Receiver<TaskEvent> {
        self.tasks.subscribe()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, key: WidgetKey, kind: Option<WidgetKind>, conn: ConnId, sub: Subscriber) {
        let mut reg = self.registry();
        let entry = reg.widgets.entry(key).or_default();
        entry.kind = kind;
        entry.subscribers.insert(conn, sub);
    }

    fn remove(&self, key: &WidgetKey, conn: ConnId) {
        let mut reg = self.registry();
        if let Some(subs) = reg.widgets.get_mut(key) {
            subs.subscribers.remove(&conn);
            if subs.subscribers.is_empty() {
                reg.widgets.remove(key);
            }
        }
    }

    fn has_subscribers(&self, key: &WidgetKey) -> bool {
        self.registry().widgets.contains_key(key)
    }

    /// Sends to every connection subscribed to `key` (those opened with a widget token only,
    /// if `token_holders_only`); a connection whose queue is full is closed, not waited for.
    fn send(&self, key: &WidgetKey, message: Outgoing, token_holders_only: bool) {
        let mut reg = self.registry();
        let Some(subs) = reg.widgets.get_mut(key) else {
            return;
        };
        subs.subscribers.retain(|conn, sub| {
            if token_holders_only && !sub.via_widget_token {
                return true;
            }
            match sub.tx.try_send(message.clone()) {
                Ok(()) => !matches!(message, Outgoing::Close(..)),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(conn, "widget subscriber too slow; closing");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if subs.subscribers.is_empty() {
            reg.widgets.remove(key);
        }
    }

    /// The subscribed chat overlays of one user.
    fn chat_overlays(&self, user_id: &str) -> Vec<WidgetKey> {
        self.registry()
            .widgets
            .iter()
            .filter(|(k, s)| k.0 == user_id && s.kind == Some(WidgetKind::ChatOverlay))
            .map(|(k, _)| k.clone())
            .collect()
    }

    async fn listen(&self, sources: &HubSources) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&sources.pool).await?;
        listener.listen_all([TASK_CHANNEL, WIDGET_CHANNEL]).await?;
        loop {
            let n = listener.recv().await?;
            let Ok(payload) = serde_json::from_str::<Value>(n.payload()) else {
                tracing::warn!("unreadable notification: {}", n.payload());
                continue;
            };
            if n.channel() == TASK_CHANNEL {
                self.task_changed(sources.records.as_ref(), &payload)
                    .await?;
            } else if let Err(e) = self.widget_changed(sources, &payload).await {
                // One unreadable widget must not stop the fan-out of the others.
                tracing::warn!("widget change {payload}: {e}");
            }
        }
    }

    async fn task_changed(&self, records: &dyn RecordStore, payload: &Value) -> anyhow::Result<()> {
        let (Some(user_id), Some(id)) = (payload["user_id"].as_str(), payload["id"].as_str())
        else {
            return Ok(());
        };
        // From the record store (Postgres, or DynamoDB in a DynamoDB deployment, whose writer
        // publishes the same notification).
        let mut task = match records.get(user_id, &TASKS, id).await {
            Ok(task) => task,
            Err(gt_store::StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if let Some(t) = task.as_object_mut() {
            t.remove("user_id");
        }
        // The row may already be newer than this change: report this change's status,
        // progress and (when it fitted in the notification) message.
        if let Some(t) = task.as_object_mut() {
            t.insert("status".into(), payload["status"].clone());
            for field in ["progress", "updated_at"] {
                if let Some(v) = payload.get(field) {
                    t.insert(field.into(), v.clone());
                }
            }
            if payload["message_included"] == true {
                t.insert("message".into(), payload["message"].clone());
            }
        }
        let message = json!({
            "type": "TASK_UPDATE",
            "task": task,
            "old_status": payload["old_status"],
        })
        .to_string();
        // No subscribers is fine.
        let _ = self.tasks.send(TaskEvent {
            user_id: user_id.to_string(),
            message,
        });
        Ok(())
    }

    async fn widget_changed(&self, sources: &HubSources, payload: &Value) -> ApiResult<()> {
        let Some(user_id) = payload["u"].as_str() else {
            return Ok(());
        };
        let what = payload["k"].as_str().unwrap_or_default();
        if what == "chat" {
            for key in self.chat_overlays(user_id) {
                let Some(widget) = sources.widgets.widget(&key.0, &key.1).await? else {
                    continue;
                };
                let state = chat_overlay_state(sources, &widget.user_id, &widget.config).await?;
                self.send(&key, state_update(&key.1, &state), false);
            }
            return Ok(());
        }
        let Some(widget_id) = payload["w"].as_str() else {
            return Ok(());
        };
        let key = (user_id.to_string(), widget_id.to_string());
        if !self.has_subscribers(&key) {
            return Ok(());
        }
        match what {
            "token" => self.send(
                &key,
                Outgoing::Close(CLOSE_TOKEN_REVOKED, "widget token rotated"),
                true,
            ),
            "deleted" => {
                self.send(
                    &key,
                    Outgoing::Close(CLOSE_TOKEN_REVOKED, "widget deleted"),
                    true,
                );
                self.registry().widgets.remove(&key);
            }
            "config" | "state" => {
                let Some(widget) = sources.widgets.widget(user_id, widget_id).await? else {
                    return Ok(());
                };
                if let Some(subs) = self.registry().widgets.get_mut(&key) {
                    subs.kind = widget.kind;
                }
                if what == "config" {
                    let message = json!({
                        "type": "WIDGET_CONFIG_UPDATE",
                        "widgetId": widget_id,
                        "config": widget.config,
                    });
                    self.send(&key, Outgoing::Text(message.to_string().into()), false);
                }
                let state = match widget.kind {
                    // An overlay's state follows its config (filters, message count).
                    Some(WidgetKind::ChatOverlay) if what == "config" => {
                        chat_overlay_state(sources, user_id, &widget.config).await?
                    }
                    Some(WidgetKind::ChatOverlay) => return Ok(()),
                    _ if what == "state" => widget.state,
                    _ => return Ok(()),
                };
                self.send(&key, state_update(widget_id, &state), false);
            }
            _ => {}
        }
        Ok(())
    }
}

fn state_update(widget_id: &str, state: &Value) -> Outgoing {
    let message = json!({
        "type": "WIDGET_STATE_UPDATE",
        "widgetId": widget_id,
        "state": state,
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    Outgoing::Text(message.to_string().into())
}

async fn chat_overlay_state(
    sources: &HubSources,
    user_id: &str,
    config: &Value,
) -> ApiResult<Value> {
    let lines = sources
        .widgets
        .recent_chat(user_id, CHAT_LINES_READ)
        .await?;
    Ok(gt_widgets::chat::overlay_state(config, lines, Utc::now()))
}

/// Who opened the connection.
#[derive(Debug, Clone)]
enum Principal {
    User(AuthUser),
    /// An OBS page: read-only, one widget.
    WidgetToken {
        user_id: String,
        widget_id: String,
        token: String,
    },
}

impl Principal {
    fn user_id(&self) -> &str {
        match self {
            Self::User(u) => &u.user_id,
            Self::WidgetToken { user_id, .. } => user_id,
        }
    }
}

/// A JWT has three dot-separated parts; a widget token is a plain random string.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

async fn connect(
    State(state): State<AppState>,
    query: QueryPairs,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let token = query
        .one("token")?
        .ok_or_else(|| ApiError::Unauthorized("the token query parameter is required".into()))?;
    let principal = if looks_like_jwt(token) {
        Principal::User(state.auth.verify(token).await?)
    } else {
        let (user_id, widget_id) =
            state.widgets.widget_by_token(token).await?.ok_or_else(|| {
                ApiError::Unauthorized(
                    "unknown or rotated widget token: copy the OBS URL again".into(),
                )
            })?;
        Principal::WidgetToken {
            user_id,
            widget_id,
            token: token.to_string(),
        }
    };
    Ok(upgrade.on_upgrade(move |socket| serve(socket, state, principal)))
}

/// Time left until `expires_at` (seconds since the epoch).
fn until(expires_at: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(expires_at).saturating_sub(now)
}

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum ClientMessage {
    #[serde(rename = "WIDGET_SUBSCRIBE")]
    Subscribe {
        #[serde(rename = "widgetId")]
        widget_id: String,
    },
    #[serde(rename = "WIDGET_UNSUBSCRIBE")]
    Unsubscribe {
        #[serde(rename = "widgetId")]
        widget_id: String,
    },
    #[serde(rename = "WIDGET_ACTION")]
    Action {
        #[serde(rename = "widgetId")]
        widget_id: String,
        action: String,
        #[serde(default)]
        payload: Value,
    },
}

/// One connection's session.
struct Session {
    state: AppState,
    principal: Principal,
    conn: ConnId,
    tx: mpsc::Sender<Outgoing>,
    subscribed: HashSet<WidgetKey>,
    /// Pending actions, one queue per widget.
    action_queues: HashMap<String, mpsc::Sender<(String, Value)>>,
}

fn action_response(widget_id: &str, action: &str, result: Result<(), String>) -> Value {
    let mut message = json!({
        "type": "WIDGET_ACTION_RESPONSE",
        "widgetId": widget_id,
        "action": action,
        "success": result.is_ok(),
    });
    if let Err(e) = result {
        message["error"] = e.into();
    }
    message
}

impl Session {
    /// Answers one client message (`None`: nothing to answer).
    async fn handle(&mut self, text: &str) -> Option<Value> {
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(m) => m,
            // The front end sends `{"event":"subscribe"}` on every open (legacy): nothing to do.
            Err(_)
                if serde_json::from_str::<Value>(text)
                    .is_ok_and(|v| v.get("event").is_some() && v.get("type").is_none()) =>
            {
                return None;
            }
            Err(e) => {
                return Some(json!({"type": "ERROR", "error": format!("unreadable message: {e}")}));
            }
        };
        match message {
            ClientMessage::Subscribe { widget_id } => {
                Some(match self.subscribe(&widget_id).await {
                    Ok(initial) => initial,
                    Err(e) => action_response(&widget_id, "subscribe", Err(e)),
                })
            }
            ClientMessage::Unsubscribe { widget_id } => {
                let key = (self.principal.user_id().to_string(), widget_id);
                self.state.hub.remove(&key, self.conn);
                self.subscribed.remove(&key);
                None
            }
            ClientMessage::Action {
                widget_id,
                action,
                payload,
            } => match &self.principal {
                Principal::WidgetToken { .. } => Some(action_response(
                    &widget_id,
                    &action,
                    Err("read-only: an OBS page's widget token cannot control the widget".into()),
                )),
                Principal::User(user) => {
                    self.queue_action(user.user_id.clone(), widget_id, action, payload);
                    None
                }
            },
        }
    }

    /// Actions on one widget are applied in the order sent, actions on different widgets at
    /// the same time (a dashboard or a bot driving many widgets is not serialised): one queue
    /// per widget, each answered through the connection's outgoing messages.
    fn queue_action(&mut self, user_id: String, widget_id: String, action: String, payload: Value) {
        let queue = self
            .action_queues
            .entry(widget_id.clone())
            .or_insert_with(|| {
                let (queue, mut actions) = mpsc::channel::<(String, Value)>(ACTIONS_PENDING);
                let (state, tx) = (self.state.clone(), self.tx.clone());
                let widget_id = widget_id.clone();
                tokio::spawn(async move {
                    while let Some((action, payload)) = actions.recv().await {
                        let result =
                            crate::widgets::act(&state, &user_id, &widget_id, &action, payload)
                                .await
                                .map_err(|e| e.to_string());
                        let reply = action_response(&widget_id, &action, result);
                        if tx
                            .send(Outgoing::Text(reply.to_string().into()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
                queue
            });
        if queue.try_send((action.clone(), payload)).is_err() {
            // Refused, not dropped silently: the client hears why.
            let reply = action_response(
                &widget_id,
                &action,
                Err(format!(
                    "too many actions pending on this widget (at most {ACTIONS_PENDING})"
                )),
            );
            let _ = self.tx.try_send(Outgoing::Text(reply.to_string().into()));
        }
    }

    /// Registers the subscription first, then reads the widget: a change committed in between
    /// is sent after the initial state, never lost.
    async fn subscribe(&mut self, widget_id: &str) -> Result<Value, String> {
        let user_id = self.principal.user_id().to_string();
        if let Principal::WidgetToken {
            widget_id: own,
            token,
            ..
        } = &self.principal
        {
            if own != widget_id {
                return Err("this widget token opens only its own widget".into());
            }
            // The token may have been rotated since the connection opened.
            let current = self
                .state
                .widgets
                .widget_by_token(token)
                .await
                .map_err(|e| e.to_string())?;
            if current.as_ref().map(|(_, w)| w.as_str()) != Some(widget_id) {
                return Err("this widget token was rotated: copy the OBS URL again".into());
            }
        }
        let key = (user_id.clone(), widget_id.to_string());
        let widget = self
            .state
            .widgets
            .widget(&user_id, widget_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("widget {widget_id} not found"))?;
        self.state.hub.add(
            key.clone(),
            widget.kind,
            self.conn,
            Subscriber {
                tx: self.tx.clone(),
                via_widget_token: matches!(self.principal, Principal::WidgetToken { .. }),
            },
        );
        self.subscribed.insert(key);
        let mut record = self
            .state
            .records
            .get(&user_id, &STREAM_WIDGETS, widget_id)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(r) = record.as_object_mut() {
            if matches!(self.principal, Principal::WidgetToken { .. }) {
                r.remove("access_token");
            }
            if widget.kind == Some(WidgetKind::ChatOverlay) {
                let lines = self
                    .state
                    .widgets
                    .recent_chat(&user_id, CHAT_LINES_READ)
                    .await
                    .map_err(|e| e.to_string())?;
                r.insert(
                    "state".into(),
                    gt_widgets::chat::overlay_state(&widget.config, lines, Utc::now()),
                );
            }
        }
        if widget.kind == Some(WidgetKind::AdTimer) {
            // An open ad timer follows Twitch's ad schedule (its workflow polls it).
            crate::widgets::follow_ad_schedule(&self.state, &user_id, widget_id, &widget);
        }
        Ok(json!({
            "type": "WIDGET_INITIAL_STATE",
            "widgetId": widget_id,
            "widget": record,
        }))
    }

    fn end(&self) {
        for key in &self.subscribed {
            self.state.hub.remove(key, self.conn);
        }
    }
}

async fn serve(socket: WebSocket, state: AppState, principal: Principal) {
    let (mut sink, mut incoming) = socket.split();
    let (tx, mut outgoing) = mpsc::channel(CONNECTION_QUEUE);
    // Only a user's own connections hear about their tasks.
    let mut tasks = match &principal {
        Principal::User(_) => Some(state.hub.subscribe_tasks()),
        Principal::WidgetToken { .. } => None,
    };
    // A user's connection lives no longer than the token that opened it.
    let expires = match &principal {
        Principal::User(u) => until(u.expires_at),
        Principal::WidgetToken { .. } => Duration::from_secs(100 * 365 * 24 * 3600),
    };
    let expiry = tokio::time::sleep(expires);
    tokio::pin!(expiry);
    let mut session = Session {
        conn: state.hub.next_conn.fetch_add(1, Ordering::Relaxed),
        state,
        principal,
        tx,
        subscribed: HashSet::new(),
        action_queues: HashMap::new(),
    };
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            _ = &mut expiry => {
                let _ = sink.send(close(close_code::POLICY, "token expired")).await;
                break;
            }
            event = async { tasks.as_mut().expect("guarded").recv().await }, if tasks.is_some() => {
                match event {
                    Ok(e) if e.user_id == session.principal.user_id() => {
                        if sink.send(Message::Text(e.message.into())).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("websocket fell {n} task updates behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
            out = outgoing.recv() => match out {
                Some(Outgoing::Text(text)) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = sink.send(close(code, reason)).await;
                    break;
                }
                None => break,
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = session.handle(text.as_str()).await
                        && sink.send(Message::Text(reply.to_string().into())).await.is_err()
                    {
                        break;
                    }
                }
                // Pings are answered by axum.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    session.end();
}
