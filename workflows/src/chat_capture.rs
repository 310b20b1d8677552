//! `ChatCapture` (`chat-{owner}-{broadcaster_id}`): the lifecycle of one user's Twitch chat
//! capture. Messages never pass through here: the webhook handler (or the WebSocket activity)
//! stores them in batches; this workflow owns the subscriptions and reacts to lifecycle events.
//!
//! Started (signal-with-start) by enabling capture or by `stream.online`. Each round makes
//! sure the subscriptions exist (webhook) or holds a WebSocket session (no public URL), then
//! waits for a lifecycle signal or the periodic check. A revocation starts a new round at once:
//! what Twitch allows us to repair (`notification_failures_exceeded`, `version_removed`) is
//! subscribed again; a lost authorization (the tokens no longer work) waits for the user to
//! reconnect. The run continues as new after a bounded
//! number of rounds so its history stays small.

use std::time::Duration;

use gt_types::OWNER_MEMO;
use gt_types::chat::{
    CaptureReport, CaptureState, ChatCaptureInput, ChatCaptureStatus, StreamWentLive,
    SubscriptionRevoked, TokenSweep,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, CancellableFuture, ContinueAsNewOptions, MemoValue, RetryPolicy,
    SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::contracts::{ChatActivities, failure};

/// How often subscriptions are checked even without a signal (Twitch may drop them silently,
/// e.g. after the user changed their password).
const RECHECK: Duration = Duration::from_secs(6 * 3600);
/// Rounds (each a few history events) before continuing as new.
const ROUNDS_PER_RUN: u32 = 100;

#[workflow]
pub struct ChatCapture {
    input: ChatCaptureInput,
    status: ChatCaptureStatus,
    /// Set by signals; the main loop consumes them.
    resubscribe: bool,
    reconnected: bool,
    disable: bool,
}

fn short_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .retry_policy(
            RetryPolicy::builder()
                .maximum_attempts(20)
                .maximum_interval(Duration::from_secs(300))
                .non_retryable_error_types([failure::INVALID_INPUT, failure::NEEDS_USER])
                .build(),
        )
        .build()
}

/// The WebSocket session runs until cancelled; a lost session fails the attempt and the retry
/// opens a new one (backing off to a minute).
fn socket_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30 * 24 * 3600))
        .heartbeat_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .maximum_interval(Duration::from_secs(60))
                .non_retryable_error_types([failure::INVALID_INPUT, failure::NEEDS_USER])
                .build(),
        )
        .build()
}

#[workflow_methods]
impl ChatCapture {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ChatCaptureInput) -> Self {
        Self {
            input,
            status: ChatCaptureStatus::default(),
            resubscribe: false,
            reconnected: false,
            disable: false,
        }
    }

    #[run(name = "ChatCapture")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<ChatCaptureStatus> {
        let input = ctx.state(|s| s.input.clone());
        // Started by signal-with-start from a webhook, the owner is not in the memo yet.
        ctx.upsert_memo([(OWNER_MEMO, Some(MemoValue::new(input.user_id.clone())))])?;
        for _ in 0..ROUNDS_PER_RUN {
            if ctx.state(|s| s.disable) {
                ctx.execute_activity(ChatActivities::unsubscribe, input.clone(), short_options())
                    .await?;
                ctx.state_mut(|s| s.status.state = CaptureState::Disabled);
                return Ok(ctx.state(|s| s.status.clone()));
            }
            ctx.state_mut(|s| {
                s.status.state = CaptureState::Subscribing;
                s.resubscribe = false;
                s.reconnected = false;
            });
            let report = ctx
                .execute_activity(
                    ChatActivities::ensure_subscriptions,
                    input.clone(),
                    short_options(),
                )
                .await?;
            match report {
                CaptureReport::NeedsReconnect { reason } => {
                    ctx.state_mut(|s| {
                        s.status.state = CaptureState::NeedsReconnect;
                        s.status.note = Some(reason);
                    });
                    ctx.wait_condition(|s| s.reconnected || s.disable).await?;
                }
                CaptureReport::Subscribed { subscriptions, .. } => {
                    ctx.state_mut(|s| {
                        s.status.state = CaptureState::Capturing;
                        s.status.subscriptions = subscriptions;
                        s.status.note = None;
                    });
                    let mut recheck = ctx.timer(RECHECK);
                    let mut woken =
                        ctx.wait_condition(|s| s.resubscribe || s.reconnected || s.disable);
                    temporalio_workflow::select! {
                        _ = recheck => {}
                        _ = woken => {}
                    };
                }
                CaptureReport::UseWebSocket => {
                    ctx.state_mut(|s| {
                        s.status.state = CaptureState::Capturing;
                        s.status.note = Some("capturing over an EventSub WebSocket".into());
                    });
                    let socket = ctx.execute_activity(
                        ChatActivities::hold_socket,
                        input.clone(),
                        socket_options(),
                    );
                    let mut socket = std::pin::pin!(socket);
                    let mut woken =
                        ctx.wait_condition(|s| s.resubscribe || s.reconnected || s.disable);
                    let lost = temporalio_workflow::select! {
                        result = socket.as_mut() => result.err(),
                        _ = woken => {
                            socket.as_mut().cancel();
                            None
                        }
                    };
                    if let Some(e) = lost {
                        let needs_user =
                            crate::failure_type(&e).as_deref() == Some(failure::NEEDS_USER);
                        ctx.state_mut(|s| {
                            s.status.note = Some(crate::failure_message(&e));
                            if needs_user {
                                s.status.state = CaptureState::NeedsReconnect;
                            }
                        });
                        if needs_user {
                            ctx.wait_condition(|s| s.reconnected || s.disable).await?;
                        }
                    }
                }
            }
        }
        let next = ctx.state(|s| s.input.clone());
        match ctx.continue_as_new(next, ContinueAsNewOptions::default()) {
            Err(end) => Err(end),
            Ok(never) => match never {},
        }
    }

    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> ChatCaptureStatus {
        self.status.clone()
    }

    /// Capture was (re-)enabled: check the subscriptions now.
    #[signal]
    pub fn enable(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.disable = false;
        self.resubscribe = true;
    }

    /// The user turned capture off: delete the subscriptions and end.
    #[signal]
    pub fn disable(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.disable = true;
    }

    /// The user connected Twitch again (new tokens).
    #[signal]
    pub fn reconnected(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.reconnected = true;
    }

    #[signal]
    pub fn online(&mut self, _ctx: &mut SyncWorkflowContext<Self>, live: StreamWentLive) {
        self.status.live = true;
        self.status.live_stream_id = Some(live.stream_id);
    }

    #[signal]
    pub fn offline(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.status.live = false;
    }

    #[signal]
    pub fn revoked(&mut self, _ctx: &mut SyncWorkflowContext<Self>, revoked: SubscriptionRevoked) {
        self.status.revocations += 1;
        self.status.last_revocation =
            Some(format!("{}: {}", revoked.subscription_type, revoked.reason));
        // Whatever the reason, check again: `ensure_subscriptions` finds out whether the
        // user's tokens still work (a revoked authorization means "reconnect Twitch") and
        // replaces what Twitch dropped. Deciding here instead would go wrong for revocations
        // that arrive late, e.g. after the user already reconnected.
        self.resubscribe = true;
    }
}

pub use chat_capture::Run as ChatCaptureRun;

/// `twitch-maintenance` (run hourly by a Temporal Schedule): token validation Twitch requires
/// of apps that keep user tokens, and the chat retention purge.
#[workflow]
pub struct TwitchMaintenance;

#[workflow_methods]
impl TwitchMaintenance {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, _input: ()) -> Self {
        Self
    }

    #[run(name = "TwitchMaintenance")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<TokenSweep> {
        Ok(ctx
            .execute_activity(ChatActivities::maintain, (), short_options())
            .await?)
    }
}
