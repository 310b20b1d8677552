//! StreamIngest end to end: summaries, embeddings, search, proposals, review, live progress.
//! Real Temporal, Postgres/pgvector, Whisper base and MiniLM; OpenAI is a local server that
//! speaks its wire format.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gt_cli::media_gen::{Generated, RecordingSpec, Segment, generate};
use gt_tests::{ALICE, AppOptions, BOB, TestApp, drain, wait_for_ingest, websocket};
use serde_json::{Value, json};

use crate::ingest::{fetch_history, find_key};

const CASTLE: &[&str] = &[
    "Welcome back to the stream everyone.",
    "Today we are storming the castle in the north.",
    "The castle boss has three phases and a fire attack.",
    "Watch out for the archers on the castle walls.",
    "We finally beat the castle boss on the third try.",
];

const BAKING: &[&str] = &[
    "Now let us switch to baking some bread.",
    "Mix the flour with warm water and a little yeast.",
    "Let the dough rise for one hour under a towel.",
    "The bread needs to bake for forty minutes in a hot oven.",
    "Thanks for watching and see you next time.",
];

fn talk(sentences: &[&str], lead: f64, tail: f64) -> Vec<Segment> {
    let mut s = vec![Segment::Silence(lead)];
    for (i, t) in sentences.iter().enumerate() {
        s.push(Segment::Speech((*t).into()));
        if i + 1 < sentences.len() {
            s.push(Segment::Silence(1.5));
        }
    }
    s.push(Segment::Silence(tail));
    s
}

fn recording(path: &Path, segments: Vec<Segment>) -> Generated {
    // 30 fps, so the cut list's frame numbers can be checked against seconds.
    generate(&RecordingSpec::mic(segments, Some((320, 180, 30))), path).unwrap()
}

/// Two files: the castle talk, a 40 s break spanning the file boundary, the baking talk.
pub(crate) fn two_topic_stream(dir: &Path) -> (Generated, Generated) {
    let a = recording(&dir.join("ep/part1.mkv"), talk(CASTLE, 1.0, 25.0));
    let b = recording(&dir.join("ep/part2.mkv"), talk(BAKING, 15.0, 2.0));
    (a, b)
}

/// Stream-time span of the speech on a generated file that starts at `offset`.
fn speech_span(g: &Generated, offset: f64) -> (f64, f64) {
    let s = g.speech(0);
    (s[0].0 + offset, s.last().unwrap().1 + offset)
}

/// Start and end (file seconds) of the sentence containing `needle`.
fn sentence_at(g: &Generated, needle: &str) -> (f64, f64) {
    g.tracks[0]
        .iter()
        .find_map(|(seg, a, b)| match seg {
            Segment::Speech(t) if t.contains(needle) => Some((*a, *b)),
            _ => None,
        })
        .unwrap()
}

pub(crate) async fn wait_for_stage(app: &TestApp, stream: &str, stage: &str) -> Value {
    gt_tests::wait_for_stage_within(app, ALICE, stream, stage, Duration::from_secs(240)).await
}

async fn clip_start(app: &TestApp, key: &str) -> f64 {
    let (_, clip) = app
        .get(ALICE, &format!("/records/video_clips/{}", urlencode(key)))
        .await;
    clip["start_time"].as_f64().unwrap()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_recording_becomes_searchable_episodes_that_review_approves() {
    let app = TestApp::start().await.unwrap();
    let (a, b) = two_topic_stream(app.recordings_of(ALICE).as_path());
    app.post(
        ALICE,
        "/records/series",
        json!({"id": "ser", "title": "Castle and kitchen", "max_episode_order_index": 7,
               "episode_title_template": "${title} - Episode ${episode_order_index}"}),
    )
    .await;
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "ep", "prefix": "ep", "title": "Sunday stream", "series_id": "ser",
               "description": "Castle, then bread."}),
    )
    .await;
    // Live progress: Alice's socket gets her task updates, Bob's gets none of them.
    let mut alice_ws = websocket(&app, ALICE).await;
    let mut bob_ws = websocket(&app, BOB).await;

    let (s, started) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": "ep", "language": "en", "initialSummary": "A variety stream.",
                   "episodes": {"break_gap": 20.0, "min_length": 15.0, "max_length": 600.0}}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    let waiting = wait_for_stage(&app, "ep", "awaiting_review").await;
    assert_eq!(waiting["progress"]["episodes_proposed"], 2, "{waiting}");

    // Proposals: one per talk, with boundaries where the talk is.
    let start_b = clip_start(&app, "ep/part2.mkv").await;
    assert!(
        (start_b - a.duration).abs() < 0.1,
        "{start_b} vs {}",
        a.duration
    );
    let (_, eps) = app.get(ALICE, "/stream/ep/episodes").await;
    let eps = eps["items"].as_array().unwrap().clone();
    assert_eq!(eps.len(), 2, "{eps:?}");
    for (ep, (lo, hi)) in eps
        .iter()
        .zip([speech_span(&a, 0.0), speech_span(&b, start_b)])
    {
        let (s, e) = (
            ep["start_time"].as_f64().unwrap(),
            ep["end_time"].as_f64().unwrap(),
        );
        // The speech map pads speech by its margin and quiet word edges can be missed.
        assert!(
            (s - lo).abs() < 1.5 && (e - hi).abs() < 1.5,
            "{s}..{e} vs talk {lo}..{hi}"
        );
        assert_eq!(ep["review_status"], "awaiting_review");
        assert_eq!(ep["series_id"], "ser");
        let cut = &ep["cut_list"];
        assert_eq!(cut["version"], "1.0.0");
        assert_eq!(cut["inputMedia"].as_array().unwrap().len(), 1, "{cut}");
        let chapters = ep["chapters"].as_array().unwrap();
        assert_eq!(chapters[0]["start"], 0.0);
        assert!(!chapters[0]["title"].as_str().unwrap().is_empty());
    }
    assert_eq!(eps[0]["title"], "Sunday stream - Episode 8");
    assert_eq!(eps[1]["title"], "Sunday stream - Episode 9");
    // Frames at the source's 30 fps, relative to each file.
    let first = &eps[0]["cut_list"]["inputMedia"][0];
    assert_eq!(first["s3Location"], "ep/part1.mkv");
    let start_frame = first["sections"][0]["startFrame"].as_f64().unwrap();
    assert!((start_frame - eps[0]["start_time"].as_f64().unwrap() * 30.0).abs() <= 1.0);
    let second = &eps[1]["cut_list"]["inputMedia"][0];
    assert_eq!(second["s3Location"], "ep/part2.mkv");
    let frame_b = second["sections"][0]["startFrame"].as_f64().unwrap();
    assert!((frame_b - (eps[1]["start_time"].as_f64().unwrap() - start_b) * 30.0).abs() <= 1.0);

    // Summaries are extractive without an API key, and say so; context chains.
    let (_, clip_b) = app.get(ALICE, "/records/video_clips/ep%2Fpart2.mkv").await;
    let summary = &clip_b["summary"];
    assert_eq!(summary["method"], "extractive", "{summary}");
    assert!(!summary["highlights"].as_array().unwrap().is_empty());
    assert!(
        summary["summary_context"]
            .as_str()
            .unwrap()
            .contains("castle"),
        "context chained from the first clip: {summary}"
    );

    // Search: the phrase spoken in the second file is found first, at its moment.
    let (s, hits) = app
        .get(
            ALICE,
            "/search?q=how%20long%20should%20the%20bread%20bake%20in%20the%20oven&stream_id=ep",
        )
        .await;
    assert_eq!(s, 200, "{hits}");
    let top = &hits["items"][0];
    let (said, said_end) = sentence_at(&b, "forty minutes");
    let (said, said_end) = (said + start_b, said_end + start_b);
    let (ts, te) = (top["start"].as_f64().unwrap(), top["end"].as_f64().unwrap());
    assert!(
        ts <= said + 0.5 && said_end - 0.5 <= te,
        "{said}..{said_end} not in {top}"
    );
    // Whisper writes numbers as digits ("40 minutes").
    assert!(
        top["text"]
            .as_str()
            .unwrap()
            .contains("minutes in a hot oven"),
        "{top}"
    );
    assert_eq!(top["stream_id"], "ep");
    assert_eq!(hits["model"], "all-MiniLM-L6-v2");
    let (s, castle) = app
        .get(ALICE, "/search?q=fighting%20the%20boss%20of%20the%20castle")
        .await;
    assert_eq!(s, 200);
    assert!(
        castle["items"][0]["start"].as_f64().unwrap() < a.duration,
        "{castle}"
    );
    // Bad search input changes nothing and says why; another user's stream is not found.
    assert_eq!(app.get(ALICE, "/search?q=").await.0, 400);
    assert_eq!(app.get(ALICE, "/search?q=bread&limit=0").await.0, 400);
    assert_eq!(app.get(BOB, "/search?q=bread&stream_id=ep").await.0, 404);
    let (_, bob_hits) = app.get(BOB, "/search?q=bread").await;
    assert_eq!(bob_hits["items"], json!([]));

    // Transcript corrections persist and re-embed the clip's windows.
    let (_, rows) = app.get(ALICE, "/records/video_clips/ep%2Fpart2.mkv").await;
    let segs = rows["transcription"]["segments"].as_array().unwrap();
    let idx = segs
        .iter()
        .position(|s| s["text"].as_str().unwrap().contains("yeast"))
        .unwrap();
    let fixed = "Mix the flour with warm water and a pinch of saffron.";
    let (s, edit) = app
        .post(
            ALICE,
            "/transcripts/edit",
            json!({"clipKey": "ep/part2.mkv", "segments": [{"idx": idx, "text": fixed}]}),
        )
        .await;
    assert_eq!(s, 202, "{edit}");
    let (s, bad) = app
        .post(
            ALICE,
            "/transcripts/edit",
            json!({"clipKey": "ep/part2.mkv", "segments": [{"idx": 999, "text": "x"}]}),
        )
        .await;
    assert_eq!(s, 404, "{bad}");
    assert_eq!(
        app.post(
            BOB,
            "/transcripts/edit",
            json!({"clipKey": "ep/part2.mkv", "segments": [{"idx": 0, "text": "x"}]})
        )
        .await
        .0,
        404
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM transcript_windows WHERE user_id = $1 AND clip_key = 'ep/part2.mkv' AND text LIKE '%saffron%'",
        )
        .bind(ALICE)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
        if n > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "windows were not re-embedded"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, clip_b) = app.get(ALICE, "/records/video_clips/ep%2Fpart2.mkv").await;
    assert_eq!(clip_b["transcription"]["segments"][idx]["text"], fixed);
    assert!(
        clip_b["transcription"]["text"]
            .as_str()
            .unwrap()
            .contains("saffron")
    );
    let (s, saffron) = app
        .get(ALICE, "/search?q=saffron%20in%20the%20dough&stream_id=ep")
        .await;
    assert_eq!(s, 200);
    assert!(
        saffron["items"][0]["text"]
            .as_str()
            .unwrap()
            .contains("saffron"),
        "{saffron}"
    );

    // Review: bad decisions are refused and change nothing.
    let (ep1, ep2) = (
        eps[0]["id"].as_str().unwrap(),
        eps[1]["id"].as_str().unwrap(),
    );
    for (body, status) in [
        (json!({"approve": ["nope"]}), 400),
        (json!({"approve": [ep1], "reject": [ep1]}), 400),
        (json!({}), 400),
        (json!({"approve": [ep1], "unexpected": 1}), 400),
        (json!({"edits": [{"id": ep1}]}), 400),
        // A range outside the stream, backwards, or shorter than a second.
        (json!({"edits": [{"id": ep1, "start_time": -1.0}]}), 400),
        (json!({"edits": [{"id": ep1, "end_time": 1e6}]}), 400),
        (
            json!({"edits": [{"id": ep1, "start_time": 9.0, "end_time": 3.0}]}),
            400,
        ),
        (
            json!({"edits": [{"id": ep1, "start_time": 3.0, "end_time": 3.5}]}),
            400,
        ),
        (json!({"edits": [{"id": ep1, "start_time": "3"}]}), 400),
    ] {
        let (s, b) = app.post(ALICE, "/stream/ep/review", body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
        assert!(b["message"].is_string());
    }
    assert_eq!(
        app.post(BOB, "/stream/ep/review", json!({"approve": [ep1]}))
            .await
            .0,
        404
    );
    let (_, still) = app.get(ALICE, "/stream/ep/episodes").await;
    assert!(
        still["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["review_status"] == "awaiting_review")
    );
    // A proposal the store calls awaiting but this run never proposed: the API's own check
    // passes, the workflow's validator refuses, and the edit riding along is not written.
    sqlx::query(
        "INSERT INTO episodes (user_id, id, stream_id, title, review_status)
         VALUES ($1, 'ep-stray', 'ep', 'stray', 'awaiting_review')",
    )
    .bind(ALICE)
    .execute(app.store.pool())
    .await
    .unwrap();
    let (s, b) = app
        .post(
            ALICE,
            "/stream/ep/review",
            json!({"approve": ["ep-stray"], "edits": [{"id": ep1, "title": "Hijacked"}]}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("not proposals of this stream"),
        "{b}"
    );
    let (_, e1) = app.get(ALICE, &format!("/records/episodes/{ep1}")).await;
    assert_ne!(e1["title"], "Hijacked", "a refused review wrote an edit");
    let (_, stray) = app.get(ALICE, "/records/episodes/ep-stray").await;
    assert_eq!(stray["review_status"], "awaiting_review");
    sqlx::query("DELETE FROM episodes WHERE id = 'ep-stray'")
        .execute(app.store.pool())
        .await
        .unwrap();

    // Edit (title and range: a second off each end) and approve the first, reject the second:
    // one publish child, for the first.
    let (s1, e1_end) = (
        eps[0]["start_time"].as_f64().unwrap(),
        eps[0]["end_time"].as_f64().unwrap(),
    );
    let (new_start, new_end) = (s1 + 1.0, e1_end - 1.0);
    let (s, reviewed) = app
        .post(
            ALICE,
            "/stream/ep/review",
            json!({"approve": [ep1], "reject": [ep2], "edits": [{"id": ep1,
                   "title": "Storming the castle", "start_time": new_start, "end_time": new_end}]}),
        )
        .await;
    assert_eq!(s, 202, "{reviewed}");
    let done = wait_for_ingest(&app, ALICE, "ep").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["episodes_approved"], json!([ep1]));
    assert_eq!(done["result"]["episodes_rejected"], json!([ep2]));
    assert!(done["result"]["windows_embedded"].as_u64().unwrap() >= 2);
    let (_, e1) = app.get(ALICE, &format!("/records/episodes/{ep1}")).await;
    assert_eq!(e1["title"], "Storming the castle");
    assert_eq!(e1["review_status"], "approved");
    // The new range, and the cut list made again for it (frames at 30 fps, file 1 starts at 0).
    assert_eq!(e1["start_time"].as_f64(), Some(new_start));
    assert_eq!(e1["end_time"].as_f64(), Some(new_end));
    let section = &e1["cut_list"]["inputMedia"][0]["sections"][0];
    assert!(
        (section["startFrame"].as_f64().unwrap() - new_start * 30.0).abs() <= 1.0,
        "{section}"
    );
    assert!(
        (section["endFrame"].as_f64().unwrap() - new_end * 30.0).abs() <= 1.0,
        "{section}"
    );
    assert_eq!(e1["chapters"][0]["start"], 0.0);
    let (_, e2) = app.get(ALICE, &format!("/records/episodes/{ep2}")).await;
    assert_eq!(e2["review_status"], "rejected");
    // The publish child renders and exports; with no YouTube app on this server it ends asking
    // for one.
    let published =
        crate::publish::wait_for_publish(&app, ALICE, ep1, Duration::from_secs(180)).await;
    assert_eq!(
        published["result"]["status"], "needs_youtube",
        "{published}"
    );
    assert!(published["result"]["render_key"].is_string(), "{published}");
    let child = fetch_history(&app, &gt_types::episode_publish_workflow_id(ALICE, ep1)).await;
    assert!(
        child.to_string().contains("WorkflowExecutionCompleted"),
        "the child ran to completion"
    );
    let parent_history =
        fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "ep")).await;
    // `GT_RECORD_HISTORIES=dir ./gt test episodes` saves this run for the replay tests.
    if let Some(dir) = std::env::var_os("GT_RECORD_HISTORIES") {
        let path = Path::new(&dir).join("stream_ingest_v6_previews_after_proposals.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&parent_history).unwrap()).unwrap();
    }
    // The proposals were written before any preview was encoded: the review never waits for
    // the previews.
    let events = parent_history["events"].as_array().unwrap();
    let scheduled = |name: &str| {
        events.iter().find_map(|e| {
            let a = find_key(e, "ActivityTaskScheduledEventAttributes")?;
            (a["activity_type"]["name"] == name).then(|| e["event_id"].as_u64().unwrap())
        })
    };
    let propose = scheduled("episodes.propose").expect("proposals scheduled");
    let proposed_at = events
        .iter()
        .find(|e| {
            find_key(e, "ActivityTaskCompletedEventAttributes")
                .is_some_and(|a| a["scheduled_event_id"].as_u64() == Some(propose))
        })
        .and_then(|e| e["event_id"].as_u64())
        .expect("proposals completed");
    let first_preview = scheduled("media.make_preview").expect("previews scheduled");
    assert!(
        first_preview > proposed_at,
        "first preview scheduled at event {first_preview}, proposals done at {proposed_at}"
    );
    let parent = parent_history.to_string();
    assert_eq!(
        parent
            .matches("StartChildWorkflowExecutionInitiated")
            .count(),
        1
    );
    // One review was accepted (as an update); the refused ones left no trace.
    assert_eq!(
        parent
            .matches("WorkflowExecutionUpdateAcceptedEventAttributes")
            .count(),
        1,
        "{parent}"
    );
    // Decisions on episodes already decided are refused.
    assert_eq!(
        app.post(ALICE, "/stream/ep/review", json!({"approve": [ep2]}))
            .await
            .0,
        400
    );

    // The ingestion task's updates arrived in order, and only on Alice's socket.
    let updates = drain(&mut alice_ws, Duration::from_secs(2)).await;
    let ingestion: Vec<&Value> = updates
        .iter()
        .filter(|u| u["type"] == "TASK_UPDATE" && u["task"]["task_type"] == "ingestion")
        .collect();
    // RUNNING at each stage (the stage in the message, the percent rising; again after each
    // preview, built while the run waits for review), then COMPLETED.
    let statuses: Vec<&Value> = ingestion.iter().map(|u| &u["task"]["status"]).collect();
    assert_eq!(statuses.first(), Some(&&json!("RUNNING")), "{updates:?}");
    assert_eq!(statuses.last(), Some(&&json!("COMPLETED")), "{updates:?}");
    assert!(
        statuses[..statuses.len() - 1]
            .iter()
            .all(|s| *s == "RUNNING"),
        "{updates:?}"
    );
    let mut stages: Vec<&str> = ingestion
        .iter()
        .filter(|u| u["task"]["status"] == "RUNNING")
        .filter_map(|u| u["task"]["message"].as_str())
        .collect();
    stages.dedup();
    assert_eq!(
        stages,
        [
            "listing",
            "probing",
            "recording",
            "analyzing",
            "summarizing",
            "proposing",
            "awaiting_review",
            "publishing"
        ],
        "{updates:?}"
    );
    let percents: Vec<f64> = ingestion
        .iter()
        .filter_map(|u| u["task"]["progress"].as_f64())
        .collect();
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]) && percents.last() >= Some(&0.9),
        "{percents:?}"
    );
    assert!(
        updates
            .iter()
            .any(|u| u["task"]["task_type"] == "upload" && u["task"]["record_id"] == ep1),
        "the publish child's task: {updates:?}"
    );
    assert!(
        drain(&mut bob_ws, Duration::from_millis(200))
            .await
            .is_empty()
    );
    app.stop().await;
}

/// A local stand-in for OpenAI: checks what it is sent and answers in the API's format.
#[derive(Default)]
struct FakeOpenAi {
    chat: Vec<(String, Value)>,
    embeddings: Vec<(String, Value)>,
}

/// Deterministic bag-of-words embedding (so search still finds the right words).
fn hashed_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 1536];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
    {
        let h = w.to_lowercase().bytes().fold(2166136261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16777619)
        });
        v[(h % 1536) as usize] += 1.0;
    }
    v[0] += 0.01;
    v
}

async fn fake_openai() -> (String, Arc<Mutex<FakeOpenAi>>) {
    use axum::Json;
    use axum::http::HeaderMap;
    use axum::routing::post;
    let seen = Arc::new(Mutex::new(FakeOpenAi::default()));
    let auth = |h: &HeaderMap| {
        h.get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (s1, s2) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(move |h: HeaderMap, Json(body): Json<Value>| {
                let seen = s1.clone();
                async move {
                    seen.lock().unwrap().chat.push((auth(&h), body.clone()));
                    let user: Value =
                        serde_json::from_str(body["messages"][1]["content"].as_str().unwrap())
                            .unwrap();
                    let first = &user["transcription"][0];
                    let summary = json!({
                        "title": "Castle siege",
                        "keywords": ["castle", "boss"],
                        "summary_context": format!("{} Then the castle.", user["summarization_context"].as_str().unwrap()),
                        "summary_main_discussion": "Storming the castle.",
                        "highlights": [{"timestamp_start": first["start"], "timestamp_end": first["end"],
                                        "description": "The stream opens", "reasoning": "first words"}],
                        "attentions": [],
                        "transcription_errors": [],
                    });
                    Json(json!({
                        "id": "chatcmpl-test", "object": "chat.completion", "created": 1, "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                                     "message": {"role": "assistant", "content": summary.to_string(), "refusal": null}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                    }))
                }
            }),
        )
        .route(
            "/v1/embeddings",
            post(move |h: HeaderMap, Json(body): Json<Value>| {
                let seen = s2.clone();
                async move {
                    seen.lock().unwrap().embeddings.push((auth(&h), body.clone()));
                    let data: Vec<Value> = body["input"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .enumerate()
                        .map(|(i, t)| json!({"object": "embedding", "index": i,
                                             "embedding": hashed_embedding(t.as_str().unwrap())}))
                        .collect();
                    Json(json!({"object": "list", "data": data, "model": body["model"],
                                "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn the_openai_path_speaks_its_wire_format_and_cancel_stops_a_waiting_ingestion() {
    let (url, seen) = fake_openai().await;
    let app = TestApp::start_with(AppOptions {
        ai: Some(gt_ai::AiConfig {
            api_key: Some("sk-test".into()),
            base_url: Some(url),
            chat_model: "gpt-4o-2024-11-20".into(),
            embedding_model: "text-embedding-3-small".into(),
            minilm_dir: None,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    recording(
        &app.recordings_of(ALICE).as_path().join("oa/a.mkv"),
        talk(CASTLE, 1.0, 2.0),
    );
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "oa", "prefix": "oa"}),
    )
    .await;
    let (s, _) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": "oa", "language": "en", "initialSummary": "Earlier: the forest.",
                   "episodes": {"break_gap": 20.0, "min_length": 10.0, "max_length": 600.0}}),
        )
        .await;
    assert_eq!(s, 202);
    wait_for_stage(&app, "oa", "awaiting_review").await;

    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.chat.len(), 1, "one summary request per clip");
        let (auth, req) = &seen.chat[0];
        assert_eq!(auth, "Bearer sk-test");
        assert_eq!(req["model"], "gpt-4o-2024-11-20");
        assert_eq!(req["stream"], false);
        assert_eq!(req["messages"][0]["role"], "system");
        assert_eq!(req["messages"][1]["role"], "user");
        let user: Value =
            serde_json::from_str(req["messages"][1]["content"].as_str().unwrap()).unwrap();
        assert_eq!(user["summarization_context"], "Earlier: the forest.");
        let lines = user["transcription"].as_array().unwrap();
        assert!(lines.len() >= 3, "{user}");
        assert!(
            lines
                .iter()
                .all(|l| l["start"].is_number() && l["end"].is_number() && l["text"].is_string())
        );
        let format = &req["response_format"];
        assert_eq!(format["type"], "json_schema");
        assert_eq!(format["json_schema"]["strict"], true);
        let required = format["json_schema"]["schema"]["required"]
            .as_array()
            .unwrap();
        assert_eq!(required.len(), 7, "{format}");
        assert_eq!(
            format["json_schema"]["schema"]["additionalProperties"],
            false
        );

        assert!(!seen.embeddings.is_empty());
        for (auth, req) in &seen.embeddings {
            assert_eq!(auth, "Bearer sk-test");
            assert_eq!(req["model"], "text-embedding-3-small");
            assert_eq!(req["encoding_format"], "float");
            assert!(
                req["input"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(Value::is_string)
            );
        }
    }
    let (_, clip) = app.get(ALICE, "/records/video_clips/oa%2Fa.mkv").await;
    assert_eq!(clip["summary"]["method"], "llm");
    assert_eq!(clip["summary"]["title"], "Castle siege");
    assert_eq!(clip["summary"]["model"], "gpt-4o-2024-11-20");
    let dims: Vec<i32> =
        sqlx::query_scalar("SELECT DISTINCT dim FROM transcript_windows WHERE user_id = $1")
            .bind(ALICE)
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(dims, vec![1536]);
    let (s, hits) = app
        .get(ALICE, "/search?q=archers%20walls&stream_id=oa")
        .await;
    assert_eq!(s, 200, "{hits}");
    assert_eq!(hits["model"], "text-embedding-3-small");
    assert!(
        hits["items"][0]["text"]
            .as_str()
            .unwrap()
            .contains("archers"),
        "{hits}"
    );
    // The proposal's chapter comes from the model's highlight.
    let (_, eps) = app.get(ALICE, "/stream/oa/episodes").await;
    assert_eq!(eps["items"][0]["chapters"][0]["title"], "The stream opens");

    // Cancel while waiting for review: the run stops, the proposals stay for later.
    assert_eq!(app.post(ALICE, "/stream/oa/cancel", json!({})).await.0, 202);
    let done = wait_for_ingest(&app, ALICE, "oa").await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("cancelled"),
        "{done}"
    );
    assert_eq!(done["progress"]["stage"], "cancelled");
    let (_, eps) = app.get(ALICE, "/stream/oa/episodes").await;
    assert_eq!(eps["items"][0]["review_status"], "awaiting_review");
    // Nobody waits for a review now: it is refused whole, the edit included (the old API
    // wrote edits first and then failed to signal).
    let id = eps["items"][0]["id"].as_str().unwrap();
    let before = eps["items"][0]["title"].clone();
    let (s, b) = app
        .post(
            ALICE,
            "/stream/oa/review",
            json!({"approve": [id], "edits": [{"id": id, "title": "Edited too early"}]}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    let (_, after) = app.get(ALICE, &format!("/records/episodes/{id}")).await;
    assert_eq!(after["title"], before);
    assert_eq!(after["review_status"], "awaiting_review");
    let (_, tasks) = app.get(ALICE, "/records/tasks").await;
    assert_eq!(tasks["items"][0]["status"], "ABORTED", "{tasks}");
    app.stop().await;
}

fn worker_cpu(app: &TestApp) -> std::process::Child {
    app.worker_process("worker-cpu")
        .env("GT_ANALYSIS_THREADS", "2")
        .env("GT_EMBEDDING_MODEL", "all-MiniLM-L6-v2")
        .env_remove("OPENAI_API_KEY")
        .env_remove("GT_OPENAI_API_KEY")
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn a_cpu_worker_killed_mid_run_leaves_one_complete_result() {
    // The workflow worker runs as a process here, so it can be killed without warning.
    let app = TestApp::start_with(AppOptions {
        cpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    two_topic_stream(app.recordings_of(ALICE).as_path());
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "killed", "prefix": "ep"}),
    )
    .await;
    let mut worker = worker_cpu(&app);
    let (s, _) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": "killed", "language": "en", "awaitReview": false,
                   "episodes": {"break_gap": 20.0, "min_length": 15.0, "max_length": 600.0}}),
        )
        .await;
    assert_eq!(s, 202);
    wait_for_stage(&app, "killed", "summarizing").await;
    worker.kill().unwrap();
    worker.wait().unwrap();
    let mut second = worker_cpu(&app);
    let done = wait_for_ingest(&app, ALICE, "killed").await;
    second.kill().ok();
    second.wait().ok();
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["failures"], json!([]), "{done}");
    let result = &done["result"];
    assert_eq!(
        result["episodes_proposed"].as_array().unwrap().len(),
        2,
        "{result}"
    );

    // Exactly one of everything: windows as counted, one summary per clip, two episodes.
    let windows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM transcript_windows WHERE user_id = $1")
            .bind(ALICE)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(windows as u64, result["windows_embedded"].as_u64().unwrap());
    let distinct: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT (clip_key, stream_start)) FROM transcript_windows WHERE user_id = $1",
    )
    .bind(ALICE)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(distinct, windows, "no window stored twice");
    let (_, eps) = app.get(ALICE, "/stream/killed/episodes").await;
    assert_eq!(eps["items"].as_array().unwrap().len(), 2);
    let (_, clips) = app
        .get(ALICE, "/records/video_clips/stream_id/killed")
        .await;
    for c in clips["items"].as_array().unwrap() {
        assert_eq!(c["summary"]["method"], "extractive", "{c}");
    }
    app.stop().await;
}
