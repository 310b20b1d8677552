//! Ad-break timer: when the next ad is (Twitch's ad schedule), "ads running" with the time left
//! (EventSub `channel.ad_break.begin`), "welcome back" for a while afterwards, snoozes left.
//! Snooze and start-commercial actions produce [`Effect`]s that the API executes against Helix;
//! their results come back as [`Input::AdSchedule`] / [`Input::CommercialStarted`].
//!
//! State: `{phase, next_ad_at, last_ad_at, ad_started_at, ad_ends_at, welcome_back_until,
//! ad_duration, snooze_count, snooze_refresh_at, preroll_free_time, is_automatic,
//! schedule_checked_at, next_commercial_at}`; the phase is recomputed at every transition.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::json::{Fields, show};
use crate::{Effect, Input, Transition, WidgetError, WidgetKind};

pub const DEFAULT_VISIBILITY_THRESHOLD: u32 = 300;
pub const DEFAULT_BACK_FROM_ADS_DURATION: u32 = 30;
pub const DEFAULT_RUNNING_TEXT: &str = "Ads running — back soon";
pub const DEFAULT_WELCOME_BACK_TEXT: &str = "Welcome back!";
/// Commercial lengths accepted by `start_commercial` (seconds).
pub const COMMERCIAL_LENGTHS: std::ops::RangeInclusive<u32> = 30..=180;
/// Upper bound for the config's durations (a day).
const MAX_CONFIG_SECONDS: i64 = 86_400;
const KIND: WidgetKind = WidgetKind::AdTimer;

/// Helix `GET /helix/channels/ads` `data[0]` (also the shape of the snooze response, which has
/// only `snooze_count`, `snooze_refresh_at` and `next_ad_at`). Twitch sends times as RFC 3339
/// strings or Unix seconds (number or numeric string), with `""` or `0` meaning "none"; all are
/// accepted; absent counts and times read as 0 / `None`.
///
/// The snooze response lacks `duration`, `last_ad_at` and `preroll_free_time`: a schedule with
/// all three empty (0, `None`, 0) keeps the values the state already has for them (see
/// [`AdTimerState::with_schedule`]), so building one with `..Default::default()` is right.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AdSchedule {
    #[serde(default, deserialize_with = "de_count")]
    pub snooze_count: u32,
    #[serde(default, deserialize_with = "de_time")]
    pub snooze_refresh_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_time")]
    pub next_ad_at: Option<DateTime<Utc>>,
    /// Length of the next ad break, seconds.
    #[serde(default, deserialize_with = "de_count")]
    pub duration: u32,
    #[serde(default, deserialize_with = "de_time")]
    pub last_ad_at: Option<DateTime<Utc>>,
    /// Seconds of pre-roll-free time left.
    #[serde(default, deserialize_with = "de_count")]
    pub preroll_free_time: u32,
}

impl AdSchedule {
    /// Whether this has only what the snooze response carries (see the type's docs).
    pub fn is_snooze_shaped(&self) -> bool {
        self.duration == 0 && self.last_ad_at.is_none() && self.preroll_free_time == 0
    }

    /// The schedule from a whole Helix response body (`{"data": [ {...} ]}`).
    pub fn from_helix_response(body: &Value) -> Result<Self, String> {
        let first = body
            .get("data")
            .and_then(Value::as_array)
            .and_then(|d| d.first())
            .ok_or_else(|| format!("no data[0] in the ads response {}", show(body)))?;
        serde_json::from_value(first.clone()).map_err(|e| format!("bad ad schedule: {e}"))
    }
}

/// A Helix time: RFC 3339, Unix seconds (number or numeric string), or none (`""`, `0`, null).
pub fn parse_helix_time(v: &Value) -> Result<Option<DateTime<Utc>>, String> {
    let from_unix = |secs: f64| -> Result<Option<DateTime<Utc>>, String> {
        if secs == 0.0 {
            return Ok(None);
        }
        if !(secs.is_finite() && secs > 0.0 && secs < 1.0e11) {
            return Err(format!("{secs} is not a Unix time"));
        }
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9).round() as u32;
        Ok(DateTime::from_timestamp(whole, nanos.min(999_999_999)))
    };
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_i64() {
            Some(i) => from_unix(i as f64),
            None => from_unix(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if let Ok(secs) = s.parse::<f64>() {
                from_unix(secs)
            } else {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .map_err(|e| format!("{s:?} is neither RFC 3339 nor Unix seconds: {e}"))
            }
        }
        other => Err(format!("{} is not a time", show(other))),
    }
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    parse_helix_time(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// A count: a number or numeric string; null or `""` read as 0.
fn de_count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = Value::deserialize(d)?;
    let n = match &v {
        Value::Null => return Ok(0),
        Value::String(s) if s.trim().is_empty() => return Ok(0),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{} is not a count", show(&v))))
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdTimerConfig {
    /// The page shows "upcoming" only this many seconds before the ad.
    pub visibility_threshold: u32,
    /// How long "welcome back" shows after an ad break.
    pub back_from_ads_duration: u32,
}

impl AdTimerConfig {
    pub fn from_value(config: &Value) -> Result<Self, WidgetError> {
        let parse = || -> Result<Self, String> {
            let f = Fields::of(config).map_err(|e| format!("config {e}"))?;
            let secs = |key: &str, default: u32| -> Result<u32, String> {
                match f.i64(key)? {
                    None => Ok(default),
                    Some(v) if (0..=MAX_CONFIG_SECONDS).contains(&v) => Ok(v as u32),
                    Some(v) => Err(format!(
                        "`{key}` must be 0..={MAX_CONFIG_SECONDS} seconds, got {v}"
                    )),
                }
            };
            for key in ["upcomingText", "runningText", "welcomeBackText"] {
                f.short_str(key, 500)?;
            }
            Ok(AdTimerConfig {
                visibility_threshold: secs("visibilityThreshold", DEFAULT_VISIBILITY_THRESHOLD)?,
                back_from_ads_duration: secs(
                    "backFromAdsDuration",
                    DEFAULT_BACK_FROM_ADS_DURATION,
                )?,
            })
        };
        parse().map_err(|r| WidgetError::bad_config(KIND, r))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdPhase {
    #[default]
    Idle,
    Upcoming,
    Running,
    WelcomeBack,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AdTimerState {
    pub phase: AdPhase,
    pub next_ad_at: Option<DateTime<Utc>>,
    pub last_ad_at: Option<DateTime<Utc>>,
    pub ad_started_at: Option<DateTime<Utc>>,
    pub ad_ends_at: Option<DateTime<Utc>>,
    pub welcome_back_until: Option<DateTime<Utc>>,
    /// Seconds: the running break's length while running, else the next break's.
    pub ad_duration: u32,
    pub snooze_count: u32,
    pub snooze_refresh_at: Option<DateTime<Utc>>,
    pub preroll_free_time: u32,
    pub is_automatic: bool,
    pub schedule_checked_at: Option<DateTime<Utc>>,
    /// Twitch's `retry_after` after a manual commercial: no new one before this instant.
    pub next_commercial_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AdAction {
    Snooze,
    StartCommercial { length: u32 },
}

impl AdAction {
    pub fn parse(action: &str, payload: &Value) -> Result<Self, WidgetError> {
        let f = Fields::of(payload)
            .map_err(|e| WidgetError::bad_payload(action, format!("payload {e}")))?;
        Ok(match action {
            "snooze" => AdAction::Snooze,
            "start_commercial" => {
                let range = || {
                    format!(
                        "needs {{\"length\": seconds {}..={}}}, got {}",
                        COMMERCIAL_LENGTHS.start(),
                        COMMERCIAL_LENGTHS.end(),
                        show(payload)
                    )
                };
                let length = f
                    .i64("length")
                    .map_err(|e| WidgetError::bad_payload(action, e))?
                    .and_then(|l| u32::try_from(l).ok())
                    .filter(|l| COMMERCIAL_LENGTHS.contains(l))
                    .ok_or_else(|| WidgetError::bad_payload(action, range()))?;
                AdAction::StartCommercial { length }
            }
            other => {
                return Err(WidgetError::UnknownAction {
                    kind: KIND,
                    action: other.to_owned(),
                });
            }
        })
    }
}

impl AdTimerState {
    pub fn from_value(state: &Value) -> Result<Self, WidgetError> {
        if crate::is_blank_state(state) {
            return Ok(Self::default());
        }
        serde_json::from_value(state.clone())
            .map_err(|e| WidgetError::bad_state(KIND, e.to_string()))
    }

    /// The phase at `now`: running while now < ad_ends_at; welcome back until
    /// welcome_back_until; upcoming while a next ad is known and ahead; idle otherwise.
    pub fn phase_at(&self, now: DateTime<Utc>) -> AdPhase {
        if self.ad_ends_at.is_some_and(|end| now < end) {
            AdPhase::Running
        } else if self.ad_ends_at.is_some() && self.welcome_back_until.is_some_and(|w| now < w) {
            AdPhase::WelcomeBack
        } else if self.next_ad_at.is_some_and(|t| t > now) {
            AdPhase::Upcoming
        } else {
            AdPhase::Idle
        }
    }

    /// The state with its phase brought up to `now` (what a timer tick does).
    pub fn at(&self, now: DateTime<Utc>) -> Self {
        Self {
            phase: self.phase_at(now),
            ..self.clone()
        }
    }

    /// The next phase change the server must make (end of the ad, end of "welcome back"),
    /// judged by the stored phase.
    pub fn wake_at(&self) -> Option<DateTime<Utc>> {
        match self.phase {
            AdPhase::Running => self.ad_ends_at,
            AdPhase::WelcomeBack => self.welcome_back_until,
            AdPhase::Idle | AdPhase::Upcoming => None,
        }
    }

    /// Seconds of ad left at `now` (0 when none is running).
    pub fn ad_seconds_left(&self, now: DateTime<Utc>) -> f64 {
        self.ad_ends_at.map_or(0.0, |end| {
            ((end - now).num_milliseconds() as f64 / 1000.0).max(0.0)
        })
    }

    /// Takes a schedule from Helix. A snooze-response-shaped schedule (no `duration`,
    /// `last_ad_at` or `preroll_free_time`) keeps the known values of those three.
    pub fn with_schedule(&self, s: &AdSchedule, now: DateTime<Utc>) -> Self {
        let mut n = self.clone();
        n.next_ad_at = s.next_ad_at;
        n.snooze_refresh_at = s.snooze_refresh_at;
        n.snooze_count = s.snooze_count;
        if !s.is_snooze_shaped() {
            // A last ad we knew of stays known (Twitch reports none when not live).
            n.last_ad_at = s.last_ad_at.or(self.last_ad_at);
            n.preroll_free_time = s.preroll_free_time;
            // While a break runs, `ad_duration` is that break's; the schedule's is the next one.
            if self.phase_at(now) != AdPhase::Running {
                n.ad_duration = s.duration;
            }
        }
        n.schedule_checked_at = Some(now);
        n.at(now)
    }

    pub fn with_ad_break(
        &self,
        config: &AdTimerConfig,
        started_at: DateTime<Utc>,
        duration_seconds: u32,
        is_automatic: bool,
        now: DateTime<Utc>,
    ) -> Self {
        let ends = started_at + Duration::seconds(i64::from(duration_seconds));
        let mut n = self.clone();
        n.ad_started_at = Some(started_at);
        n.ad_ends_at = Some(ends);
        n.welcome_back_until =
            Some(ends + Duration::seconds(i64::from(config.back_from_ads_duration)));
        n.ad_duration = duration_seconds;
        n.is_automatic = is_automatic;
        n.last_ad_at = Some(started_at);
        // The scheduled ad is the one now running; the next schedule poll tells the next one.
        if n.next_ad_at.is_some_and(|t| t <= ends) {
            n.next_ad_at = None;
        }
        n.at(now)
    }

    /// A user action: checks it is allowed now and says what Helix call to make. The state
    /// itself changes only when the result comes back.
    pub fn request(&self, action: &AdAction, now: DateTime<Utc>) -> Result<Effect, WidgetError> {
        match action {
            AdAction::Snooze => {
                if self.snooze_count == 0 {
                    let when = self.snooze_refresh_at.map_or(String::new(), |t| {
                        format!(" (the next one comes at {})", t.to_rfc3339())
                    });
                    return Err(WidgetError::refused(
                        "snooze",
                        format!("no snoozes left{when}"),
                    ));
                }
                Ok(Effect::SnoozeNextAd)
            }
            AdAction::StartCommercial { length } => {
                if self.phase_at(now) == AdPhase::Running {
                    return Err(WidgetError::refused(
                        "start_commercial",
                        format!(
                            "an ad break is running ({} s left)",
                            self.ad_seconds_left(now).ceil()
                        ),
                    ));
                }
                if let Some(t) = self.next_commercial_at.filter(|t| now < *t) {
                    return Err(WidgetError::refused(
                        "start_commercial",
                        format!(
                            "Twitch allows the next commercial in {} s",
                            (t - now).num_seconds().max(1)
                        ),
                    ));
                }
                Ok(Effect::StartCommercial { length: *length })
            }
        }
    }
}

pub(crate) fn apply_json(
    config: &Value,
    state: &Value,
    input: &Input,
    now: DateTime<Utc>,
) -> Result<Transition, WidgetError> {
    let config = AdTimerConfig::from_value(config)?;
    let old = AdTimerState::from_value(state)?;
    let mut effects = vec![];
    let next = match input {
        Input::Action { action, payload } => {
            let action = AdAction::parse(action, payload)?;
            effects.push(old.request(&action, now)?);
            old.at(now)
        }
        Input::Tick => old.at(now),
        Input::AdSchedule(s) => old.with_schedule(s, now),
        Input::AdBreakBegan {
            started_at,
            duration_seconds,
            is_automatic,
        } => old.with_ad_break(&config, *started_at, *duration_seconds, *is_automatic, now),
        Input::CommercialStarted {
            length,
            retry_after,
        } => {
            // Helix gives no start time; EventSub's ad_break.begin follows with the exact one.
            let mut n = old.with_ad_break(&config, now, *length, false, now);
            n.next_commercial_at = Some(now + Duration::seconds(i64::from(*retry_after)));
            n
        }
    };
    let wake_at = next.wake_at();
    let state = if next == old && !crate::is_blank_state(state) {
        state.clone()
    } else {
        crate::json::to_value(&next)
    };
    Ok(Transition {
        state,
        effects,
        wake_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t("2026-05-01T20:00:00Z") + Duration::seconds(secs)
    }

    fn cfg() -> AdTimerConfig {
        AdTimerConfig::from_value(&json!({"backFromAdsDuration": 30})).unwrap()
    }

    #[test]
    fn helix_times_in_every_format() {
        let want = Some(t("2023-08-01T23:08:18Z"));
        for (v, expect) in [
            (json!("2023-08-01T23:08:18+00:00"), want),
            (json!("2023-08-01T23:08:18Z"), want),
            (json!("2023-08-02T01:08:18+02:00"), want),
            (json!(1690931298), want),
            (json!("1690931298"), want),
            (json!(" 1690931298 "), want),
            (json!(1690931298.5), Some(t("2023-08-01T23:08:18.5Z"))),
            (json!(""), None),
            (json!(0), None),
            (json!("0"), None),
            (Value::Null, None),
        ] {
            assert_eq!(parse_helix_time(&v), Ok(expect), "{v}");
        }
        for bad in [
            json!("yesterday"),
            json!(-5),
            json!(true),
            json!([1]),
            json!(1e15),
        ] {
            assert!(parse_helix_time(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedule_deserializes_both_helix_shapes() {
        // GET /channels/ads with Unix-seconds numbers and an empty last_ad_at.
        let body = json!({"data": [{
            "next_ad_at": 1777665600, "last_ad_at": "", "duration": 60,
            "preroll_free_time": 90, "snooze_count": 1, "snooze_refresh_at": "1777666500"
        }]});
        let s = AdSchedule::from_helix_response(&body).unwrap();
        assert_eq!(
            s,
            AdSchedule {
                snooze_count: 1,
                snooze_refresh_at: Some(t("2026-05-01T20:15:00Z")),
                next_ad_at: Some(t("2026-05-01T20:00:00Z")),
                duration: 60,
                last_ad_at: None,
                preroll_free_time: 90,
            }
        );
        // The snooze response: RFC 3339 strings, fewer fields.
        let s: AdSchedule = serde_json::from_value(json!({
            "snooze_count": "2", "snooze_refresh_at": "2026-05-01T21:00:00Z", "next_ad_at": "2026-05-01T20:05:00Z"
        }))
        .unwrap();
        assert_eq!(s.snooze_count, 2);
        assert_eq!(s.duration, 0);
        assert!(s.is_snooze_shaped());
        assert_eq!(s.next_ad_at, Some(at(300)));
        // Garbage is an error, not a silent "no ad".
        assert!(serde_json::from_value::<AdSchedule>(json!({"next_ad_at": "soon"})).is_err());
        assert!(serde_json::from_value::<AdSchedule>(json!({"snooze_count": -1})).is_err());
        assert!(AdSchedule::from_helix_response(&json!({"data": []})).is_err());
        // Serialized schedules read back the same (the workflow passes them around as JSON).
        let s = AdSchedule::from_helix_response(&body).unwrap();
        assert_eq!(
            serde_json::from_value::<AdSchedule>(serde_json::to_value(&s).unwrap()).unwrap(),
            s
        );
    }

    #[test]
    fn phases_follow_the_rules() {
        let mut s = AdTimerState::default();
        assert_eq!(s.phase_at(at(0)), AdPhase::Idle);
        s.next_ad_at = Some(at(600));
        assert_eq!(s.phase_at(at(0)), AdPhase::Upcoming);
        assert_eq!(
            s.phase_at(at(600)),
            AdPhase::Idle,
            "an ad time that passed is not upcoming"
        );
        let s = s.with_ad_break(&cfg(), at(600), 90, true, at(601));
        assert_eq!(s.phase, AdPhase::Running);
        assert_eq!(s.next_ad_at, None, "the scheduled ad is the running one");
        assert_eq!(s.ad_seconds_left(at(601)), 89.0);
        assert_eq!(s.wake_at(), Some(at(690)));
        assert_eq!(s.phase_at(at(689)), AdPhase::Running);
        assert_eq!(s.phase_at(at(690)), AdPhase::WelcomeBack);
        assert_eq!(s.phase_at(at(719)), AdPhase::WelcomeBack);
        assert_eq!(s.phase_at(at(720)), AdPhase::Idle);
        let w = s.at(at(690));
        assert_eq!(w.wake_at(), Some(at(720)));
        assert_eq!(w.at(at(720)).wake_at(), None);
        // A new schedule during welcome back: still welcome back, then upcoming.
        let w = w.with_schedule(
            &AdSchedule {
                next_ad_at: Some(at(4200)),
                ..Default::default()
            },
            at(700),
        );
        assert_eq!(w.phase, AdPhase::WelcomeBack);
        assert_eq!(w.at(at(720)).phase, AdPhase::Upcoming);
    }

    /// Every input and action in every phase.
    #[test]
    fn every_input_in_every_phase() {
        let base = AdTimerState {
            snooze_count: 2,
            snooze_refresh_at: Some(at(3600)),
            next_ad_at: Some(at(1200)),
            ad_duration: 60,
            ..Default::default()
        };
        let idle = AdTimerState {
            next_ad_at: None,
            ..base.clone()
        }
        .at(at(0));
        let upcoming = base.at(at(0));
        let running = base.with_ad_break(&cfg(), at(-10), 60, true, at(0));
        let welcome = base.with_ad_break(&cfg(), at(-70), 60, true, at(0));
        assert_eq!(
            [idle.phase, upcoming.phase, running.phase, welcome.phase],
            [
                AdPhase::Idle,
                AdPhase::Upcoming,
                AdPhase::Running,
                AdPhase::WelcomeBack
            ]
        );
        let now = at(0);
        let c = json!({"backFromAdsDuration": 30});
        let run =
            |s: &AdTimerState, input: Input| apply_json(&c, &crate::json::to_value(s), &input, now);
        let act = |a: &str, p: Value| Input::Action {
            action: a.into(),
            payload: p,
        };
        for s in [&idle, &upcoming, &running, &welcome] {
            let name = format!("{:?}", s.phase);
            // Tick at the same instant: nothing to do.
            let tr = run(s, Input::Tick).unwrap();
            assert_eq!(tr.state, crate::json::to_value(s), "{name} tick");
            assert_eq!(tr.wake_at, s.wake_at());
            // Snooze: allowed with snoozes left, in every phase; the state waits for Helix.
            let tr = run(s, act("snooze", json!({}))).unwrap();
            assert_eq!(tr.effects, vec![Effect::SnoozeNextAd], "{name}");
            assert_eq!(tr.state, crate::json::to_value(s));
            let none_left = AdTimerState {
                snooze_count: 0,
                ..s.clone()
            };
            let err = run(&none_left, act("snooze", Value::Null)).unwrap_err();
            assert!(err.to_string().contains("no snoozes left"), "{name}: {err}");
            // Start commercial: refused only while running.
            let r = run(s, act("start_commercial", json!({"length": 90})));
            if s.phase == AdPhase::Running {
                assert!(matches!(r, Err(WidgetError::Refused { .. })), "{name}");
            } else {
                assert_eq!(
                    r.unwrap().effects,
                    vec![Effect::StartCommercial { length: 90 }],
                    "{name}"
                );
            }
            // Bad payloads and unknown actions, in every phase.
            for (a, p) in [
                ("start_commercial", json!({})),
                ("start_commercial", json!({"length": 29})),
                ("start_commercial", json!({"length": 181})),
                ("start_commercial", json!({"length": 60.5})),
                ("start_commercial", json!({"length": "60"})),
                ("snooze", json!(3)),
            ] {
                assert!(
                    matches!(
                        run(s, act(a, p.clone())),
                        Err(WidgetError::BadPayload { .. })
                    ),
                    "{name} {a} {p}"
                );
            }
            assert!(matches!(
                run(s, act("start", Value::Null)),
                Err(WidgetError::UnknownAction { .. })
            ));
            // A schedule: new next ad, counts, checked now.
            let tr = run(
                s,
                Input::AdSchedule(AdSchedule {
                    snooze_count: 1,
                    snooze_refresh_at: Some(at(4000)),
                    next_ad_at: Some(at(2400)),
                    duration: 120,
                    last_ad_at: None,
                    preroll_free_time: 30,
                }),
            )
            .unwrap();
            let n = AdTimerState::from_value(&tr.state).unwrap();
            assert_eq!(n.next_ad_at, Some(at(2400)));
            assert_eq!((n.snooze_count, n.preroll_free_time), (1, 30));
            assert_eq!(n.schedule_checked_at, Some(now));
            assert_eq!(
                n.last_ad_at, s.last_ad_at,
                "an absent last_ad_at keeps the known one"
            );
            let want_phase = if s.phase == AdPhase::Idle {
                AdPhase::Upcoming
            } else {
                s.phase
            };
            assert_eq!(n.phase, want_phase, "{name}");
            assert_eq!(
                n.ad_duration,
                if s.phase == AdPhase::Running { 60 } else { 120 },
                "{name}"
            );
            // An ad break begins now.
            let tr = run(
                s,
                Input::AdBreakBegan {
                    started_at: now,
                    duration_seconds: 180,
                    is_automatic: false,
                },
            )
            .unwrap();
            let n = AdTimerState::from_value(&tr.state).unwrap();
            assert_eq!(n.phase, AdPhase::Running, "{name}");
            assert_eq!(
                (n.ad_ends_at, n.welcome_back_until),
                (Some(at(180)), Some(at(210)))
            );
            assert_eq!(n.last_ad_at, Some(now));
            assert!(!n.is_automatic);
            assert_eq!(tr.wake_at, Some(at(180)));
            // A commercial we started.
            let tr = run(
                s,
                Input::CommercialStarted {
                    length: 30,
                    retry_after: 480,
                },
            )
            .unwrap();
            let n = AdTimerState::from_value(&tr.state).unwrap();
            assert_eq!(n.phase, AdPhase::Running);
            assert_eq!(n.ad_ends_at, Some(at(30)));
            assert_eq!(n.next_commercial_at, Some(at(480)));
        }
    }

    #[test]
    fn snooze_response_keeps_what_it_does_not_carry() {
        let full = AdSchedule {
            snooze_count: 3,
            snooze_refresh_at: None,
            next_ad_at: Some(at(600)),
            duration: 90,
            last_ad_at: Some(at(-3000)),
            preroll_free_time: 120,
        };
        let s = AdTimerState::default().with_schedule(&full, at(0));
        assert_eq!(
            (s.phase, s.ad_duration, s.preroll_free_time),
            (AdPhase::Upcoming, 90, 120)
        );
        // What the API builds from the snooze response.
        let snoozed = AdSchedule {
            snooze_count: 2,
            snooze_refresh_at: Some(at(3600)),
            next_ad_at: Some(at(900)),
            ..Default::default()
        };
        let n = s.with_schedule(&snoozed, at(10));
        assert_eq!(n.next_ad_at, Some(at(900)));
        assert_eq!((n.snooze_count, n.snooze_refresh_at), (2, Some(at(3600))));
        assert_eq!(
            (n.ad_duration, n.preroll_free_time, n.last_ad_at),
            (90, 120, Some(at(-3000)))
        );
        assert_eq!(n.schedule_checked_at, Some(at(10)));
        // A full poll where the pre-roll-free time ran out does set it to 0.
        let n = s.with_schedule(
            &AdSchedule {
                preroll_free_time: 0,
                ..full
            },
            at(20),
        );
        assert_eq!(n.preroll_free_time, 0);
        // Not live: no next ad → idle, the last ad stays known.
        let n = s.with_schedule(
            &AdSchedule {
                snooze_count: 3,
                ..Default::default()
            },
            at(30),
        );
        assert_eq!(
            (n.phase, n.next_ad_at, n.last_ad_at),
            (AdPhase::Idle, None, Some(at(-3000)))
        );
    }

    #[test]
    fn commercial_retry_after_is_honoured() {
        let s = AdTimerState::default().with_ad_break(&cfg(), at(0), 30, false, at(0));
        let s = AdTimerState {
            next_commercial_at: Some(at(480)),
            ..s
        };
        let a = AdAction::StartCommercial { length: 60 };
        let e = s.request(&a, at(100)).unwrap_err();
        assert!(e.to_string().contains("380 s"), "{e}");
        assert_eq!(
            s.request(&a, at(480)),
            Ok(Effect::StartCommercial { length: 60 })
        );
    }

    #[test]
    fn late_ticks_skip_phases_and_wake_follows() {
        let c = json!({"backFromAdsDuration": 45});
        let began = Input::AdBreakBegan {
            started_at: at(0),
            duration_seconds: 60,
            is_automatic: true,
        };
        let tr = apply_json(&c, &Value::Null, &began, at(1)).unwrap();
        assert_eq!(tr.wake_at, Some(at(60)));
        assert_eq!(tr.state["phase"], "running");
        assert_eq!(tr.state["ad_ends_at"], "2026-05-01T20:01:00Z");
        assert_eq!(crate::wake_at(KIND, &c, &tr.state), Some(at(60)));
        let tr2 = apply_json(&c, &tr.state, &Input::Tick, at(60)).unwrap();
        assert_eq!(tr2.state["phase"], "welcome_back");
        assert_eq!(tr2.wake_at, Some(at(105)));
        // Workers were down: the next tick is an hour late → straight to idle, no wake.
        let tr3 = apply_json(&c, &tr.state, &Input::Tick, at(3600)).unwrap();
        assert_eq!(tr3.state["phase"], "idle");
        assert_eq!(tr3.wake_at, None);
        // EventSub delivered late (after the break): welcome back or idle directly.
        let late = apply_json(&c, &Value::Null, &began, at(70)).unwrap();
        assert_eq!(late.state["phase"], "welcome_back");
    }

    #[test]
    fn config_validation() {
        let c = AdTimerConfig::from_value(&json!({})).unwrap();
        assert_eq!(
            (c.visibility_threshold, c.back_from_ads_duration),
            (300, 30)
        );
        for bad in [
            json!({"visibilityThreshold": -1}),
            json!({"visibilityThreshold": "300"}),
            json!({"backFromAdsDuration": 86401}),
            json!({"runningText": 5}),
            json!({"welcomeBackText": "x".repeat(501)}),
        ] {
            assert!(
                matches!(
                    AdTimerConfig::from_value(&bad),
                    Err(WidgetError::BadConfig { .. })
                ),
                "{bad}"
            );
        }
    }
}
