//! The ads endpoints (Get Ad Schedule, Snooze Next Ad, Start Commercial) over real HTTP against
//! the fake: every time format Twitch has been seen to send, snoozes running out, commercials
//! refused while offline or within `retry_after`, the `channel.ad_break.begin` a commercial sends
//! to a webhook (judged by the independent receiver), and Twitch's authorization checks.

mod common;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, TimeZone, Utc};
use common::*;
use gt_twitch::eventsub::Event;
use gt_twitch::fake::{
    AdTimeFormat, Endpoint, FakeAdSchedule, FakeTwitch, FaultKind, RecordedRequest,
};
use gt_twitch::{
    AdSchedule, AdsError, CommercialStarted, HelixClient, OAuthClient, SubscriptionRequest,
    Transport,
};
use serde_json::{Value, json};

const AD_SCOPES: &[&str] = &[
    "channel:read:ads",
    "channel:manage:ads",
    "channel:edit:commercial",
];

/// A fake with the broadcaster connected with the ads scopes; the client and their token.
async fn connected() -> (FakeTwitch, HelixClient, String) {
    let fake = fake().await;
    let tokens = connect(&fake.config(), AD_SCOPES).await;
    // The client's own token is deliberately useless: ads calls carry the user's token.
    let helix = HelixClient::new(fake.config(), "not-a-token").unwrap();
    (fake, helix, tokens.access_token)
}

fn requests_to(fake: &FakeTwitch, endpoint: Endpoint) -> Vec<RecordedRequest> {
    fake.requests()
        .into_iter()
        .filter(|r| r.endpoint == endpoint)
        .collect()
}

fn statuses(fake: &FakeTwitch, endpoint: Endpoint) -> Vec<Option<u16>> {
    requests_to(fake, endpoint)
        .iter()
        .map(|r| r.status)
        .collect()
}

/// The schedule's wire reply, read without the crate.
async fn raw_schedule(fake: &FakeTwitch, token: &str) -> Value {
    reqwest::Client::new()
        .get(format!(
            "{}/helix/channels/ads?broadcaster_id={BROADCASTER_ID}",
            fake.base_url
        ))
        .bearer_auth(token)
        .header("Client-Id", gt_twitch::fake::FAKE_CLIENT_ID)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"][0]
        .clone()
}

#[tokio::test]
async fn schedule_reads_the_same_in_every_time_format() {
    let (fake, helix, token) = connected().await;
    let next = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
    let last = Utc.with_ymd_and_hms(2030, 1, 2, 2, 0, 0).unwrap();
    let set = FakeAdSchedule {
        snooze_count: 2,
        snooze_refresh_at: None,
        next_ad_at: Some(next),
        duration: 90,
        last_ad_at: Some(last),
        preroll_free_time: 600,
    };
    fake.set_ad_schedule(BROADCASTER_ID, set);
    fake.set_live(BROADCASTER_ID, true);
    let expected = AdSchedule {
        snooze_count: 2,
        snooze_refresh_at: None,
        next_ad_at: Some(next),
        duration: 90,
        last_ad_at: Some(last),
        preroll_free_time: 600,
    };
    // 2030-01-02T03:04:05Z is 1_893_553_445 s after the epoch (`date -u -d @1893553445`).
    for (format, wire_next, wire_none, wire_count) in [
        (
            AdTimeFormat::Rfc3339,
            json!("2030-01-02T03:04:05Z"),
            json!(""),
            json!(2),
        ),
        (
            AdTimeFormat::UnixSecondsString,
            json!("1893553445"),
            json!(""),
            json!("2"),
        ),
        (
            AdTimeFormat::UnixSecondsNumber,
            json!(1_893_553_445),
            json!(0),
            json!(2),
        ),
    ] {
        fake.set_ad_time_format(format);
        let wire = raw_schedule(&fake, &token).await;
        assert_eq!(wire["next_ad_at"], wire_next, "{format:?}: {wire}");
        assert_eq!(wire["snooze_refresh_at"], wire_none, "{format:?}: {wire}");
        assert_eq!(wire["snooze_count"], wire_count, "{format:?}: {wire}");
        let got = helix.get_ad_schedule(&token, BROADCASTER_ID).await.unwrap();
        assert_eq!(got, expected, "{format:?}");
    }

    // Offline: Twitch leaves the next and last ad empty; the rest stays.
    fake.set_live(BROADCASTER_ID, false);
    let offline = helix.get_ad_schedule(&token, BROADCASTER_ID).await.unwrap();
    assert_eq!(offline.next_ad_at, None);
    assert_eq!(offline.last_ad_at, None);
    assert_eq!(offline.snooze_count, 2);
    assert_eq!(offline.preroll_free_time, 600);
    assert_eq!(
        statuses(&fake, Endpoint::AdSchedule),
        vec![Some(200); 7],
        "three raw reads and four client reads"
    );
}

#[tokio::test]
async fn an_app_token_reads_the_schedule_when_the_broadcaster_granted_it() {
    let (fake, _, _) = connected().await;
    let app = OAuthClient::new(fake.config())
        .unwrap()
        .app_token()
        .await
        .unwrap();
    let helix = HelixClient::new(fake.config(), "unused").unwrap();
    let schedule = helix
        .get_ad_schedule(&app.access_token, BROADCASTER_ID)
        .await
        .unwrap();
    assert_eq!(schedule.snooze_count, 3);
    // Nobody granted anything for this channel.
    fake.add_user("4242", "someone");
    let refused = helix
        .get_ad_schedule(&app.access_token, "4242")
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            AdsError::MissingScope {
                scope: "channel:read:ads",
                ..
            }
        ),
        "{refused:?}"
    );
    // Snoozing needs the broadcaster's own token.
    let refused = helix
        .snooze_next_ad(&app.access_token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(matches!(refused, AdsError::Unauthorized(_)), "{refused:?}");
}

#[tokio::test]
async fn snoozes_push_the_next_ad_until_none_are_left() {
    let (fake, helix, token) = connected().await;
    let next = Utc::now().trunc_subsecs(0) + TimeDelta::minutes(3);
    fake.set_ad_schedule(
        BROADCASTER_ID,
        FakeAdSchedule {
            snooze_count: 2,
            next_ad_at: Some(next),
            ..FakeAdSchedule::default()
        },
    );
    fake.set_live(BROADCASTER_ID, true);
    fake.set_ad_time_format(AdTimeFormat::UnixSecondsString);
    let before = Utc::now();

    let first = helix.snooze_next_ad(&token, BROADCASTER_ID).await.unwrap();
    assert_eq!(first.snooze_count, 1);
    assert_eq!(first.next_ad_at, Some(next + TimeDelta::minutes(5)));
    // A snooze comes back an hour after the first one is spent.
    let refresh = first.snooze_refresh_at.expect("a snooze is spent");
    assert!(
        refresh >= before.trunc_subsecs(0) + TimeDelta::hours(1)
            && refresh <= Utc::now() + TimeDelta::hours(1),
        "{refresh}"
    );
    let second = helix.snooze_next_ad(&token, BROADCASTER_ID).await.unwrap();
    assert_eq!(second.snooze_count, 0);
    assert_eq!(second.next_ad_at, Some(next + TimeDelta::minutes(10)));
    assert_eq!(second.snooze_refresh_at, Some(refresh));

    let refused = helix
        .snooze_next_ad(&token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(matches!(refused, AdsError::NoSnoozesLeft(_)), "{refused:?}");
    assert!(!refused.is_transient() && !refused.needs_reconnect());
    // The endpoint's own 429 is an answer, not a rate limit: asked once, nothing changed.
    assert_eq!(
        statuses(&fake, Endpoint::SnoozeNextAd),
        [Some(200), Some(200), Some(429)]
    );
    let schedule = helix.get_ad_schedule(&token, BROADCASTER_ID).await.unwrap();
    assert_eq!(schedule.snooze_count, 0);
    assert_eq!(schedule.next_ad_at, Some(next + TimeDelta::minutes(10)));
    assert_eq!(schedule.snooze_refresh_at, Some(refresh));
}

#[tokio::test]
async fn snoozing_and_commercials_need_a_live_channel() {
    let (fake, helix, token) = connected().await;
    fake.set_ad_schedule(
        BROADCASTER_ID,
        FakeAdSchedule {
            next_ad_at: Some(Utc::now() + TimeDelta::minutes(10)),
            ..FakeAdSchedule::default()
        },
    );
    let refused = helix
        .start_commercial(&token, BROADCASTER_ID, 60)
        .await
        .unwrap_err();
    assert!(matches!(refused, AdsError::NotLive(_)), "{refused:?}");
    assert_eq!(statuses(&fake, Endpoint::StartCommercial), [Some(400)]);
    let refused = helix
        .snooze_next_ad(&token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(matches!(refused, AdsError::NotLive(_)), "{refused:?}");
    assert!(fake.ad_breaks(BROADCASTER_ID).is_empty());
    assert_eq!(fake.ad_schedule(BROADCASTER_ID).snooze_count, 3);
    assert_eq!(fake.ad_schedule(BROADCASTER_ID).last_ad_at, None);
}

#[tokio::test]
async fn a_commercial_sends_ad_break_begin_to_a_webhook_subscription() {
    let (fake, helix, token) = connected().await;
    fake.add_user("5150", "otherchannel");
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let app = OAuthClient::new(fake.config())
        .unwrap()
        .app_token()
        .await
        .unwrap();
    let app_helix = HelixClient::new(fake.config(), app.access_token).unwrap();
    let sub = app_helix
        .create_subscription(&SubscriptionRequest {
            kind: "channel.ad_break.begin".into(),
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
    assert_eq!(
        fake.subscription_status(&sub.id).as_deref(),
        Some("enabled")
    );
    fake.set_live(BROADCASTER_ID, true);

    let before = Utc::now();
    let started = helix
        .start_commercial(&token, BROADCASTER_ID, 90)
        .await
        .unwrap();
    let after = Utc::now();
    assert_eq!(
        started,
        CommercialStarted {
            length: 90,
            message: String::new(),
            retry_after: 480,
        }
    );
    fake.settle().await;

    let got = receiver.notifications();
    assert_eq!(got.len(), 1, "{:?}", receiver.received());
    let n = &got[0];
    assert_eq!(
        n.headers["twitch-eventsub-subscription-type"],
        "channel.ad_break.begin"
    );
    let body = n.json();
    assert_eq!(body["subscription"]["id"], sub.id.as_str());
    let event = &body["event"];
    assert_eq!(event["duration_seconds"], 90);
    assert_eq!(event["is_automatic"], false);
    assert_eq!(event["broadcaster_user_id"], BROADCASTER_ID);
    assert_eq!(event["broadcaster_user_login"], BROADCASTER_LOGIN);
    assert_eq!(event["requester_user_id"], BROADCASTER_ID);
    assert_eq!(event["requester_user_login"], BROADCASTER_LOGIN);
    let started_at: DateTime<Utc> = event["started_at"].as_str().unwrap().parse().unwrap();
    assert!(before <= started_at && started_at <= after, "{started_at}");
    // The crate's own event model reads it.
    let Event::AdBreakBegin(typed) = Event::parse("channel.ad_break.begin", event.clone()).unwrap()
    else {
        panic!("not an ad break")
    };
    assert_eq!((typed.duration_seconds, typed.is_automatic), (90, false));

    // The schedule moved on: last ad now, the next one an hour after this break ends.
    let schedule = helix.get_ad_schedule(&token, BROADCASTER_ID).await.unwrap();
    assert_eq!(schedule.last_ad_at, Some(started_at.trunc_subsecs(0)));
    assert_eq!(
        schedule.next_ad_at,
        Some(started_at.trunc_subsecs(0) + TimeDelta::seconds(90) + TimeDelta::hours(1))
    );
    let breaks = fake.ad_breaks(BROADCASTER_ID);
    assert_eq!(breaks.len(), 1);
    assert_eq!(breaks[0].started_at, started_at);
    assert!(!breaks[0].is_automatic);

    // Another channel's break goes nowhere.
    fake.set_live("5150", true);
    fake.run_scheduled_ad("5150").await;
    assert_eq!(receiver.notifications().len(), 1);
}

#[tokio::test]
async fn a_scheduled_ad_sends_an_automatic_ad_break_begin() {
    let (fake, _, _) = connected().await;
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let app = OAuthClient::new(fake.config())
        .unwrap()
        .app_token()
        .await
        .unwrap();
    HelixClient::new(fake.config(), app.access_token)
        .unwrap()
        .create_subscription(&SubscriptionRequest {
            kind: "channel.ad_break.begin".into(),
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
    fake.set_ad_schedule(
        BROADCASTER_ID,
        FakeAdSchedule {
            duration: 120,
            ..FakeAdSchedule::default()
        },
    );
    fake.set_live(BROADCASTER_ID, true);
    let ids = fake.run_scheduled_ad(BROADCASTER_ID).await;
    assert_eq!(ids.len(), 1);
    let got = receiver.notifications();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, ids[0]);
    let event = &got[0].json()["event"];
    assert_eq!(event["duration_seconds"], 120);
    assert_eq!(event["is_automatic"], true);
}

#[tokio::test]
async fn a_second_commercial_waits_for_retry_after() {
    let (fake, helix, token) = connected().await;
    fake.set_live(BROADCASTER_ID, true);
    let first = helix
        .start_commercial(&token, BROADCASTER_ID, 30)
        .await
        .unwrap();
    assert_eq!(first.retry_after, 480);
    let refused = helix
        .start_commercial(&token, BROADCASTER_ID, 30)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AdsError::CommercialCooldown(_)),
        "{refused:?}"
    );
    assert!(!refused.is_transient());
    assert_eq!(fake.ad_breaks(BROADCASTER_ID).len(), 1);
    // Asked once: the cooldown is Twitch's answer, not a budget to wait out.
    assert_eq!(
        statuses(&fake, Endpoint::StartCommercial),
        [Some(200), Some(429)]
    );
    // Eight minutes later it runs again.
    fake.end_commercial_cooldown(BROADCASTER_ID);
    let again = helix
        .start_commercial(&token, BROADCASTER_ID, 180)
        .await
        .unwrap();
    assert_eq!((again.length, again.retry_after), (180, 480));
    assert_eq!(fake.ad_breaks(BROADCASTER_ID).len(), 2);
}

#[tokio::test]
async fn out_of_range_lengths_are_refused_before_asking_twitch() {
    let (fake, helix, token) = connected().await;
    fake.set_live(BROADCASTER_ID, true);
    for length in [0, 181, 600] {
        let refused = helix
            .start_commercial(&token, BROADCASTER_ID, length)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, AdsError::InvalidArgument(_)),
            "{length}: {refused:?}"
        );
    }
    let refused = helix.get_ad_schedule(&token, "").await.unwrap_err();
    assert!(matches!(refused, AdsError::InvalidArgument(_)));
    assert!(requests_to(&fake, Endpoint::StartCommercial).is_empty());
    assert!(requests_to(&fake, Endpoint::AdSchedule).is_empty());
}

#[tokio::test]
async fn each_endpoint_needs_its_scope() {
    let fake = fake().await;
    fake.set_live(BROADCASTER_ID, true);
    fake.set_ad_schedule(
        BROADCASTER_ID,
        FakeAdSchedule {
            next_ad_at: Some(Utc::now() + TimeDelta::minutes(10)),
            ..FakeAdSchedule::default()
        },
    );
    let helix = HelixClient::new(fake.config(), "unused").unwrap();
    // Read only: the schedule works, snoozing and commercials do not.
    let read_only = connect(&fake.config(), &["channel:read:ads"]).await;
    helix
        .get_ad_schedule(&read_only.access_token, BROADCASTER_ID)
        .await
        .unwrap();
    let snooze = helix
        .snooze_next_ad(&read_only.access_token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(
        matches!(
            snooze,
            AdsError::MissingScope {
                scope: "channel:manage:ads",
                ..
            }
        ),
        "{snooze:?}"
    );
    assert!(snooze.needs_reconnect());
    let commercial = helix
        .start_commercial(&read_only.access_token, BROADCASTER_ID, 60)
        .await
        .unwrap_err();
    assert!(
        matches!(
            commercial,
            AdsError::MissingScope {
                scope: "channel:edit:commercial",
                ..
            }
        ),
        "{commercial:?}"
    );
    // Chat scopes only: not even the schedule.
    let chat_only = connect(&fake.config(), CHAT_SCOPES).await;
    let schedule = helix
        .get_ad_schedule(&chat_only.access_token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(
        matches!(
            schedule,
            AdsError::MissingScope {
                scope: "channel:read:ads",
                ..
            }
        ),
        "{schedule:?}"
    );
    // Twitch answers 401 for a missing scope; nothing changed.
    assert_eq!(statuses(&fake, Endpoint::SnoozeNextAd), [Some(401)]);
    assert_eq!(statuses(&fake, Endpoint::StartCommercial), [Some(401)]);
    assert_eq!(fake.ad_schedule(BROADCASTER_ID).snooze_count, 3);
    assert!(fake.ad_breaks(BROADCASTER_ID).is_empty());
}

#[tokio::test]
async fn another_users_token_cannot_touch_the_broadcasters_ads() {
    let fake = fake().await;
    fake.set_live(BROADCASTER_ID, true);
    fake.set_ad_schedule(
        BROADCASTER_ID,
        FakeAdSchedule {
            next_ad_at: Some(Utc::now() + TimeDelta::minutes(10)),
            ..FakeAdSchedule::default()
        },
    );
    fake.add_user("8675309", "mallory");
    fake.approve_as("mallory");
    let mallory = connect(&fake.config(), AD_SCOPES).await;
    let helix = HelixClient::new(fake.config(), "unused").unwrap();

    let schedule = helix
        .get_ad_schedule(&mallory.access_token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(
        matches!(schedule, AdsError::NotBroadcaster(_)),
        "{schedule:?}"
    );
    let snooze = helix
        .snooze_next_ad(&mallory.access_token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(matches!(snooze, AdsError::NotBroadcaster(_)), "{snooze:?}");
    let commercial = helix
        .start_commercial(&mallory.access_token, BROADCASTER_ID, 60)
        .await
        .unwrap_err();
    assert!(
        matches!(commercial, AdsError::NotBroadcaster(_)),
        "{commercial:?}"
    );
    assert!(commercial.needs_reconnect());
    assert_eq!(fake.ad_schedule(BROADCASTER_ID).snooze_count, 3);
    assert!(fake.ad_breaks(BROADCASTER_ID).is_empty());
    // Her own channel is hers.
    helix
        .get_ad_schedule(&mallory.access_token, "8675309")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_dead_token_is_unauthorized_not_a_reconnect() {
    let (fake, helix, token) = connected().await;
    fake.invalidate_access_tokens(BROADCASTER_ID);
    let refused = helix
        .get_ad_schedule(&token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(matches!(refused, AdsError::Unauthorized(_)), "{refused:?}");
    assert!(!refused.needs_reconnect() && !refused.is_transient());
}

#[tokio::test]
async fn only_what_cannot_have_happened_is_retried() {
    let (fake, helix, token) = connected().await;
    fake.set_live(BROADCASTER_ID, true);
    fake.set_ad_schedule(
        BROADCASTER_ID,
        FakeAdSchedule {
            next_ad_at: Some(Utc::now() + TimeDelta::minutes(10)),
            ..FakeAdSchedule::default()
        },
    );
    // Reading is safe to repeat: a 503 is retried inside the call.
    fake.push_fault(
        Endpoint::AdSchedule,
        FaultKind::ServerError { status: 503 },
        1,
    );
    helix.get_ad_schedule(&token, BROADCASTER_ID).await.unwrap();
    assert_eq!(
        statuses(&fake, Endpoint::AdSchedule),
        [Some(503), Some(200)]
    );
    // A snooze answered 503 may have happened: not repeated, reported as transient.
    fake.push_fault(
        Endpoint::SnoozeNextAd,
        FaultKind::ServerError { status: 503 },
        1,
    );
    let failed = helix
        .snooze_next_ad(&token, BROADCASTER_ID)
        .await
        .unwrap_err();
    assert!(
        matches!(failed, AdsError::Transient(_)) && failed.is_transient(),
        "{failed:?}"
    );
    assert_eq!(statuses(&fake, Endpoint::SnoozeNextAd), [Some(503)]);
    // An exhausted request budget (429, Ratelimit-Remaining: 0) means it was not done: waited
    // out and sent again.
    fake.push_fault(
        Endpoint::SnoozeNextAd,
        FaultKind::RateLimited {
            reset_in: Duration::from_millis(200),
        },
        1,
    );
    let snoozed = helix.snooze_next_ad(&token, BROADCASTER_ID).await.unwrap();
    assert_eq!(snoozed.snooze_count, 2);
    assert_eq!(
        statuses(&fake, Endpoint::SnoozeNextAd),
        [Some(503), Some(429), Some(200)]
    );
    // A budget that stays empty ends the call with the wait to honour.
    fake.push_fault(
        Endpoint::StartCommercial,
        FaultKind::RateLimited {
            reset_in: Duration::from_secs(30),
        },
        1,
    );
    let limited = helix
        .start_commercial(&token, BROADCASTER_ID, 60)
        .await
        .unwrap_err();
    let AdsError::RateLimited { retry_after, .. } = limited else {
        panic!("{limited:?}")
    };
    assert!(retry_after > Duration::from_secs(25), "{retry_after:?}");
    assert!(fake.ad_breaks(BROADCASTER_ID).is_empty());
}
