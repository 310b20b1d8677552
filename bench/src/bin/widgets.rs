//! `bench/widgets`: live OBS widgets at scale. 10 000 WebSocket clients (OBS pages, each with
//! its widget's token) subscribe across 100 text-overlay widgets (100 pages each) on one API
//! process (`gt-api`, release); a dashboard connection (the user's JWT) on a second API process
//! then changes every widget at once, round after round. Each action goes the production way:
//! the dashboard's API applies it through the widget's state machine in a locked Postgres
//! write, the trigger's NOTIFY reaches the pages' API, whose hub reads the row once and fans
//! the update out. Latency is from sending the action to receipt at each page (all
//! clients are in this process, so both ends read one clock).
//!
//! The goal (issue 13) is p99 < 100 ms for every client on this box:
//! `widgets subscribers=10000 p50_ms=X p99_ms=Y ratio=100/p99`.
//!
//! ```sh
//! cargo run --release -p gt-bench --bin widgets [-- --widgets 100 --pages 100 --rounds 10]
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use gt_tests::{ALICE, AppOptions, TestApp};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// Widgets (each gets the same number of pages).
    #[arg(long, default_value_t = 100)]
    widgets: usize,
    /// Pages (WebSocket clients) per widget.
    #[arg(long, default_value_t = 100)]
    pages: usize,
    /// Rounds; each changes every widget once.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Enough file descriptors for both ends of every connection.
fn raise_fd_limit(needed: u64) -> anyhow::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            anyhow::bail!("getrlimit failed");
        }
        if limit.rlim_cur < needed {
            // Raising the hard limit needs root (CAP_SYS_RESOURCE); otherwise go up to it.
            let raised = libc::rlimit {
                rlim_cur: needed,
                rlim_max: limit.rlim_max.max(needed),
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            } else {
                limit.rlim_cur = needed.min(limit.rlim_max);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    anyhow::bail!("setrlimit failed");
                }
            }
        }
    }
    anyhow::ensure!(
        limit.rlim_cur >= needed,
        "this bench needs {needed} open files; the hard limit is {}",
        limit.rlim_max
    );
    Ok(())
}

type Sent = Arc<Mutex<HashMap<String, Instant>>>;

/// The part of a `WIDGET_STATE_UPDATE` a page of this bench reads.
#[derive(serde::Deserialize)]
struct Update<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default, borrow)]
    state: UpdateState<'a>,
}

#[derive(serde::Deserialize, Default)]
struct UpdateState<'a> {
    #[serde(default, borrow)]
    text: Option<&'a str>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let subscribers = args.widgets * args.pages;
    // This process holds the pages' ends; the API process serving them (which inherits the
    // limit) holds the other ends.
    raise_fd_limit(subscribers as u64 + 1024)?;
    let app = TestApp::start_with(AppOptions::api_only()).await?;
    let port = gt_tests::free_port();
    let mut pages_api = app.api_process(port).spawn()?;
    let ws_base = format!("ws://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "the pages' API never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut widgets = Vec::new();
    for i in 0..args.widgets {
        let (s, b) = app
            .post(
                ALICE,
                "/records/stream_widgets",
                json!({"title": format!("Banner {i}"), "type": "text_overlay",
                       "config": {"text": "starting"}}),
            )
            .await;
        anyhow::ensure!(s == 201, "creating a widget: {s} {b}");
        widgets.push((
            b["id"].as_str().unwrap().to_string(),
            b["access_token"].as_str().unwrap().to_string(),
        ));
    }

    // Every page connects and subscribes; receipt times go to one channel.
    let sent: Sent = Arc::default();
    let (latency_tx, mut latency_rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let connecting = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    for (id, token) in &widgets {
        for _ in 0..args.pages {
            let url = format!("{ws_base}/ws?token={token}");
            let (id, sent, latency_tx, ready_tx, gate) = (
                id.clone(),
                sent.clone(),
                latency_tx.clone(),
                ready_tx.clone(),
                gate.clone(),
            );
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.unwrap();
                let (mut ws, _) = tokio_tungstenite::connect_async(url)
                    .await
                    .expect("connect");
                let subscribe = json!({"type": "WIDGET_SUBSCRIBE", "widgetId": id});
                ws.send(Message::Text(subscribe.to_string().into()))
                    .await
                    .unwrap();
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(t) = msg else { continue };
                    let v: Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some("WIDGET_INITIAL_STATE") => {
                            drop(permit);
                            let _ = ready_tx.send(());
                            break;
                        }
                        _ => continue,
                    }
                }
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(t) = msg else { continue };
                    let received = Instant::now();
                    // The pages share the two cores with the API: read only what is needed.
                    let Ok(update) = serde_json::from_str::<Update>(&t) else {
                        continue;
                    };
                    if update.kind != "WIDGET_STATE_UPDATE" {
                        continue;
                    }
                    let Some(text) = update.state.text else {
                        continue;
                    };
                    let at = sent.lock().unwrap().get(text).copied();
                    if let Some(at) = at {
                        let _ = latency_tx.send((received - at).as_secs_f64() * 1000.0);
                    }
                }
            });
        }
    }
    drop(ready_tx);
    for _ in 0..subscribers {
        ready_rx.recv().await.expect("a page failed to subscribe");
    }
    eprintln!(
        "{subscribers} pages subscribed in {:.1} s",
        connecting.elapsed().as_secs_f64()
    );

    // The dashboard: one JWT connection to the main API sending every widget's action each
    // round; the change reaches the pages' API through Postgres.
    let url = format!(
        "{}/ws?token={}",
        app.base.replacen("http", "ws", 1),
        app.token(ALICE)
    );
    let (dash, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut dash_tx, mut dash_rx) = dash.split();
    let responses = tokio::spawn(async move {
        let mut ok = 0usize;
        while let Some(Ok(msg)) = dash_rx.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "WIDGET_ACTION_RESPONSE" {
                    assert_eq!(v["success"], true, "{v}");
                    ok += 1;
                }
            }
        }
        ok
    });
    let mut latencies = Vec::with_capacity(subscribers * args.rounds);
    for round in 0..args.rounds {
        for (i, (id, _)) in widgets.iter().enumerate() {
            let text = format!("round {round} widget {i}");
            sent.lock().unwrap().insert(text.clone(), Instant::now());
            let action = json!({"type": "WIDGET_ACTION", "widgetId": id, "action": "set_text",
                                "payload": {"text": text}});
            dash_tx
                .send(Message::Text(action.to_string().into()))
                .await?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while latencies.len() < subscribers * (round + 1) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, latency_rx.recv()).await {
                Ok(Some(ms)) => latencies.push(ms),
                _ => anyhow::bail!(
                    "round {round}: only {} of {} updates arrived",
                    latencies.len() - subscribers * round,
                    subscribers
                ),
            }
        }
        // Let the round settle so rounds do not overlap.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    dash_tx.close().await.ok();
    let acknowledged = responses.await?;
    latencies.sort_by(f64::total_cmp);
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let max = latencies.last().copied().unwrap_or(f64::NAN);
    let min = latencies.first().copied().unwrap_or(f64::NAN);
    eprintln!(
        "{} updates received ({} actions acknowledged): min {min:.1} ms, p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        latencies.len(),
        acknowledged
    );
    println!(
        "widgets subscribers={subscribers} p50_ms={p50:.1} p99_ms={p99:.1} ratio={:.2}",
        100.0 / p99
    );
    let _ = pages_api.kill();
    let _ = pages_api.wait();
    app.stop().await;
    Ok(())
}
