//! Driving OBS widgets: a user's `WIDGET_ACTION`, and what the server observes (Twitch ad
//! breaks), go through the widget's pure state machine in one locked write
//! ([`gt_store::WidgetStore::apply_widget_input`]); the write's trigger fans the new state out
//! to every page. Helix calls an action asks for (snooze, start a commercial) are made here with
//! the user's Twitch token and their result applied as a second input. Afterwards the widget's
//! `WidgetTimer` is told when the new state next needs a transition.

use chrono::Utc;
use gt_store::{AppliedInput, Widget, WidgetStore};
use gt_twitch::helix::{AdsError, HelixClient};
use gt_widgets::{Effect, Input, WidgetKind};
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::routes::twitch_auth::{TwitchAccess, twitch_access};
use crate::workflows::Workflows;

/// Applies `input` and tells the widget's timer about the new state.
pub async fn apply(
    widgets: &dyn WidgetStore,
    workflows: &Workflows,
    user_id: &str,
    widget_id: &str,
    input: &Input,
) -> ApiResult<AppliedInput> {
    let applied = widgets
        .apply_widget_input(user_id, widget_id, input, Utc::now())
        .await?;
    // Only countdowns and ad timers act on time; their timer follows every change (also one
    // that removes the wake-up, e.g. a pause).
    if applied.changed && matches!(applied.kind, WidgetKind::Countdown | WidgetKind::AdTimer) {
        workflows
            .wake_widget(
                user_id,
                widget_id,
                applied.kind == WidgetKind::AdTimer,
                applied.wake_at,
            )
            .await?;
    }
    Ok(applied)
}

/// A user's `WIDGET_ACTION` on one of their widgets.
pub async fn act(
    state: &AppState,
    user_id: &str,
    widget_id: &str,
    action: &str,
    payload: Value,
) -> ApiResult<()> {
    let input = Input::Action {
        action: action.to_string(),
        payload,
    };
    let applied = apply(
        state.widgets.as_ref(),
        &state.workflows,
        user_id,
        widget_id,
        &input,
    )
    .await?;
    for effect in applied.effects {
        let result = perform(state, user_id, &effect).await?;
        apply(
            state.widgets.as_ref(),
            &state.workflows,
            user_id,
            widget_id,
            &result,
        )
        .await?;
    }
    Ok(())
}

/// The Helix call behind an effect, answered as the input that records its result.
async fn perform(state: &AppState, user_id: &str, effect: &Effect) -> ApiResult<Input> {
    let app = state
        .twitch
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("Twitch is not configured on this server".into()))?;
    let checked = match twitch_access(state, app, user_id).await? {
        TwitchAccess::Connected(checked) => checked,
        TwitchAccess::NotConnected { needs_reconnect } => {
            return Err(ApiError::BadRequest(if needs_reconnect {
                "Twitch refused the stored authorization: reconnect Twitch in your profile".into()
            } else {
                "connect Twitch first (profile → Connect Twitch)".into()
            }));
        }
    };
    let broadcaster_id = checked.validation.user_id.clone().unwrap_or_default();
    let token = checked.tokens.access_token.as_str();
    let helix = HelixClient::new(app.config.clone(), token)
        .map_err(|e| ApiError::Unavailable(format!("Twitch: {e}")))?;
    Ok(match effect {
        Effect::SnoozeNextAd => {
            let snoozed = helix
                .snooze_next_ad(token, &broadcaster_id)
                .await
                .map_err(ads_failure)?;
            Input::AdSchedule(gt_widgets::ad_timer::AdSchedule {
                snooze_count: snoozed.snooze_count,
                snooze_refresh_at: snoozed.snooze_refresh_at,
                next_ad_at: snoozed.next_ad_at,
                ..Default::default()
            })
        }
        Effect::StartCommercial { length } => {
            let started = helix
                .start_commercial(token, &broadcaster_id, *length)
                .await
                .map_err(ads_failure)?;
            Input::CommercialStarted {
                length: started.length,
                retry_after: started.retry_after,
            }
        }
    })
}

fn ads_failure(e: AdsError) -> ApiError {
    if e.is_transient() {
        ApiError::Unavailable(format!("Twitch: {e}"))
    } else {
        ApiError::BadRequest(format!("Twitch refused: {e}"))
    }
}

/// An opened ad timer follows Twitch's ad schedule: make sure its timer workflow runs (and
/// polls). Done in the background so the page's initial state is not delayed.
pub fn follow_ad_schedule(state: &AppState, user_id: &str, widget_id: &str, widget: &Widget) {
    if state.twitch.is_none() || !widget.active {
        return;
    }
    let workflows = state.workflows.clone();
    let (user_id, widget_id) = (user_id.to_string(), widget_id.to_string());
    let wake_at = gt_widgets::wake_at(WidgetKind::AdTimer, &widget.config, &widget.state);
    tokio::spawn(async move {
        if let Err(e) = workflows
            .wake_widget(&user_id, &widget_id, true, wake_at)
            .await
        {
            tracing::warn!(user_id, widget_id, "ad timer not started: {e}");
        }
    });
}

/// Checks a widget record before `POST`/`PUT /records/stream_widgets`: the config must suit the
/// type, a state written by the client must be one the state machine can read, and a new
/// widget without a state gets its kind's initial state. `stored` is the record being updated.
///
/// Naming `access_token` in a PUT rotates it, except when the value sent is the current token:
/// the front end's edit form sends the whole record back, and saving a title must not break
/// the streamer's OBS URLs ("Regenerate token" sends a new value).
pub fn check_write(body: &mut Value, stored: Option<&Widget>) -> ApiResult<()> {
    let Some(map) = body.as_object_mut() else {
        return Ok(());
    };
    if let Some(current) = stored.and_then(|w| w.access_token.as_deref())
        && map.get("access_token").and_then(Value::as_str) == Some(current)
    {
        map.remove("access_token");
    }
    let kind = match map.get("type").and_then(Value::as_str) {
        Some(t) => WidgetKind::from_type(t),
        None => stored.and_then(|w| w.kind),
    };
    let Some(kind) = kind else {
        return Ok(());
    };
    let config = match map.get("config") {
        Some(c) if !c.is_null() => c.clone(),
        _ => stored.map(|w| w.config.clone()).unwrap_or(Value::Null),
    };
    gt_widgets::validate_config(kind, &config)
        .map_err(|e| ApiError::BadRequest(format!("config: {e}")))?;
    let now = Utc::now();
    match map.get("state") {
        Some(s) if !s.is_null() => {
            gt_widgets::apply(kind, &config, s, &Input::Tick, now)
                .map_err(|e| ApiError::BadRequest(format!("state: {e}")))?;
        }
        // A new widget, or one changed to another type: its kind's initial state.
        _ if stored.is_none_or(|w| w.kind != Some(kind)) => {
            let initial = gt_widgets::initial_state(kind, &config, now)
                .map_err(|e| ApiError::BadRequest(format!("config: {e}")))?;
            map.insert("state".into(), initial);
        }
        _ => {}
    }
    Ok(())
}

/// After a widget record was written: its timer follows the stored state.
pub async fn after_write(state: &AppState, user_id: &str, widget_id: &str) -> ApiResult<()> {
    let Some(widget) = state.widgets.widget(user_id, widget_id).await? else {
        return Ok(());
    };
    let Some(kind) = widget.kind else {
        return Ok(());
    };
    let wake_at = gt_widgets::wake_at(kind, &widget.config, &widget.state);
    let follows = kind == WidgetKind::AdTimer && state.twitch.is_some() && widget.active;
    if wake_at.is_some() || follows {
        state
            .workflows
            .wake_widget(user_id, widget_id, follows, wake_at)
            .await?;
    }
    Ok(())
}
