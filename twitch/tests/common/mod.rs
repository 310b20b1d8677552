//! Shared setup: a fake Twitch with a registered broadcaster, the browser side of the consent
//! flow, and a webhook receiver that checks every message independently of the crate (HMAC with
//! `hmac` + `sha2` directly, the 10-minute freshness rule, dispatch on the message-type header).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use gt_twitch::fake::FakeTwitch;
use gt_twitch::{OAuthClient, TwitchConfig, TwitchTokens, authorization_url};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/twitch/callback";
pub const BROADCASTER_ID: &str = "141981764";
pub const BROADCASTER_LOGIN: &str = "twitchdev";
/// What chat capture asks for.
pub const CHAT_SCOPES: &[&str] = &["user:read:chat", "user:bot", "channel:bot"];
pub const WEBHOOK_SECRET: &str = "s3cret-of-twenty-chars";

/// A fake with the broadcaster registered and approving the consent.
pub async fn fake() -> FakeTwitch {
    let fake = FakeTwitch::start().await;
    fake.add_user(BROADCASTER_ID, BROADCASTER_LOGIN);
    fake.approve_as(BROADCASTER_LOGIN);
    fake
}

/// Follows the consent URL as a browser would; returns the callback's query.
pub async fn consent(
    config: &TwitchConfig,
    scopes: &[&str],
    state: &str,
) -> HashMap<String, String> {
    let url = authorization_url(config, REDIRECT_URI, scopes, state).unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = browser.get(url).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 302, "{:?}", reply.text().await);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
    location.query_pairs().into_owned().collect()
}

/// The whole connect: consent, then code exchange.
pub async fn connect(config: &TwitchConfig, scopes: &[&str]) -> TwitchTokens {
    let query = consent(config, scopes, "csrf-state").await;
    assert_eq!(query["state"], "csrf-state");
    OAuthClient::new(config.clone())
        .unwrap()
        .exchange_code(&query["code"], REDIRECT_URI)
        .await
        .unwrap()
}

/// How the test receiver answers the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeAnswer {
    /// What Twitch requires: 200, `text/plain`, the raw challenge.
    TextPlain,
    /// A common mistake: 200 with `{"challenge": "..."}` as JSON.
    Json,
}

/// One message the receiver got, and its judgement of it.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub message_type: String,
    pub retry: String,
    pub timestamp: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// What it answered.
    pub answered: u16,
    /// Why it refused the message, if it did.
    pub refused: Option<&'static str>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub struct ReceiverState {
    pub secret: String,
    pub challenge: Mutex<ChallengeAnswer>,
    /// Answer 500 to this many notifications before accepting.
    pub fail_next: AtomicU32,
    /// Sleep this long before answering notifications.
    pub delay: Mutex<Duration>,
    pub received: Mutex<Vec<Received>>,
}

/// A webhook callback served on 127.0.0.1 that verifies like a careful receiver.
pub struct Receiver {
    pub url: String,
    pub state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    pub async fn start(secret: &str) -> Receiver {
        let state = Arc::new(ReceiverState {
            secret: secret.to_string(),
            challenge: Mutex::new(ChallengeAnswer::TextPlain),
            fail_next: AtomicU32::new(0),
            delay: Mutex::new(Duration::ZERO),
            received: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .route("/eventsub", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/eventsub", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Receiver { url, state, server }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Accepted notifications (valid, fresh).
    pub fn notifications(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.message_type == "notification" && r.refused.is_none())
            .collect()
    }

    pub fn set_challenge_answer(&self, answer: ChallengeAnswer) {
        *self.state.challenge.lock().unwrap() = answer;
    }
}

/// `sha256=` + HMAC-SHA256(secret, id ‖ timestamp ‖ body), computed here without the crate.
pub fn independent_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let all: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let id = get("twitch-eventsub-message-id").unwrap_or_default();
    let timestamp = get("twitch-eventsub-message-timestamp").unwrap_or_default();
    let message_type = get("twitch-eventsub-message-type").unwrap_or_default();
    let signature = get("twitch-eventsub-message-signature");
    let refused = match signature {
        None => Some("missing signature"),
        Some(sig) if sig != independent_signature(&state.secret, &id, &timestamp, &body) => {
            Some("bad signature")
        }
        Some(_) => match DateTime::parse_from_rfc3339(&timestamp) {
            Err(_) => Some("bad timestamp"),
            Ok(at)
                if (Utc::now() - at.with_timezone(&Utc)).abs() > chrono::Duration::minutes(10) =>
            {
                Some("stale or future timestamp")
            }
            Ok(_) => None,
        },
    };
    let (answered, response) = if refused.is_some() {
        (
            403,
            (StatusCode::FORBIDDEN, "Invalid signature").into_response(),
        )
    } else {
        match message_type.as_str() {
            "webhook_callback_verification" => {
                let challenge =
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["challenge"]
                        .as_str()
                        .unwrap()
                        .to_string();
                let answer = *state.challenge.lock().unwrap();
                let response = match answer {
                    ChallengeAnswer::TextPlain => {
                        ([(header::CONTENT_TYPE, "text/plain")], challenge).into_response()
                    }
                    ChallengeAnswer::Json => {
                        axum::Json(serde_json::json!({ "challenge": challenge })).into_response()
                    }
                };
                (200, response)
            }
            "notification" => {
                let delay = *state.delay.lock().unwrap();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let failing = state
                    .fail_next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    (500, StatusCode::INTERNAL_SERVER_ERROR.into_response())
                } else {
                    (204, StatusCode::NO_CONTENT.into_response())
                }
            }
            "revocation" => (204, StatusCode::NO_CONTENT.into_response()),
            _ => (400, StatusCode::BAD_REQUEST.into_response()),
        }
    };
    state.received.lock().unwrap().push(Received {
        message_id: id,
        message_type,
        retry: get("twitch-eventsub-message-retry").unwrap_or_default(),
        timestamp,
        headers: all,
        body: body.to_vec(),
        answered,
        refused,
    });
    response
}
