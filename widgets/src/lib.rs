//! Widget kinds as pure state machines: `(config, state, input, now) -> state`. No I/O and no
//! clock reads (`now` is always a parameter), so the API, the widget-timer workflow and the OBS
//! pages agree on behaviour and every transition is testable.
//!
//! The JSON entry points ([`validate_config`], [`initial_state`], [`apply`], [`wake_at`]) take
//! the record's `config` and `state` as stored; each kind module also has a typed API.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub mod ad_timer;
pub mod appearance;
pub mod chat;
pub mod countdown;
mod json;
pub mod text;

/// The widget types that have live behaviour (`type` column of `stream_widgets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WidgetKind {
    Countdown,
    TextOverlay,
    AdTimer,
    ChatOverlay,
}

impl WidgetKind {
    pub const ALL: [WidgetKind; 4] = [
        WidgetKind::Countdown,
        WidgetKind::TextOverlay,
        WidgetKind::AdTimer,
        WidgetKind::ChatOverlay,
    ];

    /// The kind for a record's `type`; `None` for types without behaviour (poll, name_queue, ...).
    pub fn from_type(t: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == t)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WidgetKind::Countdown => "countdown",
            WidgetKind::TextOverlay => "text_overlay",
            WidgetKind::AdTimer => "ad_timer",
            WidgetKind::ChatOverlay => "chat_overlay",
        }
    }
}

impl fmt::Display for WidgetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What drives a transition: a user's WIDGET_ACTION or something the server observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// From the WebSocket, as sent.
    Action { action: String, payload: Value },
    /// A durable timer fired (at or after [`wake_at`]; late ticks are fine).
    Tick,
    /// Helix `GET /channels/ads` data\[0\] (or the snooze response).
    AdSchedule(ad_timer::AdSchedule),
    /// EventSub `channel.ad_break.begin`.
    AdBreakBegan {
        started_at: DateTime<Utc>,
        duration_seconds: u32,
        is_automatic: bool,
    },
    /// Helix `POST /channels/commercial` succeeded.
    CommercialStarted { length: u32, retry_after: u32 },
}

/// Side effects an action asks for; the caller performs them (Helix) and feeds results back as
/// [`Input`]s (`AdSchedule` after a snooze, `CommercialStarted` after a commercial).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    SnoozeNextAd,
    StartCommercial { length: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: Value,
    pub effects: Vec<Effect>,
    /// When the new state next needs a server transition (a [`Input::Tick`]).
    pub wake_at: Option<DateTime<Utc>>,
}

/// Why an input or a config was refused. Messages are meant for the streamer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WidgetError {
    #[error("{kind} widgets have no action \"{action}\"")]
    UnknownAction { kind: WidgetKind, action: String },
    #[error("bad payload for \"{action}\": {reason}")]
    BadPayload { action: String, reason: String },
    #[error("bad {kind} config: {reason}")]
    BadConfig { kind: WidgetKind, reason: String },
    #[error("the stored {kind} state is unreadable: {reason}")]
    BadState { kind: WidgetKind, reason: String },
    #[error("\"{action}\" refused: {reason}")]
    Refused { action: String, reason: String },
}

impl WidgetError {
    pub(crate) fn bad_payload(action: &str, reason: impl Into<String>) -> Self {
        WidgetError::BadPayload {
            action: action.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn refused(action: &str, reason: impl Into<String>) -> Self {
        WidgetError::Refused {
            action: action.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_config(kind: WidgetKind, reason: impl Into<String>) -> Self {
        WidgetError::BadConfig {
            kind,
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_state(kind: WidgetKind, reason: impl Into<String>) -> Self {
        WidgetError::BadState {
            kind,
            reason: reason.into(),
        }
    }
}

/// Checks a record's `config` (appearance fields and the kind's own fields). `null` counts as
/// `{}` (all defaults).
pub fn validate_config(kind: WidgetKind, config: &Value) -> Result<(), WidgetError> {
    appearance::Appearance::from_config(config).map_err(|r| WidgetError::bad_config(kind, r))?;
    match kind {
        WidgetKind::Countdown => countdown::CountdownConfig::from_value(config).map(drop),
        WidgetKind::TextOverlay => text::TextConfig::from_value(config).map(drop),
        WidgetKind::AdTimer => ad_timer::AdTimerConfig::from_value(config).map(drop),
        WidgetKind::ChatOverlay => chat::ChatConfig::from_value(config).map(drop),
    }
}

/// The state a new (or reset) widget starts in.
pub fn initial_state(
    kind: WidgetKind,
    config: &Value,
    now: DateTime<Utc>,
) -> Result<Value, WidgetError> {
    Ok(match kind {
        WidgetKind::Countdown => {
            let config = countdown::CountdownConfig::from_value(config)?;
            json::to_value(&countdown::CountdownState::initial(&config, now))
        }
        WidgetKind::TextOverlay => {
            let config = text::TextConfig::from_value(config)?;
            json::to_value(&text::TextState::initial(&config, now))
        }
        WidgetKind::AdTimer => {
            ad_timer::AdTimerConfig::from_value(config)?;
            json::to_value(&ad_timer::AdTimerState::default())
        }
        WidgetKind::ChatOverlay => {
            chat::ChatConfig::from_value(config)?;
            chat::empty_state()
        }
    })
}

/// Applies one input. `state` may be null/{} (a record created without state): it is treated
/// as the initial state. On error nothing changes (the caller keeps the old state). An input
/// that does not concern the kind (e.g. an ad break for a countdown) returns the state as is.
pub fn apply(
    kind: WidgetKind,
    config: &Value,
    state: &Value,
    input: &Input,
    now: DateTime<Utc>,
) -> Result<Transition, WidgetError> {
    match kind {
        WidgetKind::Countdown => countdown::apply_json(config, state, input, now),
        WidgetKind::TextOverlay => text::apply_json(config, state, input, now),
        WidgetKind::AdTimer => ad_timer::apply_json(config, state, input, now),
        WidgetKind::ChatOverlay => chat::apply_json(config, state, input),
    }
}

/// When this state next needs a server transition (countdown end, ad end, welcome-back end).
/// `None` when nothing is pending or the config/state is unreadable.
pub fn wake_at(kind: WidgetKind, config: &Value, state: &Value) -> Option<DateTime<Utc>> {
    match kind {
        WidgetKind::Countdown => countdown::CountdownState::from_value(state)
            .ok()
            .flatten()?
            .ends_at(),
        WidgetKind::AdTimer => {
            let _ = config;
            ad_timer::AdTimerState::from_value(state).ok()?.wake_at()
        }
        WidgetKind::TextOverlay | WidgetKind::ChatOverlay => None,
    }
}

/// Whether a stored state is "absent" (null or `{}`), i.e. must be treated as initial.
pub(crate) fn is_blank_state(state: &Value) -> bool {
    match state {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn kinds_round_trip_their_type_names() {
        for (k, t) in [
            (WidgetKind::Countdown, "countdown"),
            (WidgetKind::TextOverlay, "text_overlay"),
            (WidgetKind::AdTimer, "ad_timer"),
            (WidgetKind::ChatOverlay, "chat_overlay"),
        ] {
            assert_eq!(k.as_str(), t);
            assert_eq!(WidgetKind::from_type(t), Some(k));
        }
        for t in ["poll", "name_queue", "bot_integration", "", "Countdown"] {
            assert_eq!(WidgetKind::from_type(t), None, "{t}");
        }
    }

    #[test]
    fn every_kind_accepts_null_and_empty_config_and_state() {
        for kind in WidgetKind::ALL {
            for config in [Value::Null, json!({})] {
                validate_config(kind, &config).unwrap();
                let init = initial_state(kind, &config, now()).unwrap();
                for state in [Value::Null, json!({})] {
                    let t = apply(kind, &config, &state, &Input::Tick, now()).unwrap();
                    assert_eq!(t.state, init, "{kind}: blank state must act as initial");
                    assert_eq!(t.effects, vec![]);
                    assert_eq!(t.wake_at, None);
                    assert_eq!(wake_at(kind, &config, &state), None);
                }
            }
        }
    }

    #[test]
    fn appearance_is_validated_for_every_kind() {
        for kind in WidgetKind::ALL {
            for bad in [
                json!({"width": 99}),
                json!({"width": 3841}),
                json!({"height": 2161}),
                json!({"height": "tall"}),
                json!({"fontSize": 0}),
                json!({"textColor": "red; background: url(x)"}),
                json!({"showBackground": "yes"}),
                json!([1, 2]),
            ] {
                let err = validate_config(kind, &bad).unwrap_err();
                assert!(
                    matches!(err, WidgetError::BadConfig { .. }),
                    "{kind} {bad}: {err}"
                );
            }
            validate_config(
                kind,
                &json!({"width": 1920, "height": 1080, "fontSize": 2.5, "fontFamily": "Inter, sans-serif",
                        "textColor": "#fff", "backgroundColor": "rgba(0,0,0,0.5)", "showBackground": true}),
            )
            .unwrap();
        }
    }

    #[test]
    fn inputs_for_other_kinds_leave_the_state_unchanged() {
        let ad_inputs = [
            Input::AdSchedule(ad_timer::AdSchedule::default()),
            Input::AdBreakBegan {
                started_at: now(),
                duration_seconds: 90,
                is_automatic: true,
            },
            Input::CommercialStarted {
                length: 60,
                retry_after: 480,
            },
        ];
        let running = json!({"enabled": true, "duration_left": 60, "last_tick_timestamp": "2026-05-01T11:59:30Z", "finished_at": null});
        for input in &ad_inputs {
            let t = apply(WidgetKind::Countdown, &json!({}), &running, input, now()).unwrap();
            assert_eq!(t.state, running);
            assert_eq!(t.wake_at, Some("2026-05-01T12:00:30Z".parse().unwrap()));
            let text = json!({"text": "hi", "subtitle": null, "visible": true, "updated_at": "2026-05-01T10:00:00Z"});
            let t = apply(WidgetKind::TextOverlay, &json!({}), &text, input, now()).unwrap();
            assert_eq!(t.state, text);
            let chat = json!({"messages": []});
            let t = apply(WidgetKind::ChatOverlay, &json!({}), &chat, input, now()).unwrap();
            assert_eq!(t.state, chat);
        }
    }

    #[test]
    fn unreadable_state_is_an_error_not_a_reset() {
        for kind in [
            WidgetKind::Countdown,
            WidgetKind::TextOverlay,
            WidgetKind::AdTimer,
        ] {
            let err = apply(
                kind,
                &json!({}),
                &json!({"enabled": "maybe", "visible": 3, "phase": "lunch"}),
                &Input::Tick,
                now(),
            )
            .unwrap_err();
            assert!(matches!(err, WidgetError::BadState { .. }), "{kind}: {err}");
            let err = apply(kind, &json!({}), &json!([1]), &Input::Tick, now()).unwrap_err();
            assert!(matches!(err, WidgetError::BadState { .. }), "{kind}: {err}");
        }
    }

    #[test]
    fn errors_read_well() {
        let e = apply(
            WidgetKind::ChatOverlay,
            &json!({}),
            &Value::Null,
            &Input::Action {
                action: "start".into(),
                payload: Value::Null,
            },
            now(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "chat_overlay widgets have no action \"start\""
        );
    }
}
