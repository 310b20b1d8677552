//! Widget kinds as pure state machines: `(config, state, action, now) -> state`. No I/O and no
//! clock reads, so the API, the widget-timer workflow and the OBS pages agree on behaviour and
//! every transition is testable.

pub mod countdown;
