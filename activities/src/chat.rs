//! Twitch chat capture's side effects: EventSub subscriptions (webhook transport, app token),
//! the EventSub WebSocket session (user token, no public URL needed), and the hourly token
//! upkeep and retention purge.
//!
//! The WebSocket session stores what it receives exactly as the webhook does
//! (`gt_twitch::eventsub::incoming_event` → `ChatStore::accept_eventsub`, deduplicated on the
//! message id); lifecycle events it stores are acted on by the API's event processor.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gt_store::{CaptureTransport, Provider, Store, TwitchChannel};
use gt_twitch::app::TwitchApp;
use gt_twitch::eventsub::{
    CHAT_CAPTURE_SUBSCRIPTIONS, MessageType, capture_condition, incoming_event,
};
use gt_twitch::helix::{
    HelixClient, Subscription, SubscriptionFilter, SubscriptionRequest, Transport, TransportMethod,
};
use gt_twitch::oauth::{CheckedTokens, TwitchError, TwitchTokens};
use gt_twitch::ws::{EventSubSocket, Frame};
use gt_types::chat::{CaptureReport, ChatCaptureInput, TokenSweep};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{invalid_input, needs_user, retryable, store_error, with_heartbeats};

/// EventSub ids are kept this long for deduplication (Twitch resends for at most 10 minutes).
const KEEP_MESSAGE_IDS: chrono::TimeDelta = chrono::TimeDelta::days(1);

pub struct ChatActivitiesImpl {
    pub store: Arc<dyn Store>,
    /// The Twitch app (`GT_TWITCH_*`), when configured on this worker.
    pub twitch: Option<Arc<TwitchApp>>,
}

pub(crate) fn twitch_failure(e: TwitchError) -> ActivityError {
    match e {
        TwitchError::Reauthorize(m) => needs_user(format!(
            "Twitch refused the stored authorization ({m}): reconnect Twitch"
        )),
        e if e.is_transient() => retryable(e.to_string()),
        TwitchError::Unauthorized(m) => retryable(format!("Twitch refused a token: {m}")),
        other => invalid_input(other.to_string()),
    }
}

/// Why the user's tokens cannot be used (they must reconnect).
pub(crate) struct TokensLost(pub String);

/// The user's tokens, refreshed (and the rotated refresh token stored) when the access
/// token is expired or Twitch refuses it.
pub(crate) async fn user_tokens(
    store: &dyn Store,
    app: &TwitchApp,
    user_id: &str,
) -> Result<Result<CheckedTokens, TokensLost>, ActivityError> {
    let connection = store
        .oauth(user_id, Provider::Twitch)
        .await
        .map_err(store_error)?;
    let Some(sealed) = connection.and_then(|c| c.sealed_tokens) else {
        return Ok(Err(TokensLost("Twitch is not connected".into())));
    };
    let tokens: TwitchTokens = match gt_auth::token_box::open(&app.key, &sealed) {
        Ok(t) => t,
        Err(e) => return Ok(Err(TokensLost(format!("stored tokens unreadable: {e}")))),
    };
    let oauth = app.oauth().map_err(twitch_failure)?;
    match oauth
        .ensure_valid(tokens, Duration::from_secs(300), Utc::now())
        .await
    {
        Ok(checked) => {
            if checked.refreshed {
                // Twitch rotated the refresh token: store the new set at once.
                store
                    .save_oauth_tokens(
                        user_id,
                        Provider::Twitch,
                        &gt_auth::token_box::seal(&app.key, &checked.tokens),
                    )
                    .await
                    .map_err(store_error)?;
            }
            store
                .record_token_validation(user_id, true, Utc::now())
                .await
                .map_err(store_error)?;
            Ok(Ok(checked))
        }
        Err(TwitchError::Reauthorize(m)) => {
            store
                .mark_oauth_reconnect(user_id, Provider::Twitch)
                .await
                .map_err(store_error)?;
            store
                .record_token_validation(user_id, false, Utc::now())
                .await
                .map_err(store_error)?;
            Ok(Err(TokensLost(m)))
        }
        Err(e) => Err(twitch_failure(e)),
    }
}

impl ChatActivitiesImpl {
    fn app(&self) -> Result<&TwitchApp, ActivityError> {
        self.twitch.as_deref().ok_or_else(|| {
            invalid_input("Twitch is not configured on this worker (GT_TWITCH_*, GT_TOKEN_KEY)")
        })
    }

    async fn channel(&self, input: &ChatCaptureInput) -> Result<TwitchChannel, ActivityError> {
        let channel = self
            .store
            .twitch_channel(&input.user_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| needs_user("Twitch is not connected: connect it in your profile"))?;
        if channel.broadcaster_id != input.broadcaster_id {
            return Err(invalid_input(format!(
                "the connected Twitch account is {}, not {}",
                channel.broadcaster_id, input.broadcaster_id
            )));
        }
        Ok(channel)
    }

    async fn user_tokens(
        &self,
        user_id: &str,
    ) -> Result<Result<CheckedTokens, TokensLost>, ActivityError> {
        user_tokens(self.store.as_ref(), self.app()?, user_id).await
    }

    /// Records the subscriptions capture now has (the user's tokens worked to make them).
    async fn record_subscriptions(
        &self,
        user_id: &str,
        subs: &[Subscription],
    ) -> Result<(), ActivityError> {
        let listed = serde_json::to_value(subs).unwrap_or_default();
        self.store
            .record_capture_state(user_id, &listed, false)
            .await
            .map_err(store_error)
    }

    /// Creates what is missing of the capture subscriptions with `helix`; returns them all
    /// and how many were created.
    async fn subscribe_all(
        &self,
        helix: &HelixClient,
        broadcaster_id: &str,
        transport: Transport,
        existing: &[Subscription],
    ) -> Result<(Vec<Subscription>, u32), TwitchError> {
        let mut kept = Vec::new();
        let mut created = 0;
        for (kind, version, with_user) in CHAT_CAPTURE_SUBSCRIPTIONS {
            let same = existing.iter().find(|s| {
                s.kind == *kind && s.version == *version && same_transport(s, &transport)
            });
            match same {
                Some(s) if s.status.is_active() => {
                    kept.push(s.clone());
                    continue;
                }
                // Failed or revoked: replace it.
                Some(s) => helix.delete_subscription(&s.id).await?,
                None => {}
            }
            let request = SubscriptionRequest {
                kind: kind.to_string(),
                version: version.to_string(),
                condition: capture_condition(broadcaster_id, *with_user),
                transport: transport.clone(),
            };
            match helix.create_subscription(&request).await {
                Ok(s) => {
                    created += 1;
                    kept.push(s);
                }
                // Created meanwhile by an earlier attempt of this step.
                Err(TwitchError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((kept, created))
    }
}

fn same_transport(s: &Subscription, transport: &Transport) -> bool {
    match transport {
        Transport::Webhook { callback, .. } => {
            s.transport.method == TransportMethod::Webhook
                && s.transport.callback.as_deref() == Some(callback.as_str())
        }
        Transport::WebSocket { session_id } => {
            s.transport.method == TransportMethod::WebSocket
                && s.transport.session_id.as_deref() == Some(session_id.as_str())
        }
    }
}

#[activities]
impl ChatActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::EnsureSubscriptions)]
    pub async fn ensure_subscriptions(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ChatCaptureInput,
    ) -> Result<CaptureReport, ActivityError> {
        let app = self.app()?;
        let Some(channel) = self
            .store
            .twitch_channel(&input.user_id)
            .await
            .map_err(store_error)?
            .filter(|c| c.broadcaster_id == input.broadcaster_id)
        else {
            return Ok(CaptureReport::NeedsReconnect {
                reason: format!("Twitch account {} is not connected", input.broadcaster_id),
            });
        };
        if !channel.capture_enabled {
            return Ok(CaptureReport::Subscribed {
                subscriptions: 0,
                created: 0,
            });
        }
        if let Err(TokensLost(reason)) = self.user_tokens(&input.user_id).await? {
            return Ok(CaptureReport::NeedsReconnect {
                reason: format!("{reason}: reconnect Twitch"),
            });
        }
        let callback = match (&app.webhook_callback, channel.capture_transport) {
            (Some(callback), CaptureTransport::Webhook) => callback.clone(),
            _ => return Ok(CaptureReport::UseWebSocket),
        };
        let helix = app.app_helix().await.map_err(twitch_failure)?;
        let existing = match helix
            .list_subscriptions(&SubscriptionFilter::UserId(input.broadcaster_id.clone()))
            .await
        {
            Ok(list) => list,
            Err(e @ TwitchError::Unauthorized(_)) => {
                app.forget_app_token().await;
                return Err(twitch_failure(e));
            }
            Err(e) => return Err(twitch_failure(e)),
        };
        let transport = Transport::Webhook {
            callback,
            secret: app.eventsub_secret.clone(),
        };
        let (subs, created) = match self
            .subscribe_all(&helix, &input.broadcaster_id, transport, &existing)
            .await
        {
            Ok(done) => done,
            // 403: the user did not grant the scopes a subscription needs.
            Err(TwitchError::Rejected {
                status: 403,
                message,
            }) => {
                return Ok(CaptureReport::NeedsReconnect {
                    reason: format!("Twitch refused a subscription ({message}): reconnect Twitch"),
                });
            }
            Err(e) => return Err(twitch_failure(e)),
        };
        self.record_subscriptions(&input.user_id, &subs).await?;
        Ok(CaptureReport::Subscribed {
            subscriptions: subs.len() as u32,
            created,
        })
    }

    #[activity(definition = gt_workflows::contracts::HoldSocket)]
    pub async fn hold_socket(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ChatCaptureInput,
    ) -> Result<(), ActivityError> {
        let app = self.app()?;
        self.channel(&input).await?;
        let tokens = match self.user_tokens(&input.user_id).await? {
            Ok(checked) => checked.tokens,
            Err(TokensLost(reason)) => {
                return Err(needs_user(format!("{reason}: reconnect Twitch")));
            }
        };
        let retention = app.chat_retention_secs();
        let work = async {
            let mut socket = EventSubSocket::connect(&app.config.eventsub_ws_url)
                .await
                .map_err(twitch_failure)?;
            // Subscribe within the keepalive window, with the user's token.
            let helix = HelixClient::new(app.config.clone(), tokens.access_token.clone())
                .map_err(twitch_failure)?;
            let transport = Transport::WebSocket {
                session_id: socket.session_id().to_string(),
            };
            let (subs, _) = self
                .subscribe_all(&helix, &input.broadcaster_id, transport, &[])
                .await
                .map_err(twitch_failure)?;
            self.record_subscriptions(&input.user_id, &subs).await?;
            loop {
                let frame = socket.next().await.map_err(twitch_failure)?;
                let (message_id, kind, at, sub_type, payload) = match frame {
                    Frame::Notification(n) => (
                        n.message_id,
                        MessageType::Notification,
                        n.timestamp,
                        Some(n.subscription_type),
                        n.payload,
                    ),
                    Frame::Revocation {
                        message_id,
                        subscription,
                    } => (
                        message_id,
                        MessageType::Revocation,
                        Utc::now(),
                        None,
                        serde_json::json!({ "subscription": subscription }),
                    ),
                    Frame::Reconnect { url } => {
                        socket.reconnect(&url).await.map_err(twitch_failure)?;
                        continue;
                    }
                };
                match incoming_event(&message_id, kind, at, sub_type.as_deref(), payload) {
                    Ok(event) => {
                        self.store
                            .accept_eventsub(std::slice::from_ref(&event), retention)
                            .await
                            .map_err(store_error)?;
                    }
                    Err(e) => tracing::warn!(%message_id, error = %e, "EventSub frame dropped"),
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), ActivityError>(())
        };
        with_heartbeats(&ctx, Duration::from_secs(5), work).await?
    }

    #[activity(definition = gt_workflows::contracts::UnsubscribeChat)]
    pub async fn unsubscribe(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ChatCaptureInput,
    ) -> Result<(), ActivityError> {
        let app = self.app()?;
        let helix = app.app_helix().await.map_err(twitch_failure)?;
        let existing = helix
            .list_subscriptions(&SubscriptionFilter::UserId(input.broadcaster_id.clone()))
            .await
            .map_err(twitch_failure)?;
        for s in existing.iter().filter(|s| {
            CHAT_CAPTURE_SUBSCRIPTIONS
                .iter()
                .any(|(kind, _, _)| s.kind == *kind)
        }) {
            helix
                .delete_subscription(&s.id)
                .await
                .map_err(twitch_failure)?;
        }
        if let Some(channel) = self
            .store
            .twitch_channel(&input.user_id)
            .await
            .map_err(store_error)?
        {
            self.store
                .record_capture_state(&input.user_id, &serde_json::json!([]), channel.token_lost)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    #[activity(definition = gt_workflows::contracts::MaintainChat)]
    pub async fn maintain(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _input: (),
    ) -> Result<TokenSweep, ActivityError> {
        let mut sweep = TokenSweep::default();
        if self.twitch.is_some() {
            for channel in self
                .store
                .all_twitch_channels()
                .await
                .map_err(store_error)?
            {
                sweep.checked += 1;
                match self.user_tokens(&channel.user_id).await? {
                    Ok(checked) => sweep.refreshed += u32::from(checked.refreshed),
                    Err(TokensLost(_)) => sweep.lost += 1,
                }
            }
        }
        let now = Utc::now();
        sweep.purged_chat_messages = self
            .store
            .purge_chat(now, now - KEEP_MESSAGE_IDS)
            .await
            .map_err(store_error)?;
        Ok(sweep)
    }
}
