//! OBS widgets over the WebSocket: permissions of user and widget tokens, the protocol the
//! original front end speaks, fan-out across API processes, durable timers that outlive the
//! workers, and Twitch (ad breaks, chat) driving the ad timer and the chat overlay.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use gt_tests::{ALICE, AppOptions, BOB, Socket, TestApp, free_port, websocket, websocket_with};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::twitch::{ALICE_LOGIN, capturing, eventually, fake};

/// A client connection and the messages an `act` read past while waiting for its answer.
struct Conn {
    ws: Socket,
    pending: std::collections::VecDeque<Value>,
}

fn conn(ws: Socket) -> Conn {
    Conn {
        ws,
        pending: Default::default(),
    }
}

async fn send(c: &mut Conn, message: Value) {
    c.ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next message, from those read past first.
async fn next_message(c: &mut Conn, left: Duration, what: &str) -> Option<Value> {
    if let Some(v) = c.pending.pop_front() {
        return Some(v);
    }
    match tokio::time::timeout(left, c.ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => Some(serde_json::from_str(&t).unwrap()),
        Ok(Some(Ok(Message::Close(frame)))) => panic!("closed ({frame:?}) waiting for {what}"),
        Ok(Some(Ok(_))) => None,
        Ok(other) => panic!("connection ended ({other:?}) waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The next message matching `want` within `within` (others are skipped); panics otherwise.
async fn next_where(
    c: &mut Conn,
    within: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Some(v) = next_message(c, left, what).await
            && want(&v)
        {
            return v;
        }
    }
}

fn of_type<'a>(kind: &'a str, widget: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| v["type"] == kind && v["widgetId"] == widget
}

async fn subscribe(ws: &mut Conn, widget: &str) -> Value {
    send(ws, json!({"type": "WIDGET_SUBSCRIBE", "widgetId": widget})).await;
    next_where(ws, Duration::from_secs(10), "the initial state", |v| {
        v["widgetId"] == widget
            && (v["type"] == "WIDGET_INITIAL_STATE" || v["type"] == "WIDGET_ACTION_RESPONSE")
    })
    .await
}

async fn act(ws: &mut Conn, widget: &str, action: &str, payload: Value) -> Value {
    send(
        ws,
        json!({"type": "WIDGET_ACTION", "widgetId": widget, "action": action, "payload": payload}),
    )
    .await;
    // Updates may arrive before the answer: keep them for the next `next_where`.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut read_past = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let v = match tokio::time::timeout(left, ws.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t).unwrap(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no answer to {action}: {other:?}"),
        };
        if v["type"] == "WIDGET_ACTION_RESPONSE" && v["widgetId"] == widget && v["action"] == action
        {
            ws.pending.extend(read_past);
            return v;
        }
        read_past.push(v);
    }
}

/// Waits for the server to close the connection; returns the close code.
async fn closed(c: &mut Conn, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, c.ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(_) => return None,
            Err(_) => panic!("the connection was not closed"),
        }
    }
}

async fn create_widget(app: &TestApp, user: &str, body: Value) -> Value {
    let (s, b) = app.post(user, "/records/stream_widgets", body).await;
    assert_eq!(s, 201, "{b}");
    b
}

async fn stored_state(app: &TestApp, user: &str, id: &str) -> Value {
    let (s, b) = app
        .get(user, &format!("/records/stream_widgets/{id}"))
        .await;
    assert_eq!(s, 200, "{b}");
    b["state"].clone()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("a time, got {v}"))
        .with_timezone(&Utc)
}

/// Every permission and protocol rule, with one API process and no workers.
#[tokio::test]
async fn widget_tokens_view_one_widget_and_users_control_their_own() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();
    // Bad configs are refused and create nothing.
    for (config, why) in [
        (json!({"duration": -5}), "negative duration"),
        (
            json!({"mode": "until", "target": "2026-13-40T99:00", "timezone": "UTC"}),
            "bad target",
        ),
        (
            json!({"mode": "until", "target": "2026-12-01T10:00", "timezone": "Mars/Olympus"}),
            "bad zone",
        ),
        (json!({"width": 5}), "width below 100"),
    ] {
        let (s, b) = app
            .post(
                ALICE,
                "/records/stream_widgets",
                json!({"title": "t", "type": "countdown", "config": config}),
            )
            .await;
        assert_eq!(s, 400, "{why}: {b}");
    }
    let (s, b) = app.get(ALICE, "/records/stream_widgets").await;
    assert_eq!(s, 200);
    assert_eq!(
        b["items"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );

    let countdown = create_widget(
        &app,
        ALICE,
        json!({"title": "Starting soon", "type": "countdown", "config": {"duration": 300},
               "showOnDashboard": true, "access_token": "client-chosen"}),
    )
    .await;
    let id = countdown["id"].as_str().unwrap().to_string();
    let token = countdown["access_token"].as_str().unwrap().to_string();
    assert_ne!(token, "client-chosen", "the token is the server's");
    assert_eq!(
        countdown["state"]["enabled"], false,
        "initial state filled in"
    );
    assert_eq!(countdown["state"]["duration_left"], 300.0);
    let banner = create_widget(
        &app,
        ALICE,
        json!({"title": "Now", "type": "text_overlay", "config": {"text": "Hello"}}),
    )
    .await;
    let banner_id = banner["id"].as_str().unwrap().to_string();

    // The dashboard (Alice's JWT): subscribe is idempotent and always answers the state.
    let mut dash = conn(websocket(&app, ALICE).await);
    send(&mut dash, json!({"event": "subscribe"})).await;
    for _ in 0..2 {
        let initial = subscribe(&mut dash, &id).await;
        assert_eq!(initial["type"], "WIDGET_INITIAL_STATE", "{initial}");
        assert_eq!(initial["widget"]["id"], id.as_str());
        assert_eq!(initial["widget"]["access_token"], token.as_str());
    }
    send(
        &mut dash,
        json!({"type": "WIDGET_UNSUBSCRIBE", "widgetId": id}),
    )
    .await;
    send(
        &mut dash,
        json!({"type": "WIDGET_UNSUBSCRIBE", "widgetId": id}),
    )
    .await;
    assert_eq!(
        subscribe(&mut dash, &id).await["type"],
        "WIDGET_INITIAL_STATE"
    );

    // The OBS page (the widget token): its widget only, without the token, read-only.
    let mut obs = conn(websocket_with(&app, &token).await);
    let initial = subscribe(&mut obs, &id).await;
    assert_eq!(initial["type"], "WIDGET_INITIAL_STATE", "{initial}");
    assert!(initial["widget"].get("access_token").is_none(), "{initial}");
    let refused = subscribe(&mut obs, &banner_id).await;
    assert_eq!(refused["type"], "WIDGET_ACTION_RESPONSE");
    assert_eq!(refused["success"], false, "{refused}");

    // Alice starts it: both connections see the new state.
    let before = Utc::now();
    let r = act(&mut dash, &id, "start", json!({})).await;
    assert_eq!(r["success"], true, "{r}");
    for ws in [&mut dash, &mut obs] {
        let update = next_where(
            ws,
            Duration::from_secs(5),
            "the started state",
            of_type("WIDGET_STATE_UPDATE", &id),
        )
        .await;
        assert_eq!(update["state"]["enabled"], true, "{update}");
        let tick = time(&update["state"]["last_tick_timestamp"]);
        assert!(
            tick >= before - chrono::TimeDelta::seconds(1) && tick <= Utc::now(),
            "{tick}"
        );
    }
    // The OBS page may not act; nothing changes.
    let stored = stored_state(&app, ALICE, &id).await;
    let r = act(&mut obs, &id, "pause", json!({})).await;
    assert_eq!(r["success"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("read-only"), "{r}");
    assert_eq!(stored_state(&app, ALICE, &id).await, stored);
    // A bad payload is refused with a reason and changes nothing.
    let r = act(&mut dash, &id, "set_duration", json!({"duration": -1})).await;
    assert_eq!(r["success"], false, "{r}");
    let r = act(&mut dash, &id, "explode", json!({})).await;
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(stored_state(&app, ALICE, &id).await, stored);
    // Unreadable messages get an error, not a closed connection.
    dash.ws
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    next_where(&mut dash, Duration::from_secs(5), "an error", |v| {
        v["type"] == "ERROR"
    })
    .await;

    // Bob: Alice's widget does not exist for him, over the socket or over REST.
    let mut bob = conn(websocket(&app, BOB).await);
    let r = subscribe(&mut bob, &id).await;
    assert_eq!(
        (r["type"].as_str(), r["success"].as_bool()),
        (Some("WIDGET_ACTION_RESPONSE"), Some(false)),
        "{r}"
    );
    let r = act(&mut bob, &id, "reset", json!({})).await;
    assert_eq!(r["success"], false, "{r}");
    let (s, _) = app
        .put(
            BOB,
            &format!("/records/stream_widgets/{id}"),
            json!({"config": {"duration": 1}}),
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(stored_state(&app, ALICE, &id).await, stored);

    // A PUT of the config reaches every page as WIDGET_CONFIG_UPDATE.
    let (s, b) = app
        .put(
            ALICE,
            &format!("/records/stream_widgets/{id}"),
            json!({"config": {"duration": 120, "fontSize": 3}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for ws in [&mut dash, &mut obs] {
        let update = next_where(
            ws,
            Duration::from_secs(5),
            "the config",
            of_type("WIDGET_CONFIG_UPDATE", &id),
        )
        .await;
        assert_eq!(update["config"]["duration"], 120, "{update}");
        assert_eq!(update["config"]["fontSize"], 3);
    }
    let (s, _) = app
        .put(ALICE, &format!("/records/stream_widgets/{id}"), json!({"config": {"timezone": "Nowhere/Else", "mode": "until", "target": "2030-01-01T00:00"}}))
        .await;
    assert_eq!(s, 400, "a bad config in a PUT is refused");
    assert_eq!(stored_state(&app, ALICE, &id).await, stored);

    // A reconnecting page gets the current state.
    let mut again = conn(websocket_with(&app, &token).await);
    let initial = subscribe(&mut again, &id).await;
    assert_eq!(
        initial["widget"]["state"],
        stored_state(&app, ALICE, &id).await
    );
    drop(again);

    // The front end's edit form sends the whole record back: saving keeps the token (and the
    // pages using it).
    let (_, mut record) = app
        .get(ALICE, &format!("/records/stream_widgets/{id}"))
        .await;
    record["title"] = json!("Starting very soon");
    let (s, b) = app
        .put(ALICE, &format!("/records/stream_widgets/{id}"), record)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["access_token"],
        token.as_str(),
        "an echoed token is not a rotation"
    );
    assert_eq!(b["title"], "Starting very soon");

    // Rotating the token closes the pages that used it; the old URL stops working.
    let (s, b) = app
        .put(
            ALICE,
            &format!("/records/stream_widgets/{id}"),
            json!({"access_token": "x"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let new_token = b["access_token"].as_str().unwrap().to_string();
    assert_ne!(new_token, token);
    assert_eq!(closed(&mut obs, Duration::from_secs(5)).await, Some(4001));
    let url = format!("{}/ws?token={token}", app.base.replacen("http", "ws", 1));
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "the old token is refused"
    );
    let mut fresh = conn(websocket_with(&app, &new_token).await);
    assert_eq!(
        subscribe(&mut fresh, &id).await["type"],
        "WIDGET_INITIAL_STATE"
    );
    // The dashboard (JWT) stays connected through the rotation.
    let r = act(&mut dash, &id, "pause", json!({})).await;
    assert_eq!(r["success"], true, "{r}");
    let update = next_where(
        &mut fresh,
        Duration::from_secs(5),
        "the paused state",
        of_type("WIDGET_STATE_UPDATE", &id),
    )
    .await;
    assert_eq!(update["state"]["enabled"], false);

    // Deleting the widget closes its OBS pages.
    let (s, _) = app
        .delete(ALICE, &format!("/records/stream_widgets/{id}"))
        .await;
    assert_eq!(s, 204);
    assert_eq!(closed(&mut fresh, Duration::from_secs(5)).await, Some(4001));
    app.stop().await;
}

/// A page on one API process sees what a dashboard on another does (Postgres fan-out).
#[tokio::test]
async fn a_page_on_another_api_process_follows_the_dashboard() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();
    let widget = create_widget(
        &app,
        ALICE,
        json!({"title": "Now", "type": "text_overlay", "config": {"text": "Soon"}}),
    )
    .await;
    let id = widget["id"].as_str().unwrap().to_string();
    let token = widget["access_token"].as_str().unwrap().to_string();
    let port = free_port();
    let mut other = app.api_process(port).spawn().unwrap();
    let url = format!("ws://127.0.0.1:{port}/ws?token={token}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut obs = loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((ws, _)) => break conn(ws),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the second API never answered: {e}"),
        }
    };
    assert_eq!(
        subscribe(&mut obs, &id).await["type"],
        "WIDGET_INITIAL_STATE"
    );
    let mut dash = conn(websocket(&app, ALICE).await);
    let r = act(
        &mut dash,
        &id,
        "set_text",
        json!({"text": "Talking about Rust"}),
    )
    .await;
    assert_eq!(r["success"], true, "{r}");
    let update = next_where(
        &mut obs,
        Duration::from_secs(5),
        "the new text",
        of_type("WIDGET_STATE_UPDATE", &id),
    )
    .await;
    assert_eq!(update["state"]["text"], "Talking about Rust");
    let r = act(&mut dash, &id, "hide", json!({})).await;
    assert_eq!(r["success"], true, "{r}");
    let update = next_where(
        &mut obs,
        Duration::from_secs(5),
        "hidden",
        of_type("WIDGET_STATE_UPDATE", &id),
    )
    .await;
    assert_eq!(update["state"]["visible"], false);
    let _ = other.kill();
    let _ = other.wait();
    app.stop().await;
}

/// A countdown finishes at its end instant even though no worker ran when it ended.
#[tokio::test]
async fn a_countdown_finishes_on_its_durable_timer_after_the_workers_come_back() {
    let mut app = TestApp::start_with(AppOptions {
        gpu_worker: false,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let widget = create_widget(
        &app,
        ALICE,
        json!({"title": "Break", "type": "countdown", "config": {"duration": 4}}),
    )
    .await;
    let id = widget["id"].as_str().unwrap().to_string();
    let token = widget["access_token"].as_str().unwrap().to_string();
    let mut obs = conn(websocket_with(&app, &token).await);
    subscribe(&mut obs, &id).await;
    let mut dash = conn(websocket(&app, ALICE).await);
    assert_eq!(
        act(&mut dash, &id, "start", json!({})).await["success"],
        true
    );
    let started = next_where(
        &mut obs,
        Duration::from_secs(5),
        "started",
        of_type("WIDGET_STATE_UPDATE", &id),
    )
    .await;
    let end = time(&started["state"]["last_tick_timestamp"])
        + chrono::TimeDelta::milliseconds(
            (started["state"]["duration_left"].as_f64().unwrap() * 1000.0) as i64,
        );
    app.stop_workers().await;
    // The end passes with no worker running.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        stored_state(&app, ALICE, &id).await["finished_at"],
        Value::Null,
        "nothing ran the timer"
    );
    app.start_cpu_worker().unwrap();
    let finished = next_where(&mut obs, Duration::from_secs(60), "the finish", |v| {
        v["type"] == "WIDGET_STATE_UPDATE" && !v["state"]["finished_at"].is_null()
    })
    .await;
    let received = Utc::now();
    assert_eq!(
        time(&finished["state"]["finished_at"]),
        end,
        "stamped with the end instant"
    );
    assert_eq!(finished["state"]["enabled"], false);
    assert_eq!(finished["state"]["duration_left"], 0.0);
    eprintln!(
        "countdown ended at {end}, its timer fired {} ms later (workers were down)",
        (received - end).num_milliseconds()
    );

    // With the worker running, a second countdown's finish arrives at its end.
    assert_eq!(
        act(&mut dash, &id, "set_duration", json!({"duration": 2})).await["success"],
        true
    );
    assert_eq!(
        act(&mut dash, &id, "start", json!({})).await["success"],
        true
    );
    let started = next_where(&mut obs, Duration::from_secs(5), "restarted", |v| {
        v["type"] == "WIDGET_STATE_UPDATE" && v["state"]["enabled"] == true
    })
    .await;
    let end = time(&started["state"]["last_tick_timestamp"])
        + chrono::TimeDelta::milliseconds(
            (started["state"]["duration_left"].as_f64().unwrap() * 1000.0) as i64,
        );
    let finished = next_where(
        &mut obs,
        Duration::from_secs(30),
        "the second finish",
        |v| v["type"] == "WIDGET_STATE_UPDATE" && !v["state"]["finished_at"].is_null(),
    )
    .await;
    let received = Utc::now();
    assert_eq!(time(&finished["state"]["finished_at"]), end);
    assert!(received >= end, "never before the end ({received} < {end})");
    eprintln!(
        "timer fired {} ms after the end with a worker up",
        (received - end).num_milliseconds()
    );
    // The run ends once nothing is left to wait for; its history is kept for replay tests
    // (`GT_RECORD_HISTORIES=dir ./gt test a_countdown_finishes`).
    let run = gt_types::widget_timer_workflow_id(ALICE, &id);
    let history = eventually("the timer run ended", 30, async || {
        let h = crate::ingest::fetch_history(&app, &run).await;
        h.to_string()
            .contains("WorkflowExecutionCompleted")
            .then_some(h)
    })
    .await;
    assert!(
        history.to_string().contains("widgets.tick"),
        "the end came from the timer's activity"
    );
    if let Some(dir) = std::env::var_os("GT_RECORD_HISTORIES") {
        let path = std::path::Path::new(&dir).join("widget_timer_v1_countdown.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&history).unwrap()).unwrap();
    }
    app.stop().await;
}

/// Twitch drives the ad timer (schedule poll, snooze, commercial, ad-break events with their
/// timers) and the chat overlay (messages, filters, moderation).
#[tokio::test]
async fn twitch_drives_the_ad_timer_and_the_chat_overlay() {
    let (fake, tw) = fake().await;
    let app = capturing(
        &fake,
        AppOptions {
            gpu_worker: false,
            ..AppOptions::default()
        },
        "channel.ad_break.begin",
    )
    .await;
    let next_ad = Utc::now() + chrono::TimeDelta::minutes(20);
    fake.set_ad_schedule(
        &tw.alice,
        gt_twitch::fake::FakeAdSchedule {
            next_ad_at: Some(next_ad),
            snooze_count: 2,
            duration: 60,
            ..Default::default()
        },
    );
    fake.set_live(&tw.alice, true);

    let timer = create_widget(
        &app,
        ALICE,
        json!({"title": "Ads", "type": "ad_timer", "config": {"backFromAdsDuration": 2}}),
    )
    .await;
    let id = timer["id"].as_str().unwrap().to_string();
    let mut obs = conn(websocket_with(&app, timer["access_token"].as_str().unwrap()).await);
    subscribe(&mut obs, &id).await;
    // Opening the page starts its timer workflow, which reads the schedule at once.
    let polled = next_where(&mut obs, Duration::from_secs(30), "the schedule", |v| {
        v["type"] == "WIDGET_STATE_UPDATE" && v["state"]["next_ad_at"].is_string()
    })
    .await;
    assert_eq!(
        time(&polled["state"]["next_ad_at"]).timestamp(),
        next_ad.timestamp()
    );
    assert_eq!(polled["state"]["snooze_count"], 2);
    assert_eq!(polled["state"]["phase"], "upcoming");

    // Snooze goes to Helix; its answer is the new state.
    let mut dash = conn(websocket(&app, ALICE).await);
    let r = act(&mut dash, &id, "snooze", json!({})).await;
    assert_eq!(r["success"], true, "{r}");
    let snoozed = next_where(&mut obs, Duration::from_secs(5), "snoozed", |v| {
        v["type"] == "WIDGET_STATE_UPDATE" && v["state"]["snooze_count"] == 1
    })
    .await;
    assert_eq!(
        time(&snoozed["state"]["next_ad_at"]).timestamp() - next_ad.timestamp(),
        300,
        "the fake moved the ad by 5 minutes"
    );

    // An ad break from EventSub: running for its duration, then welcome back, then upcoming,
    // each transition on the widget's durable timer.
    fake.send_event(
        "channel.ad_break.begin",
        json!({"broadcaster_user_id": &tw.alice, "broadcaster_user_login": ALICE_LOGIN,
               "broadcaster_user_name": "Alice", "duration_seconds": 3, "is_automatic": true,
               "started_at": Utc::now().to_rfc3339(), "requester_user_id": &tw.alice,
               "requester_user_login": ALICE_LOGIN, "requester_user_name": "Alice"}),
    )
    .await;
    let running = next_where(&mut obs, Duration::from_secs(10), "ads running", |v| {
        v["type"] == "WIDGET_STATE_UPDATE" && v["state"]["phase"] == "running"
    })
    .await;
    let ends = time(&running["state"]["ad_ends_at"]);
    let back = next_where(&mut obs, Duration::from_secs(20), "welcome back", |v| {
        v["type"] == "WIDGET_STATE_UPDATE" && v["state"]["phase"] == "welcome_back"
    })
    .await;
    assert!(Utc::now() >= ends, "welcome back only after the break");
    assert_eq!(time(&back["state"]["ad_ends_at"]), ends);
    next_where(
        &mut obs,
        Duration::from_secs(20),
        "after welcome back",
        |v| {
            v["type"] == "WIDGET_STATE_UPDATE"
                && (v["state"]["phase"] == "upcoming" || v["state"]["phase"] == "idle")
        },
    )
    .await;

    // Start a commercial from the dashboard: Helix runs it and Twitch announces the break.
    let r = act(&mut dash, &id, "start_commercial", json!({"length": 30})).await;
    assert_eq!(r["success"], true, "{r}");
    let running = next_where(&mut obs, Duration::from_secs(10), "the commercial", |v| {
        v["type"] == "WIDGET_STATE_UPDATE" && v["state"]["phase"] == "running"
    })
    .await;
    assert_eq!(running["state"]["ad_duration"], 30, "{running}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path.ends_with("/channels/commercial")),
        "Helix was called"
    );
    // Refused while running: the reason comes back, nothing changes.
    let r = act(&mut dash, &id, "start_commercial", json!({"length": 30})).await;
    assert_eq!(r["success"], false, "{r}");

    // The chat overlay: commands and bots hidden, emotes as fragments, moderation removes.
    fake.add_emote("PogChamp", "305954156");
    let overlay = create_widget(
        &app,
        ALICE,
        json!({"title": "Chat", "type": "chat_overlay",
               "config": {"maxMessages": 3, "fadeAfter": 0, "ignoredUsers": ["nightbot"]}}),
    )
    .await;
    let oid = overlay["id"].as_str().unwrap().to_string();
    let mut chat = conn(websocket_with(&app, overlay["access_token"].as_str().unwrap()).await);
    let initial = subscribe(&mut chat, &oid).await;
    assert_eq!(
        initial["widget"]["state"]["messages"],
        json!([]),
        "{initial}"
    );
    let first = fake.send_chat(&tw.alice, "viewer1", "hello PogChamp").await;
    fake.send_chat(&tw.alice, "viewer2", "!discord").await;
    fake.send_chat(&tw.alice, "nightbot", "Follow the channel!")
        .await;
    let shown = next_where(&mut chat, Duration::from_secs(10), "the first line", |v| {
        v["type"] == "WIDGET_STATE_UPDATE"
            && v["state"]["messages"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
    })
    .await;
    let lines = shown["state"]["messages"].as_array().unwrap();
    assert_eq!(lines[0]["id"], first.as_str());
    assert!(
        lines[0]["fragments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["type"] == "emote" && f["emote"]["id"] == "305954156"),
        "{shown}"
    );
    for id in ["a", "b", "c", "d"] {
        fake.send_chat(&tw.alice, "viewer3", &format!("line {id}"))
            .await;
    }
    let latest = next_where(
        &mut chat,
        Duration::from_secs(10),
        "the newest three",
        |v| {
            v["type"] == "WIDGET_STATE_UPDATE"
                && v["state"]["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .is_some_and(|m| m["text"] == "line d")
        },
    )
    .await;
    let texts: Vec<&str> = latest["state"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["line b", "line c", "line d"],
        "max 3, no command, no bot"
    );
    let doomed = latest["state"]["messages"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    fake.send_event(
        "channel.chat.message_delete",
        json!({"broadcaster_user_id": &tw.alice, "broadcaster_user_login": ALICE_LOGIN,
               "broadcaster_user_name": "Alice", "target_user_id": "x", "target_user_login": "viewer3",
               "target_user_name": "viewer3", "message_id": doomed}),
    )
    .await;
    let after = next_where(&mut chat, Duration::from_secs(10), "the deletion", |v| {
        v["type"] == "WIDGET_STATE_UPDATE"
            && !v["state"]["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == doomed.as_str())
    })
    .await;
    assert!(
        !after["state"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "line c")
    );
    // Bob's overlay shows none of Alice's chat.
    let bobs = create_widget(&app, BOB, json!({"title": "Chat", "type": "chat_overlay"})).await;
    let mut bob_chat = conn(websocket_with(&app, bobs["access_token"].as_str().unwrap()).await);
    let initial = subscribe(&mut bob_chat, bobs["id"].as_str().unwrap()).await;
    assert_eq!(initial["widget"]["state"]["messages"], json!([]));
    app.stop().await;
}
