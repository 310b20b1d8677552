//! Inputs that used to give 500s or unbounded work: NUL characters anywhere a client can put
//! text, oversized prompts and related lists, task rows larger than a NOTIFY payload, and a
//! WebSocket that outlived its token. Each gets a clear answer and changes nothing.

use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use gt_tests::{ALICE, AppOptions, TestApp, drain, test_signer, websocket, websocket_with};
use reqwest::Method;
use serde_json::{Value, json};

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn nul_characters_and_oversized_inputs_get_clear_400s_and_change_nothing() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();
    let (s, _) = app
        .post(ALICE, "/records/streams", json!({"id": "s", "prefix": "s"}))
        .await;
    assert_eq!(s, 201);
    let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("a\0b");
    let long_prompt = "x".repeat(gt_types::api::MAX_INITIAL_PROMPT_CHARS + 1);
    let long_summary = "x".repeat(gt_types::api::MAX_INITIAL_SUMMARY_CHARS + 1);
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/records/streams".into(),
            Some(json!({"id": "a\u{0}b"})),
            "NUL",
        ),
        (
            Method::POST,
            "/records/streams".into(),
            Some(json!({"title": "a\u{0}b"})),
            "NUL",
        ),
        (
            Method::POST,
            "/records/series".into(),
            Some(json!({"title": "t", "recurrence": {"days": ["mo\u{0}"]}})),
            "NUL",
        ),
        (
            Method::PUT,
            "/records/streams/s".into(),
            Some(json!({"description": "\u{0}"})),
            "NUL",
        ),
        (Method::GET, "/records/streams/a%00b".into(), None, "NUL"),
        (
            Method::PUT,
            "/records/streams/a%00b".into(),
            Some(json!({})),
            "NUL",
        ),
        (Method::DELETE, "/records/streams/a%00b".into(), None, "NUL"),
        (
            Method::GET,
            format!("/records/streams?filter={}", enc(r#"{"title": "a\u0000"}"#)),
            None,
            "NUL",
        ),
        (
            Method::GET,
            format!("/records/streams?cursor={cursor}"),
            None,
            "invalid cursor",
        ),
        (Method::GET, "/records/streams?q%00=1".into(), None, "NUL"),
        (Method::GET, "/search?q=a%00b".into(), None, "NUL"),
        (Method::GET, "/stream/s%00/progress".into(), None, "NUL"),
        (
            Method::POST,
            "/stream".into(),
            Some(json!({"streamId": "s\u{0}"})),
            "NUL",
        ),
        (
            Method::POST,
            "/stream".into(),
            Some(json!({"streamId": "s", "initialPrompt": long_prompt})),
            "initialPrompt is 1001 characters long",
        ),
        (
            Method::POST,
            "/stream".into(),
            Some(json!({"streamId": "s", "initialSummary": long_summary})),
            "initialSummary is 20001 characters long",
        ),
        (
            Method::POST,
            "/stream/s/review".into(),
            Some(json!({"approve": ["e\u{0}"]})),
            "NUL",
        ),
        (
            Method::POST,
            "/transcripts/edit".into(),
            Some(json!({"clipKey": "s/a.mkv", "segments": [{"idx": 0, "text": "a\u{0}"}]})),
            "NUL",
        ),
        (Method::GET, "/playlist/s%00.m3u8".into(), None, "NUL"),
    ];
    let (_, before) = app.get(ALICE, "/records/streams/s").await;
    for (method, path, body, want) in cases {
        let (status, answer) = app.call(Some(ALICE), method.clone(), &path, body).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(want),
            "{method} {path}: {want:?} not in {message:?}"
        );
    }
    let (_, after) = app.get(ALICE, "/records/streams/s").await;
    assert_eq!(before, after);
    assert_eq!(count(&app, "streams").await, 1);
    assert_eq!(count(&app, "series").await, 0);

    // A related list is bounded: past the limit, a 400 that says how to page instead.
    sqlx::query(
        "INSERT INTO video_clips (user_id, id, key, stream_id)
         SELECT $1, 'k' || n, 'k' || n, 'big' FROM generate_series(0, $2) AS n",
    )
    .bind(ALICE)
    .bind(gt_store::pg::MAX_RELATED as i64)
    .execute(app.store.pool())
    .await
    .unwrap();
    let (s, b) = app.get(ALICE, "/records/video_clips/stream_id/big").await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("page by page"),
        "{b}"
    );
    sqlx::query("DELETE FROM video_clips WHERE id LIKE 'k%' AND id <> 'k0'")
        .execute(app.store.pool())
        .await
        .unwrap();
    let (s, b) = app.get(ALICE, "/records/video_clips/stream_id/big").await;
    assert_eq!((s, b["items"].as_array().map(Vec::len)), (200, Some(1)));
    app.stop().await;
}

#[tokio::test]
async fn a_task_larger_than_a_notify_payload_is_written_and_pushed() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();
    let mut ws = websocket(&app, ALICE).await;
    // Postgres refuses NOTIFY payloads over 8000 bytes; the trigger used to send the row.
    let message = "failure details ".repeat(700);
    let (s, b) = app
        .post(
            ALICE,
            "/records/tasks",
            json!({"id": "big", "task_type": "ingestion", "status": "FAILED", "message": message}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let got = drain(&mut ws, Duration::from_secs(3)).await;
    let update = got
        .iter()
        .find(|u| u["task"]["id"] == "big")
        .unwrap_or_else(|| panic!("no update for the task: {got:?}"));
    assert_eq!(update["type"], "TASK_UPDATE");
    assert_eq!(update["task"]["status"], "FAILED");
    assert_eq!(
        update["task"]["message"].as_str().unwrap().len(),
        message.len()
    );
    assert_eq!(update["old_status"], Value::Null);
    assert!(update["task"].get("user_id").is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_websocket_closes_when_its_token_expires() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();
    let token = test_signer().mint(ALICE, Duration::from_secs(3)).unwrap();
    let mut ws = websocket_with(&app, &token).await;
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(tokio_tungstenite::tungstenite::Message::Close(frame)) => return frame,
                Ok(_) => continue,
                Err(e) => panic!("{e}"),
            }
        }
        None
    })
    .await
    .expect("the socket stayed open past its token's expiry");
    assert_eq!(closed.unwrap().reason.as_str(), "token expired");
    app.stop().await;
}
