//! The fake's webhook sender, judged by an independent receiver (its own HMAC, freshness rule
//! and header dispatch): signed notifications shaped like Twitch's, at-least-once delivery,
//! retries, and each fault knob.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use gt_twitch::fake::{DeliveryPolicy, FakeTwitch, MessageType, WebhookFault, sign};
use gt_twitch::{HelixClient, OAuthClient, SubscriptionRequest, SubscriptionStatus, Transport};
use serde_json::json;

#[test]
fn signing_helper_matches_the_reference_vector_and_an_independent_hmac() {
    let expected = "sha256=b257174013e15a2639799213400806fa60814be8aa347dfd44c6d24e530d3f3a";
    let args = (
        "test-secret-key",
        "test-message-id-123",
        "2024-01-01T00:00:00Z",
    );
    assert_eq!(
        sign(args.0, args.1, args.2, br#"{"test":"data"}"#),
        expected
    );
    assert_eq!(
        independent_signature(args.0, args.1, args.2, br#"{"test":"data"}"#),
        expected
    );
    assert_ne!(
        sign(args.0, args.1, args.2, br#"{"test": "data"}"#),
        expected
    );
}

/// A fake with the broadcaster connected and an enabled chat subscription to a receiver.
async fn subscribed() -> (FakeTwitch, Receiver, String) {
    let fake = fake().await;
    connect(&fake.config(), CHAT_SCOPES).await;
    fake.set_delivery_policy(DeliveryPolicy {
        attempts: 3,
        retry_delay: Duration::from_millis(10),
        response_timeout: Duration::from_millis(500),
        failures_before_revocation: 10,
    });
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let app = OAuthClient::new(fake.config())
        .unwrap()
        .app_token()
        .await
        .unwrap();
    let helix = HelixClient::new(fake.config(), app.access_token).unwrap();
    let sub = helix
        .create_subscription(&SubscriptionRequest {
            kind: "channel.chat.message".into(),
            version: "1".into(),
            condition: json!({ "broadcaster_user_id": BROADCASTER_ID, "user_id": BROADCASTER_ID }),
            transport: Transport::Webhook {
                callback: receiver.url.clone(),
                secret: WEBHOOK_SECRET.into(),
            },
        })
        .await
        .unwrap();
    fake.settle().await;
    assert_eq!(
        fake.subscription_status(&sub.id).as_deref(),
        Some("enabled")
    );
    (fake, receiver, sub.id)
}

#[tokio::test]
async fn chat_notification_is_signed_and_shaped_like_twitchs() {
    let (fake, receiver, sub_id) = subscribed().await;
    let chat_id = fake
        .send_chat(BROADCASTER_ID, "viewer32", "hi Kappa chat")
        .await;
    let got = receiver.notifications();
    assert_eq!(got.len(), 1, "{:?}", receiver.received());
    let n = &got[0];
    for header in [
        "twitch-eventsub-message-id",
        "twitch-eventsub-message-retry",
        "twitch-eventsub-message-type",
        "twitch-eventsub-message-signature",
        "twitch-eventsub-message-timestamp",
        "twitch-eventsub-subscription-type",
        "twitch-eventsub-subscription-version",
    ] {
        assert!(n.headers.contains_key(header), "{header} missing");
    }
    assert_eq!(n.headers["content-type"], "application/json");
    assert_eq!(
        n.headers["twitch-eventsub-subscription-type"],
        "channel.chat.message"
    );
    assert_eq!(n.headers["twitch-eventsub-subscription-version"], "1");
    assert_eq!(n.retry, "0");
    // RFC 3339 with nanoseconds, UTC.
    let fraction = n.timestamp.split('.').nth(1).unwrap();
    assert_eq!(fraction.len(), 10, "9 digits and Z: {}", n.timestamp);
    let at = DateTime::parse_from_rfc3339(&n.timestamp)
        .unwrap()
        .with_timezone(&Utc);
    assert!((Utc::now() - at).num_seconds().abs() < 5);

    let body = n.json();
    assert_eq!(body["subscription"]["id"], sub_id.as_str());
    assert_eq!(body["subscription"]["type"], "channel.chat.message");
    assert_eq!(body["subscription"]["status"], "enabled");
    let event = &body["event"];
    assert_eq!(event["broadcaster_user_id"], BROADCASTER_ID);
    assert_eq!(event["broadcaster_user_login"], BROADCASTER_LOGIN);
    assert_eq!(event["chatter_user_login"], "viewer32");
    assert!(
        event["chatter_user_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(event["message_id"], chat_id.as_str());
    assert_eq!(event["message"]["text"], "hi Kappa chat");
    let fragments = event["message"]["fragments"].as_array().unwrap();
    let kinds: Vec<&str> = fragments
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["text", "emote", "text"]);
    assert_eq!(fragments[1]["emote"]["id"], "25");
    assert_eq!(event["message_type"], "text");
    assert!(event["badges"].is_array());
    assert!(event["reply"].is_null() && event["cheer"].is_null());

    // Another channel's chat goes nowhere.
    fake.send_chat("777", "viewer32", "elsewhere").await;
    assert_eq!(receiver.notifications().len(), 1);
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_message_id() {
    let (fake, receiver, _) = subscribed().await;
    receiver.state.fail_next.store(2, Ordering::SeqCst);
    fake.send_chat(BROADCASTER_ID, "viewer1", "third time lucky")
        .await;
    let notifications: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.message_type == "notification")
        .collect();
    assert_eq!(notifications.len(), 3);
    assert!(
        notifications
            .iter()
            .all(|r| r.message_id == notifications[0].message_id)
    );
    let retries: Vec<&str> = notifications.iter().map(|r| r.retry.as_str()).collect();
    assert_eq!(retries, ["0", "1", "2"]);
    let answered: Vec<u16> = notifications.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 500, 204]);
    let log: Vec<Option<u16>> = fake
        .deliveries()
        .iter()
        .filter(|d| d.message_type == MessageType::Notification)
        .map(|d| d.status)
        .collect();
    assert_eq!(log, [Some(500), Some(500), Some(204)]);
}

#[tokio::test]
async fn a_slow_callback_counts_as_a_failure() {
    let (fake, receiver, sub_id) = subscribed().await;
    *receiver.state.delay.lock().unwrap() = Duration::from_millis(800);
    fake.set_delivery_policy(DeliveryPolicy {
        attempts: 1,
        retry_delay: Duration::from_millis(10),
        response_timeout: Duration::from_millis(200),
        failures_before_revocation: 2,
    });
    fake.send_chat(BROADCASTER_ID, "viewer1", "one").await;
    let last = fake.deliveries().last().cloned().unwrap();
    assert_eq!(last.status, None);
    assert!(last.error.is_some());
    assert!(
        last.latency >= Duration::from_millis(200) && last.latency < Duration::from_millis(800)
    );
    assert_eq!(
        fake.subscription_status(&sub_id).as_deref(),
        Some("enabled")
    );
    // The second failure in a row: Twitch gives up on the subscription and says so.
    fake.send_chat(BROADCASTER_ID, "viewer1", "two").await;
    assert_eq!(
        fake.subscription_status(&sub_id).as_deref(),
        Some("notification_failures_exceeded")
    );
    let revocation = fake.deliveries().last().cloned().unwrap();
    assert_eq!(revocation.message_type, MessageType::Revocation);
}

#[tokio::test]
async fn redelivery_keeps_the_message_id() {
    let (fake, receiver, _) = subscribed().await;
    fake.push_webhook_fault(WebhookFault::Redeliver { extra: 2 });
    fake.send_chat(BROADCASTER_ID, "viewer1", "again and again")
        .await;
    let got = receiver.notifications();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|r| r.message_id == got[0].message_id && r.body == got[0].body)
    );
    assert_eq!(
        got.iter().map(|r| r.retry.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );

    // Any earlier message can be sent again on demand.
    let chat_id = fake.send_chat(BROADCASTER_ID, "viewer2", "once more").await;
    let eventsub_id = receiver.notifications().last().unwrap().message_id.clone();
    fake.redeliver(&eventsub_id).await;
    let again: Vec<_> = receiver
        .notifications()
        .into_iter()
        .filter(|r| r.message_id == eventsub_id)
        .collect();
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].json()["event"]["message_id"], chat_id.as_str());
    assert_eq!(again[1].retry, "1");
}

#[tokio::test]
async fn spoiled_messages_are_refused_by_an_honest_receiver() {
    let (fake, receiver, _) = subscribed().await;
    let cases = [
        (
            WebhookFault::ShiftTimestamp {
                by: -chrono::Duration::minutes(11),
            },
            "stale or future timestamp",
        ),
        (
            WebhookFault::ShiftTimestamp {
                by: chrono::Duration::minutes(11),
            },
            "stale or future timestamp",
        ),
        (WebhookFault::BadSignature, "bad signature"),
        (WebhookFault::ReserializedBody, "bad signature"),
        (
            WebhookFault::OmitHeader("Twitch-Eventsub-Message-Signature".into()),
            "missing signature",
        ),
    ];
    for (fault, reason) in cases {
        fake.push_webhook_fault(fault.clone());
        fake.send_chat(BROADCASTER_ID, "viewer1", "spoiled").await;
        let last = receiver.received().last().cloned().unwrap();
        assert_eq!(last.refused, Some(reason), "{fault:?}");
        assert_eq!(last.answered, 403);
    }
    // A stale message is still correctly signed over the shifted timestamp: only the freshness
    // rule catches it.
    let stale = receiver
        .received()
        .into_iter()
        .find(|r| r.refused == Some("stale or future timestamp"))
        .unwrap();
    assert_eq!(
        stale.headers["twitch-eventsub-message-signature"],
        independent_signature(
            WEBHOOK_SECRET,
            &stale.message_id,
            &stale.timestamp,
            &stale.body
        )
    );
    // The re-serialised body is the same JSON as what was signed, in other bytes.
    let reserialised = receiver
        .received()
        .into_iter()
        .filter(|r| r.refused == Some("bad signature"))
        .find(|r| r.body.contains(&b'\n'))
        .unwrap();
    assert_eq!(reserialised.json()["event"]["message"]["text"], "spoiled");
    // Faults are used up: the next message is fine.
    fake.send_chat(BROADCASTER_ID, "viewer1", "clean").await;
    assert_eq!(receiver.received().last().unwrap().refused, None);
}

#[tokio::test]
async fn revocations_reach_the_callback() {
    let (fake, receiver, first) = subscribed().await;
    fake.revoke_subscription(&first, SubscriptionStatus::AuthorizationRevoked)
        .await;
    let app = OAuthClient::new(fake.config())
        .unwrap()
        .app_token()
        .await
        .unwrap();
    let helix = HelixClient::new(fake.config(), app.access_token).unwrap();
    for status in [
        SubscriptionStatus::UserRemoved,
        SubscriptionStatus::NotificationFailuresExceeded,
        SubscriptionStatus::VersionRemoved,
    ] {
        let sub = helix
            .create_subscription(&SubscriptionRequest {
                kind: "stream.online".into(),
                version: "1".into(),
                condition: json!({ "broadcaster_user_id": BROADCASTER_ID }),
                transport: Transport::Webhook {
                    callback: receiver.url.clone(),
                    secret: WEBHOOK_SECRET.into(),
                },
            })
            .await
            .unwrap();
        fake.settle().await;
        fake.revoke_subscription(&sub.id, status).await;
    }
    let revocations: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.message_type == "revocation")
        .collect();
    let statuses: Vec<String> = revocations
        .iter()
        .map(|r| {
            r.json()["subscription"]["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "authorization_revoked",
            "user_removed",
            "notification_failures_exceeded",
            "version_removed"
        ]
    );
    assert!(
        revocations
            .iter()
            .all(|r| r.refused.is_none() && r.json().get("event").is_none())
    );
    // A revoked subscription gets nothing more.
    fake.send_chat(BROADCASTER_ID, "viewer1", "anyone?").await;
    assert!(receiver.notifications().is_empty());
}

#[tokio::test]
async fn revoking_the_authorization_revokes_the_users_subscriptions() {
    let (fake, receiver, sub_id) = subscribed().await;
    fake.revoke_authorization(BROADCASTER_ID).await;
    assert_eq!(
        fake.subscription_status(&sub_id).as_deref(),
        Some("authorization_revoked")
    );
    assert_eq!(
        receiver.received().last().unwrap().message_type,
        "revocation"
    );
    assert!(fake.granted_scopes(BROADCASTER_ID).is_empty());
}

#[tokio::test]
async fn generic_events_match_on_their_condition() {
    let (fake, receiver, _) = subscribed().await;
    let app = OAuthClient::new(fake.config())
        .unwrap()
        .app_token()
        .await
        .unwrap();
    let helix = HelixClient::new(fake.config(), app.access_token).unwrap();
    helix
        .create_subscription(&SubscriptionRequest {
            kind: "stream.online".into(),
            version: "1".into(),
            condition: json!({ "broadcaster_user_id": BROADCASTER_ID }),
            transport: Transport::Webhook {
                callback: receiver.url.clone(),
                secret: WEBHOOK_SECRET.into(),
            },
        })
        .await
        .unwrap();
    fake.settle().await;
    let online = json!({
        "id": "9001",
        "broadcaster_user_id": BROADCASTER_ID,
        "broadcaster_user_login": BROADCASTER_LOGIN,
        "broadcaster_user_name": BROADCASTER_LOGIN,
        "type": "live",
        "started_at": "2026-11-30T15:00:00Z",
    });
    let ids = fake.send_event("stream.online", online.clone()).await;
    assert_eq!(ids.len(), 1);
    let mut other = online;
    other["broadcaster_user_id"] = "1".into();
    assert!(fake.send_event("stream.online", other).await.is_empty());
    let got = receiver.notifications();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, ids[0]);
    assert_eq!(
        got[0].headers["twitch-eventsub-subscription-type"],
        "stream.online"
    );
    assert_eq!(got[0].json()["event"]["id"], "9001");
}
