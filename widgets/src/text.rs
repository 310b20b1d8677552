//! Text/banner overlay ("Now talking about …"): a line of text and an optional subtitle that
//! the streamer sets, shows and hides live.
//! State: `{text, subtitle (string|null), visible, updated_at (RFC 3339)}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json::Fields;
use crate::{Input, Transition, WidgetError, WidgetKind};

/// Longest `text` (and `subtitle`), in characters.
pub const MAX_TEXT_CHARS: usize = 500;
const KIND: WidgetKind = WidgetKind::TextOverlay;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextConfig {
    pub text: String,
    pub subtitle: Option<String>,
}

impl TextConfig {
    pub fn from_value(config: &Value) -> Result<Self, WidgetError> {
        let parse = || -> Result<Self, String> {
            let f = Fields::of(config).map_err(|e| format!("config {e}"))?;
            Ok(TextConfig {
                text: f
                    .short_str("text", MAX_TEXT_CHARS)?
                    .unwrap_or_default()
                    .to_owned(),
                subtitle: f.short_str("subtitle", MAX_TEXT_CHARS)?.map(str::to_owned),
            })
        };
        parse().map_err(|r| WidgetError::bad_config(KIND, r))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextState {
    pub text: String,
    pub subtitle: Option<String>,
    pub visible: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TextAction {
    /// `subtitle: None` keeps the current subtitle; `Some(None)` (JSON null) removes it.
    SetText {
        text: String,
        subtitle: Option<Option<String>>,
    },
    Show,
    Hide,
    /// Empties text and subtitle (visibility unchanged).
    Clear,
}

impl TextAction {
    pub fn parse(action: &str, payload: &Value) -> Result<Self, WidgetError> {
        let f = Fields::of(payload)
            .map_err(|e| WidgetError::bad_payload(action, format!("payload {e}")))?;
        Ok(match action {
            "set_text" => {
                let bad = |e| WidgetError::bad_payload(action, e);
                let text = f
                    .short_str("text", MAX_TEXT_CHARS)
                    .map_err(bad)?
                    .ok_or_else(|| WidgetError::bad_payload(action, "needs {\"text\": \"…\"}"))?
                    .to_owned();
                let subtitle = if f.has("subtitle") {
                    Some(
                        f.short_str("subtitle", MAX_TEXT_CHARS)
                            .map_err(bad)?
                            .map(str::to_owned),
                    )
                } else {
                    None
                };
                TextAction::SetText { text, subtitle }
            }
            "show" => TextAction::Show,
            "hide" => TextAction::Hide,
            "clear" => TextAction::Clear,
            other => {
                return Err(WidgetError::UnknownAction {
                    kind: KIND,
                    action: other.to_owned(),
                });
            }
        })
    }
}

impl TextState {
    /// The configured text, visible.
    pub fn initial(config: &TextConfig, now: DateTime<Utc>) -> Self {
        TextState {
            text: config.text.clone(),
            subtitle: config.subtitle.clone(),
            visible: true,
            updated_at: now,
        }
    }

    pub fn from_value(state: &Value) -> Result<Option<Self>, WidgetError> {
        if crate::is_blank_state(state) {
            return Ok(None);
        }
        serde_json::from_value(state.clone())
            .map(Some)
            .map_err(|e| WidgetError::bad_state(KIND, e.to_string()))
    }

    /// Every accepted action stamps `updated_at`.
    pub fn apply(&self, action: &TextAction, now: DateTime<Utc>) -> Self {
        let mut s = self.clone();
        match action {
            TextAction::SetText { text, subtitle } => {
                s.text = text.clone();
                if let Some(sub) = subtitle {
                    s.subtitle = sub.clone();
                }
            }
            TextAction::Show => s.visible = true,
            TextAction::Hide => s.visible = false,
            TextAction::Clear => {
                s.text.clear();
                s.subtitle = None;
            }
        }
        s.updated_at = now;
        s
    }
}

pub(crate) fn apply_json(
    config: &Value,
    state: &Value,
    input: &Input,
    now: DateTime<Utc>,
) -> Result<Transition, WidgetError> {
    let config = TextConfig::from_value(config)?;
    let old = TextState::from_value(state)?;
    let next = match input {
        Input::Action { action, payload } => {
            let action = TextAction::parse(action, payload)?;
            Some(
                old.clone()
                    .unwrap_or_else(|| TextState::initial(&config, now))
                    .apply(&action, now),
            )
        }
        _ => old.clone(),
    };
    let state = match next {
        Some(next) if Some(&next) != old.as_ref() => crate::json::to_value(&next),
        Some(_) => state.clone(),
        None => crate::json::to_value(&TextState::initial(&config, now)),
    };
    Ok(Transition {
        state,
        effects: vec![],
        wake_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: i64) -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(s)
    }

    fn st(text: &str, subtitle: Option<&str>, visible: bool, updated: i64) -> TextState {
        TextState {
            text: text.into(),
            subtitle: subtitle.map(Into::into),
            visible,
            updated_at: at(updated),
        }
    }

    #[test]
    fn every_action_in_both_visibilities() {
        for visible in [true, false] {
            let s = st("Old", Some("sub"), visible, 0);
            let set = |text: &str, subtitle: Option<Option<&str>>| TextAction::SetText {
                text: text.into(),
                subtitle: subtitle.map(|o| o.map(Into::into)),
            };
            for (action, want) in [
                (
                    set("Now: Rust", None),
                    st("Now: Rust", Some("sub"), visible, 5),
                ),
                (
                    set("Now: Rust", Some(Some("async"))),
                    st("Now: Rust", Some("async"), visible, 5),
                ),
                (
                    set("Now: Rust", Some(None)),
                    st("Now: Rust", None, visible, 5),
                ),
                (TextAction::Show, st("Old", Some("sub"), true, 5)),
                (TextAction::Hide, st("Old", Some("sub"), false, 5)),
                (TextAction::Clear, st("", None, visible, 5)),
            ] {
                assert_eq!(
                    s.apply(&action, at(5)),
                    want,
                    "{action:?} visible={visible}"
                );
            }
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(
            TextAction::parse("set_text", &json!({"text": "hi"})),
            Ok(TextAction::SetText {
                text: "hi".into(),
                subtitle: None
            })
        );
        assert_eq!(
            TextAction::parse("set_text", &json!({"text": "hi", "subtitle": null})),
            Ok(TextAction::SetText {
                text: "hi".into(),
                subtitle: Some(None)
            })
        );
        // 500 characters (not bytes) is the limit: 500 × "é" is 1000 bytes and fine.
        assert!(TextAction::parse("set_text", &json!({"text": "é".repeat(500)})).is_ok());
        for (a, p) in [
            ("set_text", json!({})),
            ("set_text", Value::Null),
            ("set_text", json!({"text": 5})),
            ("set_text", json!({"text": "x".repeat(501)})),
            (
                "set_text",
                json!({"text": "ok", "subtitle": "y".repeat(501)}),
            ),
            ("set_text", json!({"text": "ok", "subtitle": 7})),
            ("show", json!("please")),
        ] {
            assert!(
                matches!(
                    TextAction::parse(a, &p),
                    Err(WidgetError::BadPayload { .. })
                ),
                "{a} {p}"
            );
        }
        assert!(matches!(
            TextAction::parse("start", &Value::Null),
            Err(WidgetError::UnknownAction { .. })
        ));
    }

    #[test]
    fn json_transitions() {
        let config = json!({"text": "Starting soon", "subtitle": "grab a drink"});
        let init = crate::initial_state(KIND, &config, at(0)).unwrap();
        assert_eq!(
            init,
            json!({"text": "Starting soon", "subtitle": "grab a drink", "visible": true, "updated_at": "2026-05-01T12:00:00Z"})
        );
        let hide = Input::Action {
            action: "hide".into(),
            payload: json!({}),
        };
        let t = apply_json(&config, &Value::Null, &hide, at(3)).unwrap();
        assert_eq!(
            t.state,
            json!({"text": "Starting soon", "subtitle": "grab a drink", "visible": false, "updated_at": "2026-05-01T12:00:03Z"})
        );
        assert_eq!((t.effects, t.wake_at), (vec![], None));
        // Bad payload: error, and the caller keeps the old state.
        let bad = Input::Action {
            action: "set_text".into(),
            payload: json!({"text": "x".repeat(501)}),
        };
        assert!(apply_json(&config, &init, &bad, at(4)).is_err());
        // Tick changes nothing.
        assert_eq!(
            apply_json(&config, &t.state, &Input::Tick, at(9))
                .unwrap()
                .state,
            t.state
        );
        // Config limits.
        for bad in [
            json!({"text": "x".repeat(501)}),
            json!({"text": 1}),
            json!({"subtitle": []}),
        ] {
            assert!(
                matches!(
                    TextConfig::from_value(&bad),
                    Err(WidgetError::BadConfig { .. })
                ),
                "{bad}"
            );
        }
    }
}
