//! Archive and restore of raw recordings end to end.
//!
//! - Through the API on the embedded stack (Postgres, recordings in a local directory): a
//!   stream's recordings are archived (`POST …/archive`: the files move into the store's
//!   archive directory), `s3-status` says so, a restore (`POST …/restore`) brings them back
//!   and makes the stream standard, and an episode renders from them; archived again, a
//!   `POST /render` restores them itself before rendering. Every route is tried by a second
//!   user (404) and with bad input (400).
//! - After publishing: when `EpisodePublish` has uploaded an episode (to the local server that
//!   speaks YouTube's protocol) and every episode of its stream meant for publishing has a
//!   video, the stream's recordings are archived; not before.
//! - On S3 (the s3s-fs test server, which keeps storage classes and restores with a delay the
//!   test sets, as AWS documents them): `ArchiveStream` and `RestoreStream` run on a CPU
//!   worker whose recordings store is that server, and the restore waits durably, on
//!   Temporal timers, across polls while S3 answers `ongoing-request="true"`. (The harness's
//!   S3 stack keeps records in DynamoDB, which cannot set a stream's archive state yet; this
//!   worker keeps records in the app's Postgres.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gt_cli::media_gen::{RecordingSpec, SENTENCES, Segment, generate};
use gt_store::blob::{RestoreState, StorageState};
use gt_tests::{ALICE, AppOptions, BOB, Backends, TEST_BUCKET, TestApp};
use gt_workflows::restore_stream::RestoreStreamOutput;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha256_file(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// Frames of the video stream as ffprobe counts them (decoding every frame).
fn ffprobe_frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"][0]["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A generated recording at `path` (speech, then silence; 640×360 at 30 fps).
fn recording(path: &Path, seconds: f64) {
    generate(
        &RecordingSpec::mic(
            vec![
                Segment::Silence(0.5),
                Segment::Speech(SENTENCES[3].into()),
                Segment::Silence(seconds),
            ],
            Some((640, 360, 30)),
        ),
        path,
    )
    .unwrap();
}

/// Waits until `s3-status` of stream `arc-s3` reports `class`.
async fn status_until(app: &TestApp, class: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, st) = app.get(ALICE, "/ingestion/streams/arc-s3/s3-status").await;
        if st["storage_class"] == class {
            return st;
        }
        assert!(tokio::time::Instant::now() < deadline, "{st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the stream's record says `state`.
async fn wait_for_state(app: &TestApp, stream: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (s, b) = app.get(ALICE, &format!("/records/streams/{stream}")).await;
        assert_eq!(s, 200, "{b}");
        if b["archive_state"] == state {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream never became {state}: {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_render(app: &TestApp, episode: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let (s, b) = app
            .get(ALICE, &format!("/episodes/{episode}/publish"))
            .await;
        if s == 200 && b["status"] != "RUNNING" {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "render did not finish: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The original's compute estimate ($0.50 per hour × 0.015 hours per GB, GB = 2^30 bytes;
/// `reference/anchor-backend.md` §9), restated here rather than read from the API's code.
fn compute_usd(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 * 0.015 * 0.50
}

#[tokio::test]
async fn a_stream_is_archived_restored_and_rendered_again() {
    let app = TestApp::start_with(AppOptions {
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let file = app.recordings_of(ALICE).join("arc/a.mkv");
    recording(&file, 2.5);
    let (bytes, sha) = (std::fs::metadata(&file).unwrap().len(), sha256_file(&file));
    let info = gt_activities::media::probe::probe(&file.as_path().into(), "arc/a.mkv").unwrap();
    {
        use gt_store::PipelineStore;
        app.store
            .upsert_clip_probe(ALICE, "arc-a", "arc/a.mkv", &info)
            .await
            .unwrap();
    }
    for (user, body) in [
        (
            ALICE,
            json!({"id": "arc-a", "prefix": "arc", "title": "Archive me"}),
        ),
        (ALICE, json!({"id": "bare", "title": "No folder"})),
        // A client cannot set the derived state on create either.
        (
            BOB,
            json!({"id": "bobs", "prefix": "arc", "archive_state": "archived"}),
        ),
    ] {
        let (s, b) = app.post(user, "/records/streams", body).await;
        assert_eq!(s, 201, "{b}");
    }
    let (_, bobs) = app.get(BOB, "/records/streams/bobs").await;
    assert_eq!(bobs["archive_state"], Value::Null, "{bobs}");
    let frames_in_cut = 80;
    let (s, b) = app
        .post(
            ALICE,
            "/records/episodes",
            json!({"id": "ep", "title": "From the archive", "stream_id": "arc-a",
                   "cut_list": {"version": "1.0.0",
                     "inputMedia": [{"s3Location": "arc/a.mkv",
                                     "sections": [{"startFrame": 5, "endFrame": 5 + frames_in_cut}]}],
                     "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // Standard to begin with.
    let status = "/ingestion/streams/arc-a/s3-status";
    let (s, st) = app.get(ALICE, status).await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["exists"], true);
    assert_eq!(st["storage_class"], "STANDARD");
    assert_eq!(st["size_bytes"], bytes);
    assert_eq!(st["retrieval_required"], false);
    assert_eq!(st["archive_state"], "standard");
    assert_eq!(st["estimated_retrieval_cost_usd"], Value::Null);
    let compute = st["estimated_compute_cost_usd"].as_f64().unwrap();
    assert!((compute - compute_usd(bytes)).abs() < 1e-12, "{st}");

    // Bob: Alice's stream is not his (404 on every route); his own stream of the same folder
    // name holds nothing (his recordings root is his own).
    for (path, post) in [
        ("/ingestion/streams/arc-a/s3-status", false),
        ("/ingestion/streams/arc-a/archive", true),
        ("/ingestion/streams/arc-a/restore", true),
    ] {
        let (s, b) = if post {
            app.post(BOB, path, json!({})).await
        } else {
            app.get(BOB, path).await
        };
        assert_eq!(s, 404, "Bob: {path}: {b}");
    }
    let (s, b) = app.get(BOB, "/ingestion/streams/bobs/s3-status").await;
    assert_eq!((s, &b["exists"]), (200, &json!(false)), "{b}");
    // Bad input: unknown stream, no folder, bad restore options. Nothing changes.
    for (path, body, want) in [
        ("/ingestion/streams/nope/archive", json!({}), 404),
        ("/ingestion/streams/nope/restore", json!({}), 404),
        ("/ingestion/streams/bare/archive", json!({}), 400),
        ("/ingestion/streams/bare/restore", json!({}), 400),
        (
            "/ingestion/streams/arc-a/restore",
            json!({"poll_seconds": 0}),
            400,
        ),
        ("/ingestion/streams/arc-a/restore", json!({"days": 31}), 400),
        (
            "/ingestion/streams/arc-a/restore",
            json!({"tier": "Bulk"}),
            400,
        ),
    ] {
        let (s, b) = app.post(ALICE, path, body).await;
        assert_eq!(s, want, "{path}: {b}");
    }
    assert!(file.is_file(), "a refused request moved nothing");

    // Archive: the file moves into the store's archive directory, bytes intact.
    let (s, b) = app
        .post(ALICE, "/ingestion/streams/arc-a/archive", json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["workflowId"], "archive-stream-alice-arc-a");
    let archived = wait_for_state(&app, "arc-a", "archived").await;
    assert!(archived["archive_state_at"].is_string(), "{archived}");
    let in_archive = app.recordings.path().join(".archive/alice/arc/a.mkv");
    assert!(!file.exists(), "the recording left the recordings folder");
    assert_eq!(sha256_file(&in_archive), sha);
    // Again: joins or re-runs, changes nothing.
    let (s, b) = app
        .post(ALICE, "/ingestion/streams/arc-a/archive", json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["workflowId"], "archive-stream-alice-arc-a");
    let (s, st) = app.get(ALICE, status).await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["exists"], true);
    assert_eq!(st["storage_class"], "LOCAL_ARCHIVE");
    assert_eq!(st["size_bytes"], bytes);
    assert_eq!(st["retrieval_required"], true);
    assert_eq!(st["archive_state"], "archived");
    // The local archive has no retrieval price.
    assert_eq!(st["estimated_retrieval_cost_usd"], Value::Null);
    // A client cannot write the derived state.
    let (s, b) = app
        .put(
            ALICE,
            "/records/streams/arc-a",
            json!({"archive_state": "standard", "title": "Renamed"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, now) = app.get(ALICE, "/records/streams/arc-a").await;
    assert_eq!(
        (&now["archive_state"], &now["title"]),
        (&json!("archived"), &json!("Renamed"))
    );

    // Restore through the API: standard again, the file back where it was.
    let (s, b) = app
        .post(
            ALICE,
            "/ingestion/streams/arc-a/restore",
            json!({"poll_seconds": 1}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["workflowId"], "restore-stream-alice-arc-a");
    let client = app.temporal_client().await.unwrap();
    let restored: RestoreStreamOutput = client
        .get_workflow_handle::<gt_workflows::RestoreStreamRun>("restore-stream-alice-arc-a")
        .get_result(Default::default())
        .await
        .unwrap();
    assert_eq!(restored.storage.recordings, 1, "{restored:?}");
    assert_eq!(restored.storage.standard, 1, "{restored:?}");
    wait_for_state(&app, "arc-a", "standard").await;
    assert_eq!(sha256_file(&file), sha);
    assert!(!in_archive.exists());
    let (_, st) = app.get(ALICE, status).await;
    assert_eq!(
        (&st["storage_class"], &st["retrieval_required"]),
        (&json!("STANDARD"), &json!(false)),
        "{st}"
    );

    // A render from the restored recording.
    let (s, b) = app
        .post(ALICE, "/render", json!({"episodeIds": ["ep"]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let done = wait_for_render(&app, "ep").await;
    assert_eq!(done["result"]["status"], "rendered", "{done}");
    let (_, ep) = app.get(ALICE, "/records/episodes/ep").await;
    let render = app
        .artifacts
        .path()
        .join(ep["render_uri"].as_str().unwrap());
    assert_eq!(ffprobe_frames(&render), frames_in_cut);

    // Archived again, a render restores the stream itself first (restore-before-render).
    let (s, b) = app
        .post(ALICE, "/ingestion/streams/arc-a/archive", json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    wait_for_state(&app, "arc-a", "archived").await;
    assert!(!file.exists());
    std::fs::remove_file(&render).unwrap();
    let (s, b) = app
        .post(ALICE, "/render", json!({"episodeIds": ["ep"]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let done = wait_for_render(&app, "ep").await;
    assert_eq!(done["result"]["status"], "rendered", "{done}");
    let (_, stream) = app.get(ALICE, "/records/streams/arc-a").await;
    assert_eq!(stream["archive_state"], "standard", "{stream}");
    assert_eq!(sha256_file(&file), sha);
    let (_, ep) = app.get(ALICE, "/records/episodes/ep").await;
    let render = app
        .artifacts
        .path()
        .join(ep["render_uri"].as_str().unwrap());
    assert_eq!(ffprobe_frames(&render), frames_in_cut);
    app.stop().await;
}

#[tokio::test]
async fn restore_stream_waits_durably_for_s3() {
    // The DynamoDB deployment: recordings in S3 (restores take 3 s here), records in DynamoDB.
    let app = TestApp::start_with(AppOptions {
        backends: Backends::DynamoDbS3,
        gpu_worker: false,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let aws = app.aws.as_ref().unwrap();
    let recordings = app.recordings_store().await.unwrap();
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("a.mkv");
    recording(&source, 1.0);
    let sha = sha256_file(&source);
    recordings
        .put_file("alice/arc/a.mkv", &source)
        .await
        .unwrap();
    let s3_key = "recordings/alice/arc/a.mkv";
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"id": "arc-s3", "prefix": "arc"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    let (s, b) = app
        .post(ALICE, "/ingestion/streams/arc-s3/archive", json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    wait_for_state(&app, "arc-s3", "archived").await;
    let st = status_until(&app, "GLACIER").await;
    assert_eq!(st["retrieval_required"], true, "{st}");
    assert_eq!(
        aws.s3.storage_class_of(TEST_BUCKET, s3_key).as_deref(),
        Some("GLACIER")
    );
    // Bob sees none of it.
    let (s, _) = app.get(BOB, "/ingestion/streams/arc-s3/s3-status").await;
    assert_eq!(s, 404);

    aws.s3.set_restore_delay(Duration::from_secs(3));
    let (s, started) = app
        .post(
            ALICE,
            "/ingestion/streams/arc-s3/restore",
            json!({"poll_seconds": 1}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    // While S3 restores: the stream says restoring, the object cannot be read.
    wait_for_state(&app, "arc-s3", "restoring").await;
    assert_eq!(
        recordings.storage("alice/arc/a.mkv").await.unwrap().state,
        StorageState::Archived(RestoreState::InProgress)
    );
    assert!(recordings.get_bytes("alice/arc/a.mkv").await.is_err());
    wait_for_state(&app, "arc-s3", "standard").await;
    let history = crate::ingest::fetch_history(&app, started["workflowId"].as_str().unwrap()).await;
    let timers = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| crate::ingest::find_key(e, "TimerFiredEventAttributes").is_some())
        .count();
    // A 3 s restore polled every second: the workflow waited on durable timers.
    assert!(timers >= 2, "{timers} timers fired");
    println!("RestoreStream timers fired while S3 restored (3 s restore, 1 s poll): {timers}");
    assert_eq!(
        aws.s3.storage_class_of(TEST_BUCKET, s3_key).as_deref(),
        Some("STANDARD")
    );
    let back = recordings.get_bytes("alice/arc/a.mkv").await.unwrap();
    assert_eq!(format!("{:x}", Sha256::digest(&back)), sha);
    let st = status_until(&app, "STANDARD").await;
    assert_eq!(st["retrieval_required"], false, "{st}");
    app.stop().await;
}

const TOKEN_KEY: &str = "e2e-token-key-0123456789abcdef-0123456789";
const REDIRECT: &str = "http://127.0.0.1:5173/youtube/callback";

/// Connects `user`'s YouTube as the front end does: consent URL, the fake's redirect with a
/// code, the callback.
async fn connect_youtube(app: &TestApp, user: &str) {
    let scopes = [
        "https://www.googleapis.com/auth/youtube",
        "https://www.googleapis.com/auth/youtube.upload",
    ];
    let (s, b) = app
        .post(
            user,
            "/auth/youtube/url",
            json!({"scopes": scopes, "redirect_uri": "http://127.0.0.1:5173/profile"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = browser
        .get(b["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    let (s, b) = app
        .post(
            user,
            "/auth/youtube/callback",
            json!({"code": param("code"), "state": param("state"), "scope": scopes}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn recordings_are_archived_once_every_episode_is_published() {
    let fake = gt_youtube::fake::FakeYouTube::start().await;
    let app = TestApp::start_with(AppOptions {
        gpu_worker: false,
        youtube: Some(gt_youtube::YouTubeApp {
            config: fake.config(),
            redirect_url: REDIRECT.into(),
            key: gt_youtube::token_box::TokenKey::derive(
                TOKEN_KEY.as_bytes(),
                gt_youtube::token_box::YOUTUBE_TOKENS,
            )
            .unwrap(),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    connect_youtube(&app, ALICE).await;
    let file = app.recordings_of(ALICE).join("pubarc/a.mkv");
    recording(&file, 1.5);
    let sha = sha256_file(&file);
    let info = gt_activities::media::probe::probe(&file.as_path().into(), "pubarc/a.mkv").unwrap();
    {
        use gt_store::PipelineStore;
        app.store
            .upsert_clip_probe(ALICE, "pubarc", "pubarc/a.mkv", &info)
            .await
            .unwrap();
    }
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"id": "pubarc", "prefix": "pubarc"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    for (id, start) in [("one", 3), ("two", 20)] {
        let (s, b) = app
            .post(
                ALICE,
                "/records/episodes",
                json!({"id": id, "title": format!("Part {id}"), "stream_id": "pubarc",
                       "cut_list": {"version": "1.0.0",
                         "inputMedia": [{"s3Location": "pubarc/a.mkv",
                                         "sections": [{"startFrame": start, "endFrame": start + 40}]}],
                         "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]}}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }

    // One of two published: the other still needs the recording.
    let (s, b) = app
        .post(ALICE, "/upload/youtube", json!({"episode_ids": ["one"]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let done = wait_for_render(&app, "one").await;
    assert_eq!(done["result"]["status"], "published", "{done}");
    let (_, stream) = app.get(ALICE, "/records/streams/pubarc").await;
    assert_eq!(stream["archive_state"], Value::Null, "{stream}");
    assert!(file.is_file());

    // The last one published: the stream's recordings go to the archive.
    let (s, b) = app
        .post(ALICE, "/upload/youtube", json!({"episode_ids": ["two"]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let done = wait_for_render(&app, "two").await;
    assert_eq!(done["result"]["status"], "published", "{done}");
    let (_, stream) = app.get(ALICE, "/records/streams/pubarc").await;
    assert_eq!(stream["archive_state"], "archived", "{stream}");
    assert!(!file.exists());
    assert_eq!(
        sha256_file(&app.recordings.path().join(".archive/alice/pubarc/a.mkv")),
        sha
    );
    assert_eq!(fake.videos().len(), 2);
    let (_, st) = app.get(ALICE, "/ingestion/streams/pubarc/s3-status").await;
    assert_eq!(st["retrieval_required"], true, "{st}");
    app.stop().await;
}

/// `s3-status` on S3 (the harness's S3 stack; the recording is archived and restored through
/// the blob store directly): the class S3 reports, whether a retrieval is needed, and the
/// original's estimates for GLACIER (`reference/anchor-backend.md` §9: $0.0025 bulk and
/// $0.01 standard per GB, 8 and 4 hours), restated here from the reference.
#[tokio::test]
async fn s3_status_reads_storage_classes_and_prices_a_retrieval() {
    let app = TestApp::start_with(AppOptions {
        backends: gt_tests::Backends::DynamoDbS3,
        cpu_worker: false,
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let store = app.recordings_store().await.unwrap();
    let (s, b) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"id": "cold", "prefix": "cold"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (a, n) = (vec![7u8; 300_000], vec![9u8; 1_000]);
    store
        .put_bytes("alice/cold/a.mkv", a.clone())
        .await
        .unwrap();
    store
        .put_bytes("alice/cold/notes.txt", n.clone())
        .await
        .unwrap();
    let size = (a.len() + n.len()) as u64;
    let status = || app.get(ALICE, "/ingestion/streams/cold/s3-status");
    let (s, st) = status().await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["storage_class"], "STANDARD");
    assert_eq!(st["size_bytes"], size);
    assert_eq!(st["retrieval_required"], false);

    store.archive("alice/cold/a.mkv").await.unwrap();
    let (_, st) = status().await;
    // The coldest class names the stream.
    assert_eq!(st["storage_class"], "GLACIER", "{st}");
    assert_eq!(st["size_bytes"], size);
    assert_eq!(st["retrieval_required"], true);
    let gb = size as f64 / (1u64 << 30) as f64;
    let cost = &st["estimated_retrieval_cost_usd"];
    assert!(
        (cost["bulk"].as_f64().unwrap() - gb * 0.0025).abs() < 1e-12,
        "{st}"
    );
    assert!(
        (cost["standard"].as_f64().unwrap() - gb * 0.01).abs() < 1e-12,
        "{st}"
    );
    assert_eq!(
        st["estimated_retrieval_time_hours"],
        json!({"bulk": 8.0, "standard": 4.0})
    );
    assert!((st["estimated_compute_cost_usd"].as_f64().unwrap() - compute_usd(size)).abs() < 1e-12);
    // Another user's stream is not found, whatever is stored.
    assert_eq!(
        app.get(BOB, "/ingestion/streams/cold/s3-status").await.0,
        404
    );

    // A restore under way still needs the retrieval; a restored copy does not.
    let aws = app.aws.as_ref().unwrap();
    aws.s3.set_restore_delay(Duration::from_secs(2));
    assert_eq!(
        store.request_restore("alice/cold/a.mkv", 1).await.unwrap(),
        RestoreState::InProgress
    );
    let (_, st) = status().await;
    assert_eq!(st["retrieval_required"], true, "{st}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.storage("alice/cold/a.mkv").await.unwrap().state
        == StorageState::Archived(RestoreState::InProgress)
    {
        assert!(tokio::time::Instant::now() < deadline, "never restored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, st) = status().await;
    assert_eq!(
        (&st["storage_class"], &st["retrieval_required"]),
        (&json!("GLACIER"), &json!(false)),
        "{st}"
    );
    assert_eq!(st["estimated_retrieval_cost_usd"], Value::Null, "{st}");
    app.stop().await;
}
