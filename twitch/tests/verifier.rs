//! The crate's webhook verifier (`eventsub::verify_webhook`) judged by the fake's sender, which
//! signs from the wire format on its own: every clean message passes, every spoiled one is
//! refused for the right reason.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use common::*;
use gt_twitch::eventsub::{MessageType, VerifiedWebhook, VerifyError, verify_webhook};
use gt_twitch::fake::{DeliveryPolicy, WebhookFault};
use gt_twitch::{HelixClient, OAuthClient, SubscriptionRequest, SubscriptionStatus, Transport};
use serde_json::json;

type Verdicts = Arc<Mutex<Vec<Result<VerifiedWebhook, VerifyError>>>>;
/// Whether a refusal is the one a fault should cause.
type Expected = fn(&VerifyError) -> bool;

async fn callback(State(verdicts): State<Verdicts>, headers: HeaderMap, body: Bytes) -> Response {
    let verdict = verify_webhook(WEBHOOK_SECRET.as_bytes(), &headers, &body, Utc::now());
    let response = match &verdict {
        Ok(v) if v.message_type == MessageType::WebhookCallbackVerification => {
            let challenge =
                serde_json::from_slice::<serde_json::Value>(&body).unwrap()["challenge"]
                    .as_str()
                    .unwrap()
                    .to_string();
            ([(header::CONTENT_TYPE, "text/plain")], challenge).into_response()
        }
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => StatusCode::FORBIDDEN.into_response(),
    };
    verdicts.lock().unwrap().push(verdict);
    response
}

#[tokio::test]
async fn the_verifier_accepts_what_twitch_signs_and_refuses_each_fault() {
    let fake = fake().await;
    connect(&fake.config(), CHAT_SCOPES).await;
    fake.set_delivery_policy(DeliveryPolicy {
        attempts: 1,
        retry_delay: Duration::from_millis(10),
        response_timeout: Duration::from_secs(2),
        failures_before_revocation: 100,
    });
    let verdicts: Verdicts = Arc::default();
    let router = axum::Router::new()
        .route("/eventsub", post(callback))
        .with_state(verdicts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/eventsub", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

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
                callback: url,
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
    let last = || verdicts.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last().unwrap().message_type,
        MessageType::WebhookCallbackVerification
    );

    fake.send_chat(BROADCASTER_ID, "viewer1", "clean").await;
    let clean = last().unwrap();
    assert_eq!(clean.message_type, MessageType::Notification);
    assert_eq!(
        clean.subscription_type.as_deref(),
        Some("channel.chat.message")
    );
    assert_eq!(clean.subscription_version.as_deref(), Some("1"));
    assert_eq!(clean.retry, 0);
    let delivery = fake.deliveries().last().cloned().unwrap();
    assert_eq!(clean.message_id, delivery.message_id);
    assert_eq!(
        clean.timestamp,
        chrono::DateTime::parse_from_rfc3339(&delivery.timestamp).unwrap()
    );

    let cases: Vec<(WebhookFault, Expected)> = vec![
        (
            WebhookFault::ShiftTimestamp {
                by: -chrono::Duration::minutes(11),
            },
            |e| matches!(e, VerifyError::Stale(s) if (655..=665).contains(s)),
        ),
        (
            WebhookFault::ShiftTimestamp {
                by: chrono::Duration::minutes(11),
            },
            |e| matches!(e, VerifyError::Future(_)),
        ),
        (WebhookFault::BadSignature, |e| {
            matches!(e, VerifyError::BadSignature)
        }),
        (WebhookFault::ReserializedBody, |e| {
            matches!(e, VerifyError::BadSignature)
        }),
        (
            WebhookFault::OmitHeader("Twitch-Eventsub-Message-Signature".into()),
            |e| matches!(e, VerifyError::MissingHeader(_)),
        ),
        (
            WebhookFault::OmitHeader("Twitch-Eventsub-Message-Timestamp".into()),
            |e| matches!(e, VerifyError::MissingHeader(_)),
        ),
        (
            WebhookFault::OmitHeader("Twitch-Eventsub-Message-Id".into()),
            |e| matches!(e, VerifyError::MissingHeader(_)),
        ),
    ];
    for (fault, expected) in cases {
        fake.push_webhook_fault(fault.clone());
        fake.send_chat(BROADCASTER_ID, "viewer1", "spoiled").await;
        let verdict = last();
        assert!(
            verdict.as_ref().is_err_and(expected),
            "{fault:?} → {verdict:?}"
        );
    }

    // A redelivery verifies again with its retry count; the revocation verifies as one.
    fake.push_webhook_fault(WebhookFault::Redeliver { extra: 1 });
    fake.send_chat(BROADCASTER_ID, "viewer1", "twice").await;
    let n = verdicts.lock().unwrap().len();
    let pair: Vec<VerifiedWebhook> = verdicts.lock().unwrap()[n - 2..]
        .iter()
        .map(|v| v.clone().unwrap())
        .collect();
    assert_eq!(pair[0].message_id, pair[1].message_id);
    assert_eq!((pair[0].retry, pair[1].retry), (0, 1));
    fake.revoke_subscription(&sub.id, SubscriptionStatus::UserRemoved)
        .await;
    assert_eq!(last().unwrap().message_type, MessageType::Revocation);
}
