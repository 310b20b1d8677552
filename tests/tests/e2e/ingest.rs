//! `POST /stream` → `StreamIngest` on a real Temporal server with a real worker: media files in
//! a blob directory become clips with exact durations and cumulative start times.

use std::path::Path;

use gt_cli::media_gen::{AudioCodec, Container, RecordingSpec, Segment, Track, generate};
use gt_tests::{ALICE, AppOptions, BOB, TestApp, wait_for_ingest};
use serde_json::{Value, json};

fn tone_track(title: &str, secs: f64) -> Track {
    Track {
        title: title.into(),
        segments: vec![Segment::Tone(secs / 2.0), Segment::Silence(secs / 2.0)],
    }
}

fn spec(container: Container, video: bool, tracks: Vec<Track>) -> RecordingSpec {
    RecordingSpec {
        video: video.then_some((160, 120, 15)),
        tracks,
        container,
        audio_codec: AudioCodec::Aac,
    }
}

/// Three small recordings of known length in `dir/2024-01-01/`, plus a non-media file.
fn make_stream_media(dir: &Path) -> Vec<(String, f64)> {
    let folder = dir.join("2024-01-01");
    let files = [
        (
            "2024-01-01 10-00-00.mkv",
            spec(
                Container::Mkv,
                true,
                vec![tone_track("Game", 3.0), tone_track("Mic", 3.0)],
            ),
        ),
        (
            "2024-01-01 10-00-03.mp4",
            spec(Container::Mp4, true, vec![tone_track("Mic", 2.0)]),
        ),
        (
            "2024-01-01 10-00-05.flv",
            spec(Container::Flv, false, vec![tone_track("Mic", 2.5)]),
        ),
    ];
    let out = files
        .iter()
        .map(|(name, spec)| {
            let g = generate(spec, &folder.join(name)).unwrap();
            (format!("2024-01-01/{name}"), g.duration)
        })
        .collect();
    std::fs::write(folder.join("notes.txt"), "not a clip").unwrap();
    out
}

fn clips_by_key(body: &Value) -> Vec<Value> {
    let mut items = body["items"].as_array().unwrap().clone();
    items.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    items
}

#[tokio::test]
async fn ingest_probes_every_clip_and_records_start_times() {
    let mut app = TestApp::start_with(AppOptions {
        cpu_worker: false,
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let media = make_stream_media(app.recordings_of(ALICE).as_path());
    let (s, _) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"id": "s1", "title": "t", "prefix": "2024-01-01"}),
        )
        .await;
    assert_eq!(s, 201);

    // No worker yet: the run stays queued, and a duplicate start joins it.
    let body = json!({"awaitReview": false, "streamId": "s1", "initialPrompt": "p", "initialSummary": "s"});
    let (s, first) = app.post(ALICE, "/stream", body.clone()).await;
    assert_eq!(s, 202, "{first}");
    assert_eq!(
        first["id"],
        gt_types::stream_ingest_workflow_id(ALICE, "s1")
    );
    assert_eq!(first["started"], true);
    let (s, dup) = app.post(ALICE, "/stream", body.clone()).await;
    assert_eq!(s, 200, "{dup}");
    assert_eq!(dup["started"], false);
    assert_eq!(dup["runId"], first["runId"]);
    let (s, running) = app.get(ALICE, "/stream/s1/progress").await;
    assert_eq!(s, 200);
    assert_eq!(running["status"], "RUNNING");
    assert_eq!(running["progress"]["stage"], "starting");
    assert!(
        running["note"]
            .as_str()
            .unwrap()
            .contains("is worker-cpu running"),
        "{running}"
    );

    app.start_cpu_worker().unwrap();
    app.start_gpu_worker(gt_tests::test_gpu_config()).unwrap();
    let done = wait_for_ingest(&app, ALICE, "s1").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["runId"], first["runId"]);
    assert_eq!(done["progress"]["stage"], "completed");
    assert_eq!(done["progress"]["clips_total"], 3);
    assert_eq!(done["progress"]["clips_done"], 3);
    assert_eq!(done["progress"]["percent"], 100.0);
    assert_eq!(done["result"]["clip_count"], 3);

    let (_, clips) = app.get(ALICE, "/records/video_clips/stream_id/s1").await;
    let clips = clips_by_key(&clips);
    assert_eq!(clips.len(), 3, "the .txt file is not a clip");
    let mut expected_start = 0.0;
    for (clip, (key, duration)) in clips.iter().zip(&media) {
        assert_eq!(clip["key"], *key);
        assert_eq!(clip["id"], *key);
        assert_eq!(clip["stream_id"], "s1");
        let probed = clip["metadata"]["format"]["duration"].as_f64().unwrap();
        // AAC frames (21 ms) and video frames (67 ms) round the container's length.
        assert!(
            (probed - duration).abs() < 0.1,
            "{key}: probed {probed}, made {duration}"
        );
        let start = clip["start_time"].as_f64().unwrap();
        assert!(
            (start - expected_start).abs() < 1e-9,
            "{key}: start {start}, want {expected_start}"
        );
        expected_start += probed;
    }
    // What the probe saw in each container.
    let mkv = &clips[0]["metadata"];
    assert_eq!(mkv["format"]["format_name"], "matroska,webm");
    let kinds: Vec<&str> = mkv["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["video", "audio", "audio"]);
    assert_eq!(mkv["streams"][0]["codec_name"], "h264");
    assert_eq!(mkv["streams"][0]["width"], 160);
    assert_eq!(mkv["streams"][0]["frame_rate"], "15/1");
    // media_gen encodes with a keyframe every 2 × fps frames.
    assert_eq!(mkv["streams"][0]["keyframe_interval"], 2.0);
    assert_eq!(mkv["streams"][1]["title"], "Game");
    assert_eq!(mkv["streams"][2]["title"], "Mic");
    assert_eq!(mkv["streams"][2]["sample_rate"], 48000);
    assert_eq!(mkv["streams"][2]["channels"], 2);
    assert_eq!(
        clips[1]["metadata"]["streams"][1]["title"], "Mic",
        "mp4 handler_name"
    );
    assert_eq!(clips[2]["metadata"]["format"]["format_name"], "flv");

    let (_, stream) = app.get(ALICE, "/records/streams/s1").await;
    assert_eq!(stream["video_clip_count"], 3);
    assert!((stream["duration"].as_f64().unwrap() - expected_start).abs() < 1e-9);
    let (_, tasks) = app
        .get(
            ALICE,
            "/records/tasks?filter=%7B%22record_id%22%3A%22s1%22%7D",
        )
        .await;
    let tasks = tasks["items"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["status"], "COMPLETED");
    assert_eq!(tasks[0]["task_type"], "ingestion");
    assert_eq!(tasks[0]["id"], first["runId"]);

    // Re-running is safe: a new run, the same clips, no duplicates.
    let (s, again) = app.post(ALICE, "/stream", body).await;
    assert_eq!(s, 202);
    assert_ne!(again["runId"], first["runId"]);
    let done2 = wait_for_ingest(&app, ALICE, "s1").await;
    assert_eq!(done2["status"], "COMPLETED");
    let (_, clips2) = app.get(ALICE, "/records/video_clips/stream_id/s1").await;
    let clips2 = clips_by_key(&clips2);
    assert_eq!(clips2.len(), 3);
    for (a, b) in clips.iter().zip(&clips2) {
        assert_eq!(a["start_time"], b["start_time"]);
        assert_eq!(a["metadata"], b["metadata"]);
    }
    let (_, tasks) = app.get(ALICE, "/records/tasks").await;
    assert_eq!(tasks["items"].as_array().unwrap().len(), 2);

    // Another user sees none of it.
    assert_eq!(app.get(BOB, "/stream/s1/progress").await.0, 404);
    assert_eq!(
        app.post(
            BOB,
            "/stream",
            json!({"awaitReview": false, "streamId": "s1"})
        )
        .await
        .0,
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn unusable_files_fail_once_with_their_name_and_the_rest_is_ingested() {
    let app = TestApp::start().await.unwrap();
    let dir = app.recordings_of(ALICE).as_path().join("bad");
    let good = generate(
        &spec(Container::Mkv, true, vec![tone_track("Mic", 2.0)]),
        &dir.join("a-good.mkv"),
    )
    .unwrap();
    std::fs::write(dir.join("b-corrupt.mkv"), vec![0x42u8; 64 * 1024]).unwrap();
    std::fs::write(dir.join("c-empty.mp4"), b"").unwrap();
    // A file cut short after its header promised more (a copy interrupted half-way).
    let long = generate(
        &spec(Container::Mkv, true, vec![tone_track("Mic", 6.0)]),
        &app.recordings_of(ALICE).as_path().join("scratch/long.mkv"),
    )
    .unwrap();
    let bytes = std::fs::read(&long.path).unwrap();
    std::fs::write(dir.join("d-truncated.mkv"), &bytes[..bytes.len() / 2]).unwrap();

    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "bad", "prefix": "bad/"}),
    )
    .await;
    let (s, started) = app
        .post(
            ALICE,
            "/stream",
            json!({"awaitReview": false, "streamId": "bad"}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    let done = wait_for_ingest(&app, ALICE, "bad").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["clip_count"], 1);
    let failures = done["result"]["failures"].as_array().unwrap();
    let reason = |key: &str| {
        failures
            .iter()
            .find(|f| f["key"] == key)
            .unwrap_or_else(|| panic!("{key} not in {failures:?}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let corrupt = reason("bad/b-corrupt.mkv");
    assert!(
        corrupt.starts_with("bad/b-corrupt.mkv: not a media file"),
        "{corrupt}"
    );
    let empty = reason("bad/c-empty.mp4");
    assert!(
        empty.contains("bad/c-empty.mp4") && empty.contains("empty"),
        "{empty}"
    );
    let truncated = reason("bad/d-truncated.mkv");
    assert!(
        truncated.contains("bad/d-truncated.mkv: truncated"),
        "{truncated}"
    );
    assert_eq!(failures.len(), 3);
    assert_eq!(done["progress"]["clips_failed"], 3);

    let (_, clips) = app.get(ALICE, "/records/video_clips/stream_id/bad").await;
    let clips = clips_by_key(&clips);
    assert_eq!(clips.len(), 4);
    assert_eq!(clips[0]["start_time"], 0.0);
    assert!(
        (clips[0]["metadata"]["format"]["duration"].as_f64().unwrap() - good.duration).abs() < 0.1
    );
    for c in &clips[1..] {
        assert!(
            c["error"]
                .as_str()
                .unwrap()
                .contains(c["key"].as_str().unwrap())
        );
        assert!(c.get("start_time").is_none());
    }
    let (_, stream) = app.get(ALICE, "/records/streams/bad").await;
    assert_eq!(stream["video_clip_count"], 1);

    // Non-retryable: each bad file's probe ran exactly once.
    let history = fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "bad")).await;
    let probe_attempts = activity_attempts(&history, "ingest.probe_clip");
    assert_eq!(
        probe_attempts.len(),
        4,
        "one probe per file: {probe_attempts:?}"
    );
    assert!(probe_attempts.iter().all(|a| *a == 1), "{probe_attempts:?}");
}

#[tokio::test]
async fn ingest_requests_are_validated_before_anything_starts() {
    let app = TestApp::start_with(AppOptions {
        cpu_worker: false,
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "noprefix", "title": "x"}),
    )
    .await;
    for (body, status, msg) in [
        (
            json!({"awaitReview": false, "streamId": "missing"}),
            404,
            "stream 'missing' not found",
        ),
        (
            json!({"awaitReview": false, "streamId": "noprefix"}),
            400,
            "has no prefix",
        ),
        (
            json!({"streamId": "noprefix", "episodes": {"min_length": 900.0, "max_length": 60.0}}),
            400,
            "invalid episode parameters",
        ),
        (
            json!({"streamId": "noprefix", "episodes": {"break_gap": -1.0}}),
            400,
            "invalid episode parameters",
        ),
        (
            json!({"streamId": "noprefix", "awaitReview": "yes"}),
            400,
            "invalid request body",
        ),
        (
            json!({"awaitReview": false, "streamId": ""}),
            400,
            "must not be empty",
        ),
        (
            json!({"initialPrompt": "x"}),
            400,
            "missing field `streamId`",
        ),
        (
            json!({"awaitReview": false, "streamId": "noprefix", "surprise": 1}),
            400,
            "unknown field",
        ),
        (json!(["noprefix"]), 400, "invalid request body"),
    ] {
        let (s, b) = app.post(ALICE, "/stream", body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
        assert!(
            b["message"].as_str().unwrap().contains(msg),
            "{msg:?} not in {b}"
        );
    }
    let (s, b) = app.get(ALICE, "/stream/noprefix/progress").await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("has not been ingested")
    );
    assert_eq!(app.get(ALICE, "/stream/missing/progress").await.0, 404);
    // Nothing was started.
    let client = app.temporal_client().await.unwrap();
    let h = client.get_workflow_handle::<gt_workflows::StreamIngest>(
        gt_types::stream_ingest_workflow_id(ALICE, "noprefix"),
    );
    assert!(h.describe(Default::default()).await.is_err());
    let (_, tasks) = app.get(ALICE, "/records/tasks").await;
    assert_eq!(tasks["items"], json!([]));
}

/// The workflow's history as JSON (the SDK's format, also used by replay tests).
pub async fn fetch_history(app: &TestApp, workflow_id: &str) -> Value {
    let client = app.temporal_client().await.unwrap();
    let h = client.get_workflow_handle::<gt_workflows::StreamIngest>(workflow_id);
    let json = h
        .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::builder().build())
        .to_json()
        .await
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// The attempt number of every started activity of `activity_type`.
pub fn activity_attempts(history: &Value, activity_type: &str) -> Vec<u64> {
    let events = history["events"].as_array().expect("events");
    let scheduled: Vec<u64> = events
        .iter()
        .filter_map(|e| {
            let a = find_key(e, "ActivityTaskScheduledEventAttributes")?;
            (a["activity_type"]["name"] == activity_type).then(|| e["event_id"].as_u64().unwrap())
        })
        .collect();
    events
        .iter()
        .filter_map(|e| {
            let a = find_key(e, "ActivityTaskStartedEventAttributes")?;
            scheduled
                .contains(&a["scheduled_event_id"].as_u64()?)
                .then(|| a["attempt"].as_u64().unwrap())
        })
        .collect()
}

/// The attempt number of every started activity of a history, in order.
pub fn activity_attempts_all(history: &Value) -> Vec<u64> {
    history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| find_key(e, "ActivityTaskStartedEventAttributes"))
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect()
}

/// Finds `key` anywhere under `v` (the history JSON nests attributes in a oneof wrapper).
pub fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}
