//! Chat overlay: the recent chat lines (from chat capture) with badges, colours and emote
//! fragments, minus commands and listed bots, faded after N seconds, without deleted lines.
//! Its state is built by the server from the captured chat ([`overlay_state`]), never stored
//! in the record: `{messages: [ChatLine...]}`, oldest first (newest last).

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::json::Fields;
use crate::{Input, Transition, WidgetError, WidgetKind};

pub const DEFAULT_MAX_MESSAGES: usize = 20;
pub const MAX_MESSAGES_RANGE: std::ops::RangeInclusive<i64> = 1..=100;
pub const DEFAULT_FADE_AFTER: f64 = 30.0;
pub const DEFAULT_EMOTE_BASE_URL: &str = "https://static-cdn.jtvnw.net/emoticons/v2";
/// Longest `fadeAfter` (a day); 0 means never.
const MAX_FADE_AFTER: f64 = 86_400.0;
const KIND: WidgetKind = WidgetKind::ChatOverlay;

/// One chat message as the overlay shows it (`badges`: `[{set_id, id, info}]`, `fragments`:
/// `[{type, text, emote?: {id}}]`, as Twitch's EventSub `channel.chat.message` gives them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatLine {
    pub id: String,
    pub user_id: String,
    pub user_login: String,
    pub user_name: String,
    pub color: Option<String>,
    pub badges: Value,
    pub fragments: Value,
    pub text: String,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatConfig {
    pub max_messages: usize,
    /// Seconds after which a line fades out; 0 = never.
    pub fade_after: f64,
    /// Hide lines starting with `!` (bot commands).
    pub hide_commands: bool,
    /// Logins (or display names) whose lines are hidden, lower-cased.
    pub ignored_users: Vec<String>,
    pub show_badges: bool,
    pub emote_base_url: String,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_messages: DEFAULT_MAX_MESSAGES,
            fade_after: DEFAULT_FADE_AFTER,
            hide_commands: true,
            ignored_users: vec![],
            show_badges: true,
            emote_base_url: DEFAULT_EMOTE_BASE_URL.to_owned(),
        }
    }
}

impl ChatConfig {
    pub fn from_value(config: &Value) -> Result<Self, WidgetError> {
        Self::parse(config).map_err(|r| WidgetError::bad_config(KIND, r))
    }

    fn parse(config: &Value) -> Result<Self, String> {
        let f = Fields::of(config).map_err(|e| format!("config {e}"))?;
        let d = ChatConfig::default();
        let max_messages = match f.i64("maxMessages")? {
            None => d.max_messages,
            Some(n) if MAX_MESSAGES_RANGE.contains(&n) => n as usize,
            Some(n) => {
                return Err(format!(
                    "`maxMessages` must be {}..={}, got {n}",
                    MAX_MESSAGES_RANGE.start(),
                    MAX_MESSAGES_RANGE.end()
                ));
            }
        };
        let fade_after = match f.f64("fadeAfter")? {
            None => d.fade_after,
            Some(s) if (0.0..=MAX_FADE_AFTER).contains(&s) => s,
            Some(s) => {
                return Err(format!(
                    "`fadeAfter` must be 0..={MAX_FADE_AFTER} seconds, got {s}"
                ));
            }
        };
        let ignored_users = match f.array("ignoredUsers")? {
            None => vec![],
            Some(list) => list
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_lowercase()),
                    other => Err(format!(
                        "`ignoredUsers` must list user logins, got {}",
                        crate::json::show(other)
                    )),
                })
                .collect::<Result<_, _>>()?,
        };
        let emote_base_url = match f.short_str("emoteBaseUrl", 500)? {
            None => d.emote_base_url,
            Some(u)
                if u.starts_with("https://") || u.starts_with("http://") || u.starts_with('/') =>
            {
                u.trim_end_matches('/').to_owned()
            }
            Some(u) => {
                return Err(format!(
                    "`emoteBaseUrl` must be an http(s) URL or a path, got {u:?}"
                ));
            }
        };
        Ok(ChatConfig {
            max_messages,
            fade_after,
            hide_commands: f.bool("hideCommands")?.unwrap_or(d.hide_commands),
            ignored_users,
            show_badges: f.bool("showBadges")?.unwrap_or(d.show_badges),
            emote_base_url,
        })
    }

    /// Whether a line is shown at all (commands, ignored users).
    pub fn admits(&self, line: &ChatLine) -> bool {
        if self.hide_commands && line.text.trim_start().starts_with('!') {
            return false;
        }
        let login = line.user_login.to_lowercase();
        let name = line.user_name.to_lowercase();
        !self.ignored_users.iter().any(|u| *u == login || *u == name)
    }

    /// Whether a line has faded by `now` (it fades `fadeAfter` s after its timestamp).
    pub fn faded(&self, line: &ChatLine, now: DateTime<Utc>) -> bool {
        self.fade_after > 0.0
            && now - line.timestamp
                >= Duration::milliseconds((self.fade_after * 1000.0).round() as i64)
    }
}

/// The overlay state from chat lines (oldest first, deleted ones already removed): applies
/// hideCommands, ignoredUsers, fadeAfter (at `now`) and maxMessages (keeps the newest). A config
/// that does not validate falls back to the defaults (configs are validated when saved).
pub fn overlay_state(
    config: &Value,
    lines: impl IntoIterator<Item = ChatLine>,
    now: DateTime<Utc>,
) -> Value {
    let config = ChatConfig::from_value(config).unwrap_or_default();
    let mut overlay = ChatOverlay::new(config);
    for line in lines {
        overlay.apply(ChatEvent::Message(line));
    }
    overlay.state(now)
}

/// The `{messages: []}` state.
pub fn empty_state() -> Value {
    json!({ "messages": [] })
}

/// What chat capture observes.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    Message(ChatLine),
    Delete { message_id: String },
    ClearUser { user_id: String },
    Clear,
}

/// The overlay kept live from chat events: at most `maxMessages` admitted lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOverlay {
    pub config: ChatConfig,
    lines: VecDeque<ChatLine>,
}

impl ChatOverlay {
    pub fn new(config: ChatConfig) -> Self {
        ChatOverlay {
            config,
            lines: VecDeque::new(),
        }
    }

    /// Returns whether the visible lines changed (so the caller knows to broadcast).
    pub fn apply(&mut self, event: ChatEvent) -> bool {
        let before = self.lines.len();
        match event {
            ChatEvent::Message(line) => {
                if !self.config.admits(&line) {
                    return false;
                }
                self.lines.push_back(line);
                while self.lines.len() > self.config.max_messages {
                    self.lines.pop_front();
                }
                true
            }
            ChatEvent::Delete { message_id } => {
                self.lines.retain(|l| l.id != message_id);
                self.lines.len() != before
            }
            ChatEvent::ClearUser { user_id } => {
                self.lines.retain(|l| l.user_id != user_id);
                self.lines.len() != before
            }
            ChatEvent::Clear => {
                self.lines.clear();
                before != 0
            }
        }
    }

    /// The lines still visible at `now`, oldest first.
    pub fn visible(&self, now: DateTime<Utc>) -> impl Iterator<Item = &ChatLine> {
        self.lines
            .iter()
            .filter(move |l| !self.config.faded(l, now))
    }

    pub fn state(&self, now: DateTime<Utc>) -> Value {
        let messages: Vec<&ChatLine> = self.visible(now).collect();
        json!({ "messages": messages })
    }
}

pub(crate) fn apply_json(
    config: &Value,
    state: &Value,
    input: &Input,
) -> Result<Transition, WidgetError> {
    ChatConfig::from_value(config)?;
    if let Input::Action { action, .. } = input {
        return Err(WidgetError::UnknownAction {
            kind: KIND,
            action: action.clone(),
        });
    }
    // The server rebuilds this state from captured chat; inputs leave it as it is.
    let state = if crate::is_blank_state(state) {
        empty_state()
    } else {
        state.clone()
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

    fn at(s: i64) -> DateTime<Utc> {
        "2026-05-01T20:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::seconds(s)
    }

    fn line(id: &str, login: &str, text: &str, ts: i64) -> ChatLine {
        ChatLine {
            id: id.into(),
            user_id: format!("uid-{login}"),
            user_login: login.into(),
            user_name: login.to_uppercase(),
            color: Some("#FF0000".into()),
            badges: json!([{"set_id": "subscriber", "id": "12", "info": "16"}]),
            fragments: json!([{"type": "text", "text": text}]),
            text: text.into(),
            timestamp: at(ts),
        }
    }

    fn ids(state: &Value) -> Vec<String> {
        state["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn sample() -> Vec<ChatLine> {
        vec![
            line("1", "alice", "hello", 0),
            line("2", "Nightbot", "Follow the channel!", 1),
            line("3", "bob", "!uptime", 2),
            line("4", "carol", "  !so alice", 3),
            line("5", "dave", "gg Kappa", 4),
            line("6", "StreamElements", "thanks", 5),
            line("7", "erin", "wp", 6),
        ]
    }

    #[test]
    fn filters_commands_and_bots_case_insensitively() {
        let cfg = json!({"ignoredUsers": ["nightbot", "STREAMELEMENTS"], "fadeAfter": 0});
        assert_eq!(ids(&overlay_state(&cfg, sample(), at(10))), ["1", "5", "7"]);
        // By display name too.
        let cfg = json!({"ignoredUsers": ["DAVE"], "fadeAfter": 0, "hideCommands": false});
        assert_eq!(
            ids(&overlay_state(&cfg, sample(), at(10))),
            ["1", "2", "3", "4", "6", "7"]
        );
        // Defaults: commands hidden, no one ignored.
        assert_eq!(
            ids(&overlay_state(&json!({"fadeAfter": 0}), sample(), at(10))),
            ["1", "2", "5", "6", "7"]
        );
    }

    #[test]
    fn keeps_the_newest_max_messages_after_filtering() {
        let cfg = json!({"maxMessages": 2, "fadeAfter": 0});
        assert_eq!(ids(&overlay_state(&cfg, sample(), at(10))), ["6", "7"]);
        let cfg = json!({"maxMessages": 3, "fadeAfter": 0, "ignoredUsers": ["erin"]});
        assert_eq!(ids(&overlay_state(&cfg, sample(), at(10))), ["2", "5", "6"]);
    }

    #[test]
    fn fades_lines_older_than_fade_after() {
        let cfg = json!({"fadeAfter": 5, "hideCommands": false});
        // At t=8: lines at t ≤ 3 are ≥ 5 s old → faded.
        assert_eq!(ids(&overlay_state(&cfg, sample(), at(8))), ["5", "6", "7"]);
        assert_eq!(
            ids(&overlay_state(&cfg, sample(), at(3))),
            ["1", "2", "3", "4", "5", "6", "7"]
        );
        assert_eq!(
            ids(&overlay_state(&cfg, sample(), at(100))),
            Vec::<String>::new()
        );
        // Fractional seconds.
        let cfg = json!({"fadeAfter": 2.5});
        assert_eq!(
            ids(&overlay_state(
                &cfg,
                sample(),
                at(8) + Duration::milliseconds(400)
            )),
            ["7"]
        );
    }

    #[test]
    fn events_delete_and_clear() {
        let config = ChatConfig::from_value(&json!({"fadeAfter": 0, "maxMessages": 3})).unwrap();
        let mut o = ChatOverlay::new(config);
        for l in sample() {
            o.apply(ChatEvent::Message(l));
        }
        assert_eq!(ids(&o.state(at(10))), ["5", "6", "7"]);
        assert!(o.apply(ChatEvent::Delete {
            message_id: "6".into()
        }));
        assert!(!o.apply(ChatEvent::Delete {
            message_id: "nope".into()
        }));
        assert_eq!(ids(&o.state(at(10))), ["5", "7"]);
        o.apply(ChatEvent::Message(line("8", "dave", "again", 7)));
        assert!(o.apply(ChatEvent::ClearUser {
            user_id: "uid-dave".into()
        }));
        assert_eq!(ids(&o.state(at(10))), ["7"]);
        // Filtered lines never enter (and report no change).
        assert!(!o.apply(ChatEvent::Message(line("9", "x", "!cmd", 8))));
        assert!(o.apply(ChatEvent::Clear));
        assert!(!o.apply(ChatEvent::Clear));
        assert_eq!(o.state(at(10)), empty_state());
    }

    #[test]
    fn message_shape_for_the_page() {
        let state = overlay_state(&json!({}), [line("1", "alice", "hi", 0)], at(1));
        assert_eq!(
            state,
            json!({"messages": [{
                "id": "1", "user_id": "uid-alice", "user_login": "alice", "user_name": "ALICE",
                "color": "#FF0000", "badges": [{"set_id": "subscriber", "id": "12", "info": "16"}],
                "fragments": [{"type": "text", "text": "hi"}], "text": "hi",
                "timestamp": "2026-05-01T20:00:00Z"
            }]})
        );
    }

    #[test]
    fn config_validation() {
        let c = ChatConfig::from_value(&Value::Null).unwrap();
        assert_eq!(c, ChatConfig::default());
        let c = ChatConfig::from_value(
            &json!({"maxMessages": 100, "fadeAfter": 0, "emoteBaseUrl": "/emotes/"}),
        )
        .unwrap();
        assert_eq!(
            (c.max_messages, c.fade_after, c.emote_base_url.as_str()),
            (100, 0.0, "/emotes")
        );
        for bad in [
            json!({"maxMessages": 0}),
            json!({"maxMessages": 101}),
            json!({"maxMessages": "20"}),
            json!({"fadeAfter": -1}),
            json!({"ignoredUsers": "nightbot"}),
            json!({"ignoredUsers": ["ok", 5]}),
            json!({"ignoredUsers": [""]}),
            json!({"hideCommands": "no"}),
            json!({"emoteBaseUrl": "javascript:alert(1)"}),
        ] {
            assert!(
                matches!(
                    ChatConfig::from_value(&bad),
                    Err(WidgetError::BadConfig { .. })
                ),
                "{bad}"
            );
        }
        // overlay_state falls back to the defaults on a bad config instead of failing.
        assert_eq!(
            ids(&overlay_state(&json!({"maxMessages": 0}), sample(), at(10))),
            ["1", "2", "5", "6", "7"]
        );
    }

    #[test]
    fn actions_are_refused_and_other_inputs_keep_the_state() {
        let e = apply_json(
            &json!({}),
            &Value::Null,
            &Input::Action {
                action: "clear".into(),
                payload: Value::Null,
            },
        )
        .unwrap_err();
        assert!(matches!(e, WidgetError::UnknownAction { .. }));
        let s = overlay_state(&json!({}), [line("1", "a", "b", 0)], at(1));
        assert_eq!(apply_json(&json!({}), &s, &Input::Tick).unwrap().state, s);
    }
}
