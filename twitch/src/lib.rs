//! A small typed Twitch client for what chat capture needs.
//!
//! - [`app`]: the deployment's settings ([`app::TwitchApp::from_env`]).
//! - [`eventsub`]: the EventSub message model (notification, challenge, revocation; the events we
//!   subscribe to) and the webhook verifier (HMAC-SHA256 over the raw bytes, freshness window,
//!   injectable clock).
//! - [`oauth`]: the authorization-code flow, refresh with rotation, validate, revoke, and the app
//!   access token (client credentials).
//! - [`helix`]: EventSub subscriptions (create, list, delete), users, and ads (schedule, snooze,
//!   commercial).
//! - [`ws`]: the EventSub WebSocket transport (welcome, keepalive, reconnect, revocation).
//! - `fake` (feature `fake`): a local server speaking the same wire protocol, with fault injection.

pub mod app;
pub mod eventsub;
pub mod helix;
pub mod oauth;
pub mod ws;

#[cfg(feature = "fake")]
pub mod fake;

pub use helix::{
    AdSchedule, AdsError, CommercialStarted, HelixClient, SnoozeResult, Subscription,
    SubscriptionFilter, SubscriptionRequest, SubscriptionStatus, SubscriptionTransport, Transport,
    TransportMethod,
};
pub use oauth::{
    AppToken, CheckedTokens, OAuthClient, RetryPolicy, TwitchConfig, TwitchError, TwitchTokens,
    Validation, authorization_url,
};
pub use ws::{EventSubSocket, SocketOptions};
