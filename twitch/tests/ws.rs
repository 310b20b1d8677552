//! The EventSub WebSocket client against the fake's WebSocket server: welcome, notifications
//! between keepalives, keepalive timeout, the unused-session rule, `session_reconnect` without
//! loss or duplicates, revocation.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use gt_twitch::fake::FakeTwitch;
use gt_twitch::ws::{EventSubSocket, Frame, SocketOptions};
use gt_twitch::{
    HelixClient, Subscription, SubscriptionFilter, SubscriptionRequest, SubscriptionStatus,
    Transport, TransportMethod, TwitchError,
};
use serde_json::json;

fn options() -> SocketOptions {
    SocketOptions {
        keepalive_grace: Duration::from_millis(500),
        welcome_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(1),
    }
}

/// A connected broadcaster, a socket with a 1 s keepalive and a chat subscription on it.
async fn subscribed() -> (FakeTwitch, EventSubSocket, HelixClient, Subscription) {
    let fake = fake().await;
    let tokens = connect(&fake.config(), CHAT_SCOPES).await;
    let socket = EventSubSocket::connect_with(&fake.ws_url(1), options())
        .await
        .unwrap();
    let helix = HelixClient::new(fake.config(), tokens.access_token).unwrap();
    let sub = helix
        .create_subscription(&SubscriptionRequest {
            kind: "channel.chat.message".into(),
            version: "1".into(),
            condition: json!({ "broadcaster_user_id": BROADCASTER_ID, "user_id": BROADCASTER_ID }),
            transport: Transport::WebSocket {
                session_id: socket.session_id().to_string(),
            },
        })
        .await
        .unwrap();
    (fake, socket, helix, sub)
}

fn chat_id(frame: &Frame) -> String {
    match frame {
        Frame::Notification(n) => n.payload["event"]["message_id"]
            .as_str()
            .unwrap()
            .to_string(),
        other => panic!("expected a notification, got {other:?}"),
    }
}

#[tokio::test]
async fn welcome_subscribe_and_notifications_between_keepalives() {
    let (fake, mut socket, helix, sub) = subscribed().await;
    assert_eq!(fake.sessions(), [socket.session_id().to_string()]);
    assert_eq!(socket.keepalive_timeout(), Duration::from_secs(1));
    assert_eq!(sub.status, SubscriptionStatus::Enabled);
    assert_eq!(sub.transport.method, TransportMethod::WebSocket);
    assert_eq!(
        sub.transport.session_id.as_deref(),
        Some(socket.session_id())
    );
    assert!(sub.transport.connected_at.is_some());

    // Longer than the keepalive timeout: only the fake's keepalives keep the session alive, and
    // next() swallows them.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sent = fake.send_chat(BROADCASTER_ID, "viewer1", "hello LUL").await;
    let frame = socket.next().await.unwrap();
    let Frame::Notification(n) = &frame else {
        panic!("{frame:?}")
    };
    assert_eq!(chat_id(&frame), sent);
    assert_eq!(n.subscription_type, "channel.chat.message");
    assert_eq!(n.subscription_version, "1");
    assert_eq!(n.payload["subscription"]["id"], sub.id.as_str());
    assert_eq!(
        n.payload["event"]["message"]["fragments"][1]["type"],
        "emote"
    );
    assert_eq!(
        n.timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        n.message_timestamp
    );
    assert!((chrono::Utc::now() - n.timestamp).num_seconds().abs() < 5);

    // The user token lists the websocket subscription.
    let listed = helix
        .list_subscriptions(&SubscriptionFilter::All)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, sub.id);

    // Closing the socket disconnects its subscriptions.
    socket.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let listed = helix
        .list_subscriptions(&SubscriptionFilter::All)
        .await
        .unwrap();
    assert_eq!(listed[0].status, SubscriptionStatus::WebsocketDisconnected);
    assert!(listed[0].transport.disconnected_at.is_some());
    assert!(fake.sessions().is_empty());
}

#[tokio::test]
async fn silence_is_a_keepalive_timeout() {
    let (fake, mut socket, _helix, _sub) = subscribed().await;
    fake.pause_keepalives();
    let started = Instant::now();
    let err = socket.next().await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, TwitchError::KeepaliveTimeout(_)), "{err:?}");
    assert!(err.is_transient());
    // 1 s keepalive + 0.5 s grace, counted from the last message (the welcome or a keepalive
    // sent while the subscription was being created).
    assert!(
        waited > Duration::from_millis(300) && waited < Duration::from_millis(3000),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_session_without_subscriptions_is_closed_with_4003() {
    let fake = fake().await;
    let mut socket = EventSubSocket::connect_with(&fake.ws_url(1), options())
        .await
        .unwrap();
    let err = socket.next().await.unwrap_err();
    assert!(
        matches!(
            &err,
            TwitchError::SocketClosed {
                code: Some(4003),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn websocket_subscriptions_need_a_live_session_and_a_user_token() {
    let fake = fake().await;
    let tokens = connect(&fake.config(), CHAT_SCOPES).await;
    let request = |session_id: &str| SubscriptionRequest {
        kind: "channel.chat.message".into(),
        version: "1".into(),
        condition: json!({ "broadcaster_user_id": BROADCASTER_ID, "user_id": BROADCASTER_ID }),
        transport: Transport::WebSocket {
            session_id: session_id.into(),
        },
    };
    let as_user = HelixClient::new(fake.config(), tokens.access_token).unwrap();
    let err = as_user
        .create_subscription(&request("AQoQnope"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwitchError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    let socket = EventSubSocket::connect_with(&fake.ws_url(10), options())
        .await
        .unwrap();
    let app = gt_twitch::OAuthClient::new(fake.config())
        .unwrap()
        .app_token()
        .await
        .unwrap();
    let as_app = HelixClient::new(fake.config(), app.access_token).unwrap();
    let err = as_app
        .create_subscription(&request(socket.session_id()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwitchError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    as_user
        .create_subscription(&request(socket.session_id()))
        .await
        .unwrap();
    let err = as_user
        .create_subscription(&request(socket.session_id()))
        .await
        .unwrap_err();
    assert!(matches!(err, TwitchError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn session_reconnect_loses_and_duplicates_nothing() {
    reconnect_scenario(Duration::ZERO).await;
}

#[tokio::test]
async fn session_reconnect_over_a_slow_link_drains_the_old_connection() {
    // Each message takes 20 ms to go out: when the new connection's welcome arrives, the old
    // connection still has messages in flight, which must come out before the new ones.
    reconnect_scenario(Duration::from_millis(20)).await;
}

async fn reconnect_scenario(send_delay: Duration) {
    let (fake, mut socket, _helix, _sub) = subscribed().await;
    fake.set_ws_send_delay(send_delay);
    let fake = std::sync::Arc::new(fake);
    let session_id = socket.session_id().to_string();
    let mut sent = vec![fake.send_chat(BROADCASTER_ID, "viewer1", "before").await];
    fake.reconnect_sessions();
    // Sent after the reconnect request but before the client moved: on the old connection.
    sent.push(fake.send_chat(BROADCASTER_ID, "viewer1", "between").await);
    // And a steady stream throughout the move.
    let background = {
        let fake = fake.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..40 {
                ids.push(
                    fake.send_chat(BROADCASTER_ID, "viewer2", &format!("tick {i}"))
                        .await,
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ids
        })
    };

    let mut received: Vec<String> = Vec::new();
    let mut reconnected = false;
    while !reconnected {
        match socket.next().await.unwrap() {
            Frame::Reconnect { url } => {
                assert!(url.contains("reconnect="), "{url}");
                socket.reconnect(&url).await.unwrap();
                reconnected = true;
            }
            frame => received.push(chat_id(&frame)),
        }
    }
    assert_eq!(socket.session_id(), session_id, "the session carries over");
    assert_eq!(fake.sessions(), std::slice::from_ref(&session_id));
    sent.extend(background.await.unwrap());
    sent.push(fake.send_chat(BROADCASTER_ID, "viewer1", "after").await);
    while received.len() < sent.len() {
        let frame = tokio::time::timeout(Duration::from_secs(3), socket.next())
            .await
            .expect("every message arrives")
            .unwrap();
        received.push(chat_id(&frame));
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &received {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    for id in &sent {
        assert_eq!(counts.get(id.as_str()), Some(&1), "message {id}");
    }
    assert_eq!(received.len(), sent.len());
    // In order, too: the old connection's messages before the new one's.
    assert_eq!(received, sent);
    // Nothing more is pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), socket.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn revocation_arrives_as_a_frame() {
    let (fake, mut socket, _helix, sub) = subscribed().await;
    fake.revoke_subscription(&sub.id, SubscriptionStatus::AuthorizationRevoked)
        .await;
    match socket.next().await.unwrap() {
        Frame::Revocation { subscription, .. } => {
            assert_eq!(subscription["id"], sub.id.as_str());
            assert_eq!(subscription["status"], "authorization_revoked");
        }
        other => panic!("expected a revocation, got {other:?}"),
    }
    assert!(
        fake.send_event(
            "channel.chat.message",
            json!({"broadcaster_user_id": BROADCASTER_ID})
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn a_redelivered_frame_keeps_its_message_id() {
    let (fake, mut socket, _helix, _sub) = subscribed().await;
    fake.send_chat(BROADCASTER_ID, "viewer1", "dup").await;
    let Frame::Notification(first) = socket.next().await.unwrap() else {
        panic!("notification")
    };
    fake.redeliver(&first.message_id).await;
    let Frame::Notification(second) = socket.next().await.unwrap() else {
        panic!("notification")
    };
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.payload, first.payload);
}

#[tokio::test]
async fn wss_urls_go_through_tls_and_fail_cleanly_when_unreachable() {
    // Nothing listens on port 9: the TLS connector is built (an explicit rustls provider, no
    // process default needed) and the failure is a transient error, not a panic.
    let err = EventSubSocket::connect_with("wss://127.0.0.1:9/ws", options())
        .await
        .unwrap_err();
    assert!(matches!(err, TwitchError::Transient(_)), "{err:?}");
}
