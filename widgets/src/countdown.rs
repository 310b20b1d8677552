//! The countdown widget ("Starting Soon"), for a duration or until a wall-clock time in a time
//! zone. State shape as the front end expects it:
//! `{enabled, duration_left (seconds, may be fractional), last_tick_timestamp (RFC 3339|null),
//! finished_at (RFC 3339|null)}`.
//!
//! Unlike the original, time left is derived from `last_tick_timestamp` instead of being
//! decremented by a poller, so it never drifts and fractional seconds (after a pause) are fine.
//! The four situations a countdown can be in are derived from the fields (see [`Phase`]).

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json::{Fields, show};
use crate::{Input, Transition, WidgetError, WidgetKind};

pub const DEFAULT_DURATION: f64 = 300.0;
pub const DEFAULT_FINISHED_TEXT: &str = "Time's up!";
/// The longest countdown (10 years): keeps every instant computation far from chrono's range.
pub const MAX_SECONDS: f64 = 10.0 * 366.0 * 86_400.0;
const KIND: WidgetKind = WidgetKind::Countdown;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Counts `duration` seconds from start.
    Duration,
    /// Counts to `target` (local wall-clock time in `timezone`).
    Until,
}

/// What the page shows once the countdown is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFinish {
    Text,
    Hide,
    CountUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    HhMmSs,
    MmSs,
    /// `hh:mm:ss` from one hour up, `mm:ss` below.
    Auto,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CountdownConfig {
    pub duration: f64,
    pub mode: Mode,
    /// Local wall-clock time (until mode; required there).
    pub target: Option<NaiveDateTime>,
    pub timezone: Tz,
    pub on_finish: OnFinish,
    pub finished_text: String,
    pub format: TimeFormat,
    pub on_finish_scene: Option<String>,
}

impl Default for CountdownConfig {
    fn default() -> Self {
        CountdownConfig {
            duration: DEFAULT_DURATION,
            mode: Mode::Duration,
            target: None,
            timezone: Tz::UTC,
            on_finish: OnFinish::Text,
            finished_text: DEFAULT_FINISHED_TEXT.to_owned(),
            format: TimeFormat::Auto,
            on_finish_scene: None,
        }
    }
}

/// Parses `YYYY-MM-DDTHH:MM[:SS]` (what an `<input type="datetime-local">` gives).
pub fn parse_target(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

/// The instant a local wall-clock time denotes in `tz`. A time skipped by a spring-forward gap
/// moves forward by the gap's length (02:30 → 03:30 at the new offset, i.e. it is read with the
/// offset in force before the gap); a time that happens twice (fall back) is the earlier one.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // The offset before the gap: gaps are far shorter than a day and no zone has two
            // transitions within one, so the offset a day earlier is the one in force.
            let before = tz
                .offset_from_utc_datetime(&(local - Duration::days(1)))
                .fix()
                .local_minus_utc();
            (local - Duration::seconds(i64::from(before))).and_utc()
        }
    }
}

impl CountdownConfig {
    pub fn from_value(config: &Value) -> Result<Self, WidgetError> {
        Self::parse(config).map_err(|r| WidgetError::bad_config(KIND, r))
    }

    fn parse(config: &Value) -> Result<Self, String> {
        let f = Fields::of(config).map_err(|e| format!("config {e}"))?;
        let d = CountdownConfig::default();
        let duration = match f.f64("duration")? {
            None => d.duration,
            Some(v) => check_seconds("duration", v)?,
        };
        let mode = match f.str("mode")? {
            None | Some("duration") => Mode::Duration,
            Some("until") => Mode::Until,
            Some(o) => {
                return Err(format!(
                    "`mode` must be \"duration\" or \"until\", got {o:?}"
                ));
            }
        };
        let timezone = match f.str("timezone")? {
            None | Some("") => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                format!(
                    "`timezone` {name:?} is not an IANA time zone name (e.g. \"America/New_York\")"
                )
            })?,
        };
        let target = match f.str("target")? {
            None | Some("") => None,
            Some(s) => Some(parse_target(s).ok_or_else(|| {
                format!("`target` must be a local time YYYY-MM-DDTHH:MM[:SS], got {s:?}")
            })?),
        };
        if mode == Mode::Until && target.is_none() {
            return Err("an \"until\" countdown needs a `target` time".into());
        }
        let on_finish = match f.str("onFinish")? {
            None | Some("text") => OnFinish::Text,
            Some("hide") => OnFinish::Hide,
            Some("count_up") => OnFinish::CountUp,
            Some(o) => {
                return Err(format!(
                    "`onFinish` must be \"text\", \"hide\" or \"count_up\", got {o:?}"
                ));
            }
        };
        let format = match f.str("format")? {
            None | Some("auto") => TimeFormat::Auto,
            Some("hh:mm:ss") => TimeFormat::HhMmSs,
            Some("mm:ss") => TimeFormat::MmSs,
            Some(o) => {
                return Err(format!(
                    "`format` must be \"hh:mm:ss\", \"mm:ss\" or \"auto\", got {o:?}"
                ));
            }
        };
        let finished_text = f
            .short_str("finishedText", 500)?
            .map_or(d.finished_text, str::to_owned);
        f.short_str("title", 500)?;
        f.short_str("text", 500)?;
        for key in ["showTitle", "showText", "showProgressBar"] {
            f.bool(key)?;
        }
        let on_finish_scene = f.short_str("onFinishScene", 200)?.map(str::to_owned);
        Ok(CountdownConfig {
            duration,
            mode,
            target,
            timezone,
            on_finish,
            finished_text,
            format,
            on_finish_scene,
        })
    }

    /// The target instant (until mode).
    pub fn target_utc(&self) -> Option<DateTime<Utc>> {
        Some(resolve_local(self.timezone, self.target?))
    }
}

fn check_seconds(what: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && (0.0..=MAX_SECONDS).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "`{what}` must be 0..={MAX_SECONDS} seconds, got {v}"
        ))
    }
}

fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn dur(seconds: f64) -> Duration {
    Duration::milliseconds((seconds * 1000.0).round() as i64)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountdownState {
    pub enabled: bool,
    pub duration_left: f64,
    pub last_tick_timestamp: Option<DateTime<Utc>>,
    /// The instant it reached zero; absent in states written before this field existed.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// The situations a countdown state can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started since the last reset (or since its duration was set).
    Stopped,
    Running,
    Finished,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CountdownAction {
    /// (Re)start from the configured duration (or from now to the target).
    Start,
    Pause,
    /// Continue from where it was paused (until mode: recompute from the target).
    Resume,
    /// Back to the initial, stopped state.
    Reset,
    SetDuration {
        duration: f64,
    },
    /// Add (or, negative, subtract) seconds; the time left clamps at 0.
    AddTime {
        seconds: f64,
    },
}

impl CountdownAction {
    /// The action as the WebSocket sends it (`{action, payload}`).
    pub fn parse(action: &str, payload: &Value) -> Result<Self, WidgetError> {
        let f = Fields::of(payload)
            .map_err(|e| WidgetError::bad_payload(action, format!("payload {e}")))?;
        let number = |key: &str| -> Result<f64, WidgetError> {
            f.f64(key)
                .map_err(|e| WidgetError::bad_payload(action, e))?
                .ok_or_else(|| {
                    WidgetError::bad_payload(
                        action,
                        format!("needs {{\"{key}\": seconds}}, got {}", show(payload)),
                    )
                })
        };
        Ok(match action {
            "start" => CountdownAction::Start,
            "pause" => CountdownAction::Pause,
            "resume" => CountdownAction::Resume,
            "reset" => CountdownAction::Reset,
            "set_duration" => {
                let duration = number("duration")?;
                check_seconds("duration", duration)
                    .map_err(|e| WidgetError::bad_payload(action, e))?;
                CountdownAction::SetDuration { duration }
            }
            "add_time" => {
                let seconds = number("seconds")?;
                if seconds.abs() > MAX_SECONDS {
                    return Err(WidgetError::bad_payload(
                        action,
                        format!("`seconds` must be within ±{MAX_SECONDS}, got {seconds}"),
                    ));
                }
                CountdownAction::AddTime { seconds }
            }
            other => {
                return Err(WidgetError::UnknownAction {
                    kind: KIND,
                    action: other.to_owned(),
                });
            }
        })
    }

    fn name(&self) -> &'static str {
        match self {
            CountdownAction::Start => "start",
            CountdownAction::Pause => "pause",
            CountdownAction::Resume => "resume",
            CountdownAction::Reset => "reset",
            CountdownAction::SetDuration { .. } => "set_duration",
            CountdownAction::AddTime { .. } => "add_time",
        }
    }
}

impl CountdownState {
    /// Stopped at the full duration; in until mode at the time left until the target at `now`
    /// (a preview: starting recomputes it).
    pub fn initial(config: &CountdownConfig, now: DateTime<Utc>) -> Self {
        let duration_left = match (config.mode, config.target_utc()) {
            (Mode::Until, Some(t)) => secs(t - now).clamp(0.0, MAX_SECONDS),
            _ => config.duration,
        };
        Self::stopped(duration_left)
    }

    fn stopped(duration_left: f64) -> Self {
        Self {
            enabled: false,
            duration_left,
            last_tick_timestamp: None,
            finished_at: None,
        }
    }

    fn running(duration_left: f64, now: DateTime<Utc>) -> Self {
        if duration_left <= 0.0 {
            return Self::finished(now);
        }
        Self {
            enabled: true,
            duration_left,
            last_tick_timestamp: Some(now),
            finished_at: None,
        }
    }

    fn finished(at: DateTime<Utc>) -> Self {
        Self {
            enabled: false,
            duration_left: 0.0,
            last_tick_timestamp: None,
            finished_at: Some(at),
        }
    }

    /// A stored state; `Ok(None)` for null/{} (treat as initial).
    pub fn from_value(state: &Value) -> Result<Option<Self>, WidgetError> {
        if crate::is_blank_state(state) {
            return Ok(None);
        }
        let s: Self = serde_json::from_value(state.clone())
            .map_err(|e| WidgetError::bad_state(KIND, e.to_string()))?;
        if !s.duration_left.is_finite() {
            return Err(WidgetError::bad_state(
                KIND,
                "duration_left is not a number",
            ));
        }
        Ok(Some(s))
    }

    pub fn phase(&self) -> Phase {
        if self.finished_at.is_some() {
            Phase::Finished
        } else if self.enabled && self.last_tick_timestamp.is_some() {
            Phase::Running
        } else {
            Phase::Stopped
        }
    }

    /// Seconds left at `now` (never negative).
    pub fn remaining(&self, now: DateTime<Utc>) -> f64 {
        match (self.enabled, self.last_tick_timestamp) {
            (true, Some(t)) => (self.duration_left - secs(now - t).max(0.0)).max(0.0),
            _ => self.duration_left.max(0.0),
        }
    }

    /// When the countdown reaches zero, if it is running.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        match (self.enabled, self.last_tick_timestamp, self.finished_at) {
            (true, Some(t), None) => Some(t + dur(self.duration_left)),
            _ => None,
        }
    }

    /// Seconds since it finished (what `onFinish: count_up` shows).
    pub fn overtime(&self, now: DateTime<Utc>) -> Option<f64> {
        Some(secs(now - self.finished_at?).max(0.0))
    }

    /// The timer input: a running countdown whose end has passed becomes finished *at its end
    /// instant* (not at `now`: the tick may run late, e.g. after workers were down).
    pub fn tick(&self, now: DateTime<Utc>) -> Self {
        match self.ends_at() {
            Some(end) if end <= now => Self::finished(end),
            _ => self.clone(),
        }
    }

    pub fn apply(
        &self,
        config: &CountdownConfig,
        action: &CountdownAction,
        now: DateTime<Utc>,
    ) -> Result<Self, WidgetError> {
        // An end that passed before the timer fired still counts: act on the finished state.
        let s = self.tick(now);
        let name = action.name();
        let until_refusal = || {
            WidgetError::refused(
                name,
                "this countdown counts to a fixed time; change its target (or switch it to \
                 duration mode) instead",
            )
        };
        let finished_refusal =
            || WidgetError::refused(name, "the countdown has finished; use start or reset");
        Ok(match action {
            CountdownAction::Start => match (config.mode, config.target_utc()) {
                (Mode::Until, Some(target)) => s.run_until(target, now, name)?,
                _ => Self::running(config.duration, now),
            },
            CountdownAction::Pause => match s.phase() {
                Phase::Running => Self::stopped(s.remaining(now)),
                Phase::Stopped | Phase::Finished => s,
            },
            CountdownAction::Resume => match s.phase() {
                Phase::Running => s,
                Phase::Finished => return Err(finished_refusal()),
                Phase::Stopped => match (config.mode, config.target_utc()) {
                    (Mode::Until, Some(target)) => s.run_until(target, now, name)?,
                    _ => Self::running(s.duration_left, now),
                },
            },
            CountdownAction::Reset => Self::initial(config, now),
            CountdownAction::SetDuration { duration } => {
                if config.mode == Mode::Until {
                    return Err(until_refusal());
                }
                match s.phase() {
                    Phase::Running => Self::running(*duration, now),
                    Phase::Stopped | Phase::Finished => Self::stopped(*duration),
                }
            }
            CountdownAction::AddTime { seconds } => {
                if config.mode == Mode::Until {
                    return Err(until_refusal());
                }
                let left = s.remaining(now) + seconds;
                if left > MAX_SECONDS {
                    return Err(WidgetError::refused(
                        name,
                        format!("a countdown can be at most {MAX_SECONDS} seconds long"),
                    ));
                }
                let left = left.max(0.0);
                match s.phase() {
                    // Subtracting everything ends it now.
                    Phase::Running => Self::running(left, now),
                    Phase::Stopped => Self::stopped(left),
                    Phase::Finished => return Err(finished_refusal()),
                }
            }
        })
    }

    fn run_until(
        &self,
        target: DateTime<Utc>,
        now: DateTime<Utc>,
        action: &str,
    ) -> Result<Self, WidgetError> {
        let left = secs(target - now);
        if left > MAX_SECONDS {
            return Err(WidgetError::refused(
                action,
                format!("the target is more than {MAX_SECONDS} seconds away"),
            ));
        }
        Ok(if left <= 0.0 {
            // The target already passed: finished, and count-up counts from the target.
            Self::finished(target)
        } else {
            Self::running(left, now)
        })
    }
}

/// Formats whole seconds (`seconds` is rounded up while counting down, so the display shows
/// 00:00 only at the end).
pub fn format_clock(seconds: f64, format: TimeFormat) -> String {
    let total = seconds.max(0.0).ceil() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match format {
        TimeFormat::HhMmSs => format!("{h:02}:{m:02}:{s:02}"),
        TimeFormat::Auto if h > 0 => format!("{h:02}:{m:02}:{s:02}"),
        TimeFormat::MmSs | TimeFormat::Auto => format!("{:02}:{s:02}", total / 60),
    }
}

/// What the page should show at `now`.
#[derive(Debug, Clone, PartialEq)]
pub enum Display {
    Clock(String),
    FinishedText(String),
    Hidden,
}

pub fn display(config: &CountdownConfig, state: &CountdownState, now: DateTime<Utc>) -> Display {
    let state = state.tick(now);
    match state.overtime(now) {
        None => Display::Clock(format_clock(state.remaining(now), config.format)),
        Some(over) => match config.on_finish {
            OnFinish::Text => Display::FinishedText(config.finished_text.clone()),
            OnFinish::Hide => Display::Hidden,
            // Counting up shows completed seconds.
            OnFinish::CountUp => Display::Clock(format_clock(over.floor(), config.format)),
        },
    }
}

pub(crate) fn apply_json(
    config: &Value,
    state: &Value,
    input: &Input,
    now: DateTime<Utc>,
) -> Result<Transition, WidgetError> {
    let config = CountdownConfig::from_value(config)?;
    let old = CountdownState::from_value(state)?;
    let current = old
        .clone()
        .unwrap_or_else(|| CountdownState::initial(&config, now));
    let next = match input {
        Input::Action { action, payload } => {
            let action = CountdownAction::parse(action, payload)?;
            current.apply(&config, &action, now)?
        }
        Input::Tick => current.tick(now),
        Input::AdSchedule(_) | Input::AdBreakBegan { .. } | Input::CommercialStarted { .. } => {
            current
        }
    };
    let wake_at = next.ends_at();
    // Keep the stored JSON byte-for-byte when nothing changed (no spurious writes/broadcasts).
    let state = if old.as_ref() == Some(&next) {
        state.clone()
    } else {
        crate::json::to_value(&next)
    };
    Ok(Transition {
        state,
        effects: vec![],
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

    /// Base instant for duration-mode tests.
    fn at(secs: f64) -> DateTime<Utc> {
        t("2026-05-01T12:00:00Z") + dur(secs)
    }

    fn cfg(duration: f64) -> CountdownConfig {
        CountdownConfig {
            duration,
            ..CountdownConfig::default()
        }
    }

    fn running(left: f64, since: f64) -> CountdownState {
        CountdownState {
            enabled: true,
            duration_left: left,
            last_tick_timestamp: Some(at(since)),
            finished_at: None,
        }
    }

    fn stopped(left: f64) -> CountdownState {
        CountdownState::stopped(left)
    }

    fn finished(at_s: f64) -> CountdownState {
        CountdownState::finished(at(at_s))
    }

    #[test]
    fn counts_down_pauses_with_fractions_and_stops_at_zero() {
        let c = cfg(10.0);
        let s = CountdownState::initial(&c, at(0.0));
        assert_eq!(s.remaining(at(100.0)), 10.0);
        let s = s.apply(&c, &CountdownAction::Start, at(0.0)).unwrap();
        assert_eq!(s.remaining(at(4.0)), 6.0);
        let s = s.apply(&c, &CountdownAction::Pause, at(4.5)).unwrap();
        assert_eq!(s.duration_left, 5.5);
        assert_eq!(s.remaining(at(1000.0)), 5.5);
        let s = s.apply(&c, &CountdownAction::Resume, at(10.0)).unwrap();
        assert_eq!(s.ends_at(), Some(at(15.5)));
        assert_eq!(s.remaining(at(100.0)), 0.0);
        let s = s.apply(&c, &CountdownAction::Reset, at(20.0)).unwrap();
        assert_eq!(s, CountdownState::initial(&c, at(20.0)));
    }

    /// Every action in every situation: (state, action, now, expected).
    #[test]
    fn every_action_in_every_state() {
        use CountdownAction::*;
        let c = cfg(60.0);
        // Stopped fresh, stopped (paused at 25 s), running (40 s left at t=10 → ends t=50),
        // finished at t=5.
        let idle = CountdownState::initial(&c, at(0.0));
        let paused = stopped(25.0);
        let run = running(40.0, 10.0);
        let fin = finished(5.0);
        let now = 20.0;
        let cases: Vec<(
            &str,
            &CountdownState,
            CountdownAction,
            Result<CountdownState, &str>,
        )> = vec![
            ("idle start", &idle, Start, Ok(running(60.0, now))),
            ("paused start", &paused, Start, Ok(running(60.0, now))),
            (
                "running start restarts",
                &run,
                Start,
                Ok(running(60.0, now)),
            ),
            ("finished start", &fin, Start, Ok(running(60.0, now))),
            ("idle pause", &idle, Pause, Ok(idle.clone())),
            ("paused pause", &paused, Pause, Ok(paused.clone())),
            ("running pause", &run, Pause, Ok(stopped(30.0))),
            ("finished pause", &fin, Pause, Ok(fin.clone())),
            ("idle resume", &idle, Resume, Ok(running(60.0, now))),
            ("paused resume", &paused, Resume, Ok(running(25.0, now))),
            ("running resume", &run, Resume, Ok(run.clone())),
            ("finished resume", &fin, Resume, Err("refused")),
            ("idle reset", &idle, Reset, Ok(idle.clone())),
            ("paused reset", &paused, Reset, Ok(idle.clone())),
            ("running reset", &run, Reset, Ok(idle.clone())),
            ("finished reset", &fin, Reset, Ok(idle.clone())),
            (
                "idle set",
                &idle,
                SetDuration { duration: 90.0 },
                Ok(stopped(90.0)),
            ),
            (
                "paused set",
                &paused,
                SetDuration { duration: 90.0 },
                Ok(stopped(90.0)),
            ),
            (
                "running set",
                &run,
                SetDuration { duration: 90.0 },
                Ok(running(90.0, now)),
            ),
            (
                "running set 0 finishes now",
                &run,
                SetDuration { duration: 0.0 },
                Ok(finished(now)),
            ),
            (
                "finished set",
                &fin,
                SetDuration { duration: 90.0 },
                Ok(stopped(90.0)),
            ),
            (
                "idle add",
                &idle,
                AddTime { seconds: 15.0 },
                Ok(stopped(75.0)),
            ),
            (
                "paused add",
                &paused,
                AddTime { seconds: 15.0 },
                Ok(stopped(40.0)),
            ),
            (
                "paused subtract clamps",
                &paused,
                AddTime { seconds: -100.0 },
                Ok(stopped(0.0)),
            ),
            (
                "running add",
                &run,
                AddTime { seconds: 15.0 },
                Ok(running(45.0, now)),
            ),
            (
                "running subtract",
                &run,
                AddTime { seconds: -10.5 },
                Ok(running(19.5, now)),
            ),
            (
                "running subtract all finishes now",
                &run,
                AddTime { seconds: -30.0 },
                Ok(finished(now)),
            ),
            (
                "running subtract more clamps",
                &run,
                AddTime { seconds: -3600.0 },
                Ok(finished(now)),
            ),
            (
                "finished add",
                &fin,
                AddTime { seconds: 15.0 },
                Err("refused"),
            ),
        ];
        for (name, state, action, want) in cases {
            let got = state.apply(&c, &action, at(now));
            match want {
                Ok(w) => assert_eq!(got.as_ref(), Ok(&w), "{name}"),
                Err(_) => assert!(
                    matches!(got, Err(WidgetError::Refused { .. })),
                    "{name}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn actions_after_a_missed_end_act_on_the_finished_countdown() {
        let c = cfg(60.0);
        // Ended at t=50, no tick yet, a pause arrives at t=70: it is finished at t=50.
        let s = running(40.0, 10.0);
        assert_eq!(
            s.apply(&c, &CountdownAction::Pause, at(70.0)).unwrap(),
            finished(50.0)
        );
        assert!(s.apply(&c, &CountdownAction::Resume, at(70.0)).is_err());
    }

    #[test]
    fn tick_finishes_at_the_exact_end_even_when_late() {
        let s = running(40.0, 10.0); // ends at t=50
        assert_eq!(s.ends_at(), Some(at(50.0)));
        // Early tick: nothing changes.
        assert_eq!(s.tick(at(49.999)), s);
        // On time and hours late (workers were down): finished_at = the end instant.
        for (now, over) in [(50.0, 0.0), (50.25, 0.25), (7200.0, 7150.0)] {
            let f = s.tick(at(now));
            assert_eq!(f, finished(50.0), "tick at {now}");
            assert_eq!(f.ends_at(), None);
            assert_eq!(f.overtime(at(now)), Some(over));
        }
        // Fractional durations keep millisecond precision.
        let s = running(5.5, 0.0);
        assert_eq!(s.tick(at(6.0)).finished_at, Some(at(5.5)));
        // Tick in the other states changes nothing.
        for s in [stopped(10.0), finished(3.0)] {
            assert_eq!(s.tick(at(1e6)), s);
        }
    }

    #[test]
    fn payloads_parse_and_bad_ones_are_errors() {
        let p = |a: &str, v: Value| CountdownAction::parse(a, &v);
        assert_eq!(p("start", Value::Null), Ok(CountdownAction::Start));
        assert_eq!(p("pause", json!({})), Ok(CountdownAction::Pause));
        assert_eq!(
            p("resume", json!({"extra": 1})),
            Ok(CountdownAction::Resume)
        );
        assert_eq!(p("reset", Value::Null), Ok(CountdownAction::Reset));
        assert_eq!(
            p("set_duration", json!({"duration": 60})),
            Ok(CountdownAction::SetDuration { duration: 60.0 })
        );
        assert_eq!(
            p("add_time", json!({"seconds": -30})),
            Ok(CountdownAction::AddTime { seconds: -30.0 })
        );
        for (a, v) in [
            ("set_duration", json!({})),
            ("set_duration", Value::Null),
            ("set_duration", json!({"duration": -1})),
            ("set_duration", json!({"duration": "60"})),
            ("set_duration", json!({"duration": 1e12})),
            ("add_time", json!({"duration": 5})),
            ("add_time", json!({"seconds": "5"})),
            ("add_time", json!({"seconds": 1e12})),
            ("start", json!("now")),
            ("pause", json!([1])),
        ] {
            assert!(
                matches!(p(a, v.clone()), Err(WidgetError::BadPayload { .. })),
                "{a} {v}"
            );
        }
        for a in ["tick", "stop", "", "START"] {
            assert_eq!(
                p(a, Value::Null),
                Err(WidgetError::UnknownAction {
                    kind: KIND,
                    action: a.into()
                })
            );
        }
    }

    #[test]
    fn json_errors_never_change_the_state() {
        let state = json!({"enabled": true, "duration_left": 40, "last_tick_timestamp": "2026-05-01T12:00:10Z"});
        for (action, payload) in [
            ("set_duration", json!({"duration": -5})),
            ("add_time", json!({})),
            ("explode", json!({})),
        ] {
            let input = Input::Action {
                action: action.into(),
                payload,
            };
            assert!(apply_json(&json!({"duration": 60}), &state, &input, at(20.0)).is_err());
        }
        // Refusals too (until mode has no add_time).
        let until = json!({"mode": "until", "target": "2026-05-01T13:00"});
        let input = Input::Action {
            action: "add_time".into(),
            payload: json!({"seconds": 60}),
        };
        assert!(matches!(
            apply_json(&until, &state, &input, at(20.0)),
            Err(WidgetError::Refused { .. })
        ));
    }

    #[test]
    fn json_round_trip_with_old_states_and_wake() {
        // A state written before finished_at existed (front-end shape) still parses.
        let old = json!({"enabled": true, "duration_left": 40, "last_tick_timestamp": "2026-05-01T12:00:10Z"});
        let tr = apply_json(&json!({}), &old, &Input::Tick, at(20.0)).unwrap();
        assert_eq!(tr.state, old, "unchanged state is returned as stored");
        assert_eq!(tr.wake_at, Some(at(50.0)));
        assert_eq!(crate::wake_at(KIND, &json!({}), &old), Some(at(50.0)));
        let tr = apply_json(&json!({}), &old, &Input::Tick, at(95.0)).unwrap();
        assert_eq!(
            tr.state,
            json!({"enabled": false, "duration_left": 0.0, "last_tick_timestamp": null, "finished_at": "2026-05-01T12:00:50Z"})
        );
        assert_eq!(tr.wake_at, None);
        let tr = apply_json(
            &json!({"duration": 90}),
            &Value::Null,
            &Input::Action {
                action: "start".into(),
                payload: Value::Null,
            },
            at(0.0),
        )
        .unwrap();
        assert_eq!(
            tr.state,
            json!({"enabled": true, "duration_left": 90.0, "last_tick_timestamp": "2026-05-01T12:00:00Z", "finished_at": null})
        );
        assert_eq!(tr.wake_at, Some(at(90.0)));
        assert_eq!(tr.effects, vec![]);
    }

    #[test]
    fn reads_states_the_original_front_end_writes() {
        // Luxon's toISO() (offset, milliseconds), integers, and the Edit page's
        // "stopped but with a last tick" shape.
        let s = CountdownState::from_value(&json!({
            "enabled": false, "duration_left": 300, "last_tick_timestamp": "2026-05-01T08:00:10.250-04:00"
        }))
        .unwrap()
        .unwrap();
        assert_eq!(s.last_tick_timestamp, Some(at(10.25)));
        assert_eq!(s.phase(), Phase::Stopped);
        assert_eq!(s.remaining(at(100.0)), 300.0);
        assert_eq!(s.ends_at(), None);
        // Enabled without a tick time: treated as stopped, resumable.
        let s = CountdownState::from_value(
            &json!({"enabled": true, "duration_left": 30, "last_tick_timestamp": null}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.phase(), Phase::Stopped);
        assert_eq!(
            s.apply(&cfg(60.0), &CountdownAction::Resume, at(0.0))
                .unwrap(),
            running(30.0, 0.0)
        );
        for bad in [
            json!({"enabled": true}),
            json!({"enabled": 1, "duration_left": 3, "last_tick_timestamp": null}),
        ] {
            assert!(
                matches!(
                    CountdownState::from_value(&bad),
                    Err(WidgetError::BadState { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_validation() {
        let ok = |v: Value| CountdownConfig::from_value(&v).unwrap();
        assert_eq!(ok(json!({})), CountdownConfig::default());
        let c = ok(
            json!({"duration": 90, "mode": "until", "target": "2026-03-08T02:30", "timezone": "America/New_York",
            "onFinish": "count_up", "finishedText": "Go!", "format": "mm:ss", "showTitle": true, "onFinishScene": "Live"}),
        );
        assert_eq!(c.mode, Mode::Until);
        assert_eq!(c.timezone, chrono_tz::America::New_York);
        assert_eq!(c.target, parse_target("2026-03-08T02:30:00"));
        assert_eq!(c.on_finish, OnFinish::CountUp);
        assert_eq!(c.format, TimeFormat::MmSs);
        assert_eq!(c.on_finish_scene.as_deref(), Some("Live"));
        for (bad, field) in [
            (json!({"timezone": "Mars/Olympus"}), "timezone"),
            (json!({"timezone": "EST5EDT_nope"}), "timezone"),
            (json!({"mode": "until"}), "target"),
            (json!({"mode": "until", "target": "tomorrow"}), "target"),
            (json!({"target": "2026-13-01T10:00"}), "target"),
            (json!({"target": "2026-03-08 10:00"}), "target"),
            (json!({"mode": "sometimes"}), "mode"),
            (json!({"duration": -1}), "duration"),
            (json!({"duration": "300"}), "duration"),
            (json!({"onFinish": "explode"}), "onFinish"),
            (json!({"format": "ss"}), "format"),
            (json!({"showProgressBar": "yes"}), "showProgressBar"),
            (json!({"finishedText": "x".repeat(501)}), "finishedText"),
        ] {
            match CountdownConfig::from_value(&bad) {
                Err(WidgetError::BadConfig { reason, .. }) => {
                    assert!(reason.contains(field), "{bad}: {reason}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    // --- Time zones and DST. Expected instants are from the published rules (and agree with
    // Python's zoneinfo, fold=0, checked by hand): US zones switch
    // at 02:00 local on the second Sunday of March / first Sunday of November (EST −5, EDT −4);
    // the UK at 01:00 UTC on the last Sunday of March / October (GMT +0, BST +1).

    fn until(target: &str, tz: &str) -> CountdownConfig {
        CountdownConfig::from_value(&json!({"mode": "until", "target": target, "timezone": tz}))
            .unwrap()
    }

    #[test]
    fn resolves_gaps_forward_and_ambiguous_times_to_the_earlier_instant() {
        for (tz, local, want) in [
            // Ordinary times.
            (
                "America/New_York",
                "2026-01-15T09:00",
                "2026-01-15T14:00:00Z",
            ),
            (
                "America/New_York",
                "2026-07-04T21:15:30",
                "2026-07-05T01:15:30Z",
            ),
            ("UTC", "2026-07-04T21:15", "2026-07-04T21:15:00Z"),
            // Spring-forward gap: 02:30 EST does not exist → 03:30 EDT.
            (
                "America/New_York",
                "2026-03-08T02:30",
                "2026-03-08T07:30:00Z",
            ),
            (
                "America/New_York",
                "2026-03-08T02:00",
                "2026-03-08T07:00:00Z",
            ),
            (
                "America/New_York",
                "2026-03-08T01:59:59",
                "2026-03-08T06:59:59Z",
            ),
            (
                "America/New_York",
                "2026-03-08T03:00",
                "2026-03-08T07:00:00Z",
            ),
            // Fall back: 01:30 happens twice (EDT then EST) → the EDT one.
            (
                "America/New_York",
                "2026-11-01T01:30",
                "2026-11-01T05:30:00Z",
            ),
            (
                "America/New_York",
                "2026-11-01T02:00",
                "2026-11-01T07:00:00Z",
            ),
            // London: 01:30 skipped on 29 March → 02:30 BST; 01:30 twice on 25 October → BST.
            ("Europe/London", "2026-03-29T01:30", "2026-03-29T01:30:00Z"),
            ("Europe/London", "2026-03-29T00:30", "2026-03-29T00:30:00Z"),
            ("Europe/London", "2026-03-29T02:30", "2026-03-29T01:30:00Z"),
            ("Europe/London", "2026-10-25T01:30", "2026-10-25T00:30:00Z"),
            ("Europe/London", "2026-10-25T02:30", "2026-10-25T02:30:00Z"),
            // A half-hour gap (Lord Howe: 02:00 → 02:30 on 4 Oct 2026, +10:30 → +11).
            (
                "Australia/Lord_Howe",
                "2026-10-04T02:15",
                "2026-10-03T15:45:00Z",
            ),
        ] {
            let c = until(local, tz);
            assert_eq!(c.target_utc(), Some(t(want)), "{tz} {local}");
        }
    }

    #[test]
    fn until_countdown_spanning_dst_has_real_length() {
        for (tz, from_utc, target, hours) in [
            // Noon Saturday → noon Sunday across spring forward: 23 h of real time.
            (
                "America/New_York",
                "2026-03-07T17:00:00Z",
                "2026-03-08T12:00",
                23,
            ),
            // Across fall back: 25 h.
            (
                "America/New_York",
                "2026-10-31T16:00:00Z",
                "2026-11-01T12:00",
                25,
            ),
            (
                "Europe/London",
                "2026-03-28T12:00:00Z",
                "2026-03-29T12:00",
                23,
            ),
            (
                "Europe/London",
                "2026-10-24T11:00:00Z",
                "2026-10-25T12:00",
                25,
            ),
        ] {
            let c = until(target, tz);
            let now = t(from_utc);
            let s = CountdownState::initial(&c, now)
                .apply(&c, &CountdownAction::Start, now)
                .unwrap();
            assert_eq!(s.duration_left, f64::from(hours * 3600), "{tz} {target}");
            assert_eq!(s.ends_at(), c.target_utc());
            // Pausing for 10 minutes then resuming does not extend an until countdown.
            let p = s
                .apply(&c, &CountdownAction::Pause, now + Duration::hours(1))
                .unwrap();
            let r = p
                .apply(&c, &CountdownAction::Resume, now + Duration::minutes(70))
                .unwrap();
            assert_eq!(r.ends_at(), c.target_utc());
            assert_eq!(r.duration_left, f64::from(hours * 3600 - 70 * 60));
            // And the timer finishes it at the target.
            let f = r.tick(c.target_utc().unwrap() + Duration::seconds(3));
            assert_eq!(f.finished_at, c.target_utc());
        }
    }

    #[test]
    fn until_target_in_the_past_finishes_at_the_target() {
        let c = until("2026-05-01T11:00", "UTC");
        let now = at(0.0);
        let s = CountdownState::initial(&c, now);
        assert_eq!(s.duration_left, 0.0);
        assert_eq!(s.phase(), Phase::Stopped);
        for a in [CountdownAction::Start, CountdownAction::Resume] {
            let f = s.apply(&c, &a, now).unwrap();
            assert_eq!(f, CountdownState::finished(t("2026-05-01T11:00:00Z")));
            assert_eq!(f.overtime(now), Some(3600.0));
        }
        // Start of a zero-length duration countdown is finished at once, too.
        assert_eq!(
            CountdownState::initial(&cfg(0.0), now)
                .apply(&cfg(0.0), &CountdownAction::Start, now)
                .unwrap(),
            CountdownState::finished(now)
        );
        // A target too far away is refused.
        let far = until("2099-01-01T00:00", "UTC");
        assert!(matches!(
            CountdownState::initial(&far, now).apply(&far, &CountdownAction::Start, now),
            Err(WidgetError::Refused { .. })
        ));
    }

    #[test]
    fn until_mode_refuses_duration_edits() {
        let c = until("2026-05-01T13:00", "UTC");
        let s = CountdownState::initial(&c, at(0.0));
        for a in [
            CountdownAction::SetDuration { duration: 5.0 },
            CountdownAction::AddTime { seconds: 5.0 },
        ] {
            assert!(matches!(
                s.apply(&c, &a, at(0.0)),
                Err(WidgetError::Refused { .. })
            ));
        }
        assert_eq!(s.duration_left, 3600.0);
    }

    #[test]
    fn clock_formats() {
        for (secs, fmt, want) in [
            (0.0, TimeFormat::Auto, "00:00"),
            (0.2, TimeFormat::Auto, "00:01"),
            (59.0, TimeFormat::Auto, "00:59"),
            (3599.0, TimeFormat::Auto, "59:59"),
            (3600.0, TimeFormat::Auto, "01:00:00"),
            (3725.0, TimeFormat::HhMmSs, "01:02:05"),
            (125.0, TimeFormat::HhMmSs, "00:02:05"),
            (3725.0, TimeFormat::MmSs, "62:05"),
            (90000.0, TimeFormat::Auto, "25:00:00"),
            (-5.0, TimeFormat::MmSs, "00:00"),
        ] {
            assert_eq!(format_clock(secs, fmt), want, "{secs} {fmt:?}");
        }
    }

    #[test]
    fn display_follows_on_finish() {
        let s = running(10.0, 0.0);
        let mut c = cfg(10.0);
        assert_eq!(display(&c, &s, at(0.5)), Display::Clock("00:10".into()));
        assert_eq!(display(&c, &s, at(9.5)), Display::Clock("00:01".into()));
        assert_eq!(
            display(&c, &s, at(12.0)),
            Display::FinishedText("Time's up!".into())
        );
        c.on_finish = OnFinish::Hide;
        assert_eq!(display(&c, &s, at(12.0)), Display::Hidden);
        c.on_finish = OnFinish::CountUp;
        assert_eq!(display(&c, &s, at(75.5)), Display::Clock("01:05".into()));
    }
}
