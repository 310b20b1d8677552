//! Twitch EventSub: the public webhook and the chat-capture switch the profile page uses.
//!
//! - `POST /eventsub/webhook` (no JWT; Twitch's HMAC instead): verified over the raw bytes
//!   (see `gt_twitch::eventsub::verify_webhook`: signature, 10-minute freshness), dispatched on
//!   the `Twitch-Eventsub-Message-Type` header. A challenge is answered with the raw string as
//!   `text/plain`. A notification or revocation is stored — deduplicated on its message id,
//!   committed with the other requests of its batch — and answered 204 as soon as it is
//!   committed; a redelivery is answered 204 without being stored again. Anything else a
//!   stored event asks for (stream records, ChatCapture signals, deletes) happens afterwards in
//!   the [`EventProcessor`], which picks up unprocessed events again after a restart.
//! - `POST /eventsub/chat/subscribe` turns capture on (starts or wakes `ChatCapture`, which
//!   creates the subscriptions), `DELETE` turns it off, `GET /eventsub/chat/status` reports the
//!   subscriptions (from Twitch when it answers) and what capture last saw, in the shapes the
//!   front end reads.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use gt_store::catalog::STREAMS;
use gt_store::{
    CaptureTransport, ChatStore, IncomingEvent, PendingEvent, RecordStore, StoreError, WidgetStore,
};
use gt_twitch::eventsub::{
    Event, MessageType, VerifyError, WebhookBody, incoming_event, verify_webhook,
};
use gt_twitch::helix::SubscriptionFilter;
use gt_types::chat::{StoredMessageType, StreamWentLive, SubscriptionRevoked};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::workflows::{ChatSignal, Workflows};

/// Most messages committed in one transaction.
const MAX_BATCH: usize = 500;
/// Concurrent batch writers: while some commit (a commit waits for the WAL flush), the next
/// batch gathers.
const WRITERS: usize = 4;
/// How often the processor looks for events without being woken (after a restart, or when
/// processing failed and should be tried again).
const PROCESS_POLL: Duration = Duration::from_secs(5);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/eventsub/webhook", post(webhook))
        .route(
            "/eventsub/chat/subscribe",
            post(subscribe_chat).delete(unsubscribe_chat),
        )
        .route("/eventsub/chat/status", get(chat_status))
}

struct Job {
    event: IncomingEvent,
    /// `Ok(true)`: stored now; `Ok(false)`: a redelivery.
    done: oneshot::Sender<Result<bool, String>>,
}

/// Stores verified EventSub messages in batches and wakes the processor for lifecycle events.
#[derive(Clone)]
pub struct EventSubIngest {
    jobs: mpsc::Sender<Job>,
    secret: Arc<str>,
    wake: Arc<Notify>,
}

impl EventSubIngest {
    /// Starts the batch writers and the event processor.
    pub fn start(
        chat: Arc<dyn ChatStore>,
        records: Arc<dyn RecordStore>,
        widgets: Arc<dyn WidgetStore>,
        workflows: Workflows,
        secret: String,
        chat_retention_secs: i64,
    ) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>(MAX_BATCH * 8);
        let rx = Arc::new(Mutex::new(rx));
        let wake = Arc::new(Notify::new());
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(
                rx.clone(),
                chat.clone(),
                wake.clone(),
                chat_retention_secs,
            ));
        }
        tokio::spawn(
            EventProcessor {
                chat,
                records,
                widgets,
                workflows,
            }
            .run(wake.clone()),
        );
        Self {
            jobs,
            secret: secret.into(),
            wake,
        }
    }

    /// Stores one message; `true` when it was new.
    pub async fn accept(&self, event: IncomingEvent) -> ApiResult<bool> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job { event, done })
            .await
            .map_err(|_| ApiError::Unavailable("the EventSub writer stopped".into()))?;
        result
            .await
            .map_err(|_| ApiError::Unavailable("the EventSub writer stopped".into()))?
            .map_err(|e| ApiError::Unavailable(format!("storing the EventSub message: {e}")))
    }

    /// Wakes the processor (tests; a new lifecycle event does it by itself).
    pub fn wake_processor(&self) {
        self.wake.notify_one();
    }
}

async fn write_batches(
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    chat: Arc<dyn ChatStore>,
    wake: Arc<Notify>,
    retention_secs: i64,
) {
    loop {
        // Take whatever is queued (at least one job), then commit it while another writer
        // gathers the next batch.
        let jobs = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        let (events, replies): (Vec<IncomingEvent>, Vec<_>) =
            jobs.into_iter().map(|j| (j.event, j.done)).unzip();
        match chat.accept_eventsub(&events, retention_secs).await {
            Ok(fresh) => {
                let fresh: HashSet<String> = fresh.into_iter().collect();
                let lifecycle = events
                    .iter()
                    .any(|e| e.body.is_some() && fresh.contains(&e.message_id));
                for (event, reply) in events.iter().zip(replies) {
                    let _ = reply.send(Ok(fresh.contains(&event.message_id)));
                }
                if lifecycle {
                    wake.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, count = events.len(), "storing EventSub messages failed");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}

fn refused(e: VerifyError) -> ApiError {
    match e {
        VerifyError::BadSignature
        | VerifyError::MalformedSignature
        | VerifyError::Stale(_)
        | VerifyError::Future(_) => ApiError::Forbidden(format!("refused: {e}")),
        VerifyError::MissingHeader(_)
        | VerifyError::MalformedTimestamp
        | VerifyError::UnknownMessageType(_) => ApiError::BadRequest(e.to_string()),
    }
}

async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle_webhook(&state, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle_webhook(state: &AppState, headers: &HeaderMap, body: &[u8]) -> ApiResult<Response> {
    let ingest = state
        .eventsub
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("Twitch is not configured on this server".into()))?;
    let verified =
        verify_webhook(ingest.secret.as_bytes(), headers, body, Utc::now()).map_err(refused)?;
    let payload: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    match verified.message_type {
        MessageType::WebhookCallbackVerification => {
            let challenge = payload
                .get("challenge")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::BadRequest("a verification without a challenge".into()))?;
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain")],
                challenge.to_string(),
            )
                .into_response())
        }
        kind @ (MessageType::Notification | MessageType::Revocation) => {
            let event = incoming_event(
                &verified.message_id,
                kind,
                verified.timestamp,
                verified.subscription_type.as_deref(),
                payload,
            )
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let fresh = ingest.accept(event).await?;
            if !fresh {
                tracing::debug!(message_id = %verified.message_id, "EventSub redelivery acknowledged");
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

/// Acts on stored lifecycle events (everything but chat messages, which are stored as rows).
struct EventProcessor {
    chat: Arc<dyn ChatStore>,
    records: Arc<dyn RecordStore>,
    widgets: Arc<dyn WidgetStore>,
    workflows: Workflows,
}

/// Whether trying again later can help.
enum ProcessError {
    Retry(String),
    Permanent(String),
}

impl From<StoreError> for ProcessError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Backend(_) => Self::Retry(e.to_string()),
            other => Self::Permanent(other.to_string()),
        }
    }
}

impl From<ApiError> for ProcessError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable(m) => Self::Retry(m),
            other => Self::Permanent(other.to_string()),
        }
    }
}

impl EventProcessor {
    async fn run(self, wake: Arc<Notify>) {
        loop {
            match self.chat.pending_events(100).await {
                Ok(events) => {
                    for event in events {
                        let id = event.message_id.clone();
                        let outcome = match self.process(event).await {
                            Ok(()) => Some(None),
                            Err(ProcessError::Permanent(m)) => {
                                tracing::warn!(message_id = %id, error = %m, "EventSub event not processable");
                                Some(Some(m))
                            }
                            Err(ProcessError::Retry(m)) => {
                                tracing::warn!(message_id = %id, error = %m, "EventSub event will be retried");
                                None
                            }
                        };
                        if let Some(error) = outcome
                            && let Err(e) =
                                self.chat.mark_event_processed(&id, error.as_deref()).await
                        {
                            tracing::error!(error = %e, "marking an EventSub event processed failed");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading pending EventSub events failed"),
            }
            let _ = tokio::time::timeout(PROCESS_POLL, wake.notified()).await;
        }
    }

    async fn process(&self, event: PendingEvent) -> Result<(), ProcessError> {
        let body: WebhookBody = serde_json::from_value(event.body)
            .map_err(|e| ProcessError::Permanent(format!("stored body: {e}")))?;
        let Some(broadcaster) = event.broadcaster_id.as_deref() else {
            return Err(ProcessError::Permanent(
                "no broadcaster in the event".into(),
            ));
        };
        let channel = self.chat.twitch_channel_of_broadcaster(broadcaster).await?;
        if event.message_type == StoredMessageType::Revocation {
            let reason = body.subscription.revocation_reason();
            self.chat
                .record_revocation(broadcaster, reason.as_str(), event.message_time)
                .await?;
            if let Some(channel) = channel {
                self.workflows
                    .signal_chat_capture(
                        &channel.user_id,
                        broadcaster,
                        ChatSignal::Revoked(SubscriptionRevoked {
                            subscription_type: body.subscription.kind.clone(),
                            reason: reason.as_str().to_string(),
                            resubscribable: reason.resubscribable(),
                        }),
                    )
                    .await?;
            }
            return Ok(());
        }
        let kind = body.subscription.kind.clone();
        let parsed = Event::parse(&kind, body.event.unwrap_or(Value::Null))
            .map_err(|e| ProcessError::Permanent(format!("{kind}: {e}")))?;
        match parsed {
            Event::MessageDelete(e) => {
                self.chat
                    .mark_chat_deleted(&e.broadcaster_user_id, &e.message_id)
                    .await?;
            }
            Event::ClearUserMessages(e) => {
                self.chat
                    .clear_chat(
                        &e.broadcaster_user_id,
                        Some(&e.target_user_id),
                        event.message_time,
                    )
                    .await?;
            }
            Event::ChatClear(e) => {
                self.chat
                    .clear_chat(&e.broadcaster_user_id, None, event.message_time)
                    .await?;
            }
            Event::StreamOnline(e) => {
                let Some(channel) = channel else {
                    return Ok(());
                };
                // One record per broadcast; recordings put in the day's folder attach to it.
                let stream_id = format!("twitch-{}", e.id);
                let day = e.started_at.format("%Y-%m-%d").to_string();
                let patch = json!({
                    "title": format!("{} live {}", e.broadcaster_user_name,
                                     e.started_at.format("%Y-%m-%d %H:%M UTC")),
                    "stream_date": e.started_at.to_rfc3339(),
                    "stream_platform": "twitch",
                    "stream_id": e.id,
                    "prefix": day,
                });
                self.records
                    .upsert(&channel.user_id, &STREAMS, &stream_id, &patch)
                    .await?;
                self.chat
                    .set_live_stream(&channel.user_id, Some(&stream_id))
                    .await?;
                self.workflows
                    .signal_chat_capture(
                        &channel.user_id,
                        broadcaster,
                        ChatSignal::Online(StreamWentLive {
                            stream_id,
                            twitch_stream_id: e.id,
                        }),
                    )
                    .await?;
            }
            Event::StreamOffline(_) => {
                let Some(channel) = channel else {
                    return Ok(());
                };
                if let Some(stream_id) = channel.live_stream_id.as_deref() {
                    let stream = self
                        .records
                        .get(&channel.user_id, &STREAMS, stream_id)
                        .await?;
                    let started = stream["stream_date"]
                        .as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                    if let Some(started) = started {
                        let seconds = (event.message_time - started.with_timezone(&Utc))
                            .num_milliseconds() as f64
                            / 1000.0;
                        self.records
                            .update(
                                &channel.user_id,
                                &STREAMS,
                                stream_id,
                                &json!({"duration": seconds.max(0.0)}),
                            )
                            .await?;
                    }
                }
                self.chat.set_live_stream(&channel.user_id, None).await?;
                self.workflows
                    .signal_chat_capture(&channel.user_id, broadcaster, ChatSignal::Offline)
                    .await?;
            }
            // Every ad timer of the channel shows the break at once (the 5-minute schedule poll
            // would see it late).
            Event::AdBreakBegin(ad) => {
                let Some(channel) = channel else {
                    return Ok(());
                };
                let input = gt_widgets::Input::AdBreakBegan {
                    started_at: ad.started_at,
                    duration_seconds: ad.duration_seconds,
                    is_automatic: ad.is_automatic,
                };
                for widget_id in self
                    .widgets
                    .widgets_of_kind(&channel.user_id, gt_widgets::WidgetKind::AdTimer)
                    .await?
                {
                    match crate::widgets::apply(
                        self.widgets.as_ref(),
                        &self.workflows,
                        &channel.user_id,
                        &widget_id,
                        &input,
                    )
                    .await
                    {
                        Ok(_) => {}
                        Err(ApiError::Unavailable(m)) => return Err(ProcessError::Retry(m)),
                        // Deleted meanwhile, or refused by its state machine: nothing to show.
                        Err(e) => tracing::warn!(widget_id, "ad break not applied: {e}"),
                    }
                }
            }
            Event::ChatMessage(_) | Event::Other(_) => {}
        }
        Ok(())
    }
}

async fn connected_channel(
    state: &AppState,
    user: &AuthUser,
) -> ApiResult<gt_store::TwitchChannel> {
    state
        .chat_store
        .twitch_channel(&user.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest("connect Twitch first (profile → Connect Twitch)".into())
        })
}

/// `POST /eventsub/chat/subscribe`: capture on. The front end reads `success`/`message`; its
/// types file reads `status`/`subscription_id`: both are answered.
async fn subscribe_chat(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Value>> {
    let app = crate::routes::twitch_auth::app(&state)?;
    let channel = connected_channel(&state, &user).await?;
    if channel.token_lost {
        return Err(ApiError::BadRequest(
            "Twitch refused the stored authorization: reconnect Twitch first".into(),
        ));
    }
    let transport = if app.webhook_callback.is_some() {
        CaptureTransport::Webhook
    } else {
        CaptureTransport::Websocket
    };
    state
        .chat_store
        .set_capture(&user.user_id, true, transport)
        .await?;
    state
        .workflows
        .signal_chat_capture(&user.user_id, &channel.broadcaster_id, ChatSignal::Enable)
        .await?;
    Ok(Json(json!({
        "success": true,
        "status": "pending",
        "subscription_id": null,
        "transport": transport.as_str(),
        "message": format!("chat capture is starting ({} transport)", transport.as_str()),
    })))
}

/// `DELETE /eventsub/chat/subscribe`: capture off (the run deletes the subscriptions).
async fn unsubscribe_chat(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Value>> {
    crate::routes::twitch_auth::app(&state)?;
    let channel = connected_channel(&state, &user).await?;
    state
        .chat_store
        .set_capture(&user.user_id, false, channel.capture_transport)
        .await?;
    state
        .workflows
        .signal_chat_capture(&user.user_id, &channel.broadcaster_id, ChatSignal::Disable)
        .await?;
    Ok(Json(json!({"status": "deleted", "success": true})))
}

/// `GET /eventsub/chat/status`: `{has_active_subscription, subscriptions}` plus what capture
/// reports (`capture`). Subscriptions come from Twitch when it answers, else from the last
/// list capture recorded (`source` says which).
async fn chat_status(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Value>> {
    let Some(app) = state.twitch.as_deref() else {
        return Ok(Json(json!({
            "has_active_subscription": false,
            "subscriptions": [],
            "configured": false,
        })));
    };
    let Some(channel) = state.chat_store.twitch_channel(&user.user_id).await? else {
        return Ok(Json(json!({
            "has_active_subscription": false,
            "subscriptions": [],
            "connected": false,
        })));
    };
    let (subscriptions, source) = match app.app_helix().await {
        Ok(helix) => match helix
            .list_subscriptions(&SubscriptionFilter::UserId(channel.broadcaster_id.clone()))
            .await
        {
            Ok(list) => (serde_json::to_value(list).unwrap_or_default(), "twitch"),
            Err(e) => {
                tracing::warn!(error = %e, "listing EventSub subscriptions failed");
                (channel.subscriptions.clone(), "recorded")
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "no Twitch app token");
            (channel.subscriptions.clone(), "recorded")
        }
    };
    let active = subscriptions.as_array().is_some_and(|subs| {
        subs.iter().any(|s| {
            s["status"] == "enabled" && s["type"] == gt_twitch::eventsub::types::CHAT_MESSAGE
        })
    });
    let run = state
        .workflows
        .chat_capture_status(&user.user_id, &channel.broadcaster_id)
        .await?;
    Ok(Json(json!({
        "has_active_subscription": active,
        "subscriptions": subscriptions,
        "source": source,
        "connected": true,
        "capture": {
            "enabled": channel.capture_enabled,
            "transport": channel.capture_transport.as_str(),
            "token_lost": channel.token_lost,
            "last_revocation": channel.last_revocation,
            "last_revocation_at": channel.last_revocation_at,
            "live_stream_id": channel.live_stream_id,
            "workflow": run,
        },
    })))
}

/// This router's entries in the OpenAPI document.
pub fn openapi_paths(paths: &mut serde_json::Map<String, Value>) {
    use crate::routes::openapi::with_errors;
    paths.insert("/eventsub/webhook".into(), json!({"post": {
        "tags": ["twitch"], "summary": "Twitch EventSub webhook (HMAC-SHA256 over id‖timestamp‖raw body; no JWT)",
        "security": [],
        "responses": {
            "200": {"description": "Challenge answered (text/plain)"},
            "204": {"description": "Stored (or a redelivery of a stored message)"},
            "400": {"description": "Missing headers or not an EventSub message"},
            "403": {"description": "Bad signature, or a timestamp more than 10 minutes old"},
            "503": {"description": "Twitch is not configured, or the message could not be stored (Twitch retries)"}
        }
    }}));
    paths.insert("/eventsub/chat/subscribe".into(), json!({
        "post": {"tags": ["twitch"], "summary": "Turn chat capture on (ChatCapture creates the subscriptions)",
                 "responses": with_errors("200", json!({"description": "Capture starting"}))},
        "delete": {"tags": ["twitch"], "summary": "Turn chat capture off (subscriptions deleted)",
                   "responses": with_errors("200", json!({"description": "Capture stopping"}))}
    }));
    paths.insert(
        "/eventsub/chat/status".into(),
        json!({"get": {
            "tags": ["twitch"], "summary": "Chat capture subscriptions and state",
            "responses": with_errors("200", json!({"description": "Status"}))
        }}),
    );
}
