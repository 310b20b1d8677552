//! What the widget-timer workflow and its activities exchange.

use serde::{Deserialize, Serialize};

/// One widget's durable timers (`widget-{owner}-{widget_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetTimerInput {
    pub user_id: String,
    pub widget_id: String,
    /// Whether the widget follows Twitch's ad schedule (ad timers poll it every few minutes).
    #[serde(default)]
    pub follows_ad_schedule: bool,
    /// Carried over continue-as-new: the pending wake-up (Unix ms).
    #[serde(default)]
    pub wake_at_ms: Option<i64>,
}

/// Signal `wake`: the widget's state changed; this is when it next needs a transition (Unix ms,
/// `None`: not until something else happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WidgetWake {
    pub at_ms: Option<i64>,
}

/// What a timer activity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum WidgetTimerReport {
    /// The transition was applied; the state next needs one at `wake_at_ms`.
    Applied { wake_at_ms: Option<i64> },
    /// The widget was deleted or deactivated: its timers end.
    Gone,
}
