//! The durable timers' side of OBS widgets: apply a timer input (`Tick`) or Twitch's ad
//! schedule to a widget through the same locked write the API uses
//! ([`gt_store::WidgetStore::apply_widget_input`]), so its trigger fans the change out to every
//! page, and report when the new state next needs a transition.

use std::sync::Arc;

use chrono::Utc;
use gt_store::Store;
use gt_twitch::app::TwitchApp;
use gt_twitch::helix::HelixClient;
use gt_types::widget::{WidgetTimerInput, WidgetTimerReport};
use gt_widgets::{Input, WidgetKind};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::chat::{TokensLost, twitch_failure, user_tokens};
use crate::{invalid_input, needs_user, retryable, store_error};

pub struct WidgetActivitiesImpl {
    pub store: Arc<dyn Store>,
    /// The Twitch app (`GT_TWITCH_*`), when configured on this worker.
    pub twitch: Option<Arc<TwitchApp>>,
}

impl WidgetActivitiesImpl {
    /// The widget's kind, `None` when it is gone, switched off or has no live behaviour.
    async fn live_kind(
        &self,
        input: &WidgetTimerInput,
    ) -> Result<Option<WidgetKind>, ActivityError> {
        let widget = self
            .store
            .widget(&input.user_id, &input.widget_id)
            .await
            .map_err(store_error)?;
        Ok(widget.filter(|w| w.active).and_then(|w| w.kind))
    }

    /// Applies `input` unless the widget is gone or switched off.
    async fn apply(
        &self,
        input: &WidgetTimerInput,
        widget_input: Input,
    ) -> Result<WidgetTimerReport, ActivityError> {
        if self.live_kind(input).await?.is_none() {
            return Ok(WidgetTimerReport::Gone);
        }
        match self
            .store
            .apply_widget_input(&input.user_id, &input.widget_id, &widget_input, Utc::now())
            .await
        {
            Ok(applied) => Ok(WidgetTimerReport::Applied {
                wake_at_ms: applied.wake_at.map(|t| t.timestamp_millis()),
            }),
            Err(gt_store::StoreError::NotFound(_)) => Ok(WidgetTimerReport::Gone),
            Err(e) => Err(store_error(e)),
        }
    }
}

#[activities]
impl WidgetActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::TickWidget)]
    pub async fn tick(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: WidgetTimerInput,
    ) -> Result<WidgetTimerReport, ActivityError> {
        self.apply(&input, Input::Tick).await
    }

    #[activity(definition = gt_workflows::contracts::PollAdSchedule)]
    pub async fn poll_ad_schedule(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: WidgetTimerInput,
    ) -> Result<WidgetTimerReport, ActivityError> {
        if self.live_kind(&input).await? != Some(WidgetKind::AdTimer) {
            return Ok(WidgetTimerReport::Gone);
        }
        let app = self.twitch.as_deref().ok_or_else(|| {
            invalid_input("Twitch is not configured on this worker (GT_TWITCH_*, GT_TOKEN_KEY)")
        })?;
        let checked = match user_tokens(self.store.as_ref(), app, &input.user_id).await? {
            Ok(checked) => checked,
            Err(TokensLost(reason)) => {
                return Err(needs_user(format!(
                    "the ad timer cannot read the ad schedule ({reason}): reconnect Twitch"
                )));
            }
        };
        let broadcaster_id = checked.validation.user_id.clone().unwrap_or_default();
        let token = checked.tokens.access_token.as_str();
        let helix = HelixClient::new(app.config.clone(), token).map_err(twitch_failure)?;
        let schedule = helix
            .get_ad_schedule(token, &broadcaster_id)
            .await
            .map_err(|e| {
                if e.needs_reconnect() {
                    needs_user(format!("{e}"))
                } else if e.is_transient() {
                    retryable(e.to_string())
                } else {
                    invalid_input(e.to_string())
                }
            })?;
        self.apply(&input, Input::AdSchedule(ad_schedule(schedule)))
            .await
    }
}

/// Twitch's ad schedule as the widget's state machine reads it.
pub fn ad_schedule(s: gt_twitch::helix::AdSchedule) -> gt_widgets::ad_timer::AdSchedule {
    gt_widgets::ad_timer::AdSchedule {
        snooze_count: s.snooze_count,
        snooze_refresh_at: s.snooze_refresh_at,
        next_ad_at: s.next_ad_at,
        duration: s.duration,
        last_ad_at: s.last_ad_at,
        preroll_free_time: s.preroll_free_time,
    }
}
