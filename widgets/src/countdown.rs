//! The countdown widget ("Starting Soon"). State shape as the front end expects it:
//! `{enabled, duration_left (seconds, may be fractional), last_tick_timestamp (RFC 3339|null)}`.
//!
//! Unlike the original, time left is derived from `last_tick_timestamp` instead of being
//! decremented by a poller, so it never drifts and fractional seconds (after a pause) are fine.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const DEFAULT_DURATION: f64 = 300.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountdownConfig {
    #[serde(default = "default_duration")]
    pub duration: f64,
}

fn default_duration() -> f64 {
    DEFAULT_DURATION
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountdownState {
    pub enabled: bool,
    pub duration_left: f64,
    pub last_tick_timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum CountdownAction {
    Start,
    Pause,
    Resume,
    Reset,
    SetDuration { duration: f64 },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CountdownError {
    #[error("duration must be a finite number of seconds ≥ 0, got {0}")]
    BadDuration(f64),
}

impl CountdownState {
    pub fn initial(config: &CountdownConfig) -> Self {
        Self {
            enabled: false,
            duration_left: config.duration,
            last_tick_timestamp: None,
        }
    }

    /// Seconds left at `now` (never negative).
    pub fn remaining(&self, now: DateTime<Utc>) -> f64 {
        match (self.enabled, self.last_tick_timestamp) {
            (true, Some(t)) => {
                let elapsed = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
                (self.duration_left - elapsed).max(0.0)
            }
            _ => self.duration_left.max(0.0),
        }
    }

    /// When the countdown reaches zero, if it is running.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        match (self.enabled, self.last_tick_timestamp) {
            (true, Some(t)) => {
                Some(t + chrono::Duration::milliseconds((self.duration_left * 1000.0) as i64))
            }
            _ => None,
        }
    }

    pub fn apply(
        &self,
        config: &CountdownConfig,
        action: &CountdownAction,
        now: DateTime<Utc>,
    ) -> Result<Self, CountdownError> {
        Ok(match action {
            CountdownAction::Start => Self {
                enabled: true,
                duration_left: config.duration,
                last_tick_timestamp: Some(now),
            },
            CountdownAction::Pause => Self {
                enabled: false,
                duration_left: self.remaining(now),
                last_tick_timestamp: None,
            },
            CountdownAction::Resume if !self.enabled => Self {
                enabled: true,
                duration_left: self.duration_left,
                last_tick_timestamp: Some(now),
            },
            CountdownAction::Resume => self.clone(),
            CountdownAction::Reset => Self::initial(config),
            CountdownAction::SetDuration { duration } => {
                if !duration.is_finite() || *duration < 0.0 {
                    return Err(CountdownError::BadDuration(*duration));
                }
                Self {
                    enabled: self.enabled,
                    duration_left: *duration,
                    last_tick_timestamp: self.enabled.then_some(now),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn counts_down_pauses_with_fractions_and_stops_at_zero() {
        let cfg = CountdownConfig { duration: 10.0 };
        let s = CountdownState::initial(&cfg);
        assert_eq!(s.remaining(t(100)), 10.0);
        let s = s.apply(&cfg, &CountdownAction::Start, t(0)).unwrap();
        assert_eq!(s.remaining(t(4)), 6.0);
        let s = s
            .apply(
                &cfg,
                &CountdownAction::Pause,
                t(4) + chrono::Duration::milliseconds(500),
            )
            .unwrap();
        assert_eq!(s.duration_left, 5.5);
        assert_eq!(s.remaining(t(1000)), 5.5);
        let s = s.apply(&cfg, &CountdownAction::Resume, t(10)).unwrap();
        assert_eq!(
            s.ends_at(),
            Some(t(15) + chrono::Duration::milliseconds(500))
        );
        assert_eq!(s.remaining(t(100)), 0.0);
        let s = s.apply(&cfg, &CountdownAction::Reset, t(20)).unwrap();
        assert_eq!(s, CountdownState::initial(&cfg));
    }

    #[test]
    fn set_duration_validates() {
        let cfg = CountdownConfig { duration: 10.0 };
        let s = CountdownState::initial(&cfg);
        assert_eq!(
            s.apply(&cfg, &CountdownAction::SetDuration { duration: -1.0 }, t(0)),
            Err(CountdownError::BadDuration(-1.0))
        );
        let s = s
            .apply(&cfg, &CountdownAction::SetDuration { duration: 42.0 }, t(0))
            .unwrap();
        assert_eq!(s.duration_left, 42.0);
        assert!(!s.enabled);
    }

    #[test]
    fn actions_parse_from_the_front_end_shape() {
        let a: CountdownAction =
            serde_json::from_value(serde_json::json!({"action": "start"})).unwrap();
        assert_eq!(a, CountdownAction::Start);
        let a: CountdownAction = serde_json::from_value(
            serde_json::json!({"action": "set_duration", "payload": {"duration": 60}}),
        )
        .unwrap();
        assert_eq!(a, CountdownAction::SetDuration { duration: 60.0 });
    }
}
