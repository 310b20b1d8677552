//! Twitch end to end against a local server that speaks Helix, OAuth and EventSub (webhook
//! sender and WebSocket server) with fault injection: the webhook's rules, a burst with
//! redeliveries across an API killed mid-burst, connecting Twitch, ChatCapture's subscriptions
//! and revocations, the WebSocket transport, and chat bursts becoming chapters.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gt_auth::token_box::{TWITCH_TOKENS, TokenKey};
use gt_tests::{ALICE, AppOptions, BOB, TestApp, free_port};
use gt_twitch::app::TwitchApp;
use gt_twitch::fake::{DeliveryPolicy, FakeTwitch, MessageType as SentType, WebhookFault};
use gt_twitch::helix::{HelixClient, SubscriptionRequest, SubscriptionStatus, Transport};
use gt_twitch::oauth::{OAuthClient, TwitchTokens};
use serde_json::{Value, json};

const TOKEN_KEY: &str = "e2e-token-key-0123456789abcdef-0123456789";
const SECRET: &str = "e2e-eventsub-secret-0123456789";
const REDIRECT: &str = "http://127.0.0.1:5173/twitch/callback";
const BACK: &str = "http://127.0.0.1:5173/profile";
const FE_SCOPES: [&str; 6] = [
    "channel:manage:broadcast",
    "channel:edit:commercial",
    "channel:read:ads",
    "channel:manage:ads",
    "user:read:chat",
    "user:bot",
];
/// Alice's and Bob's Twitch logins; their ids are new in every test, because ChatCapture's
/// workflow id names the broadcaster and all tests share one Temporal namespace.
pub(crate) const ALICE_LOGIN: &str = "alice_streams";
const BOB_LOGIN: &str = "bob_plays";

/// The test's Twitch account ids.
pub(crate) struct Accounts {
    pub(crate) alice: String,
    pub(crate) bob: String,
}

fn twitch_app(fake: &FakeTwitch, callback: Option<String>) -> TwitchApp {
    TwitchApp::new(
        fake.config(),
        REDIRECT.into(),
        TokenKey::derive(TOKEN_KEY.as_bytes(), TWITCH_TOKENS).unwrap(),
        SECRET.into(),
        callback,
    )
}

pub(crate) async fn fake() -> (Arc<FakeTwitch>, Accounts) {
    let fake = FakeTwitch::start().await;
    let n = uuid::Uuid::new_v4().as_u128() % 1_000_000_000;
    let tw = Accounts {
        alice: format!("1{n:09}"),
        bob: format!("2{n:09}"),
    };
    fake.add_user(&tw.alice, ALICE_LOGIN);
    fake.add_user(&tw.bob, BOB_LOGIN);
    (Arc::new(fake), tw)
}

/// Polls `check` (every 100 ms) until it gives a value, for at most `secs`.
pub(crate) async fn eventually<T>(what: &str, secs: u64, check: impl AsyncFn() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stack with Twitch (the webhook on the API's own port), Alice connected as
/// `ALICE_LOGIN` and chat capture on, once the `kind` subscription is enabled at Twitch.
pub(crate) async fn capturing(fake: &FakeTwitch, opts: AppOptions, kind: &str) -> TestApp {
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/eventsub/webhook");
    let app = TestApp::start_with(AppOptions {
        twitch: Some(twitch_app(fake, Some(callback))),
        api_port: Some(port),
        ..opts
    })
    .await
    .unwrap();
    connect_twitch(&app, fake, ALICE, ALICE_LOGIN).await;
    let (s, b) = app.post(ALICE, "/eventsub/chat/subscribe", json!({})).await;
    assert_eq!(s, 200, "{b}");
    eventually(&format!("{kind} subscribed"), 60, async || {
        fake.subscriptions()
            .iter()
            .any(|s| s["type"] == kind && s["status"] == "enabled")
            .then_some(())
    })
    .await;
    app
}

/// The consent trip as the browser makes it: our URL → the fake's consent (approving as
/// `login`) → the redirect's code and state.
async fn consent(app: &TestApp, fake: &FakeTwitch, user: &str, login: &str) -> (String, String) {
    fake.approve_as(login);
    let (s, b) = app
        .post(
            user,
            "/auth/twitch/url",
            json!({"scopes": FE_SCOPES, "redirect_uri": BACK}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let url = url::Url::parse(b["url"].as_str().unwrap()).unwrap();
    let scope = url
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.to_string())
        .unwrap();
    for needed in [
        "user:read:chat",
        "user:bot",
        "channel:bot",
        "channel:read:ads",
    ] {
        assert!(scope.split(' ').any(|s| s == needed), "{needed} in {scope}");
    }
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 302);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    (param("code"), param("state"))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The front end's OAuth callback page posting what Twitch's redirect carried.
async fn callback(app: &TestApp, user: &str, code: &str, state: &str) -> (u16, Value) {
    app.post(
        user,
        "/auth/twitch/callback",
        json!({"code": code, "state": state, "scope": []}),
    )
    .await
}

async fn connect_twitch(app: &TestApp, fake: &FakeTwitch, user: &str, login: &str) {
    let (code, state) = consent(app, fake, user, login).await;
    let (s, b) = callback(app, user, &code, &state).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["url"], BACK);
}

async fn stored_tokens(app: &TestApp, user: &str) -> TwitchTokens {
    let sealed: String = sqlx::query_scalar(
        "SELECT sealed_tokens FROM oauth_connections WHERE user_id = $1 AND provider = 'twitch'",
    )
    .bind(user)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let key = TokenKey::derive(TOKEN_KEY.as_bytes(), TWITCH_TOKENS).unwrap();
    gt_auth::token_box::open(&key, &sealed).unwrap()
}

async fn chat_count(app: &TestApp, user: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE user_id = $1")
        .bind(user)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

/// A `channel.chat.message` webhook subscription to `callback`, created at the fake with the
/// app token (the fake performs the challenge handshake against our API before answering).
async fn subscribe_webhook(fake: &FakeTwitch, broadcaster: &str, callback: &str) -> String {
    subscribe_webhook_to(fake, "channel.chat.message", broadcaster, callback).await
}

async fn subscribe_webhook_to(
    fake: &FakeTwitch,
    kind: &str,
    broadcaster: &str,
    callback: &str,
) -> String {
    let oauth = OAuthClient::new(fake.config()).unwrap();
    let token = oauth.app_token().await.unwrap();
    let helix = HelixClient::new(fake.config(), token.access_token).unwrap();
    let sub = helix
        .create_subscription(&SubscriptionRequest {
            kind: kind.into(),
            version: "1".into(),
            condition: json!({"broadcaster_user_id": broadcaster, "user_id": broadcaster}),
            transport: Transport::Webhook {
                callback: callback.into(),
                secret: SECRET.into(),
            },
        })
        .await
        .unwrap();
    fake.settle().await;
    sub.id
}

/// Every webhook rule, each with one delivery attempt so a refused message stays refused.
#[tokio::test]
async fn the_webhook_checks_signature_freshness_and_duplicates_and_stores_only_valid_messages() {
    let (fake, tw) = fake().await;
    let app = TestApp::start_with(AppOptions {
        twitch: Some(twitch_app(&fake, None)),
        ..AppOptions::api_only()
    })
    .await
    .unwrap();
    connect_twitch(&app, &fake, ALICE, ALICE_LOGIN).await;
    let callback = format!("{}/eventsub/webhook", app.base);
    let sub = subscribe_webhook(&fake, &tw.alice, &callback).await;

    // The challenge: answered 200 with the raw string as text/plain, so Twitch enabled it.
    assert_eq!(fake.subscription_status(&sub).as_deref(), Some("enabled"));
    let handshake = fake
        .deliveries()
        .into_iter()
        .find(|d| d.message_type == SentType::WebhookCallbackVerification)
        .unwrap();
    let challenge: Value = serde_json::from_str(&handshake.sent_body).unwrap();
    assert_eq!(handshake.status, Some(200));
    assert_eq!(handshake.body, challenge["challenge"].as_str().unwrap());
    assert!(
        handshake
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("text/plain")
    );

    fake.set_delivery_policy(DeliveryPolicy {
        attempts: 1,
        ..DeliveryPolicy::default()
    });
    let last = || async { fake.deliveries().last().cloned().unwrap() };

    // Valid: stored, with the signed header's time (not ours) as the message time.
    let id = fake.send_chat(&tw.alice, "viewer1", "hello Kappa").await;
    let d = last().await;
    assert_eq!(d.status, Some(204), "{d:?}");
    let (message, at, emotes): (String, chrono::DateTime<chrono::Utc>, i64) = sqlx::query_as(
        "SELECT message, \"timestamp\", emote_count FROM chat_messages WHERE id = $1 AND user_id = $2",
    )
    .bind(&id)
    .bind(ALICE)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(message, "hello Kappa");
    assert_eq!(emotes, 1);
    // Postgres keeps microseconds; the header has nanoseconds.
    let sent_at = chrono::DateTime::parse_from_rfc3339(&d.timestamp).unwrap();
    assert!(
        (at - sent_at.with_timezone(&chrono::Utc))
            .num_microseconds()
            .unwrap()
            .abs()
            < 1,
        "{at} vs {}",
        d.timestamp
    );

    // Refused, nothing stored: each fault spoils the next delivery only.
    let refusals: Vec<(WebhookFault, u16)> = vec![
        (WebhookFault::BadSignature, 403),
        (WebhookFault::ReserializedBody, 403),
        (
            WebhookFault::ShiftTimestamp {
                by: chrono::TimeDelta::minutes(-11),
            },
            403,
        ),
        (
            WebhookFault::ShiftTimestamp {
                by: chrono::TimeDelta::minutes(5),
            },
            403,
        ),
        (
            WebhookFault::OmitHeader("Twitch-Eventsub-Message-Signature".into()),
            400,
        ),
        (
            WebhookFault::OmitHeader("Twitch-Eventsub-Message-Timestamp".into()),
            400,
        ),
        (
            WebhookFault::OmitHeader("Twitch-Eventsub-Message-Id".into()),
            400,
        ),
        (
            WebhookFault::OmitHeader("Twitch-Eventsub-Message-Type".into()),
            400,
        ),
    ];
    for (fault, status) in refusals {
        let before = chat_count(&app, ALICE).await;
        fake.push_webhook_fault(fault.clone());
        fake.send_chat(&tw.alice, "viewer2", "spoiled").await;
        let d = last().await;
        assert_eq!(d.status, Some(status), "{fault:?}: {d:?}");
        assert_eq!(
            chat_count(&app, ALICE).await,
            before,
            "{fault:?} stored something"
        );
    }

    // A timestamp a little in the past (delivery retried by Twitch) is fine.
    fake.push_webhook_fault(WebhookFault::ShiftTimestamp {
        by: chrono::TimeDelta::minutes(-9),
    });
    fake.send_chat(&tw.alice, "viewer3", "late but fine").await;
    assert_eq!(last().await.status, Some(204));

    // Duplicates: the same message id three times → 2xx each, one row.
    let before = chat_count(&app, ALICE).await;
    fake.push_webhook_fault(WebhookFault::Redeliver { extra: 2 });
    let dup = fake.send_chat(&tw.alice, "viewer4", "only once").await;
    let sent: Vec<_> = fake
        .deliveries()
        .into_iter()
        .filter(|d| d.sent_body.contains(&dup))
        .collect();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|d| d.status == Some(204)), "{sent:?}");
    assert_eq!(chat_count(&app, ALICE).await, before + 1);

    // Moderation: a deleted message and a timed-out chatter's messages are marked deleted (by
    // the event processor, after the 204), the rest stays.
    for kind in [
        "channel.chat.message_delete",
        "channel.chat.clear_user_messages",
    ] {
        subscribe_webhook_to(&fake, kind, &tw.alice, &callback).await;
    }
    let keep = fake.send_chat(&tw.alice, "nice_viewer", "keep me").await;
    let gone = fake.send_chat(&tw.alice, "rude_viewer", "delete me").await;
    let spam = fake.send_chat(&tw.alice, "spammer", "spam one").await;
    fake.send_chat(&tw.alice, "spammer", "spam two").await;
    let spammer_id: String =
        sqlx::query_scalar("SELECT sender_id FROM chat_messages WHERE id = $1")
            .bind(&spam)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    fake.send_event(
        "channel.chat.message_delete",
        json!({"broadcaster_user_id": &tw.alice, "broadcaster_user_login": ALICE_LOGIN,
               "broadcaster_user_name": "Alice", "target_user_id": "x", "target_user_login": "rude_viewer",
               "target_user_name": "rude_viewer", "message_id": gone}),
    )
    .await;
    fake.send_event(
        "channel.chat.clear_user_messages",
        json!({"broadcaster_user_id": &tw.alice, "broadcaster_user_login": ALICE_LOGIN,
               "broadcaster_user_name": "Alice", "target_user_id": spammer_id,
               "target_user_login": "spammer", "target_user_name": "spammer"}),
    )
    .await;
    let deleted: Vec<String> = eventually("moderation applied", 30, async || {
        let d: Vec<String> = sqlx::query_scalar(
            "SELECT message FROM chat_messages WHERE user_id = $1 AND deleted ORDER BY message",
        )
        .bind(ALICE)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
        (d.len() == 3).then_some(d)
    })
    .await;
    assert_eq!(deleted, ["delete me", "spam one", "spam two"]);
    let kept: bool = sqlx::query_scalar("SELECT NOT deleted FROM chat_messages WHERE id = $1")
        .bind(&keep)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(kept);
    // The front end's chat list filters: by user name, by time.
    let filter = |f: Value| {
        format!(
            "/records/chat_messages?filter={}",
            urlencode(&f.to_string())
        )
    };
    let (s, b) = app
        .get(ALICE, &filter(json!({"user_name": "nice_viewer"})))
        .await;
    assert_eq!(s, 200, "{b}");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{b}");
    assert_eq!(items[0]["message"], "keep me");
    let later = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let (_, b) = app
        .get(ALICE, &filter(json!({"timestamp__gte": later})))
        .await;
    assert_eq!(b["items"], json!([]), "{b}");

    // Bob cannot see Alice's chat through the records API.
    let (s, b) = app.get(BOB, "/records/chat_messages").await;
    assert_eq!(s, 200);
    assert_eq!(b["items"].as_array().unwrap().len(), 0, "{b}");
    let (s, b) = app.get(ALICE, "/records/chat_messages").await;
    assert_eq!(s, 200);
    assert!(!b["items"].as_array().unwrap().is_empty(), "{b}");

    // Revocations of each kind: 2xx, recorded for the owner.
    let mut current = Some(sub);
    for status in [
        SubscriptionStatus::NotificationFailuresExceeded,
        SubscriptionStatus::VersionRemoved,
        SubscriptionStatus::UserRemoved,
        SubscriptionStatus::AuthorizationRevoked,
    ] {
        let sub = match current.take() {
            Some(sub) => sub,
            None => subscribe_webhook(&fake, &tw.alice, &callback).await,
        };
        let reason = status.as_str().to_string();
        fake.revoke_subscription(&sub, status).await;
        let d = last().await;
        assert_eq!(d.message_type, SentType::Revocation);
        assert_eq!(d.status, Some(204), "{d:?}");
        let recorded = eventually("the revocation recorded", 20, async || {
            let r: Option<String> = sqlx::query_scalar(
                "SELECT last_revocation FROM twitch_channels WHERE user_id = $1",
            )
            .bind(ALICE)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
            r.filter(|r| *r == reason)
        })
        .await;
        assert_eq!(recorded, reason);
    }
    // A revocation alone says nothing about the user's tokens (they still work here):
    // whether to reconnect is decided by validating them (see the ChatCapture test).
    let lost: bool =
        sqlx::query_scalar("SELECT token_lost FROM twitch_channels WHERE user_id = $1")
            .bind(ALICE)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(!lost);

    // Not Twitch at all: no signature headers → 400; a body that is not JSON but signed → 400.
    let (s, _) = app
        .call(
            None,
            reqwest::Method::POST,
            "/eventsub/webhook",
            Some(json!({"x": 1})),
        )
        .await;
    assert_eq!(s, 400);
    app.stop().await;
}

/// 10 000 chat messages, a tenth of them delivered twice, against the API binary, which is
/// killed (SIGKILL) halfway and started again: every message is stored exactly once.
#[tokio::test]
async fn a_burst_with_redeliveries_survives_an_api_killed_mid_burst() {
    const MESSAGES: usize = 10_000;
    let (fake, tw) = fake().await;
    let app = TestApp::start_with(AppOptions {
        twitch: Some(twitch_app(&fake, None)),
        ..AppOptions::api_only()
    })
    .await
    .unwrap();
    connect_twitch(&app, &fake, ALICE, ALICE_LOGIN).await;

    let port = free_port();
    let twitch_env = |cmd: &mut std::process::Command| {
        let c = fake.config();
        cmd.env("GT_TWITCH_CLIENT_ID", c.client_id)
            .env("GT_TWITCH_CLIENT_SECRET", c.client_secret)
            .env("GT_TWITCH_REDIRECT_URL", REDIRECT)
            .env("GT_TWITCH_AUTH_BASE", &c.auth_base)
            .env("GT_TWITCH_HELIX_BASE", &c.helix_base)
            .env("GT_EVENTSUB_SECRET", SECRET)
            .env("GT_TOKEN_KEY", TOKEN_KEY);
    };
    let start_api = || {
        let mut cmd = app.api_process(port);
        twitch_env(&mut cmd);
        cmd.spawn().expect("starting gt-api")
    };
    let api_base = format!("http://127.0.0.1:{port}");
    let ready = async || {
        eventually("gt-api ready", 60, async || {
            let r = reqwest::get(format!("{api_base}/healthz")).await.ok()?;
            r.status().is_success().then_some(())
        })
        .await
    };
    let mut api = start_api();
    ready().await;
    subscribe_webhook(&fake, &tw.alice, &format!("{api_base}/eventsub/webhook")).await;
    // Patient delivery, as Twitch retries: the API is down for a few seconds.
    fake.set_delivery_policy(DeliveryPolicy {
        attempts: 200,
        retry_delay: Duration::from_millis(100),
        response_timeout: Duration::from_secs(5),
        failures_before_revocation: 1_000_000,
    });

    let sender = {
        let fake = fake.clone();
        let broadcaster = tw.alice.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            futures::stream::iter(0..MESSAGES)
                .map(|i| {
                    let (fake, broadcaster) = (fake.clone(), broadcaster.clone());
                    async move {
                        fake.send_chat(
                            &broadcaster,
                            &format!("viewer{}", i % 500),
                            &format!("message {i}"),
                        )
                        .await
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<String>>()
                .await
        })
    };
    // Kill the API without warning once about half the burst has been acknowledged.
    eventually("half the burst delivered", 300, async || {
        (fake
            .deliveries()
            .iter()
            .filter(|d| d.acknowledged())
            .count()
            >= MESSAGES / 2)
            .then_some(())
    })
    .await;
    api.kill().unwrap();
    api.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    api = start_api();
    ready().await;
    let chat_ids = sender.await.unwrap();
    assert_eq!(chat_ids.len(), MESSAGES);

    // A tenth delivered again, as Twitch's at-least-once delivery does.
    let eventsub_ids: Vec<String> = fake
        .deliveries()
        .into_iter()
        .filter(|d| d.message_type == SentType::Notification && d.acknowledged())
        .map(|d| d.message_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        eventsub_ids.len(),
        MESSAGES,
        "every message acknowledged once at least"
    );
    {
        use futures::StreamExt;
        futures::stream::iter(eventsub_ids.iter().step_by(10))
            .for_each_concurrent(32, |id| {
                let fake = fake.clone();
                async move { fake.redeliver(id).await }
            })
            .await;
    }
    let unacknowledged: Vec<_> = fake
        .deliveries()
        .into_iter()
        .filter(|d| d.message_type == SentType::Notification)
        .filter(|d| {
            // A message counts as delivered when any attempt was acknowledged.
            !d.acknowledged()
        })
        .map(|d| d.message_id)
        .collect();
    let killed_attempts = unacknowledged.len();

    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM chat_messages WHERE user_id = $1")
        .bind(ALICE)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    let stored_set: HashSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), MESSAGES, "exactly once each");
    assert_eq!(stored_set.len(), MESSAGES);
    assert!(
        chat_ids.iter().all(|id| stored_set.contains(id)),
        "none lost"
    );
    let ids_kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM eventsub_messages WHERE subscription_type = 'channel.chat.message'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(ids_kept, MESSAGES as i64);
    eprintln!(
        "burst: {MESSAGES} messages, {} redeliveries, {killed_attempts} attempts failed while the API was down",
        eventsub_ids.len() / 10
    );
    api.kill().ok();
    api.wait().ok();
    app.stop().await;
}

/// Connecting Twitch: state bound to the user and single use, tokens sealed, refresh with
/// rotation, a refused refresh means "reconnect", one Twitch account per user, disconnect
/// revokes.
#[tokio::test]
async fn connecting_twitch_binds_state_rotates_refresh_tokens_and_asks_to_reconnect() {
    let (fake, tw) = fake().await;
    let app = TestApp::start_with(AppOptions {
        twitch: Some(twitch_app(&fake, None)),
        ..AppOptions::api_only()
    })
    .await
    .unwrap();
    // Not connected yet: the front end's "not connected" shape, not a 401.
    let (s, b) = app.get(ALICE, "/auth/twitch/token").await;
    assert_eq!((s, b["connected"].clone()), (200, json!(false)), "{b}");

    let (code, state) = consent(&app, &fake, ALICE, ALICE_LOGIN).await;
    // Another user's state, a forged state: refused, nothing used up.
    for (user, st) in [(BOB, state.as_str()), (ALICE, "forged")] {
        let (s, b) = callback(&app, user, &code, st).await;
        assert_eq!(s, 400, "{user} {st}: {b}");
    }
    let (s, b) = callback(&app, ALICE, &code, &state).await;
    assert_eq!(s, 200, "{b}");
    // Replayed: the state was used up.
    let (s, b) = callback(&app, ALICE, &code, &state).await;
    assert_eq!(s, 400, "replay: {b}");
    // Bad input: missing fields, wrong types.
    for bad in [
        json!({"code": "x"}),
        json!({"code": 1, "state": "s"}),
        json!([]),
    ] {
        let (s, _) = app.post(ALICE, "/auth/twitch/callback", bad.clone()).await;
        assert_eq!(s, 400, "{bad}");
    }
    let (s, b) = app
        .post(
            ALICE,
            "/auth/twitch/url",
            json!({"scopes": ["channel:moderate"], "redirect_uri": BACK}),
        )
        .await;
    assert_eq!(s, 400, "unknown scope: {b}");

    let (s, b) = app.get(ALICE, "/auth/twitch/token").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["broadcaster_id"], tw.alice.as_str());
    assert_eq!(b["login"], ALICE_LOGIN);
    let first = stored_tokens(&app, ALICE).await;
    assert_eq!(b["access_token"], first.access_token.as_str());
    let sealed: String = sqlx::query_scalar(
        "SELECT sealed_tokens FROM oauth_connections WHERE user_id = $1 AND provider = 'twitch'",
    )
    .bind(ALICE)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert!(!sealed.contains(&first.access_token) && !sealed.contains(&first.refresh_token));
    assert!(
        first.scopes.iter().any(|s| s == "channel:bot"),
        "{:?}",
        first.scopes
    );

    // Bob sees none of it; Bob cannot connect Alice's Twitch account.
    let (s, b) = app.get(BOB, "/auth/twitch/token").await;
    assert_eq!((s, b["connected"].clone()), (200, json!(false)), "{b}");
    let (code, state) = consent(&app, &fake, BOB, ALICE_LOGIN).await;
    let (s, b) = callback(&app, BOB, &code, &state).await;
    assert_eq!(s, 409, "{b}");

    // Twitch stops accepting the access token: refreshed, the rotated refresh token stored,
    // the old one dead at Twitch.
    fake.invalidate_access_tokens(&tw.alice);
    let (s, b) = app.get(ALICE, "/auth/twitch/token").await;
    assert_eq!(s, 200, "{b}");
    let second = stored_tokens(&app, ALICE).await;
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token, "rotated");
    assert_eq!(b["access_token"], second.access_token.as_str());
    let old = OAuthClient::new(fake.config())
        .unwrap()
        .refresh(&first.refresh_token)
        .await;
    assert!(
        matches!(old, Err(gt_twitch::oauth::TwitchError::Reauthorize(_))),
        "{old:?}"
    );

    // The refresh token refused too: "reconnect Twitch", and the tokens are gone.
    fake.invalidate_access_tokens(&tw.alice);
    fake.invalidate_refresh_tokens(&tw.alice);
    let (s, b) = app.get(ALICE, "/auth/twitch/token").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["connected"], false);
    assert_eq!(b["needs_reconnect"], true, "{b}");

    // Reconnect, then disconnect: the token is revoked at Twitch and forgotten here.
    connect_twitch(&app, &fake, ALICE, ALICE_LOGIN).await;
    let token = stored_tokens(&app, ALICE).await.access_token;
    let (s, b) = app.delete(ALICE, "/auth/twitch").await;
    assert_eq!(s, 200, "{b}");
    let validate = OAuthClient::new(fake.config())
        .unwrap()
        .validate(&token)
        .await;
    assert!(validate.is_err(), "revoked at Twitch: {validate:?}");
    let (s, b) = app.get(ALICE, "/auth/twitch/token").await;
    assert_eq!((s, b["connected"].clone()), (200, json!(false)), "{b}");
    app.stop().await;
}

/// The chat-capture switch: subscriptions created with the app token and verified by Twitch,
/// a revocation Twitch lets us repair resubscribes, a lost authorization waits for the user to
/// reconnect, a killed worker loses nothing, and Bob sees none of Alice's capture.
#[tokio::test]
async fn chat_capture_subscribes_repairs_revocations_and_waits_for_a_reconnect() {
    let (fake, tw) = fake().await;
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/eventsub/webhook");
    let app = TestApp::start_with(AppOptions {
        twitch: Some(twitch_app(&fake, Some(callback.clone()))),
        api_port: Some(port),
        gpu_worker: false,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let (s, b) = app.post(ALICE, "/eventsub/chat/subscribe", json!({})).await;
    assert_eq!(s, 400, "not connected yet: {b}");
    connect_twitch(&app, &fake, ALICE, ALICE_LOGIN).await;
    let (s, b) = app.post(ALICE, "/eventsub/chat/subscribe", json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["success"], true);

    let enabled_chat_subs = || {
        fake.subscriptions()
            .into_iter()
            .filter(|s| {
                s["type"] == "channel.chat.message"
                    && s["status"] == "enabled"
                    && s["transport"]["callback"] == callback.as_str()
            })
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let first = eventually("subscriptions created and verified", 60, async || {
        let subs = fake.subscriptions();
        let enabled = subs.iter().filter(|s| s["status"] == "enabled").count();
        (enabled == gt_twitch::eventsub::CHAT_CAPTURE_SUBSCRIPTIONS.len()).then(&enabled_chat_subs)
    })
    .await;
    assert_eq!(first.len(), 1);
    let (s, b) = app.get(ALICE, "/eventsub/chat/status").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["has_active_subscription"], true, "{b}");
    assert_eq!(b["source"], "twitch");
    let (s, b) = app.get(BOB, "/eventsub/chat/status").await;
    assert_eq!(s, 200);
    assert_eq!(b["has_active_subscription"], false);
    assert_eq!(b["subscriptions"], json!([]));
    let (s, _) = app.post(BOB, "/eventsub/chat/subscribe", json!({})).await;
    assert_eq!(s, 400, "Bob has no Twitch connected");

    // Chat flows while no worker runs: the webhook stores it without one; the run goes on
    // with the next worker.
    let mut app = app;
    app.stop_workers().await;
    let id = fake.send_chat(&tw.alice, "viewer", "hi").await;
    assert_eq!(chat_count(&app, ALICE).await, 1, "{id}");
    app.start_cpu_worker().unwrap();

    // Twitch gave up on our endpoint: ChatCapture subscribes again by itself.
    fake.revoke_subscription(&first[0], SubscriptionStatus::NotificationFailuresExceeded)
        .await;
    let second = eventually("a new chat subscription", 60, async || {
        let now = enabled_chat_subs();
        (now.len() == 1 && now[0] != first[0]).then_some(now)
    })
    .await;
    let (_, b) = app.get(ALICE, "/eventsub/chat/status").await;
    assert_eq!(
        b["capture"]["last_revocation"], "notification_failures_exceeded",
        "{b}"
    );

    // The user revoked our authorization: capture says so and waits for a reconnect.
    fake.revoke_authorization(&tw.alice).await;
    // (The status reads the connection before asking the run, so both are awaited.)
    eventually("capture waiting for a reconnect", 60, async || {
        let (_, b) = app.get(ALICE, "/eventsub/chat/status").await;
        (b["capture"]["workflow"]["state"] == "needs_reconnect"
            && b["capture"]["token_lost"] == true)
            .then_some(())
    })
    .await;
    connect_twitch(&app, &fake, ALICE, ALICE_LOGIN).await;
    eventually("capturing again after the reconnect", 60, async || {
        let (_, b) = app.get(ALICE, "/eventsub/chat/status").await;
        let again = enabled_chat_subs();
        (b["capture"]["workflow"]["state"] == "capturing"
            && b["has_active_subscription"] == true
            && again.iter().all(|s| *s != second[0]))
        .then_some(())
    })
    .await;

    // Turning capture off deletes the subscriptions and ends the run.
    let (s, b) = app.delete(ALICE, "/eventsub/chat/subscribe").await;
    assert_eq!(s, 200, "{b}");
    eventually("subscriptions deleted", 60, async || {
        fake.subscriptions()
            .iter()
            .all(|s| s["status"] != "enabled")
            .then_some(())
    })
    .await;
    let run = gt_types::chat_capture_workflow_id(ALICE, &tw.alice);
    let history = eventually("the capture run ended", 60, async || {
        let h = crate::ingest::fetch_history(&app, &run).await;
        h.to_string()
            .contains("WorkflowExecutionCompleted")
            .then_some(h)
    })
    .await;
    let events = history["events"].as_array().unwrap().len();
    assert!(events < 400, "a capture run stays small: {events} events");
    // `GT_RECORD_HISTORIES=dir ./gt test chat_capture_subscribes` saves it for replay tests.
    if let Some(dir) = std::env::var_os("GT_RECORD_HISTORIES") {
        let path = std::path::Path::new(&dir).join("chat_capture_v1_revocations.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&history).unwrap()).unwrap();
    }
    app.stop().await;
}

/// Without a public callback URL capture holds an EventSub WebSocket session from a worker:
/// it subscribes within the welcome's keepalive window, follows `session_reconnect` and stores
/// every message exactly once, deduplicated like the webhook.
#[tokio::test]
async fn the_websocket_transport_follows_session_reconnect_without_losing_messages() {
    let (fake, tw) = fake().await;
    let app = TestApp::start_with(AppOptions {
        twitch: Some(twitch_app(&fake, None)),
        gpu_worker: false,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    connect_twitch(&app, &fake, ALICE, ALICE_LOGIN).await;
    let (s, b) = app.post(ALICE, "/eventsub/chat/subscribe", json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["transport"], "websocket");
    eventually("websocket subscriptions", 60, async || {
        let subs = fake.subscriptions();
        (subs
            .iter()
            .filter(|s| s["status"] == "enabled" && s["transport"]["method"] == "websocket")
            .count()
            == gt_twitch::eventsub::CHAT_CAPTURE_SUBSCRIPTIONS.len())
        .then_some(())
    })
    .await;
    let mut sent = Vec::new();
    for i in 0..50 {
        sent.push(
            fake.send_chat(&tw.alice, "viewer", &format!("before {i}"))
                .await,
        );
    }
    fake.reconnect_sessions();
    for i in 0..50 {
        sent.push(
            fake.send_chat(&tw.alice, "viewer", &format!("around {i}"))
                .await,
        );
    }
    // The worker connected to the reconnect URL (a second WebSocket handshake).
    eventually("moved to the new connection", 30, async || {
        (fake
            .requests()
            .iter()
            .filter(|r| r.endpoint == gt_twitch::fake::Endpoint::WebSocket)
            .count()
            >= 2)
            .then_some(())
    })
    .await;
    for i in 0..50 {
        sent.push(
            fake.send_chat(&tw.alice, "viewer", &format!("after {i}"))
                .await,
        );
    }
    let stored = eventually("all 150 stored", 60, async || {
        let n = chat_count(&app, ALICE).await;
        (n >= 150).then_some(n)
    })
    .await;
    assert_eq!(stored, 150, "exactly once each");
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM chat_messages WHERE user_id = $1")
        .bind(ALICE)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    let ids: HashSet<String> = ids.into_iter().collect();
    assert!(sent.iter().all(|id| ids.contains(id)), "none lost");
    app.stop().await;
}

/// A Twitch stream from `stream.online` to `stream.offline`: the stream record is created with
/// Twitch's start time, chat captured meanwhile is aligned to it, and a burst of chat at a
/// known moment becomes a chat highlight there and a chapter of the proposed episode; the
/// editor gets the chat in stream time.
#[tokio::test]
async fn a_chat_burst_during_a_twitch_stream_becomes_a_highlight_and_a_chapter() {
    use gt_cli::media_gen::{RecordingSpec, SENTENCES, Segment, generate};
    const BURST_AT: f64 = 60.0;
    const LENGTH: f64 = 110.0;
    let (fake, tw) = fake().await;
    let app = capturing(&fake, AppOptions::default(), "stream.online").await;

    let twitch_stream = format!("9{}", &tw.alice[1..]);
    let record = format!("twitch-{twitch_stream}");
    // Went live LENGTH + 10 s ago (timestamps up to 10 minutes old are accepted).
    let started = chrono::Utc::now() - chrono::TimeDelta::seconds(LENGTH as i64 + 10);
    fake.send_event(
        "stream.online",
        json!({"id": twitch_stream, "broadcaster_user_id": &tw.alice,
               "broadcaster_user_login": ALICE_LOGIN, "broadcaster_user_name": "Alice",
               "type": "live", "started_at": started.to_rfc3339()}),
    )
    .await;
    let stream = eventually("the stream record", 30, async || {
        let (s, b) = app.get(ALICE, &format!("/records/streams/{record}")).await;
        (s == 200).then_some(b)
    })
    .await;
    assert_eq!(stream["stream_platform"], "twitch");
    assert_eq!(stream["stream_id"], twitch_stream.as_str());
    let prefix = stream["prefix"].as_str().unwrap().to_string();
    assert_eq!(prefix, started.format("%Y-%m-%d").to_string());
    let (s, _) = app.get(BOB, &format!("/records/streams/{record}")).await;
    assert_eq!(s, 404, "the stream is Alice's");

    // Chat at known stream times: a regular every 8 s, a burst of 25 chatters at BURST_AT.
    let mut plan: Vec<(f64, String, String)> = (0..(LENGTH as usize / 8))
        .map(|k| {
            (
                k as f64 * 8.0 + 1.0,
                format!("regular{}", k % 3),
                "nice play".to_string(),
            )
        })
        .collect();
    plan.extend((0..25).map(|k| {
        (
            BURST_AT + k as f64 * 0.2,
            format!("viewer{k}"),
            "PogChamp what a play".to_string(),
        )
    }));
    plan.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (at, who, text) in &plan {
        let when = started + chrono::TimeDelta::milliseconds((at * 1000.0) as i64);
        fake.push_webhook_fault(WebhookFault::ShiftTimestamp {
            by: when - chrono::Utc::now(),
        });
        fake.send_chat(&tw.alice, who, text).await;
    }
    fake.send_event(
        "stream.offline",
        json!({"broadcaster_user_id": &tw.alice, "broadcaster_user_login": ALICE_LOGIN,
               "broadcaster_user_name": "Alice"}),
    )
    .await;
    eventually(
        "the stream's duration set at stream.offline",
        30,
        async || {
            let (_, b) = app.get(ALICE, &format!("/records/streams/{record}")).await;
            b["duration"].as_f64().filter(|d| *d > LENGTH).map(|_| ())
        },
    )
    .await;

    // The recording OBS made, in the day's folder: talk all the way through.
    let mut segments = vec![Segment::Silence(1.0)];
    for sentence in SENTENCES.iter().cycle().take(14) {
        segments.push(Segment::Speech((*sentence).into()));
        segments.push(Segment::Silence(1.0));
    }
    let dir = app.recordings_of(ALICE).join(&prefix);
    let generated = generate(
        &RecordingSpec::mic(segments, Some((320, 180, 30))),
        &dir.join("live.mkv"),
    )
    .unwrap();
    assert!(
        generated.duration > BURST_AT + 20.0,
        "{}",
        generated.duration
    );
    let (s, b) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": record, "language": "en"}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    eventually("proposals awaiting review", 600, async || {
        let (_, b) = app.get(ALICE, &format!("/stream/{record}/progress")).await;
        assert_ne!(b["status"], "FAILED", "{b}");
        (b["progress"]["stage"] == "awaiting_review").then_some(())
    })
    .await;

    // The highlight: where the burst was (bins of 10 s).
    let (s, chat) = app.get(ALICE, &format!("/streams/{record}/chat")).await;
    assert_eq!(s, 200, "{chat}");
    let peaks = chat["highlights"].as_array().unwrap();
    assert_eq!(peaks.len(), 1, "{peaks:?}");
    let peak = peaks[0]["start"].as_f64().unwrap();
    assert!((BURST_AT - 10.0..=BURST_AT).contains(&peak), "{peak}");
    assert_eq!(peaks[0]["label"], "PogChamp");
    // The editor's chat history: every line, in stream time.
    let history = chat["chat_history"].as_array().unwrap();
    // Ingestion set the stream's duration to the recording's: the chat during it.
    let (_, stream) = app.get(ALICE, &format!("/records/streams/{record}")).await;
    let recorded = stream["duration"].as_f64().unwrap();
    assert!((recorded - generated.duration).abs() < 0.5, "{recorded}");
    let plan: Vec<_> = plan.into_iter().filter(|(at, ..)| *at < recorded).collect();
    assert_eq!(history.len(), plan.len(), "{history:?}");
    for (line, (at, who, _)) in history.iter().zip(&plan) {
        assert!(
            (line["timestamp"].as_f64().unwrap() - at).abs() < 0.5,
            "{line} vs {at}"
        );
        assert_eq!(line["username"], who.as_str());
    }
    let (s, b) = app.get(BOB, &format!("/streams/{record}/chat")).await;
    assert_eq!(s, 404, "{b}");

    // The chapter: at the moment chat reacted to (within the peak's bin, 5 s before it).
    let (_, eps) = app.get(ALICE, &format!("/stream/{record}/episodes")).await;
    let eps = eps["items"].as_array().unwrap();
    assert_eq!(eps.len(), 1, "{eps:?}");
    let offset = eps[0]["start_time"].as_f64().unwrap();
    let chapters = eps[0]["chapters"].as_array().unwrap();
    let near: Vec<&Value> = chapters
        .iter()
        .filter(|c| {
            let t = c["start"].as_f64().unwrap() + offset;
            (peak - 15.0..=peak + 10.0).contains(&t)
        })
        .collect();
    assert_eq!(near.len(), 1, "a chapter at the burst: {chapters:?}");
    // Chat's title, unless one of the talk's own summary highlights lies where chat reacted
    // (from 20 s before to 10 s after the marked moment, 5 s before the burst): then chat only
    // confirms that highlight, whose title stays (`episodes::chapters`). Which sentences the
    // extractive summary picks depends on the transcript, so the test reads them.
    let (_, clips) = app
        .get(ALICE, &format!("/records/video_clips/stream_id/{record}"))
        .await;
    let highlights: Vec<f64> = clips["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            let offset = c["start_time"].as_f64().unwrap_or(0.0);
            c["summary"]["highlights"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(move |h| Some(h["timestamp_start"].as_f64()? + offset))
        })
        .collect();
    assert!(!highlights.is_empty(), "{clips}");
    let moment = peak - gt_activities::chat_peaks::CHAT_REACTION_SECONDS;
    let confirmed = highlights.iter().any(|h| {
        (moment - gt_activities::episodes::CHAT_FUSION_BEFORE
            ..=moment + gt_activities::episodes::CHAT_FUSION_AFTER)
            .contains(h)
    });
    if confirmed {
        assert!(
            near[0]["title"] != "Chat: PogChamp",
            "{chapters:?} {highlights:?}"
        );
    } else {
        assert_eq!(
            near[0]["title"], "Chat: PogChamp",
            "{chapters:?} {highlights:?}"
        );
    }
    app.stop().await;
}

/// The hourly upkeep Twitch requires: every connected token validated, an expired one
/// refreshed (the rotated refresh token stored), a refused one marked "reconnect Twitch"; the
/// schedule that runs it exists.
#[tokio::test]
async fn hourly_maintenance_validates_refreshes_and_marks_lost_tokens() {
    let (fake, tw) = fake().await;
    let app = TestApp::start_with(AppOptions {
        twitch: Some(twitch_app(&fake, None)),
        gpu_worker: false,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    connect_twitch(&app, &fake, ALICE, ALICE_LOGIN).await;
    connect_twitch(&app, &fake, BOB, BOB_LOGIN).await;
    let alice_before = stored_tokens(&app, ALICE).await;
    fake.invalidate_access_tokens(&tw.alice);
    fake.invalidate_access_tokens(&tw.bob);
    fake.invalidate_refresh_tokens(&tw.bob);

    let client = app.temporal_client().await.unwrap();
    let schedule = client
        .get_schedule_handle(format!("twitch-maintenance-{}", app.cpu_task_queue))
        .describe(Default::default())
        .await
        .unwrap();
    let temporalio_client::schedules::ScheduleDescriptionAction::StartWorkflow(action) =
        schedule.action()
    else {
        panic!("the schedule starts a workflow");
    };
    assert_eq!(action.workflow_type(), "TwitchMaintenance");
    assert!(!schedule.paused());

    let id = format!("twitch-maintenance-test-{}", uuid::Uuid::new_v4());
    let handle = client
        .start_workflow(
            gt_workflows::TwitchMaintenance::run,
            (),
            temporalio_client::WorkflowStartOptions::new(app.cpu_task_queue.clone(), id).build(),
        )
        .await
        .unwrap();
    let sweep: gt_types::chat::TokenSweep = handle.get_result(Default::default()).await.unwrap();
    assert_eq!(
        (sweep.checked, sweep.refreshed, sweep.lost),
        (2, 1, 1),
        "{sweep:?}"
    );
    let alice_after = stored_tokens(&app, ALICE).await;
    assert_ne!(
        alice_after.refresh_token, alice_before.refresh_token,
        "rotated"
    );
    let (_, b) = app.get(ALICE, "/auth/twitch/token").await;
    assert_eq!(b["access_token"], alice_after.access_token.as_str());
    let (_, b) = app.get(BOB, "/auth/twitch/token").await;
    assert_eq!(b["needs_reconnect"], true, "{b}");
    app.stop().await;
}
