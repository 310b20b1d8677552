//! `WidgetTimer` (`widget-{owner}-{widget_id}`): the durable timers of one OBS widget.
//!
//! Widget state changes on user actions are applied by the API at once (no workflow in the
//! path, so pages update within milliseconds). Changes that depend on time — a countdown
//! reaching zero, an ad break ending, the welcome-back message expiring, Twitch's ad schedule
//! moving — run here on Temporal timers, so they happen at the right time even if every worker
//! was down in between (the state machine stamps the exact instant, not the late one).
//!
//! The API signals `wake` (with signal-with-start) after every change with the next instant
//! the new state needs; an ad timer also polls the ad schedule every few minutes. With nothing
//! to wait for the run ends; the next action starts a new one.

use std::time::{Duration, UNIX_EPOCH};

use gt_types::OWNER_MEMO;
use gt_types::widget::{WidgetTimerInput, WidgetTimerReport, WidgetWake};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, ContinueAsNewOptions, MemoValue, RetryPolicy, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::contracts::{WidgetActivities, failure};

/// How often an ad timer re-reads Twitch's ad schedule (the front end's Ad Manager polls at
/// the same rate); `channel.ad_break.begin` pushes the urgent change in between.
pub const AD_SCHEDULE_POLL: Duration = Duration::from_secs(5 * 60);
/// Rounds (each a timer and an activity) before continuing as new.
const ROUNDS_PER_RUN: u32 = 100;

#[workflow]
pub struct WidgetTimer {
    input: WidgetTimerInput,
    wake_at_ms: Option<i64>,
    /// Set by `wake`; the loop re-plans.
    woken: bool,
    /// Set by `stop` (the widget was deleted).
    stopped: bool,
}

fn timer_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .maximum_attempts(10)
                .maximum_interval(Duration::from_secs(30))
                .non_retryable_error_types([failure::INVALID_INPUT, failure::NEEDS_USER])
                .build(),
        )
        .build()
}

/// A poll that fails is simply tried again at the next poll.
fn poll_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .maximum_attempts(3)
                .non_retryable_error_types([failure::INVALID_INPUT, failure::NEEDS_USER])
                .build(),
        )
        .build()
}

fn now_ms(ctx: &WorkflowContext<WidgetTimer>) -> i64 {
    ctx.workflow_time()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Wake,
    Poll,
}

#[workflow_methods]
impl WidgetTimer {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: WidgetTimerInput) -> Self {
        Self {
            wake_at_ms: input.wake_at_ms,
            input,
            woken: false,
            stopped: false,
        }
    }

    #[run(name = "WidgetTimer")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let input = ctx.state(|s| s.input.clone());
        ctx.upsert_memo([(OWNER_MEMO, Some(MemoValue::new(input.user_id.clone())))])?;
        let mut follows = input.follows_ad_schedule;
        // An ad timer reads the schedule as soon as it starts.
        let mut next_poll_ms = follows.then(|| now_ms(ctx));
        for _ in 0..ROUNDS_PER_RUN {
            if ctx.state(|s| s.stopped) {
                return Ok(());
            }
            ctx.state_mut(|s| s.woken = false);
            let wake = ctx.state(|s| s.wake_at_ms);
            let next = match (wake, next_poll_ms) {
                (Some(w), Some(p)) if p < w => Some((p, Due::Poll)),
                (Some(w), _) => Some((w, Due::Wake)),
                (None, Some(p)) => Some((p, Due::Poll)),
                (None, None) => None,
            };
            let Some((at, due)) = next else {
                // Nothing to wait for: the next change starts a new run.
                return Ok(());
            };
            let wait = at - now_ms(ctx);
            if wait > 0 {
                let mut timer = ctx.timer(Duration::from_millis(wait as u64));
                let mut woken = ctx.wait_condition(|s| s.woken || s.stopped);
                let fired = temporalio_workflow::select! {
                    _ = timer => true,
                    _ = woken => false,
                };
                if !fired {
                    continue;
                }
            }
            let report = match due {
                Due::Wake => {
                    ctx.state_mut(|s| s.wake_at_ms = None);
                    ctx.execute_activity(WidgetActivities::tick, input.clone(), timer_options())
                        .await?
                }
                Due::Poll => {
                    next_poll_ms = Some(now_ms(ctx) + AD_SCHEDULE_POLL.as_millis() as i64);
                    let polled = ctx
                        .execute_activity(
                            WidgetActivities::poll_ad_schedule,
                            input.clone(),
                            poll_options(),
                        )
                        .await;
                    match polled {
                        Ok(report) => report,
                        Err(e) => {
                            // Twitch not connected: keep the timers, stop polling. Other
                            // failures are tried again at the next poll.
                            if crate::failure_type(&e).as_deref() == Some(failure::NEEDS_USER) {
                                follows = false;
                                next_poll_ms = None;
                            }
                            WidgetTimerReport::Applied {
                                wake_at_ms: ctx.state(|s| s.wake_at_ms),
                            }
                        }
                    }
                }
            };
            match report {
                WidgetTimerReport::Gone => return Ok(()),
                WidgetTimerReport::Applied { wake_at_ms } => {
                    // A `wake` that arrived while the activity ran describes a newer state.
                    ctx.state_mut(|s| {
                        if !s.woken {
                            s.wake_at_ms = wake_at_ms;
                        }
                    });
                }
            }
        }
        let mut next = ctx.state(|s| s.input.clone());
        next.follows_ad_schedule = follows;
        next.wake_at_ms = ctx.state(|s| s.wake_at_ms);
        match ctx.continue_as_new(next, ContinueAsNewOptions::default()) {
            Err(end) => Err(end),
            Ok(never) => match never {},
        }
    }

    /// The widget's state changed; `at_ms` is when it next needs a transition.
    #[signal]
    pub fn wake(&mut self, _ctx: &mut SyncWorkflowContext<Self>, wake: WidgetWake) {
        self.wake_at_ms = wake.at_ms;
        self.woken = true;
    }

    /// The widget was deleted: end.
    #[signal]
    pub fn stop(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.stopped = true;
    }

    /// When the next transition is due (Unix ms), for tests and the dashboard.
    #[query]
    pub fn next_wake(&self, _ctx: &WorkflowContextView) -> Option<i64> {
        self.wake_at_ms
    }
}

pub use widget_timer::Run as WidgetTimerRun;
