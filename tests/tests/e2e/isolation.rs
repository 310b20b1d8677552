//! Two users on one server, with same-named streams, clips and episodes: every route, taken by
//! Bob, leaves Alice's records, files and workflow runs exactly as they were; what is only
//! Alice's is "not found" for Bob. Checked in the database and in Alice's workflow history
//! after every request.

use std::time::Duration;

use gt_cli::media_gen::{RecordingSpec, SENTENCES, Segment, generate};
use gt_tests::{
    ALICE, AppOptions, BOB, TestApp, drain, wait_for_ingest, wait_for_previews, websocket,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::ingest::fetch_history;

/// Talk that starts the same way for both users (so their first proposal gets the same id),
/// then differs.
fn talk(second: &str, third: &str) -> Vec<Segment> {
    vec![
        Segment::Silence(1.5),
        Segment::Speech(SENTENCES[0].into()),
        Segment::Silence(2.5),
        Segment::Speech(second.into()),
        Segment::Silence(2.5),
        Segment::Speech(third.into()),
        Segment::Silence(1.5),
    ]
}

/// Everything of `user` that a request could change: records of every table, transcript rows
/// and windows, files under the user's artifacts prefix, and (for Alice) her ingestion's
/// history.
async fn snapshot(app: &TestApp, user: &str) -> Value {
    let mut out = serde_json::Map::new();
    for (table, order) in [
        ("streams", "id"),
        ("series", "id"),
        ("video_clips", "id"),
        ("episodes", "id"),
        ("tasks", "id"),
        ("transcript_segments", "clip_key, idx"),
        ("transcript_windows", "clip_key, idx"),
        ("chat_messages", "id"),
        ("twitch_channels", "user_id"),
        ("oauth_connections", "provider"),
    ] {
        let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(t) - 'embedding' FROM {table} t WHERE user_id = $1 ORDER BY {order}"
        )))
        .bind(user)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
        out.insert(table.into(), Value::Array(rows));
    }
    let mut files: Vec<String> = walk(&app.artifacts.path().join(gt_types::owner_segment(user)));
    files.sort();
    out.insert("files".into(), json!(files));
    let history = fetch_history(app, &gt_types::stream_ingest_workflow_id(user, "same")).await;
    out.insert(
        "history_events".into(),
        json!(history["events"].as_array().map_or(0, Vec::len)),
    );
    Value::Object(out)
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                let len = p.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(format!("{} {len}", p.display()));
            }
        }
    }
    out
}

async fn wait_for_review(app: &TestApp, user: &str) {
    let limit = Duration::from_secs(300);
    gt_tests::wait_for_stage_within(app, user, "same", "awaiting_review", limit).await;
}

#[tokio::test]
async fn two_users_with_same_named_streams_never_touch_each_other() {
    let app = TestApp::start_with(AppOptions::default()).await.unwrap();
    let video = Some((160, 90, 10));
    generate(
        &RecordingSpec::mic(talk(SENTENCES[1], SENTENCES[2]), video),
        &app.recordings_of(ALICE).join("same/a.mkv"),
    )
    .unwrap();
    generate(
        &RecordingSpec::mic(talk(SENTENCES[5], SENTENCES[4]), video),
        &app.recordings_of(BOB).join("same/a.mkv"),
    )
    .unwrap();
    for user in [ALICE, BOB] {
        let (s, b) = app
            .post(
                user,
                "/records/streams",
                json!({"id": "same", "prefix": "same", "title": format!("{user}'s stream")}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = app
            .post(
                user,
                "/records/episodes",
                json!({"id": "shared-name", "title": format!("{user}'s episode")}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = app
            .post(
                user,
                "/stream",
                // Every sentence its own proposal (the pauses are 2.5 s).
                json!({"streamId": "same", "language": "en",
                       "episodes": {"min_length": 2.0, "break_gap": 2.0}}),
            )
            .await;
        assert_eq!(s, 202, "{b}");
        assert!(
            b["workflowId"].as_str().unwrap().contains(user),
            "the owner is part of the workflow id: {b}"
        );
    }
    // Alice also has a stream and an episode Bob has nothing like.
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "alice-only", "prefix": "alice-only", "title": "secret"}),
    )
    .await;
    app.post(
        ALICE,
        "/records/episodes",
        json!({"id": "alice-only-ep", "title": "secret episode", "cut_list": {
            "version": "1.0.0",
            "inputMedia": [{"s3Location": "same/a.mkv", "sections": [{"startFrame": 0, "endFrame": 30}]}],
            "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]}}),
    )
    .await;
    wait_for_review(&app, ALICE).await;
    wait_for_review(&app, BOB).await;
    wait_for_previews(&app, ALICE, "same").await;
    wait_for_previews(&app, BOB, "same").await;

    let (_, alice_eps) = app.get(ALICE, "/stream/same/episodes").await;
    let (_, bob_eps) = app.get(BOB, "/stream/same/episodes").await;
    let alice_ep = alice_eps["items"][0]["id"].as_str().unwrap().to_string();
    let bob_ep = bob_eps["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(alice_ep, bob_ep, "same talk, same proposal id");
    let (_, alice_status) = app.get(ALICE, "/stream/same/progress").await;
    let alice_run = alice_status["runId"].as_str().unwrap().to_string();

    // A link Bob may use, and the same link pointed at Alice's file.
    let playlist = |user: &'static str| {
        let app = &app;
        async move {
            let r = app
                .http
                .get(format!("{}/playlist/same.m3u8", app.base))
                .header("Authorization", app.token(user))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.text().await.unwrap()
        }
    };
    let bob_playlist = playlist(BOB).await;
    let bob_link = bob_playlist
        .lines()
        .find(|l| l.starts_with("/media/"))
        .unwrap()
        .to_string();
    assert!(bob_link.starts_with("/media/bob/"), "{bob_link}");
    let alice_link = playlist(ALICE)
        .await
        .lines()
        .find(|l| l.starts_with("/media/"))
        .unwrap()
        .to_string();
    let forged = bob_link.replacen("/media/bob/", "/media/alice/", 1);
    let alice_key = alice_link
        .trim_start_matches("/media/")
        .split('?')
        .next()
        .unwrap()
        .to_string();

    let mut bob_ws = websocket(&app, BOB).await;
    let before = snapshot(&app, ALICE).await;
    let alice_text = SENTENCES[1];
    let search = |q: &str, stream: &str| {
        format!(
            "/search?q={}{stream}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        )
    };
    // (method, path, body, expected status for Bob)
    let table: Vec<(Method, String, Option<Value>, u16)> = vec![
        (Method::GET, "/records/streams/alice-only".into(), None, 404),
        (
            Method::PUT,
            "/records/streams/alice-only".into(),
            Some(json!({"title": "mine now"})),
            404,
        ),
        (
            Method::DELETE,
            "/records/streams/alice-only".into(),
            None,
            404,
        ),
        (Method::GET, "/records/streams/same".into(), None, 200),
        (
            Method::PUT,
            "/records/streams/same".into(),
            Some(json!({"title": "bob renamed", "prefix": "same"})),
            200,
        ),
        (
            Method::GET,
            "/records/video_clips/same%2Fa.mkv".into(),
            None,
            200,
        ),
        (
            Method::PUT,
            "/records/video_clips/same%2Fa.mkv".into(),
            // Derived fields pointing at Alice's files: accepted with them ignored.
            Some(json!({
                "speech": {"audio": {"key": format!("alice/speech/same/a.mkv.wav")}},
                "preview": {"segments": [{"key": alice_key, "duration": 4.0}]},
                "transcription": {"text": "forged"},
            })),
            200,
        ),
        (
            Method::GET,
            "/records/episodes/shared-name".into(),
            None,
            200,
        ),
        (
            Method::PUT,
            "/records/episodes/shared-name".into(),
            Some(json!({"title": "bob's, edited", "render_uri": "alice/renders/x.mp4"})),
            200,
        ),
        (
            Method::GET,
            "/records/video_clips/stream_id/alice-only".into(),
            None,
            200,
        ),
        (Method::GET, "/stream/alice-only/progress".into(), None, 404),
        (Method::GET, "/stream/same/progress".into(), None, 200),
        (
            Method::POST,
            "/stream".into(),
            Some(json!({"streamId": "alice-only"})),
            404,
        ),
        (Method::GET, "/stream/alice-only/episodes".into(), None, 404),
        (Method::GET, "/stream/same/episodes".into(), None, 200),
        (
            Method::POST,
            "/stream/alice-only/review".into(),
            Some(json!({"approve": ["x"]})),
            404,
        ),
        (
            Method::POST,
            "/stream/alice-only/cancel".into(),
            Some(json!({})),
            404,
        ),
        (Method::GET, search(alice_text, ""), None, 200),
        (
            Method::GET,
            search(alice_text, "&stream_id=alice-only"),
            None,
            404,
        ),
        (
            Method::POST,
            "/transcripts/edit".into(),
            Some(json!({"clipKey": "alice-only/a.mkv", "segments": [{"idx": 0, "text": "x"}]})),
            404,
        ),
        (
            Method::POST,
            "/transcripts/edit".into(),
            Some(
                json!({"clipKey": "same/a.mkv", "segments": [{"idx": 0, "text": "Bob was here."}]}),
            ),
            202,
        ),
        (
            Method::POST,
            "/render".into(),
            Some(json!({"episodeIds": ["alice-only-ep"]})),
            404,
        ),
        (
            Method::GET,
            "/episodes/alice-only-ep/publish".into(),
            None,
            404,
        ),
        (
            Method::POST,
            "/episodes/alice-only-ep/publish/cancel".into(),
            Some(json!({})),
            404,
        ),
        (
            Method::POST,
            "/episodes/alice-only-ep/publish/resume".into(),
            Some(json!({})),
            404,
        ),
        (
            Method::POST,
            "/upload/youtube".into(),
            Some(json!({"episode_ids": ["alice-only-ep"]})),
            403,
        ),
        // Not configured here: "not connected" (the front end calls these on every page).
        (Method::GET, "/auth/youtube/token".into(), None, 200),
        (Method::GET, "/auth/twitch/token".into(), None, 200),
        (Method::GET, "/eventsub/chat/status".into(), None, 200),
        (
            Method::POST,
            "/auth/twitch/url".into(),
            Some(json!({"scopes": [], "redirect_uri": "http://127.0.0.1:5173/profile"})),
            503,
        ),
        (
            Method::POST,
            "/eventsub/chat/subscribe".into(),
            Some(json!({})),
            503,
        ),
        (Method::GET, "/streams/alice-only/chat".into(), None, 404),
        (Method::GET, "/streams/same/chat".into(), None, 200),
        (
            Method::GET,
            "/episodes/alice-only-ep/export.srt".into(),
            None,
            404,
        ),
        (Method::GET, "/playlist/alice-only.m3u8".into(), None, 404),
        (Method::GET, "/playlist/same.m3u8".into(), None, 200),
        (Method::GET, format!("/media/{alice_key}"), None, 404),
        // Bob's own proposal has the same id as Alice's: deciding it decides his only.
        (
            Method::POST,
            "/stream/same/review".into(),
            Some(json!({"approve": [bob_ep], "edits": [{"id": bob_ep, "title": "Bob's cut"}]})),
            202,
        ),
        (
            Method::POST,
            "/stream/same/cancel".into(),
            Some(json!({})),
            202,
        ),
    ];
    for (method, path, body, want) in table {
        let (status, answer) = app.call(Some(BOB), method.clone(), &path, body).await;
        assert_eq!(status, want, "Bob: {method} {path}: {answer}");
        if status == 200 && path.starts_with("/search") {
            // Only Alice said this sentence.
            assert!(
                !answer.to_string().contains("dungeon"),
                "Bob's search shows Alice's words: {answer}"
            );
        }
        if path == "/records/video_clips/stream_id/alice-only" {
            assert_eq!(answer["items"], json!([]));
        }
        let now = snapshot(&app, ALICE).await;
        assert!(
            now == before,
            "Bob's {method} {path} changed Alice's state:\nbefore {before}\nafter {now}"
        );
    }
    // Signed links: Bob's works, the same signature on Alice's key does not.
    let get = |link: String| {
        let app = &app;
        async move {
            app.http
                .get(format!("{}{link}", app.base))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(bob_link.clone()).await, 200);
    assert_eq!(get(forged).await, 401);

    // What Bob did happened to Bob: his derived fields stayed his, his review and his cancel
    // reached his run only.
    let (_, bob_clip) = app.get(BOB, "/records/video_clips/same%2Fa.mkv").await;
    assert!(
        bob_clip["speech"]["audio"]["key"]
            .as_str()
            .unwrap()
            .starts_with("bob/"),
        "{bob_clip}"
    );
    assert_ne!(bob_clip["transcription"]["text"], "forged");
    let (_, bob_episode) = app.get(BOB, "/records/episodes/shared-name").await;
    assert_eq!(bob_episode["render_uri"], Value::Null);
    let bob_done = wait_for_ingest(&app, BOB, "same").await;
    assert_eq!(
        bob_done["status"], "FAILED",
        "Bob cancelled his: {bob_done}"
    );
    let (_, p) = app.get(ALICE, "/stream/same/progress").await;
    assert_eq!(p["status"], "RUNNING");
    assert_eq!(p["progress"]["stage"], "awaiting_review");
    assert_eq!(p["runId"], alice_run);
    // Bob's socket saw none of Alice's tasks.
    let updates = drain(&mut bob_ws, Duration::from_secs(2)).await;
    assert!(
        updates.iter().all(|u| !u.to_string().contains(&alice_run)),
        "{updates:?}"
    );
    // Alice's run got no message from anyone; she decides her own proposals.
    let history = fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "same"))
        .await
        .to_string();
    assert!(!history.contains("WorkflowExecutionUpdateAccepted"));
    assert!(!history.contains("WorkflowExecutionSignaled"));
    let ids: Vec<String> = alice_eps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let (s, b) = app
        .post(ALICE, "/stream/same/review", json!({"reject": ids}))
        .await;
    assert_eq!(s, 202, "{b}");
    let done = wait_for_ingest(&app, ALICE, "same").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let (_, mine) = app.get(ALICE, "/records/episodes/shared-name").await;
    assert_eq!(mine["title"], "alice's episode");
    app.stop().await;
}
