//! `bench/webhook`: signed `channel.chat.message` notifications at increasing rates against the
//! real API (`POST /eventsub/webhook`, verification, batched idempotent storage) and Postgres,
//! sent by the local stand-in for Twitch's webhook sender (`gt_twitch::fake`, which signs with
//! its own HMAC code), with 10 % of the messages delivered a second time. Each level sends
//! open-loop at its rate for a few seconds; latency is what the sender measures from request to
//! response. After each level every sent message must be stored exactly once.
//!
//! The sustained rate is the highest level whose p99 stays under 20 ms with nothing lost and at
//! least 95 % of the rate achieved. The goal (issue 12) is 5000 messages/s on this box:
//! `webhook msgs_per_s=X p99_ms=Y lost=0 ratio=X/5000`.
//!
//! ```sh
//! cargo run --release -p gt-bench --bin webhook [-- --seconds 5 --levels 500,1000,2000,5000,10000]
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use gt_auth::token_box::{TWITCH_TOKENS, TokenKey};
use gt_tests::{ALICE, AppOptions, TestApp};
use gt_twitch::app::TwitchApp;
use gt_twitch::fake::{DeliveryPolicy, FakeTwitch, MessageType, WebhookFault};
use gt_twitch::helix::{HelixClient, SubscriptionRequest, Transport};
use gt_twitch::oauth::OAuthClient;
use serde_json::json;

const SECRET: &str = "bench-eventsub-secret-0123456789";
const GOAL: f64 = 5000.0;
const P99_LIMIT_MS: f64 = 20.0;

#[derive(Parser)]
struct Args {
    /// Seconds each level sends for.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Target rates, messages per second.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "500,1000,2000,3000,5000,7500,10000"
    )]
    levels: Vec<f64>,
    /// Concurrent requests at most (the sender's connection pool).
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
}

struct Level {
    target: f64,
    achieved: f64,
    p50_ms: f64,
    p99_ms: f64,
    sent: usize,
    redelivered: usize,
    lost: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fake = Arc::new(FakeTwitch::start().await);
    fake.add_user("1001", "bench_streamer");
    let app = TestApp::start_with(AppOptions {
        twitch: Some(TwitchApp::new(
            fake.config(),
            "http://127.0.0.1:5173/twitch/callback".into(),
            TokenKey::derive(&[7; 32], TWITCH_TOKENS)?,
            SECRET.into(),
            None,
        )),
        ..AppOptions::api_only()
    })
    .await?;
    // The broadcaster grants chat scopes to the app (the consent Twitch requires before an app
    // token may subscribe to chat), and its owner is recorded as connecting Twitch does.
    fake.approve_as("bench_streamer");
    let redirect = "http://127.0.0.1:5173/twitch/callback";
    let consent = gt_twitch::oauth::authorization_url(
        &fake.config(),
        redirect,
        &["user:read:chat", "user:bot", "channel:bot"],
        "bench",
    )?;
    let reply = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .get(consent.as_str())
        .send()
        .await?;
    let location = url::Url::parse(reply.headers()["location"].to_str()?)?;
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| anyhow::anyhow!("no code in {location}"))?;
    OAuthClient::new(fake.config())?
        .exchange_code(&code, redirect)
        .await?;
    gt_store::ChatStore::connect_twitch_channel(&app.store, ALICE, "1001", "bench_streamer")
        .await?;
    let token = OAuthClient::new(fake.config())?.app_token().await?;
    HelixClient::new(fake.config(), token.access_token)?
        .create_subscription(&SubscriptionRequest {
            kind: "channel.chat.message".into(),
            version: "1".into(),
            condition: json!({"broadcaster_user_id": "1001", "user_id": "1001"}),
            transport: Transport::Webhook {
                callback: format!("{}/eventsub/webhook", app.base),
                secret: SECRET.into(),
            },
        })
        .await?;
    fake.settle().await;
    fake.set_delivery_policy(DeliveryPolicy {
        attempts: 1,
        response_timeout: Duration::from_secs(10),
        failures_before_revocation: u32::MAX,
        ..DeliveryPolicy::default()
    });

    let mut sent_ids: HashSet<String> = HashSet::new();
    let mut levels = Vec::new();
    // Warm-up: connections, prepared statements.
    for i in 0..200 {
        sent_ids.insert(fake.send_chat("1001", "warmup", &format!("warm {i}")).await);
    }
    for &target in &args.levels {
        let first_delivery = fake.deliveries().len();
        let total = (target * args.seconds).round() as usize;
        let permits = Arc::new(tokio::sync::Semaphore::new(args.in_flight));
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(total);
        let mut redelivered = 0;
        for i in 0..total {
            // Open loop: message i leaves at i / target seconds.
            let due = start + Duration::from_secs_f64(i as f64 / target);
            tokio::time::sleep_until(due.into()).await;
            if i % 10 == 0 {
                fake.push_webhook_fault(WebhookFault::Redeliver { extra: 1 });
                redelivered += 1;
            }
            let permit = permits.clone().acquire_owned().await?;
            let fake = fake.clone();
            tasks.push(tokio::spawn(async move {
                let id = fake
                    .send_chat(
                        "1001",
                        &format!("viewer{}", i % 997),
                        &format!("message {i} Kappa"),
                    )
                    .await;
                drop(permit);
                id
            }));
        }
        for t in tasks {
            sent_ids.insert(t.await?);
        }
        let wall = start.elapsed().as_secs_f64();
        let deliveries: Vec<_> = fake.deliveries()[first_delivery..]
            .iter()
            .filter(|d| d.message_type == MessageType::Notification)
            .cloned()
            .collect();
        let acknowledged = deliveries.iter().filter(|d| d.acknowledged()).count();
        let mut ms: Vec<f64> = deliveries
            .iter()
            .map(|d| d.latency.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT id FROM chat_messages WHERE user_id = $1")
                .bind(ALICE)
                .fetch_all(app.store.pool())
                .await?;
        let stored: HashSet<String> = stored.into_iter().collect();
        let lost =
            sent_ids.difference(&stored).count() + stored.len().saturating_sub(sent_ids.len());
        let level = Level {
            target,
            achieved: acknowledged as f64 / wall,
            p50_ms: percentile(&ms, 0.5),
            p99_ms: percentile(&ms, 0.99),
            sent: total,
            redelivered,
            lost,
        };
        println!(
            "level {:>6.0}/s: achieved {:>7.0}/s over {:.1} s, {} messages + {} redeliveries, \
             p50 {:.2} ms, p99 {:.2} ms, unanswered {}, lost {}",
            level.target,
            level.achieved,
            wall,
            level.sent,
            level.redelivered,
            level.p50_ms,
            level.p99_ms,
            deliveries.len() - acknowledged,
            level.lost
        );
        let failed = level.lost > 0 || level.p99_ms >= P99_LIMIT_MS * 5.0;
        levels.push(level);
        if failed {
            break;
        }
    }
    let sustained = levels
        .iter()
        .filter(|l| l.lost == 0 && l.p99_ms < P99_LIMIT_MS && l.achieved >= 0.95 * l.target)
        .max_by(|a, b| a.target.total_cmp(&b.target));
    let lost: usize = levels.iter().map(|l| l.lost).max().unwrap_or(0);
    let (rate, p99) = sustained.map_or((0.0, f64::NAN), |l| (l.achieved, l.p99_ms));
    app.stop().await;
    println!(
        "webhook msgs_per_s={rate:.0} p99_ms={p99:.2} lost={lost} ratio={:.2}",
        rate / GOAL
    );
    Ok(())
}
