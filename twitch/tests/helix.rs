//! Helix EventSub subscriptions against the fake: create (with the webhook challenge handshake),
//! duplicates, authorization rules, pagination, delete, users, and retried faults.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gt_twitch::fake::{Endpoint, FaultKind};
use gt_twitch::{
    HelixClient, OAuthClient, SubscriptionFilter, SubscriptionRequest, SubscriptionStatus,
    Transport, TransportMethod, TwitchError,
};
use serde_json::json;

async fn app_client(fake: &gt_twitch::fake::FakeTwitch) -> HelixClient {
    let app = OAuthClient::new(fake.config())
        .unwrap()
        .app_token()
        .await
        .unwrap();
    HelixClient::new(fake.config(), app.access_token).unwrap()
}

fn chat_request(callback: &str) -> SubscriptionRequest {
    SubscriptionRequest {
        kind: "channel.chat.message".into(),
        version: "1".into(),
        condition: json!({ "broadcaster_user_id": BROADCASTER_ID, "user_id": BROADCASTER_ID }),
        transport: Transport::Webhook {
            callback: callback.into(),
            secret: WEBHOOK_SECRET.into(),
        },
    }
}

fn online_request(broadcaster: &str, callback: &str) -> SubscriptionRequest {
    SubscriptionRequest {
        kind: "stream.online".into(),
        version: "1".into(),
        condition: json!({ "broadcaster_user_id": broadcaster }),
        transport: Transport::Webhook {
            callback: callback.into(),
            secret: WEBHOOK_SECRET.into(),
        },
    }
}

#[tokio::test]
async fn webhook_subscription_is_enabled_after_the_challenge() {
    let fake = fake().await;
    connect(&fake.config(), CHAT_SCOPES).await;
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let helix = app_client(&fake).await;
    let sub = helix
        .create_subscription(&chat_request(&receiver.url))
        .await
        .unwrap();
    assert_eq!(
        sub.status,
        SubscriptionStatus::WebhookCallbackVerificationPending
    );
    assert_eq!(sub.kind, "channel.chat.message");
    assert_eq!(sub.transport.method, TransportMethod::Webhook);
    assert_eq!(
        sub.transport.callback.as_deref(),
        Some(receiver.url.as_str())
    );
    assert_eq!(sub.cost, 0, "free: the user authorized the client");
    fake.settle().await;

    // The receiver checked the challenge's signature on its own and answered it.
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_type, "webhook_callback_verification");
    assert_eq!(got[0].refused, None);
    let body = got[0].json();
    assert_eq!(body["subscription"]["id"], sub.id.as_str());
    assert!(body["subscription"]["transport"].get("secret").is_none());
    let delivery = &fake.deliveries()[0];
    assert_eq!(delivery.content_type.as_deref(), Some("text/plain"));
    assert_eq!(delivery.body, body["challenge"].as_str().unwrap());

    let listed = helix
        .list_subscriptions(&SubscriptionFilter::All)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, sub.id);
    assert_eq!(listed[0].status, SubscriptionStatus::Enabled);
    // It serialises back in Twitch's shape for the front end.
    let as_json = serde_json::to_value(&listed[0]).unwrap();
    assert_eq!(as_json["type"], "channel.chat.message");
    assert_eq!(as_json["status"], "enabled");
    assert_eq!(as_json["condition"]["broadcaster_user_id"], BROADCASTER_ID);
}

#[tokio::test]
async fn a_challenge_answered_with_json_fails_verification() {
    let fake = fake().await;
    connect(&fake.config(), CHAT_SCOPES).await;
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    receiver.set_challenge_answer(ChallengeAnswer::Json);
    let helix = app_client(&fake).await;
    let sub = helix
        .create_subscription(&chat_request(&receiver.url))
        .await
        .unwrap();
    fake.settle().await;
    let delivery = &fake.deliveries()[0];
    assert_eq!(delivery.status, Some(200));
    assert_eq!(delivery.content_type.as_deref(), Some("application/json"));
    let listed = helix
        .list_subscriptions(&SubscriptionFilter::Status(
            SubscriptionStatus::WebhookCallbackVerificationFailed,
        ))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, sub.id);
    // Nothing is delivered to a failed subscription.
    fake.send_chat(BROADCASTER_ID, "viewer1", "hello").await;
    assert!(receiver.notifications().is_empty());
}

#[tokio::test]
async fn a_callback_that_does_not_answer_fails_verification() {
    let fake = fake().await;
    connect(&fake.config(), CHAT_SCOPES).await;
    let helix = app_client(&fake).await;
    // Nothing listens on port 9 of the loopback address.
    let sub = helix
        .create_subscription(&chat_request("http://127.0.0.1:9/eventsub"))
        .await
        .unwrap();
    fake.settle().await;
    assert_eq!(
        fake.subscription_status(&sub.id).as_deref(),
        Some("webhook_callback_verification_failed")
    );
    assert!(fake.deliveries()[0].error.is_some());
}

#[tokio::test]
async fn duplicates_conflict_and_bad_requests_are_rejected() {
    let fake = fake().await;
    let user = connect(&fake.config(), CHAT_SCOPES).await;
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let helix = app_client(&fake).await;
    helix
        .create_subscription(&chat_request(&receiver.url))
        .await
        .unwrap();
    let err = helix
        .create_subscription(&chat_request(&receiver.url))
        .await
        .unwrap_err();
    assert!(matches!(err, TwitchError::Conflict(_)), "{err:?}");

    // Webhooks need an app token.
    let as_user = HelixClient::new(fake.config(), user.access_token.clone()).unwrap();
    let err = as_user
        .create_subscription(&chat_request(&receiver.url))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwitchError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    // HTTPS on 443 or loopback only.
    let err = helix
        .create_subscription(&chat_request("http://example.com/eventsub"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwitchError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    // Secret of 10–100 characters.
    let mut short = chat_request(&receiver.url);
    short.transport = Transport::Webhook {
        callback: receiver.url.clone(),
        secret: "short".into(),
    };
    assert!(matches!(
        helix.create_subscription(&short).await,
        Err(TwitchError::Rejected { status: 400, .. })
    ));
    // Unknown version.
    let mut v2 = online_request(BROADCASTER_ID, &receiver.url);
    v2.version = "2".into();
    assert!(matches!(
        helix.create_subscription(&v2).await,
        Err(TwitchError::Rejected { status: 400, .. })
    ));
    // Chat of a user who never authorized the client: 403.
    let mut stranger = chat_request(&receiver.url);
    stranger.condition = json!({ "broadcaster_user_id": "999", "user_id": "999" });
    let err = helix.create_subscription(&stranger).await.unwrap_err();
    assert!(
        matches!(&err, TwitchError::Rejected { status: 403, message } if message == "subscription missing proper authorization"),
        "{err:?}"
    );
    // A dead app token: 401.
    fake.invalidate_app_tokens();
    assert!(matches!(
        helix.list_subscriptions(&SubscriptionFilter::All).await,
        Err(TwitchError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn list_follows_pagination_and_filters() {
    let fake = fake().await;
    connect(&fake.config(), CHAT_SCOPES).await;
    fake.set_page_size(2);
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let helix = app_client(&fake).await;
    let mut created = Vec::new();
    for broadcaster in ["1", "2", "3", "4", "5"] {
        created.push(
            helix
                .create_subscription(&online_request(broadcaster, &receiver.url))
                .await
                .unwrap()
                .id,
        );
    }
    created.push(
        helix
            .create_subscription(&chat_request(&receiver.url))
            .await
            .unwrap()
            .id,
    );
    fake.settle().await;

    let before = fake.requests().len();
    let all = helix
        .list_subscriptions(&SubscriptionFilter::All)
        .await
        .unwrap();
    let ids: Vec<String> = all.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, created, "every page, in order, none twice");
    let list_calls = fake.requests()[before..]
        .iter()
        .filter(|r| r.endpoint == Endpoint::ListSubscriptions)
        .count();
    assert_eq!(list_calls, 3, "6 subscriptions in pages of 2");

    let online = helix
        .list_subscriptions(&SubscriptionFilter::Type("stream.online".into()))
        .await
        .unwrap();
    assert_eq!(online.len(), 5);
    let mine = helix
        .list_subscriptions(&SubscriptionFilter::UserId(BROADCASTER_ID.into()))
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].kind, "channel.chat.message");
    let third = helix
        .list_subscriptions(&SubscriptionFilter::UserId("3".into()))
        .await
        .unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].condition["broadcaster_user_id"], "3");
}

#[tokio::test]
async fn delete_removes_and_a_second_delete_is_fine() {
    let fake = fake().await;
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let helix = app_client(&fake).await;
    let a = helix
        .create_subscription(&online_request("1", &receiver.url))
        .await
        .unwrap();
    let b = helix
        .create_subscription(&online_request("2", &receiver.url))
        .await
        .unwrap();
    helix.delete_subscription(&a.id).await.unwrap();
    let left = helix
        .list_subscriptions(&SubscriptionFilter::All)
        .await
        .unwrap();
    assert_eq!(left.iter().map(|s| &s.id).collect::<Vec<_>>(), [&b.id]);
    helix.delete_subscription(&a.id).await.unwrap();
    let last = fake.requests().last().cloned().unwrap();
    assert_eq!(
        (last.endpoint, last.status),
        (Endpoint::DeleteSubscription, Some(404))
    );
    // After a delete the same subscription may be created again.
    helix
        .create_subscription(&online_request("1", &receiver.url))
        .await
        .unwrap();
}

#[tokio::test]
async fn helix_faults_are_retried_or_reported() {
    let fake = fake().await;
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let helix = app_client(&fake).await;

    fake.push_fault(
        Endpoint::CreateSubscription,
        FaultKind::ServerError { status: 502 },
        2,
    );
    helix
        .create_subscription(&online_request("1", &receiver.url))
        .await
        .unwrap();

    // 429 with Ratelimit-Reset one second ahead: waited out inside the call.
    fake.push_fault(
        Endpoint::ListSubscriptions,
        FaultKind::RateLimited {
            reset_in: Duration::from_millis(1),
        },
        1,
    );
    let started = Instant::now();
    assert_eq!(
        helix
            .list_subscriptions(&SubscriptionFilter::All)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let statuses: Vec<Option<u16>> = fake
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::ListSubscriptions)
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(429), Some(200)]);

    fake.push_fault(Endpoint::DeleteSubscription, FaultKind::DropConnection, 3);
    let err = helix.delete_subscription("whatever").await.unwrap_err();
    assert!(matches!(err, TwitchError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn users_by_id_login_or_token() {
    let fake = fake().await;
    fake.add_user("42", "viewer42");
    let user = connect(&fake.config(), CHAT_SCOPES).await;
    let helix = HelixClient::new(fake.config(), user.access_token).unwrap();
    let me = helix.get_users(&[], &[]).await.unwrap();
    assert_eq!(me.len(), 1);
    assert_eq!(
        (me[0].id.as_str(), me[0].login.as_str()),
        (BROADCASTER_ID, BROADCASTER_LOGIN)
    );
    let both = helix
        .get_users(&["42"], &[BROADCASTER_LOGIN])
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    assert!(helix.get_users(&["7"], &[]).await.unwrap().is_empty());
}
