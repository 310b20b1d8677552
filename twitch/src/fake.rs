//! A local stand-in for Twitch (OAuth, Helix EventSub, the EventSub webhook sender and the
//! EventSub WebSocket server), speaking the same wire protocol, for tests (feature `fake`).
//!
//! [`FakeTwitch::start`] serves on `127.0.0.1:<free port>`:
//!
//! | request | what the fake does |
//! |---|---|
//! | `GET /oauth2/authorize` | checks client id, response type, redirect URI and scopes; 302 to `redirect_uri?code=…&scope=…&state=…` as the user chosen with [`FakeTwitch::approve_as`] (or `error=access_denied` after [`FakeTwitch::deny_consent`]) |
//! | `POST /oauth2/token` | `authorization_code`, `refresh_token` (rotating: the old refresh token then answers 400 `Invalid refresh token`), `client_credentials` |
//! | `GET /oauth2/validate` | `Authorization: OAuth <token>` → 200 or 401 `invalid access token` |
//! | `POST /oauth2/revoke` | revokes an access token and its refresh token |
//! | `POST /helix/eventsub/subscriptions` | webhook (app token, HTTPS or loopback callback, secret 10–100 chars, challenge handshake) or websocket (user token, live session); scopes checked; duplicate → 409 |
//! | `GET /helix/eventsub/subscriptions` | what the token may see (app: webhook, user: its websocket subscriptions), one filter at most, paginated ([`FakeTwitch::set_page_size`]) |
//! | `DELETE /helix/eventsub/subscriptions?id=` | 204, unknown → 404 |
//! | `GET /helix/users` | registered users by `id`/`login`, or the token's user |
//! | `GET /ws` | EventSub WebSocket: welcome, keepalives, notifications, revocations, `session_reconnect` |
//! | `GET /helix/channels/ads?broadcaster_id=` | the broadcaster's ad schedule ([`FakeTwitch::set_ad_schedule`]); times in the format of [`FakeTwitch::set_ad_time_format`]; next/last ad empty while not live |
//! | `POST /helix/channels/ads/schedule/snooze?broadcaster_id=` | live only; one snooze less, next ad 5 minutes later; 429 with none left |
//! | `POST /helix/channels/commercial` | `{broadcaster_id, length}`; live only (400), 429 until the previous one's `retry_after` (480 s) elapsed; sends `channel.ad_break.begin` |
//!
//! The ads endpoints check what Twitch checks: a valid token of this client, the endpoint's
//! scope (401 `Missing scope: …`), and that the token's user is the broadcaster (401); the
//! schedule also takes an app token when the broadcaster granted `channel:read:ads`.
//!
//! Events are sent with [`FakeTwitch::send_chat`], [`FakeTwitch::send_event`],
//! [`FakeTwitch::run_scheduled_ad`] and by `POST /helix/channels/commercial`; webhook
//! messages are signed with the subscription's secret exactly as Twitch signs them. Faults:
//! [`FakeTwitch::push_fault`] (HTTP 5xx, 429, dropped connections), [`FakeTwitch::push_webhook_fault`]
//! (redelivery, stale or future timestamp, bad signature, re-serialised body, missing header),
//! [`FakeTwitch::revoke_subscription`], token invalidation, silenced keepalives.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Notify, mpsc};
use tower::ServiceExt;

use crate::helix::SubscriptionStatus;
use crate::oauth::{RetryPolicy, TwitchConfig};

/// The OAuth client id the fake accepts.
pub const FAKE_CLIENT_ID: &str = "fake-twitch-client-id";
/// The OAuth client secret the fake accepts.
pub const FAKE_CLIENT_SECRET: &str = "fake-twitch-client-secret";

/// Scopes Twitch knows (a subset); the authorize endpoint refuses others, as Twitch does.
const KNOWN_SCOPES: &[&str] = &[
    "channel:manage:broadcast",
    "channel:edit:commercial",
    "channel:read:ads",
    "channel:manage:ads",
    "channel:bot",
    "channel:read:subscriptions",
    "moderator:read:followers",
    "user:read:chat",
    "user:write:chat",
    "user:bot",
    "user:read:email",
];

/// The subscription types the fake knows: version, condition fields, and which condition user
/// must have granted which scope (`app_only`: only demanded with an app token).
struct TypeSpec {
    kind: &'static str,
    version: &'static str,
    condition: &'static [&'static str],
    scopes: &'static [(&'static str, &'static str, bool)],
}

const CHAT_SCOPES: &[(&str, &str, bool)] = &[
    ("user_id", "user:read:chat", false),
    ("user_id", "user:bot", true),
    ("broadcaster_user_id", "channel:bot", true),
];

const TYPES: &[TypeSpec] = &[
    TypeSpec {
        kind: "channel.chat.message",
        version: "1",
        condition: &["broadcaster_user_id", "user_id"],
        scopes: CHAT_SCOPES,
    },
    TypeSpec {
        kind: "channel.chat.message_delete",
        version: "1",
        condition: &["broadcaster_user_id", "user_id"],
        scopes: CHAT_SCOPES,
    },
    TypeSpec {
        kind: "channel.chat.clear",
        version: "1",
        condition: &["broadcaster_user_id", "user_id"],
        scopes: CHAT_SCOPES,
    },
    TypeSpec {
        kind: "channel.chat.clear_user_messages",
        version: "1",
        condition: &["broadcaster_user_id", "user_id"],
        scopes: CHAT_SCOPES,
    },
    TypeSpec {
        kind: "stream.online",
        version: "1",
        condition: &["broadcaster_user_id"],
        scopes: &[],
    },
    TypeSpec {
        kind: "stream.offline",
        version: "1",
        condition: &["broadcaster_user_id"],
        scopes: &[],
    },
    TypeSpec {
        kind: "channel.ad_break.begin",
        version: "1",
        condition: &["broadcaster_user_id"],
        scopes: &[("broadcaster_user_id", "channel:read:ads", false)],
    },
];

/// Emotes recognised in chat text by [`FakeTwitch::send_chat`] (global emotes; more with
/// [`FakeTwitch::add_emote`]).
const GLOBAL_EMOTES: &[(&str, &str)] = &[
    ("Kappa", "25"),
    ("LUL", "425618"),
    ("PogChamp", "305954156"),
];

/// What a request is, for matching faults and reading the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Authorize,
    Token,
    Validate,
    Revoke,
    CreateSubscription,
    ListSubscriptions,
    DeleteSubscription,
    Users,
    AdSchedule,
    SnoozeNextAd,
    StartCommercial,
    WebSocket,
    Other,
}

/// A failure answered instead of the real reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// This status (500, 502, 503, …) with Twitch's error body.
    ServerError { status: u16 },
    /// 429 with `Ratelimit-Limit`, `Ratelimit-Remaining: 0` and `Ratelimit-Reset` (Unix seconds)
    /// this far ahead, rounded up to a whole second.
    RateLimited { reset_in: Duration },
    /// Close the TCP connection without a reply.
    DropConnection,
}

/// Ways to spoil the next webhook notification (applied to the next one delivered, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookFault {
    /// After the delivery, deliver the same message (same message id and body) this many more
    /// times, as Twitch's at-least-once delivery may.
    Redeliver { extra: u32 },
    /// Shift the `Twitch-Eventsub-Message-Timestamp` (negative: stale, e.g. 11 minutes ago;
    /// positive: in the future). The signature covers the shifted timestamp.
    ShiftTimestamp { by: chrono::TimeDelta },
    /// A signature that does not match (one hex digit changed).
    BadSignature,
    /// Sign the compact body, send it pretty-printed: same JSON, different bytes.
    ReserializedBody,
    /// Leave out this header (e.g. `Twitch-Eventsub-Message-Signature`).
    OmitHeader(String),
}

/// `Twitch-Eventsub-Message-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Notification,
    WebhookCallbackVerification,
    Revocation,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Notification => "notification",
            MessageType::WebhookCallbackVerification => "webhook_callback_verification",
            MessageType::Revocation => "revocation",
        }
    }
}

/// One POST of the webhook sender and what the callback answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subscription_id: String,
    pub message_id: String,
    pub message_type: MessageType,
    /// `Twitch-Eventsub-Message-Retry` as sent (0 on the first attempt).
    pub retry: u32,
    /// `Twitch-Eventsub-Message-Timestamp` as sent.
    pub timestamp: String,
    pub callback: String,
    /// The body as sent.
    pub sent_body: String,
    /// The callback's status; `None` when it did not answer (refused, timed out).
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: String,
    pub latency: Duration,
    /// Why there was no answer.
    pub error: Option<String>,
}

impl Delivery {
    pub fn acknowledged(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// How the webhook sender delivers.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Attempts per notification (the first plus retries) until one answers 2xx.
    pub attempts: u32,
    pub retry_delay: Duration,
    /// Twitch wants an answer within a few seconds; a slower one counts as failed.
    pub response_timeout: Duration,
    /// Consecutive undelivered notifications after which a subscription is revoked with
    /// `notification_failures_exceeded`.
    pub failures_before_revocation: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            retry_delay: Duration::from_millis(100),
            response_timeout: Duration::from_secs(3),
            failures_before_revocation: 10,
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub endpoint: Endpoint,
    pub method: String,
    pub path: String,
    /// `None` when the connection was dropped.
    pub status: Option<u16>,
}

/// How long a snooze pushes the next automatic ad back (Twitch: 5 minutes).
pub const SNOOZE_DELAY: Duration = Duration::from_secs(300);
/// When a spent snooze comes back, counted from the first snooze while all were available.
pub const SNOOZE_REFRESH: Duration = Duration::from_secs(3600);
/// The wait between commercials (Twitch's `retry_after`: 8 minutes, never shorter than the ad).
pub const COMMERCIAL_COOLDOWN: Duration = Duration::from_secs(480);
/// After an ad break, the next automatic one is this long after the break ends.
pub const AD_INTERVAL: Duration = Duration::from_secs(3600);

/// How the ads endpoints write times (and, with them, counts). Twitch documents RFC 3339 while
/// live replies have carried Unix seconds; clients must read all of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdTimeFormat {
    /// `"2024-05-01T12:00:00Z"`, none as `""`; counts as numbers. The default.
    #[default]
    Rfc3339,
    /// `"1714564800"`, none as `""`; counts as numeric strings too.
    UnixSecondsString,
    /// `1714564800`, none as `0`; counts as numbers.
    UnixSecondsNumber,
}

/// A broadcaster's ad schedule in the fake (what `GET /helix/channels/ads` reports while live).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAdSchedule {
    pub snooze_count: u32,
    pub snooze_refresh_at: Option<DateTime<Utc>>,
    pub next_ad_at: Option<DateTime<Utc>>,
    /// Length of the next automatic break, in seconds.
    pub duration: u32,
    pub last_ad_at: Option<DateTime<Utc>>,
    pub preroll_free_time: u32,
}

impl Default for FakeAdSchedule {
    /// Three snoozes, 60-second breaks, nothing scheduled.
    fn default() -> Self {
        Self {
            snooze_count: 3,
            snooze_refresh_at: None,
            next_ad_at: None,
            duration: 60,
            last_ad_at: None,
            preroll_free_time: 0,
        }
    }
}

/// An ad break the fake ran (a commercial started over Helix, or [`FakeTwitch::run_scheduled_ad`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAdBreak {
    pub length: u32,
    pub started_at: DateTime<Utc>,
    pub is_automatic: bool,
    /// Who asked for it (the broadcaster, also for automatic breaks).
    pub requester_user_id: String,
}

/// One broadcaster's ads in the fake.
#[derive(Default)]
struct FakeAds {
    schedule: FakeAdSchedule,
    live: bool,
    /// No commercial may start before this.
    cooldown_until: Option<DateTime<Utc>>,
    breaks: Vec<FakeAdBreak>,
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).expect("a short duration")
}

/// `HMAC-SHA256(secret, message_id ‖ timestamp ‖ body)` as `sha256=<lowercase hex>`, the
/// `Twitch-Eventsub-Message-Signature` value.
pub fn sign(secret: &str, message_id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message_id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    App,
    User(String),
}

struct AccessToken {
    owner: Owner,
    scopes: Vec<String>,
    expires: SystemTime,
    /// The refresh token issued with it (revoking one revokes both).
    refresh: Option<String>,
}

struct RefreshToken {
    user_id: String,
    scopes: Vec<String>,
}

struct AuthCode {
    user_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
}

#[derive(Clone)]
enum Consent {
    Nobody,
    Approve(String),
    Deny,
}

#[derive(Clone)]
struct FakeSub {
    id: String,
    status: String,
    kind: String,
    version: String,
    condition: Value,
    method: &'static str,
    callback: Option<String>,
    secret: Option<String>,
    session_id: Option<String>,
    connected_at: Option<String>,
    disconnected_at: Option<String>,
    created_at: String,
    cost: u64,
    owner: Owner,
    failures: u32,
}

/// The subscription as Twitch shows it (never the secret).
fn sub_json(sub: &FakeSub) -> Value {
    let mut transport = json!({ "method": sub.method });
    if let Some(callback) = &sub.callback {
        transport["callback"] = callback.clone().into();
    }
    if let Some(session_id) = &sub.session_id {
        transport["session_id"] = session_id.clone().into();
    }
    if let Some(at) = &sub.connected_at {
        transport["connected_at"] = at.clone().into();
    }
    if let Some(at) = &sub.disconnected_at {
        transport["disconnected_at"] = at.clone().into();
    }
    json!({
        "id": sub.id,
        "status": sub.status,
        "type": sub.kind,
        "version": sub.version,
        "condition": sub.condition,
        "created_at": sub.created_at,
        "transport": transport,
        "cost": sub.cost,
    })
}

enum Outbound {
    Text(String),
    Close(u16, String),
}

struct WsSession {
    tx: mpsc::UnboundedSender<Outbound>,
    keepalive_secs: u64,
    connected_at: String,
}

/// A message sent once, kept so that it can be sent again unchanged.
#[derive(Clone)]
struct SentMessage {
    subscription_id: String,
    message_type: MessageType,
    body: String,
}

struct FakeState {
    base_url: String,
    http: reqwest::Client,
    users: Vec<(String, String)>,
    emotes: Vec<(String, String)>,
    consent: Consent,
    codes: HashMap<String, AuthCode>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    grants: HashMap<String, BTreeSet<String>>,
    access_ttl: Duration,
    subs: Vec<FakeSub>,
    page_size: usize,
    sessions: HashMap<String, WsSession>,
    reconnect_tokens: HashMap<String, String>,
    default_keepalive_secs: u64,
    keepalives_paused: bool,
    ws_send_delay: Duration,
    faults: Vec<(Endpoint, FaultKind, u32)>,
    webhook_faults: VecDeque<WebhookFault>,
    deliveries: Vec<Delivery>,
    delivery_policy: DeliveryPolicy,
    sent: HashMap<String, SentMessage>,
    requests: Vec<RecordedRequest>,
    /// Challenge handshakes and events sent on behalf of a Helix call, for [`FakeTwitch::settle`].
    background: Vec<tokio::task::JoinHandle<()>>,
    ads: HashMap<String, FakeAds>,
    ad_time_format: AdTimeFormat,
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Closes the connection a request arrived on, without a reply.
#[derive(Clone)]
struct ConnectionKiller(Arc<Notify>);

fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random UUID v4 in its text form, as Twitch's message and subscription ids are.
fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][usize::from(b[8] & 3)],
        &h[17..20],
        &h[20..32]
    )
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The running fake. Stops serving when dropped.
pub struct FakeTwitch {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTwitch {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeTwitch {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start() -> FakeTwitch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let base_url = format!("http://{addr}");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let state: Shared = Arc::new(Mutex::new(FakeState {
            base_url: base_url.clone(),
            http,
            users: Vec::new(),
            emotes: GLOBAL_EMOTES
                .iter()
                .map(|(n, i)| (n.to_string(), i.to_string()))
                .collect(),
            consent: Consent::Nobody,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            grants: HashMap::new(),
            access_ttl: Duration::from_secs(14_400),
            subs: Vec::new(),
            page_size: 100,
            sessions: HashMap::new(),
            reconnect_tokens: HashMap::new(),
            default_keepalive_secs: 10,
            keepalives_paused: false,
            ws_send_delay: Duration::ZERO,
            faults: Vec::new(),
            webhook_faults: VecDeque::new(),
            deliveries: Vec::new(),
            delivery_policy: DeliveryPolicy::default(),
            sent: HashMap::new(),
            requests: Vec::new(),
            background: Vec::new(),
            ads: HashMap::new(),
            ad_time_format: AdTimeFormat::Rfc3339,
        }));
        let router = Router::new()
            .route("/oauth2/authorize", get(authorize))
            .route("/oauth2/token", post(token))
            .route("/oauth2/validate", get(validate))
            .route("/oauth2/revoke", post(revoke_token))
            .route(
                "/helix/eventsub/subscriptions",
                post(create_subscription)
                    .get(list_subscriptions)
                    .delete(delete_subscription),
            )
            .route("/helix/users", get(users))
            .route("/helix/channels/ads", get(ad_schedule))
            .route("/helix/channels/ads/schedule/snooze", post(snooze_next_ad))
            .route("/helix/channels/commercial", post(start_commercial))
            .route("/ws", get(websocket))
            .layer(middleware::from_fn_with_state(state.clone(), observe))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let router = router.clone();
                tokio::spawn(async move {
                    let kill = Arc::new(Notify::new());
                    let killer = ConnectionKiller(kill.clone());
                    let service = hyper::service::service_fn(
                        move |mut request: hyper::Request<hyper::body::Incoming>| {
                            request.extensions_mut().insert(killer.clone());
                            let router = router.clone();
                            async move {
                                Ok::<_, Infallible>(
                                    router
                                        .oneshot(request.map(Body::new))
                                        .await
                                        .unwrap_or_else(|never| match never {}),
                                )
                            }
                        },
                    );
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .with_upgrades();
                    // Dropping the connection future closes the socket: the client sees a reset
                    // or an early EOF, never a reply.
                    tokio::select! {
                        _ = connection => {}
                        _ = kill.notified() => {}
                    }
                });
            }
        });
        FakeTwitch {
            base_url,
            state,
            server,
        }
    }

    /// A client configuration pointing at this fake, with fast retries.
    pub fn config(&self) -> TwitchConfig {
        TwitchConfig {
            client_id: FAKE_CLIENT_ID.into(),
            client_secret: FAKE_CLIENT_SECRET.into(),
            auth_base: self.base_url.clone(),
            helix_base: self.base_url.clone(),
            eventsub_ws_url: format!("{}/ws", self.base_url.replacen("http://", "ws://", 1)),
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(20),
                max_inline_wait: Duration::from_secs(3),
            },
            request_timeout: Duration::from_secs(10),
        }
    }

    /// The EventSub WebSocket URL with this keepalive (`keepalive_timeout_seconds`; the fake
    /// accepts 1–600 s, Twitch 10–600 s).
    pub fn ws_url(&self, keepalive_secs: u64) -> String {
        format!(
            "{}/ws?keepalive_timeout_seconds={keepalive_secs}",
            self.base_url.replacen("http://", "ws://", 1)
        )
    }

    /// Registers a Twitch user.
    pub fn add_user(&self, user_id: &str, login: &str) {
        let mut s = lock(&self.state);
        s.users.retain(|(id, _)| id != user_id);
        s.users.push((user_id.to_string(), login.to_string()));
    }

    /// The consent screen approves as this (registered) user from now on.
    pub fn approve_as(&self, login: &str) {
        let mut s = lock(&self.state);
        let user_id = s
            .users
            .iter()
            .find(|(_, l)| l == login)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("approve_as({login:?}): no such user; add_user first"));
        s.consent = Consent::Approve(user_id);
    }

    /// The consent screen is declined from now on (`error=access_denied`).
    pub fn deny_consent(&self) {
        lock(&self.state).consent = Consent::Deny;
    }

    /// An emote recognised in chat text (Twitch's global ones are known already).
    pub fn add_emote(&self, name: &str, id: &str) {
        lock(&self.state)
            .emotes
            .push((name.to_string(), id.to_string()));
    }

    /// How long new user access tokens live (default 4 hours, like Twitch).
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        lock(&self.state).access_ttl = ttl;
    }

    /// Items per page of the subscriptions list (default 100).
    pub fn set_page_size(&self, size: usize) {
        lock(&self.state).page_size = size.max(1);
    }

    /// The keepalive of sessions whose URL names none (default 10 s).
    pub fn set_default_keepalive(&self, seconds: u64) {
        lock(&self.state).default_keepalive_secs = seconds.max(1);
    }

    /// Stops sending keepalives on every WebSocket session (a silent network).
    pub fn pause_keepalives(&self) {
        lock(&self.state).keepalives_paused = true;
    }

    pub fn resume_keepalives(&self) {
        lock(&self.state).keepalives_paused = false;
    }

    /// Every WebSocket message (not keepalives) waits this long before it is written: a slow
    /// link, so that messages are still in flight on the old connection during a reconnect.
    pub fn set_ws_send_delay(&self, delay: Duration) {
        lock(&self.state).ws_send_delay = delay;
    }

    pub fn set_delivery_policy(&self, policy: DeliveryPolicy) {
        lock(&self.state).delivery_policy = policy;
    }

    /// The next `times` requests to `on` answer with `kind` instead.
    pub fn push_fault(&self, on: Endpoint, kind: FaultKind, times: u32) {
        lock(&self.state).faults.push((on, kind, times));
    }

    /// Spoils the next webhook notification delivered (faults apply one per notification, in
    /// order).
    pub fn push_webhook_fault(&self, fault: WebhookFault) {
        lock(&self.state).webhook_faults.push_back(fault);
    }

    /// Every access token of this user stops working (validate → 401, Helix → 401).
    pub fn invalidate_access_tokens(&self, user_id: &str) {
        let owner = Owner::User(user_id.to_string());
        lock(&self.state).access.retain(|_, t| t.owner != owner);
    }

    /// Every refresh token of this user stops working (refresh → 400).
    pub fn invalidate_refresh_tokens(&self, user_id: &str) {
        lock(&self.state)
            .refresh
            .retain(|_, t| t.user_id != user_id);
    }

    /// Every app access token stops working.
    pub fn invalidate_app_tokens(&self) {
        lock(&self.state)
            .access
            .retain(|_, t| t.owner != Owner::App);
    }

    /// The user disconnects the app on Twitch: their tokens and grants are gone and their
    /// subscriptions are revoked with `authorization_revoked`.
    pub async fn revoke_authorization(&self, user_id: &str) {
        self.invalidate_access_tokens(user_id);
        self.invalidate_refresh_tokens(user_id);
        let ids: Vec<String> = {
            let mut s = lock(&self.state);
            s.grants.remove(user_id);
            s.subs
                .iter()
                .filter(|sub| sub.status == "enabled" && condition_names(&sub.condition, user_id))
                .map(|sub| sub.id.clone())
                .collect()
        };
        for id in ids {
            self.revoke_subscription(&id, SubscriptionStatus::AuthorizationRevoked)
                .await;
        }
    }

    /// Scopes the user has granted this client.
    pub fn granted_scopes(&self, user_id: &str) -> Vec<String> {
        lock(&self.state)
            .grants
            .get(user_id)
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every webhook POST and what the callback answered, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.state).deliveries.clone()
    }

    /// Every HTTP request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Subscriptions as Twitch would list them (all transports, with their status).
    pub fn subscriptions(&self) -> Vec<Value> {
        lock(&self.state).subs.iter().map(sub_json).collect()
    }

    /// A subscription's status (`None` once deleted).
    pub fn subscription_status(&self, id: &str) -> Option<String> {
        lock(&self.state)
            .subs
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.status.clone())
    }

    /// Waits until every challenge handshake started so far, and every event a Helix call sent
    /// (`channel.ad_break.begin` of a commercial), has finished.
    pub async fn settle(&self) {
        loop {
            let tasks: Vec<_> = std::mem::take(&mut lock(&self.state).background);
            if tasks.is_empty() {
                return;
            }
            for task in tasks {
                let _ = task.await;
            }
        }
    }

    /// Ids of the connected WebSocket sessions.
    pub fn sessions(&self) -> Vec<String> {
        lock(&self.state).sessions.keys().cloned().collect()
    }

    /// Sends `session_reconnect` to every session. A session moves when its client connects to
    /// the `reconnect_url`: the new connection gets the welcome (same session id), everything
    /// sent from then on goes there, and the old connection is closed after what was queued on
    /// it.
    pub fn reconnect_sessions(&self) {
        let mut s = lock(&self.state);
        let ws_base = s.base_url.replacen("http://", "ws://", 1);
        let ids: Vec<String> = s.sessions.keys().cloned().collect();
        for id in ids {
            let token = random_id(24);
            s.reconnect_tokens.insert(token.clone(), id.clone());
            let session = &s.sessions[&id];
            let message = json!({
                "metadata": {
                    "message_id": uuid(),
                    "message_type": "session_reconnect",
                    "message_timestamp": now_rfc3339(),
                },
                "payload": { "session": {
                    "id": id,
                    "status": "reconnecting",
                    "keepalive_timeout_seconds": null,
                    "reconnect_url": format!("{ws_base}/ws?reconnect={token}"),
                    "connected_at": session.connected_at,
                    "recovery_url": null,
                }},
            });
            let _ = session.tx.send(Outbound::Text(message.to_string()));
        }
    }

    /// A `channel.chat.message` from `chatter_login` (registered on the fly if unknown) in the
    /// channel of `broadcaster_id`, to every matching subscription. Words that are known emotes
    /// become emote fragments. Returns the chat message id (`event.message_id`).
    pub async fn send_chat(&self, broadcaster_id: &str, chatter_login: &str, text: &str) -> String {
        let event = self.chat_event(broadcaster_id, chatter_login, text);
        let message_id = event["message_id"]
            .as_str()
            .expect("built above")
            .to_string();
        self.send_event("channel.chat.message", event).await;
        message_id
    }

    /// The `channel.chat.message` event [`Self::send_chat`] sends, to change (a reply, a cheer,
    /// badges) and send with [`Self::send_event`].
    pub fn chat_event(&self, broadcaster_id: &str, chatter_login: &str, text: &str) -> Value {
        let (broadcaster_login, chatter_id, emotes) = {
            let mut s = lock(&self.state);
            let broadcaster_login = s
                .users
                .iter()
                .find(|(id, _)| id == broadcaster_id)
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| format!("user{broadcaster_id}"));
            let chatter_id = match s.users.iter().find(|(_, l)| l == chatter_login) {
                Some((id, _)) => id.clone(),
                None => {
                    let id = (rand::random::<u32>() % 900_000_000 + 100_000_000).to_string();
                    s.users.push((id.clone(), chatter_login.to_string()));
                    id
                }
            };
            (broadcaster_login, chatter_id, s.emotes.clone())
        };
        json!({
            "broadcaster_user_id": broadcaster_id,
            "broadcaster_user_login": broadcaster_login,
            "broadcaster_user_name": broadcaster_login,
            "chatter_user_id": chatter_id,
            "chatter_user_login": chatter_login,
            "chatter_user_name": chatter_login,
            "message_id": uuid(),
            "message": { "text": text, "fragments": fragments(text, &emotes) },
            "color": "#00FF7F",
            "badges": [{ "set_id": "subscriber", "id": "12", "info": "16" }],
            "message_type": "text",
            "cheer": null,
            "reply": null,
            "channel_points_custom_reward_id": null,
            "channel_points_animation_id": null,
            "source_broadcaster_user_id": null,
            "source_broadcaster_user_login": null,
            "source_broadcaster_user_name": null,
            "source_message_id": null,
            "source_badges": null,
            "is_source_only": null,
        })
    }

    /// Sends `event` to every enabled subscription of `sub_type` whose condition matches it
    /// (each condition field the event also has must be equal), over its transport. Webhook
    /// deliveries are finished (with retries) when this returns. Returns the EventSub message
    /// ids, one per subscription.
    pub async fn send_event(&self, sub_type: &str, event: Value) -> Vec<String> {
        emit(&self.state, sub_type, event).await
    }

    /// Sets a broadcaster's ad schedule (snoozes, next and last ad, ...).
    pub fn set_ad_schedule(&self, broadcaster_id: &str, schedule: FakeAdSchedule) {
        lock(&self.state)
            .ads
            .entry(broadcaster_id.to_string())
            .or_default()
            .schedule = schedule;
    }

    /// A broadcaster's ad schedule as the fake holds it (next and last ad even while offline).
    pub fn ad_schedule(&self, broadcaster_id: &str) -> FakeAdSchedule {
        lock(&self.state)
            .ads
            .get(broadcaster_id)
            .map(|a| a.schedule.clone())
            .unwrap_or_default()
    }

    /// Whether the broadcaster is streaming: ads run and are snoozed only while live. (Sends no
    /// `stream.online`/`stream.offline`; use [`Self::send_event`] for those.)
    pub fn set_live(&self, broadcaster_id: &str, live: bool) {
        lock(&self.state)
            .ads
            .entry(broadcaster_id.to_string())
            .or_default()
            .live = live;
    }

    /// How the ads endpoints write times from now on (default RFC 3339).
    pub fn set_ad_time_format(&self, format: AdTimeFormat) {
        lock(&self.state).ad_time_format = format;
    }

    /// The ad breaks run on this channel, oldest first.
    pub fn ad_breaks(&self, broadcaster_id: &str) -> Vec<FakeAdBreak> {
        lock(&self.state)
            .ads
            .get(broadcaster_id)
            .map(|a| a.breaks.clone())
            .unwrap_or_default()
    }

    /// The wait after the last commercial is over: the next one may start now.
    pub fn end_commercial_cooldown(&self, broadcaster_id: &str) {
        if let Some(ads) = lock(&self.state).ads.get_mut(broadcaster_id) {
            ads.cooldown_until = None;
        }
    }

    /// The scheduled automatic ad break runs now (its time came): last ad now, the next one
    /// [`AD_INTERVAL`] after this break, and a `channel.ad_break.begin` with `is_automatic: true`
    /// to every matching subscription (delivered when this returns). Returns the EventSub
    /// message ids. Panics when the channel is not live, as Twitch runs no ads then.
    pub async fn run_scheduled_ad(&self, broadcaster_id: &str) -> Vec<String> {
        let event = {
            let mut s = lock(&self.state);
            let ads = s.ads.entry(broadcaster_id.to_string()).or_default();
            assert!(
                ads.live,
                "run_scheduled_ad({broadcaster_id:?}): the channel is not live"
            );
            let length = ads.schedule.duration;
            run_ad_break(&mut s, broadcaster_id, broadcaster_id, length, true)
        };
        emit(&self.state, AD_BREAK_BEGIN, event).await
    }

    /// Sends an earlier message again, unchanged (same message id and body; webhook: a fresh
    /// timestamp and signature, `Message-Retry` counting on).
    pub async fn redeliver(&self, message_id: &str) {
        let Some(sent) = lock(&self.state).sent.get(message_id).cloned() else {
            panic!("redeliver({message_id:?}): no such message");
        };
        let Some(sub) = lock(&self.state)
            .subs
            .iter()
            .find(|s| s.id == sent.subscription_id)
            .cloned()
        else {
            return;
        };
        if sub.method == "websocket" {
            send_ws(
                &self.state,
                &sub,
                message_id,
                sent.message_type.as_str(),
                &sent.body,
            );
        } else {
            let retry = lock(&self.state)
                .deliveries
                .iter()
                .filter(|d| d.message_id == message_id)
                .count() as u32;
            post_webhook(
                &self.state,
                &sub,
                message_id,
                sent.message_type,
                &sent.body,
                retry,
                None,
            )
            .await;
        }
    }

    /// Twitch revokes a subscription: its status becomes `status` and a `revocation` message
    /// goes to its callback or session.
    pub async fn revoke_subscription(&self, id: &str, status: SubscriptionStatus) {
        revoke(&self.state, id, status.as_str()).await;
    }
}

/// [`FakeTwitch::send_event`], for handlers too.
async fn emit(state: &Shared, sub_type: &str, event: Value) -> Vec<String> {
    let targets: Vec<FakeSub> = lock(state)
        .subs
        .iter()
        .filter(|s| s.kind == sub_type && s.status == "enabled")
        .filter(|s| condition_matches(&s.condition, &event))
        .cloned()
        .collect();
    let mut ids = Vec::new();
    let mut webhooks = Vec::new();
    for sub in targets {
        let message_id = uuid();
        let body = json!({ "subscription": sub_json(&sub), "event": event }).to_string();
        lock(state).sent.insert(
            message_id.clone(),
            SentMessage {
                subscription_id: sub.id.clone(),
                message_type: MessageType::Notification,
                body: body.clone(),
            },
        );
        ids.push(message_id.clone());
        if sub.method == "websocket" {
            send_ws(state, &sub, &message_id, "notification", &body);
        } else {
            webhooks.push(deliver_notification(state.clone(), sub, message_id, body));
        }
    }
    futures::future::join_all(webhooks).await;
    ids
}

/// Whether a subscription condition names this user in any field.
fn condition_names(condition: &Value, user_id: &str) -> bool {
    condition
        .as_object()
        .is_some_and(|c| c.values().any(|v| v.as_str() == Some(user_id)))
}

fn condition_matches(condition: &Value, event: &Value) -> bool {
    let Some(condition) = condition.as_object() else {
        return false;
    };
    condition.iter().all(
        |(key, value)| match event.get(key).and_then(Value::as_str) {
            Some(event_value) => Some(event_value) == value.as_str(),
            None => true,
        },
    )
}

/// Twitch's fragments: runs of text, and emotes for words that are emote names.
fn fragments(text: &str, emotes: &[(String, String)]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut pending = String::new();
    let flush = |pending: &mut String, out: &mut Vec<Value>| {
        if !pending.is_empty() {
            out.push(json!({ "type": "text", "text": std::mem::take(pending), "cheermote": null, "emote": null, "mention": null }));
        }
    };
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            pending.push(' ');
        }
        if let Some((name, id)) = emotes.iter().find(|(n, _)| n == word) {
            flush(&mut pending, &mut out);
            out.push(json!({
                "type": "emote",
                "text": name,
                "cheermote": null,
                "emote": { "id": id, "emote_set_id": "0", "owner_id": "0", "format": ["static"] },
                "mention": null,
            }));
        } else {
            pending.push_str(word);
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn send_ws(state: &Shared, sub: &FakeSub, message_id: &str, message_type: &str, body: &str) {
    let s = lock(state);
    let Some(session) = sub.session_id.as_ref().and_then(|id| s.sessions.get(id)) else {
        return;
    };
    let payload: Value = serde_json::from_str(body).expect("our own JSON");
    let message = json!({
        "metadata": {
            "message_id": message_id,
            "message_type": message_type,
            "message_timestamp": now_rfc3339(),
            "subscription_type": sub.kind,
            "subscription_version": sub.version,
        },
        "payload": payload,
    });
    let _ = session.tx.send(Outbound::Text(message.to_string()));
}

/// A notification to a webhook: retried per the delivery policy, spoiled by the next queued
/// webhook fault; consecutive failures lead to `notification_failures_exceeded`.
async fn deliver_notification(state: Shared, sub: FakeSub, message_id: String, body: String) {
    let (policy, fault) = {
        let mut s = lock(&state);
        (s.delivery_policy.clone(), s.webhook_faults.pop_front())
    };
    let mut retry = 0;
    let mut delivered = false;
    while retry < policy.attempts {
        if post_webhook(
            &state,
            &sub,
            &message_id,
            MessageType::Notification,
            &body,
            retry,
            fault.clone(),
        )
        .await
        {
            delivered = true;
            break;
        }
        retry += 1;
        if retry < policy.attempts {
            tokio::time::sleep(policy.retry_delay).await;
        }
    }
    if let (true, Some(WebhookFault::Redeliver { extra })) = (delivered, &fault) {
        for _ in 0..*extra {
            retry += 1;
            post_webhook(
                &state,
                &sub,
                &message_id,
                MessageType::Notification,
                &body,
                retry,
                None,
            )
            .await;
        }
    }
    let exceeded = {
        let mut s = lock(&state);
        let Some(stored) = s.subs.iter_mut().find(|s| s.id == sub.id) else {
            return;
        };
        stored.failures = if delivered { 0 } else { stored.failures + 1 };
        stored.failures >= policy.failures_before_revocation
    };
    if exceeded {
        revoke(&state, &sub.id, "notification_failures_exceeded").await;
    }
}

/// One signed POST to the subscription's callback; logs it and says whether it was answered 2xx.
async fn post_webhook(
    state: &Shared,
    sub: &FakeSub,
    message_id: &str,
    message_type: MessageType,
    body: &str,
    retry: u32,
    fault: Option<WebhookFault>,
) -> bool {
    let (http, timeout) = {
        let s = lock(state);
        (s.http.clone(), s.delivery_policy.response_timeout)
    };
    let callback = sub.callback.clone().expect("webhook subscription");
    let secret = sub.secret.clone().expect("webhook subscription");
    let mut at = Utc::now();
    if let Some(WebhookFault::ShiftTimestamp { by }) = &fault {
        at += *by;
    }
    let timestamp = at.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut signature = sign(&secret, message_id, &timestamp, body.as_bytes());
    if fault == Some(WebhookFault::BadSignature) {
        // Change the last hex digit: same shape, wrong value.
        let last = signature.pop().expect("non-empty");
        signature.push(if last == '0' { '1' } else { '0' });
    }
    let sent_body = if fault == Some(WebhookFault::ReserializedBody) {
        let value: Value = serde_json::from_str(body).expect("our own JSON");
        serde_json::to_string_pretty(&value).expect("serialisable")
    } else {
        body.to_string()
    };
    let mut headers: Vec<(&str, String)> = vec![
        ("Twitch-Eventsub-Message-Id", message_id.to_string()),
        ("Twitch-Eventsub-Message-Retry", retry.to_string()),
        ("Twitch-Eventsub-Message-Type", message_type.as_str().into()),
        ("Twitch-Eventsub-Message-Signature", signature),
        ("Twitch-Eventsub-Message-Timestamp", timestamp.clone()),
        ("Twitch-Eventsub-Subscription-Type", sub.kind.clone()),
        ("Twitch-Eventsub-Subscription-Version", sub.version.clone()),
        ("Content-Type", "application/json".into()),
    ];
    if let Some(WebhookFault::OmitHeader(name)) = &fault {
        headers.retain(|(h, _)| !h.eq_ignore_ascii_case(name));
    }
    let mut request = http
        .post(&callback)
        .timeout(timeout)
        .body(sent_body.clone());
    for (name, value) in &headers {
        request = request.header(*name, value);
    }
    let started = Instant::now();
    let (status, content_type, reply_body, error) = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match response.text().await {
                Ok(text) => (Some(status), content_type, text, None),
                Err(e) => (None, content_type, String::new(), Some(e.to_string())),
            }
        }
        Err(e) => (None, None, String::new(), Some(e.to_string())),
    };
    let delivery = Delivery {
        subscription_id: sub.id.clone(),
        message_id: message_id.to_string(),
        message_type,
        retry,
        timestamp,
        callback,
        sent_body,
        status,
        content_type,
        body: reply_body,
        latency: started.elapsed(),
        error,
    };
    let acknowledged = delivery.acknowledged();
    lock(state).deliveries.push(delivery);
    acknowledged
}

/// The challenge handshake: the callback must answer 2xx, `text/plain`, the challenge verbatim.
async fn verify_callback(state: Shared, sub: FakeSub) {
    let challenge = random_id(32);
    let message_id = uuid();
    let body = json!({ "challenge": challenge, "subscription": sub_json(&sub) }).to_string();
    post_webhook(
        &state,
        &sub,
        &message_id,
        MessageType::WebhookCallbackVerification,
        &body,
        0,
        None,
    )
    .await;
    let mut s = lock(&state);
    let passed = s
        .deliveries
        .iter()
        .rev()
        .find(|d| d.message_id == message_id)
        .is_some_and(|d| {
            let media_type = d
                .content_type
                .as_deref()
                .and_then(|c| c.split(';').next())
                .map(|m| m.trim().to_ascii_lowercase());
            d.acknowledged() && media_type.as_deref() == Some("text/plain") && d.body == challenge
        });
    if let Some(stored) = s.subs.iter_mut().find(|x| x.id == sub.id) {
        stored.status = if passed {
            "enabled".into()
        } else {
            "webhook_callback_verification_failed".into()
        };
    }
}

async fn revoke(state: &Shared, id: &str, status: &str) {
    let sub = {
        let mut s = lock(state);
        let Some(stored) = s.subs.iter_mut().find(|x| x.id == id) else {
            return;
        };
        stored.status = status.to_string();
        stored.clone()
    };
    let message_id = uuid();
    let body = json!({ "subscription": sub_json(&sub) }).to_string();
    lock(state).sent.insert(
        message_id.clone(),
        SentMessage {
            subscription_id: sub.id.clone(),
            message_type: MessageType::Revocation,
            body: body.clone(),
        },
    );
    if sub.method == "websocket" {
        send_ws(state, &sub, &message_id, "revocation", &body);
    } else {
        post_webhook(
            state,
            &sub,
            &message_id,
            MessageType::Revocation,
            &body,
            0,
            None,
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

fn twitch_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        Json(json!({
            "error": code.canonical_reason().unwrap_or("Error"),
            "status": status,
            "message": message,
        })),
    )
        .into_response()
}

/// The OAuth endpoints' error body (no `error` field).
fn oauth_error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({ "status": status, "message": message })),
    )
        .into_response()
}

fn classify(method: &Method, path: &str) -> Endpoint {
    match (method.as_str(), path) {
        ("GET", "/oauth2/authorize") => Endpoint::Authorize,
        ("POST", "/oauth2/token") => Endpoint::Token,
        ("GET", "/oauth2/validate") => Endpoint::Validate,
        ("POST", "/oauth2/revoke") => Endpoint::Revoke,
        ("POST", "/helix/eventsub/subscriptions") => Endpoint::CreateSubscription,
        ("GET", "/helix/eventsub/subscriptions") => Endpoint::ListSubscriptions,
        ("DELETE", "/helix/eventsub/subscriptions") => Endpoint::DeleteSubscription,
        ("GET", "/helix/users") => Endpoint::Users,
        ("GET", "/helix/channels/ads") => Endpoint::AdSchedule,
        ("POST", "/helix/channels/ads/schedule/snooze") => Endpoint::SnoozeNextAd,
        ("POST", "/helix/channels/commercial") => Endpoint::StartCommercial,
        ("GET", "/ws") => Endpoint::WebSocket,
        _ => Endpoint::Other,
    }
}

/// Records every request and answers the queued faults.
async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let endpoint = classify(request.method(), request.uri().path());
    let (index, fault) = {
        let mut s = lock(&state);
        s.requests.push(RecordedRequest {
            endpoint,
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            status: None,
        });
        let index = s.requests.len() - 1;
        let fault = s
            .faults
            .iter_mut()
            .find(|(on, _, times)| *on == endpoint && *times > 0)
            .map(|(_, kind, times)| {
                *times -= 1;
                *kind
            });
        s.faults.retain(|(_, _, times)| *times > 0);
        (index, fault)
    };
    let response = match fault {
        Some(FaultKind::ServerError { status }) => twitch_error(status, "fake server error"),
        Some(FaultKind::RateLimited { reset_in }) => {
            let reset = SystemTime::now() + reset_in;
            let since_epoch = reset.duration_since(UNIX_EPOCH).expect("after 1970");
            let whole = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0);
            let mut response = twitch_error(429, "Too Many Requests");
            let headers = response.headers_mut();
            headers.insert("Ratelimit-Limit", HeaderValue::from_static("800"));
            headers.insert("Ratelimit-Remaining", HeaderValue::from_static("0"));
            headers.insert(
                "Ratelimit-Reset",
                HeaderValue::from_str(&whole.to_string()).expect("digits"),
            );
            response
        }
        Some(FaultKind::DropConnection) => {
            if let Some(ConnectionKiller(kill)) = request.extensions().get::<ConnectionKiller>() {
                kill.notify_one();
            }
            std::future::pending::<()>().await;
            unreachable!("the connection is gone");
        }
        None => next.run(request).await,
    };
    lock(&state).requests[index].status = Some(response.status().as_u16());
    response
}

/// The caller of a Helix request, from `Authorization: Bearer` and `Client-Id`.
struct Caller {
    owner: Owner,
    scopes: Vec<String>,
}

/// Why a Helix request is refused before its handler runs: `(status, message)`.
type Refusal = (u16, &'static str);

fn helix_caller(state: &Shared, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let client_id = headers.get("client-id").and_then(|v| v.to_str().ok());
    let Some(token) = token else {
        return Err((401, "OAuth token is missing"));
    };
    if client_id != Some(FAKE_CLIENT_ID) {
        return Err((401, "Client ID and OAuth token do not match"));
    }
    let s = lock(state);
    match s.access.get(token) {
        Some(t) if t.expires > SystemTime::now() => Ok(Caller {
            owner: t.owner.clone(),
            scopes: t.scopes.clone(),
        }),
        _ => Err((401, "Invalid OAuth token")),
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
}

async fn authorize(State(state): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id.as_deref() != Some(FAKE_CLIENT_ID) {
        return oauth_error(400, "invalid client");
    }
    if q.response_type.as_deref() != Some("code") {
        return oauth_error(400, "unsupported response_type");
    }
    let Some(Ok(mut target)) = q.redirect_uri.as_deref().map(url::Url::parse) else {
        return oauth_error(400, "Parameter redirect_uri does not match registered URI");
    };
    let scopes: Vec<String> = q
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if let Some(unknown) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return oauth_error(400, &format!("invalid scope requested: '{unknown}'"));
    }
    let consent = lock(&state).consent.clone();
    {
        let mut pairs = target.query_pairs_mut();
        match consent {
            Consent::Nobody => {
                return oauth_error(400, "fake: nobody approves the consent (call approve_as)");
            }
            Consent::Deny => {
                pairs
                    .append_pair("error", "access_denied")
                    .append_pair("error_description", "The user denied you access");
            }
            Consent::Approve(user_id) => {
                let code = random_id(30);
                lock(&state).codes.insert(
                    code.clone(),
                    AuthCode {
                        user_id,
                        redirect_uri: q.redirect_uri.clone().unwrap_or_default(),
                        scopes: scopes.clone(),
                    },
                );
                pairs
                    .append_pair("code", &code)
                    .append_pair("scope", &scopes.join(" "));
            }
        }
        if let Some(s) = &q.state {
            pairs.append_pair("state", s);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    refresh_token: Option<String>,
}

fn issue_user_tokens(s: &mut FakeState, user_id: &str, scopes: Vec<String>) -> Response {
    let access = random_id(30);
    let refresh = random_id(50);
    let ttl = s.access_ttl;
    s.access.insert(
        access.clone(),
        AccessToken {
            owner: Owner::User(user_id.to_string()),
            scopes: scopes.clone(),
            expires: SystemTime::now() + ttl,
            refresh: Some(refresh.clone()),
        },
    );
    s.refresh.insert(
        refresh.clone(),
        RefreshToken {
            user_id: user_id.to_string(),
            scopes: scopes.clone(),
        },
    );
    Json(json!({
        "access_token": access,
        "expires_in": ttl.as_secs(),
        "refresh_token": refresh,
        "scope": scopes,
        "token_type": "bearer",
    }))
    .into_response()
}

async fn token(State(state): State<Shared>, Form(form): Form<TokenForm>) -> Response {
    if form.client_id.as_deref() != Some(FAKE_CLIENT_ID) {
        return oauth_error(400, "invalid client");
    }
    if form.client_secret.as_deref() != Some(FAKE_CLIENT_SECRET) {
        return oauth_error(403, "invalid client secret");
    }
    let mut s = lock(&state);
    match form.grant_type.as_deref() {
        Some("authorization_code") => {
            let code = form.code.as_deref().and_then(|c| s.codes.remove(c));
            let Some(code) = code else {
                return oauth_error(400, "Invalid authorization code");
            };
            if form.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
                return oauth_error(400, "Parameter redirect_uri does not match registered URI");
            }
            s.grants
                .entry(code.user_id.clone())
                .or_default()
                .extend(code.scopes.iter().cloned());
            issue_user_tokens(&mut s, &code.user_id, code.scopes)
        }
        Some("refresh_token") => {
            // Rotation: the refresh token is used up; the reply carries its successor.
            let old = form
                .refresh_token
                .as_deref()
                .and_then(|r| s.refresh.remove(r));
            let Some(old) = old else {
                return oauth_error(400, "Invalid refresh token");
            };
            issue_user_tokens(&mut s, &old.user_id, old.scopes)
        }
        Some("client_credentials") => {
            let access = random_id(30);
            let ttl = Duration::from_secs(5_011_271);
            s.access.insert(
                access.clone(),
                AccessToken {
                    owner: Owner::App,
                    scopes: Vec::new(),
                    expires: SystemTime::now() + ttl,
                    refresh: None,
                },
            );
            Json(json!({ "access_token": access, "expires_in": ttl.as_secs(), "token_type": "bearer" }))
                .into_response()
        }
        _ => oauth_error(400, "unsupported grant type"),
    }
}

async fn validate(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("OAuth "));
    let s = lock(&state);
    let Some(t) = token
        .and_then(|t| s.access.get(t))
        .filter(|t| t.expires > SystemTime::now())
    else {
        return oauth_error(401, "invalid access token");
    };
    let expires_in = t
        .expires
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .as_secs();
    match &t.owner {
        // Twitch answers `scopes: null` for an app token.
        Owner::App => Json(json!({
            "client_id": FAKE_CLIENT_ID,
            "scopes": null,
            "expires_in": expires_in,
        }))
        .into_response(),
        Owner::User(user_id) => {
            let login = s
                .users
                .iter()
                .find(|(id, _)| id == user_id)
                .map(|(_, l)| l.clone())
                .unwrap_or_default();
            Json(json!({
                "client_id": FAKE_CLIENT_ID,
                "login": login,
                "scopes": t.scopes,
                "user_id": user_id,
                "expires_in": expires_in,
            }))
            .into_response()
        }
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    client_id: Option<String>,
    token: Option<String>,
}

async fn revoke_token(State(state): State<Shared>, Form(form): Form<RevokeForm>) -> Response {
    if form.client_id.as_deref() != Some(FAKE_CLIENT_ID) {
        return oauth_error(404, "client does not exist");
    }
    let mut s = lock(&state);
    let Some(t) = form.token.as_deref().and_then(|t| s.access.remove(t)) else {
        return oauth_error(400, "Invalid token");
    };
    if let Some(refresh) = t.refresh {
        s.refresh.remove(&refresh);
    }
    StatusCode::OK.into_response()
}

// ---------------------------------------------------------------------------------------------
// Helix

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

async fn create_subscription(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let caller = match helix_caller(&state, &headers) {
        Ok(c) => c,
        Err((status, message)) => return twitch_error(status, message),
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return twitch_error(400, "malformed JSON body");
    };
    let kind = request["type"].as_str().unwrap_or_default().to_string();
    let version = request["version"].as_str().unwrap_or_default().to_string();
    let Some(spec) = TYPES
        .iter()
        .find(|t| t.kind == kind && t.version == version)
    else {
        return twitch_error(400, "invalid subscription type and version");
    };
    let condition = request["condition"].clone();
    let Some(fields) = condition.as_object() else {
        return twitch_error(400, "missing condition");
    };
    if let Some(missing) = spec.condition.iter().find(|f| {
        fields
            .get(**f)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    }) {
        return twitch_error(400, &format!("missing condition field {missing}"));
    }
    let transport = &request["transport"];
    let method = transport["method"].as_str().unwrap_or_default();
    let mut s = lock(&state);
    let (method, callback, secret, session_id, connected_at) = match method {
        "webhook" => {
            if caller.owner != Owner::App {
                return twitch_error(400, "invalid transport and auth combination");
            }
            let callback = transport["callback"].as_str().unwrap_or_default();
            let acceptable = url::Url::parse(callback).is_ok_and(|u| {
                (u.scheme() == "https" && u.port_or_known_default() == Some(443))
                    || is_loopback_host(&u)
            });
            if !acceptable {
                return twitch_error(400, "invalid callback: must be https on port 443");
            }
            let secret = transport["secret"].as_str().unwrap_or_default();
            if !(10..=100).contains(&secret.len()) || !secret.is_ascii() {
                return twitch_error(400, "secret must be between 10 and 100 characters");
            }
            (
                "webhook",
                Some(callback.to_string()),
                Some(secret.to_string()),
                None,
                None,
            )
        }
        "websocket" => {
            if caller.owner == Owner::App {
                return twitch_error(400, "invalid transport and auth combination");
            }
            let session_id = transport["session_id"].as_str().unwrap_or_default();
            let Some(session) = s.sessions.get(session_id) else {
                return twitch_error(
                    400,
                    "websocket transport session does not exist or has already disconnected",
                );
            };
            let connected_at = session.connected_at.clone();
            (
                "websocket",
                None,
                None,
                Some(session_id.to_string()),
                Some(connected_at),
            )
        }
        _ => return twitch_error(400, "unsupported transport method"),
    };
    // Authorization: a user token must belong to the condition's user and carry the scopes;
    // with an app token the users named in the condition must have granted them to the client.
    for (field, scope, app_only) in spec.scopes {
        let user = fields[*field].as_str().unwrap_or_default();
        let authorized = match &caller.owner {
            Owner::User(token_user) => {
                *app_only || (token_user == user && caller.scopes.iter().any(|s| s == scope))
            }
            Owner::App => s.grants.get(user).is_some_and(|g| g.contains(*scope)),
        };
        if !authorized {
            return twitch_error(403, "subscription missing proper authorization");
        }
    }
    let duplicate = s.subs.iter().any(|x| {
        x.kind == kind
            && x.condition == condition
            && x.method == method
            && x.callback == callback
            && x.session_id == session_id
            && matches!(
                x.status.as_str(),
                "enabled" | "webhook_callback_verification_pending"
            )
    });
    if duplicate {
        return twitch_error(409, "subscription already exists");
    }
    let authorized_by_user = spec.condition.iter().any(|f| {
        fields[*f]
            .as_str()
            .is_some_and(|u| s.grants.contains_key(u))
    });
    let sub = FakeSub {
        id: uuid(),
        status: if method == "webhook" {
            "webhook_callback_verification_pending".into()
        } else {
            "enabled".into()
        },
        kind,
        version,
        condition,
        method,
        callback,
        secret,
        session_id,
        connected_at,
        disconnected_at: None,
        created_at: now_rfc3339(),
        cost: if authorized_by_user { 0 } else { 1 },
        owner: caller.owner.clone(),
        failures: 0,
    };
    s.subs.push(sub.clone());
    let (total, total_cost) = totals(&s, &caller.owner);
    if method == "webhook" {
        let task = tokio::spawn(verify_callback(state.clone(), sub.clone()));
        s.background.push(task);
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "data": [sub_json(&sub)],
            "total": total,
            "total_cost": total_cost,
            "max_total_cost": max_total_cost(&caller.owner),
        })),
    )
        .into_response()
}

fn visible(sub: &FakeSub, owner: &Owner) -> bool {
    match owner {
        Owner::App => sub.method == "webhook",
        user => sub.method == "websocket" && sub.owner == *user,
    }
}

fn totals(s: &FakeState, owner: &Owner) -> (usize, u64) {
    let mine: Vec<&FakeSub> = s.subs.iter().filter(|x| visible(x, owner)).collect();
    let cost = mine
        .iter()
        .filter(|x| x.status == "enabled" || x.status == "webhook_callback_verification_pending")
        .map(|x| x.cost)
        .sum();
    (mine.len(), cost)
}

fn max_total_cost(owner: &Owner) -> u64 {
    match owner {
        Owner::App => 10_000,
        Owner::User(_) => 10,
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    user_id: Option<String>,
    after: Option<String>,
}

async fn list_subscriptions(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let caller = match helix_caller(&state, &headers) {
        Ok(c) => c,
        Err((status, message)) => return twitch_error(status, message),
    };
    let filters = [q.status.is_some(), q.kind.is_some(), q.user_id.is_some()];
    if filters.iter().filter(|f| **f).count() > 1 {
        return twitch_error(400, "only one of status, type or user_id may be given");
    }
    let start = match q.after.as_deref() {
        None => 0,
        Some(cursor) => match cursor
            .strip_prefix("fake-cursor-")
            .and_then(|n| n.parse().ok())
        {
            Some(n) => n,
            None => return twitch_error(400, "invalid cursor"),
        },
    };
    let s = lock(&state);
    let matching: Vec<&FakeSub> = s
        .subs
        .iter()
        .filter(|x| visible(x, &caller.owner))
        .filter(|x| q.status.as_ref().is_none_or(|st| x.status == *st))
        .filter(|x| q.kind.as_ref().is_none_or(|k| x.kind == *k))
        .filter(|x| {
            q.user_id
                .as_ref()
                .is_none_or(|u| condition_names(&x.condition, u))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(s.page_size)
        .map(|x| sub_json(x))
        .collect();
    let end = start + page.len();
    let pagination = if end < matching.len() {
        json!({ "cursor": format!("fake-cursor-{end}") })
    } else {
        json!({})
    };
    let (total, total_cost) = totals(&s, &caller.owner);
    Json(json!({
        "data": page,
        "total": total,
        "total_cost": total_cost,
        "max_total_cost": max_total_cost(&caller.owner),
        "pagination": pagination,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct IdQuery {
    id: Option<String>,
}

async fn delete_subscription(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<IdQuery>,
) -> Response {
    let caller = match helix_caller(&state, &headers) {
        Ok(c) => c,
        Err((status, message)) => return twitch_error(status, message),
    };
    let Some(id) = q.id else {
        return twitch_error(400, "Missing required parameter \"id\"");
    };
    let mut s = lock(&state);
    let before = s.subs.len();
    s.subs
        .retain(|x| !(x.id == id && visible(x, &caller.owner)));
    if s.subs.len() == before {
        return twitch_error(404, "subscription not found");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn users(State(state): State<Shared>, headers: HeaderMap, request: Request) -> Response {
    let caller = match helix_caller(&state, &headers) {
        Ok(c) => c,
        Err((status, message)) => return twitch_error(status, message),
    };
    let pairs: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let ids: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.as_str())
        .collect();
    let logins: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "login")
        .map(|(_, v)| v.as_str())
        .collect();
    let s = lock(&state);
    let wanted: Vec<&(String, String)> = if ids.is_empty() && logins.is_empty() {
        let Owner::User(me) = &caller.owner else {
            return twitch_error(400, "Must provide an ID, Login or OAuth Token");
        };
        s.users.iter().filter(|(id, _)| id == me).collect()
    } else {
        s.users
            .iter()
            .filter(|(id, login)| ids.contains(&id.as_str()) || logins.contains(&login.as_str()))
            .collect()
    };
    let data: Vec<Value> = wanted
        .iter()
        .map(|(id, login)| {
            json!({
                "id": id,
                "login": login,
                "display_name": login,
                "type": "",
                "broadcaster_type": "",
                "description": "",
                "profile_image_url": "",
                "offline_image_url": "",
                "view_count": 0,
                "created_at": "2016-12-14T20:32:28Z",
            })
        })
        .collect();
    Json(json!({ "data": data })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Ads

const AD_BREAK_BEGIN: &str = "channel.ad_break.begin";

/// Records an ad break starting now on a live channel, moves the schedule on, and builds its
/// `channel.ad_break.begin` event.
fn run_ad_break(
    s: &mut FakeState,
    broadcaster_id: &str,
    requester_id: &str,
    length: u32,
    is_automatic: bool,
) -> Value {
    let now = Utc::now();
    let login_of = |id: &str| {
        s.users
            .iter()
            .find(|(user_id, _)| user_id == id)
            .map(|(_, login)| login.clone())
            .unwrap_or_else(|| format!("user{id}"))
    };
    let (broadcaster_login, requester_login) = (login_of(broadcaster_id), login_of(requester_id));
    let ads = s.ads.entry(broadcaster_id.to_string()).or_default();
    ads.schedule.last_ad_at = Some(now);
    ads.schedule.next_ad_at =
        Some(now + TimeDelta::seconds(i64::from(length)) + delta(AD_INTERVAL));
    ads.breaks.push(FakeAdBreak {
        length,
        started_at: now,
        is_automatic,
        requester_user_id: requester_id.to_string(),
    });
    json!({
        "duration_seconds": length,
        "started_at": now.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "is_automatic": is_automatic,
        "broadcaster_user_id": broadcaster_id,
        "broadcaster_user_login": broadcaster_login,
        "broadcaster_user_name": broadcaster_login,
        "requester_user_id": requester_id,
        "requester_user_login": requester_login,
        "requester_user_name": requester_login,
    })
}

fn ad_time_json(format: AdTimeFormat, at: Option<DateTime<Utc>>) -> Value {
    match (format, at) {
        (AdTimeFormat::Rfc3339, Some(at)) => at.to_rfc3339_opts(SecondsFormat::Secs, true).into(),
        (AdTimeFormat::UnixSecondsString, Some(at)) => at.timestamp().to_string().into(),
        (AdTimeFormat::UnixSecondsNumber, Some(at)) => at.timestamp().into(),
        (AdTimeFormat::Rfc3339 | AdTimeFormat::UnixSecondsString, None) => "".into(),
        (AdTimeFormat::UnixSecondsNumber, None) => 0.into(),
    }
}

fn ad_count_json(format: AdTimeFormat, count: u32) -> Value {
    match format {
        AdTimeFormat::UnixSecondsString => count.to_string().into(),
        AdTimeFormat::Rfc3339 | AdTimeFormat::UnixSecondsNumber => count.into(),
    }
}

/// Twitch's checks of an ads request: a valid token of this client, the scope, and the token's
/// user is the broadcaster. `app_token_allowed`: an app token works when the broadcaster granted
/// the scope to the client (Get Ad Schedule). Returns the broadcaster id, or the refusal's
/// status and message.
fn ads_broadcaster(
    state: &Shared,
    headers: &HeaderMap,
    broadcaster_id: Option<&str>,
    scope: &str,
    app_token_allowed: bool,
) -> Result<String, (u16, String)> {
    let caller = helix_caller(state, headers).map_err(|(status, m)| (status, m.to_string()))?;
    let Some(broadcaster) = broadcaster_id.filter(|b| !b.is_empty()) else {
        return Err((
            400,
            "Missing required parameter \"broadcaster_id\"".to_string(),
        ));
    };
    let missing_scope = || (401, format!("Missing scope: {scope}"));
    match &caller.owner {
        Owner::User(user) => {
            if !caller.scopes.iter().any(|s| s == scope) {
                return Err(missing_scope());
            }
            if user != broadcaster {
                return Err((401, "The ID in broadcaster_id must match the user ID found in the request's OAuth token.".to_string()));
            }
        }
        Owner::App if !app_token_allowed => {
            return Err((401, "a user access token is required".to_string()));
        }
        Owner::App => {
            let granted = lock(state)
                .grants
                .get(broadcaster)
                .is_some_and(|g| g.contains(scope));
            if !granted {
                return Err(missing_scope());
            }
        }
    }
    Ok(broadcaster.to_string())
}

/// Helix's rate-limit headers, as on every Helix reply: a full budget here, so that a client
/// can tell an endpoint's own 429 (no snoozes, cooldown) from an exhausted budget.
fn with_budget_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key("ratelimit-remaining") {
        let reset = Utc::now().timestamp() + 60;
        headers.insert("Ratelimit-Limit", HeaderValue::from_static("800"));
        headers.insert("Ratelimit-Remaining", HeaderValue::from_static("799"));
        headers.insert(
            "Ratelimit-Reset",
            HeaderValue::from_str(&reset.to_string()).expect("digits"),
        );
    }
    response
}

#[derive(Deserialize)]
struct BroadcasterQuery {
    broadcaster_id: Option<String>,
}

async fn ad_schedule(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<BroadcasterQuery>,
) -> Response {
    let broadcaster = match ads_broadcaster(
        &state,
        &headers,
        q.broadcaster_id.as_deref(),
        "channel:read:ads",
        true,
    ) {
        Ok(b) => b,
        Err((status, message)) => return with_budget_headers(twitch_error(status, &message)),
    };
    let mut s = lock(&state);
    let format = s.ad_time_format;
    let ads = s.ads.entry(broadcaster).or_default();
    let schedule = &ads.schedule;
    // Twitch: next and last ad are empty while the channel is not live.
    let (next, last) = if ads.live {
        (schedule.next_ad_at, schedule.last_ad_at)
    } else {
        (None, None)
    };
    with_budget_headers(
        Json(json!({ "data": [{
            "snooze_count": ad_count_json(format, schedule.snooze_count),
            "snooze_refresh_at": ad_time_json(format, schedule.snooze_refresh_at),
            "next_ad_at": ad_time_json(format, next),
            "duration": ad_count_json(format, schedule.duration),
            "last_ad_at": ad_time_json(format, last),
            "preroll_free_time": ad_count_json(format, schedule.preroll_free_time),
        }]}))
        .into_response(),
    )
}

async fn snooze_next_ad(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<BroadcasterQuery>,
) -> Response {
    with_budget_headers(snooze(&state, &headers, q.broadcaster_id.as_deref()))
}

fn snooze(state: &Shared, headers: &HeaderMap, broadcaster_id: Option<&str>) -> Response {
    let broadcaster =
        match ads_broadcaster(state, headers, broadcaster_id, "channel:manage:ads", false) {
            Ok(b) => b,
            Err((status, message)) => return twitch_error(status, &message),
        };
    let now = Utc::now();
    let mut s = lock(state);
    let format = s.ad_time_format;
    let ads = s.ads.entry(broadcaster).or_default();
    if !ads.live {
        return twitch_error(400, "The channel is not live");
    }
    let Some(next) = ads.schedule.next_ad_at else {
        return twitch_error(400, "The channel has no ad scheduled");
    };
    if ads.schedule.snooze_count == 0 {
        return twitch_error(429, "The channel has no snoozes left");
    }
    let schedule = &mut ads.schedule;
    schedule.snooze_count -= 1;
    schedule.next_ad_at = Some(next + delta(SNOOZE_DELAY));
    schedule
        .snooze_refresh_at
        .get_or_insert(now + delta(SNOOZE_REFRESH));
    Json(json!({ "data": [{
        "snooze_count": ad_count_json(format, schedule.snooze_count),
        "snooze_refresh_at": ad_time_json(format, schedule.snooze_refresh_at),
        "next_ad_at": ad_time_json(format, schedule.next_ad_at),
    }]}))
    .into_response()
}

async fn start_commercial(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (response, event) = commercial(&state, &headers, &body);
    if let Some(event) = event {
        // Twitch announces the break on EventSub on its own time, not within the reply.
        let sender = state.clone();
        let task = tokio::spawn(async move {
            emit(&sender, AD_BREAK_BEGIN, event).await;
        });
        lock(&state).background.push(task);
    }
    with_budget_headers(response)
}

/// The reply, and the `channel.ad_break.begin` event when a commercial started.
fn commercial(state: &Shared, headers: &HeaderMap, body: &[u8]) -> (Response, Option<Value>) {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return (twitch_error(400, "malformed JSON body"), None);
    };
    let broadcaster = match ads_broadcaster(
        state,
        headers,
        request["broadcaster_id"].as_str(),
        "channel:edit:commercial",
        false,
    ) {
        Ok(b) => b,
        Err((status, message)) => return (twitch_error(status, &message), None),
    };
    let length = match &request["length"] {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    let Some(length) = length.filter(|l| *l > 0) else {
        return (
            twitch_error(400, "Missing required parameter \"length\""),
            None,
        );
    };
    // Twitch runs a longer request as 180 seconds.
    let length = length.min(180) as u32;
    let now = Utc::now();
    let mut s = lock(state);
    let ads = s.ads.entry(broadcaster.clone()).or_default();
    if !ads.live {
        return (
            twitch_error(
                400,
                "To start a commercial, the broadcaster must be streaming live.",
            ),
            None,
        );
    }
    if let Some(until) = ads.cooldown_until.filter(|until| *until > now) {
        let left = (until - now).num_seconds() + 1;
        return (
            twitch_error(
                429,
                &format!(
                    "The broadcaster may not run another commercial until the cooldown period expires ({left} s)"
                ),
            ),
            None,
        );
    }
    let retry_after = COMMERCIAL_COOLDOWN.as_secs().max(u64::from(length));
    ads.cooldown_until = Some(now + TimeDelta::seconds(retry_after as i64));
    let event = run_ad_break(&mut s, &broadcaster, &broadcaster, length, false);
    let reply = Json(json!({ "data": [{
        "length": length,
        "message": "",
        "retry_after": retry_after,
    }]}))
    .into_response();
    (reply, Some(event))
}

// ---------------------------------------------------------------------------------------------
// EventSub WebSocket

#[derive(Deserialize)]
struct WsQuery {
    keepalive_timeout_seconds: Option<u64>,
    reconnect: Option<String>,
}

async fn websocket(
    State(state): State<Shared>,
    Query(q): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let resume = match &q.reconnect {
        Some(token) => match lock(&state).reconnect_tokens.remove(token) {
            Some(session_id) => Some(session_id),
            None => return twitch_error(400, "unknown reconnect token"),
        },
        None => None,
    };
    let keepalive = match q.keepalive_timeout_seconds {
        Some(k) if (1..=600).contains(&k) => k,
        Some(_) => return twitch_error(400, "keepalive_timeout_seconds must be 10-600"),
        None => lock(&state).default_keepalive_secs,
    };
    upgrade.on_upgrade(move |socket| serve_session(state, socket, keepalive, resume))
}

fn welcome(session_id: &str, keepalive_secs: u64, connected_at: &str) -> String {
    json!({
        "metadata": {
            "message_id": uuid(),
            "message_type": "session_welcome",
            "message_timestamp": now_rfc3339(),
        },
        "payload": { "session": {
            "id": session_id,
            "status": "connected",
            "connected_at": connected_at,
            "keepalive_timeout_seconds": keepalive_secs,
            "reconnect_url": null,
            "recovery_url": null,
        }},
    })
    .to_string()
}

/// One WebSocket connection: a writer fed by the session's channel (welcome first), keepalives
/// when idle, the 4003 rule for a session left without subscriptions.
async fn serve_session(state: Shared, socket: WebSocket, keepalive: u64, resume: Option<String>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let (session_id, keepalive_secs, check_unused) = {
        let mut s = lock(&state);
        match resume {
            Some(id) => {
                let Some(session) = s.sessions.get_mut(&id) else {
                    return;
                };
                // The switch: the welcome goes first on the new connection, then everything
                // sent afterwards; the old connection is closed after what was queued on it.
                let _ = tx.send(Outbound::Text(welcome(
                    &id,
                    session.keepalive_secs,
                    &session.connected_at,
                )));
                let old = std::mem::replace(&mut session.tx, tx.clone());
                let _ = old.send(Outbound::Close(1000, "reconnected".into()));
                (id, session.keepalive_secs, false)
            }
            None => {
                let id = format!("AQoQ{}", random_id(24));
                let connected_at = now_rfc3339();
                let _ = tx.send(Outbound::Text(welcome(&id, keepalive, &connected_at)));
                s.sessions.insert(
                    id.clone(),
                    WsSession {
                        tx: tx.clone(),
                        keepalive_secs: keepalive,
                        connected_at,
                    },
                );
                (id, keepalive, true)
            }
        }
    };
    let keepalive = Duration::from_secs(keepalive_secs);
    // Twitch sends a keepalive before the client's window runs out.
    let keepalive_every = keepalive.mul_f64(0.75);
    let unused_deadline = tokio::time::Instant::now() + keepalive;
    let mut check_unused = check_unused;
    let mut last_sent = tokio::time::Instant::now();
    let (mut sink, mut stream) = socket.split();
    let mut close_code: Option<u16> = None;
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Text(text)) => {
                    let delay = lock(&state).ws_send_delay;
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                    last_sent = tokio::time::Instant::now();
                }
                Some(Outbound::Close(code, reason)) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    close_code = Some(code);
                    break;
                }
                None => break,
            },
            _ = tokio::time::sleep_until(last_sent + keepalive_every) => {
                if !lock(&state).keepalives_paused {
                    let message = json!({
                        "metadata": {
                            "message_id": uuid(),
                            "message_type": "session_keepalive",
                            "message_timestamp": now_rfc3339(),
                        },
                        "payload": {},
                    });
                    if sink.send(Message::Text(message.to_string().into())).await.is_err() {
                        break;
                    }
                }
                last_sent = tokio::time::Instant::now();
            },
            _ = tokio::time::sleep_until(unused_deadline), if check_unused => {
                check_unused = false;
                let used = lock(&state).subs.iter().any(|x| x.session_id.as_deref() == Some(session_id.as_str()));
                if !used {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 4003, reason: "connection unused".into() }))).await;
                    close_code = Some(4003);
                    break;
                }
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    // Twitch allows no inbound traffic besides pongs.
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 4001, reason: "client sent inbound traffic".into() }))).await;
                    close_code = Some(4001);
                    break;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = sink.close().await;
    // The session ends with this connection unless it moved to a newer one.
    let mut s = lock(&state);
    let current = s
        .sessions
        .get(&session_id)
        .is_some_and(|session| session.tx.same_channel(&tx));
    if current {
        s.sessions.remove(&session_id);
        let status = match close_code {
            Some(4003) => "websocket_connection_unused",
            Some(4001) => "websocket_received_inbound_traffic",
            _ => "websocket_disconnected",
        };
        let now = now_rfc3339();
        for sub in s
            .subs
            .iter_mut()
            .filter(|x| x.session_id.as_deref() == Some(session_id.as_str()))
        {
            sub.status = status.into();
            sub.disconnected_at = Some(now.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_reference_vector() {
        // next-capabilities 2.1 (anchor twitch_lambda/src/twitch.rs, recomputed with Python hmac).
        assert_eq!(
            sign(
                "test-secret-key",
                "test-message-id-123",
                "2024-01-01T00:00:00Z",
                br#"{"test":"data"}"#
            ),
            "sha256=b257174013e15a2639799213400806fa60814be8aa347dfd44c6d24e530d3f3a"
        );
        assert_eq!(
            sign(
                "test-secret-key",
                "test-message-id-123",
                "2024-01-01T00:00:00Z",
                b""
            ),
            "sha256=ec31b9690e6b4a416f3d716caef67e06c9342c526d47c2594945ebaf92e2837a"
        );
    }

    #[test]
    fn fragments_split_text_and_emotes() {
        let emotes = vec![("Kappa".to_string(), "25".to_string())];
        let f = fragments("hi Kappa there Kappa", &emotes);
        let kinds: Vec<&str> = f.iter().map(|x| x["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["text", "emote", "text", "emote"]);
        assert_eq!(f[0]["text"], "hi ");
        assert_eq!(f[1]["emote"]["id"], "25");
        assert_eq!(f[2]["text"], " there ");
        let joined: String = f.iter().map(|x| x["text"].as_str().unwrap()).collect();
        assert_eq!(joined, "hi Kappa there Kappa");
    }

    #[test]
    fn uuids_look_like_uuids() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
    }

    #[test]
    fn conditions_match_event_fields() {
        let condition = json!({"broadcaster_user_id": "1", "user_id": "2"});
        assert!(condition_matches(
            &condition,
            &json!({"broadcaster_user_id": "1", "chatter_user_id": "9"})
        ));
        assert!(!condition_matches(
            &condition,
            &json!({"broadcaster_user_id": "3"})
        ));
    }
}
