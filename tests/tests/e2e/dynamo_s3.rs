//! A DynamoDB deployment end to end: records, pipeline state and tasks in DynamoDB Local,
//! recordings and artifacts in an S3 server (s3s-fs on a real port), search in Postgres. The
//! same ingestion as on the embedded stack, judged against the generated truth, plus what only
//! this deployment has: nothing of the records in Postgres, FFmpeg reading recordings with
//! range requests, `/media` redirecting to presigned links, task updates fanned out without
//! Postgres triggers.

use std::time::Duration;

use gt_cli::media_gen::Segment;
use gt_store::RecordStore;
use gt_tests::{
    ALICE, AppOptions, BOB, Backends, TEST_BUCKET, TestApp, drain, wait_for_previews, websocket,
};
use serde_json::{Value, json};

use crate::episodes::{two_topic_stream, wait_for_stage};

#[tokio::test]
async fn a_dynamodb_and_s3_deployment_ingests_a_stream_end_to_end() {
    let app = TestApp::start_with(AppOptions {
        backends: Backends::DynamoDbS3,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let aws = app.aws.as_ref().unwrap();

    // The recordings are uploaded to the bucket, as a streamer's sync tool would.
    let local = tempfile::tempdir().unwrap();
    let (a, b) = two_topic_stream(local.path());
    let recordings = app.recordings_store().await.unwrap();
    let mut recording_bytes = 0;
    for part in ["ep/part1.mkv", "ep/part2.mkv"] {
        let path = local.path().join(part);
        recording_bytes += std::fs::metadata(&path).unwrap().len();
        let key = gt_store::recording_key(ALICE, part).unwrap();
        recordings.put_file(&key, &path).await.unwrap();
    }
    let (s, b_) = app
        .post(
            ALICE,
            "/records/series",
            json!({"id": "ser", "title": "Castle and kitchen", "max_episode_order_index": 7}),
        )
        .await;
    assert_eq!(s, 201, "{b_}");
    let (s, b_) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"id": "dyn", "prefix": "ep", "title": "Sunday stream", "series_id": "ser"}),
        )
        .await;
    assert_eq!(s, 201, "{b_}");

    let mut alice_ws = websocket(&app, ALICE).await;
    let mut bob_ws = websocket(&app, BOB).await;
    let requests_before = aws.s3.requests().len();
    let (s, started) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": "dyn", "language": "en",
                   "episodes": {"break_gap": 20.0, "min_length": 15.0, "max_length": 600.0}}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    let waiting = wait_for_stage(&app, "dyn", "awaiting_review").await;
    assert_eq!(waiting["progress"]["episodes_proposed"], 2, "{waiting}");
    // Previews are built while the run waits for review.
    wait_for_previews(&app, ALICE, "dyn").await;

    // Clip times from the files' true durations; the stream's totals.
    let (s, clips) = app.get(ALICE, "/records/video_clips/stream_id/dyn").await;
    assert_eq!(s, 200, "{clips}");
    let clips = clips["items"].as_array().unwrap().clone();
    assert_eq!(clips.len(), 2, "{clips:?}");
    let clip = |name: &str| {
        clips
            .iter()
            .find(|c| c["key"] == format!("ep/{name}"))
            .unwrap_or_else(|| panic!("no clip {name}: {clips:?}"))
            .clone()
    };
    let (one, two) = (clip("part1.mkv"), clip("part2.mkv"));
    assert_eq!(one["start_time"], 0.0);
    let start_b = two["start_time"].as_f64().unwrap();
    assert!(
        (start_b - a.duration).abs() < 0.1,
        "{start_b} vs {}",
        a.duration
    );
    let (_, stream) = app.get(ALICE, "/records/streams/dyn").await;
    assert_eq!(stream["video_clip_count"], 2, "{stream}");
    let total = stream["duration"].as_f64().unwrap();
    assert!((total - a.duration - b.duration).abs() < 0.2, "{stream}");

    // The speech maps find the talk where it was generated (clip seconds); the transcripts
    // hear its words.
    for (c, g) in [(&one, &a), (&two, &b)] {
        let truth = g.speech(0);
        let speech = c["speech"]["speech"]
            .as_array()
            .unwrap_or_else(|| panic!("{c}"));
        let first = speech[0]["start"].as_f64().unwrap();
        let last = speech.last().unwrap()["end"].as_f64().unwrap();
        assert!(
            (first - truth[0].0).abs() < 1.5 && (last - truth.last().unwrap().1).abs() < 1.5,
            "speech {first}..{last} vs {truth:?}"
        );
        let spoken: Vec<&str> = g.tracks[0]
            .iter()
            .filter_map(|(seg, _, _)| match seg {
                Segment::Speech(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let heard = c["transcription"]["text"].as_str().unwrap_or_default();
        let wer = gt_tests::wer(&spoken.join(" "), heard);
        assert!(wer < 0.35, "WER {wer:.2}: {heard:?}");
    }

    // Proposals from the review's records, templated from the series in DynamoDB.
    let (_, eps) = app.get(ALICE, "/stream/dyn/episodes").await;
    let eps = eps["items"].as_array().unwrap().clone();
    assert_eq!(eps.len(), 2, "{eps:?}");
    assert_eq!(eps[0]["title"], "Sunday stream - Episode 8");
    assert_eq!(eps[1]["title"], "Sunday stream - Episode 9");
    assert!(eps.iter().all(|e| e["review_status"] == "awaiting_review"));

    // Search (Postgres + pgvector) over transcripts whose clips live in DynamoDB.
    let (s, hits) = app
        .get(
            ALICE,
            "/search?q=how%20long%20should%20the%20bread%20bake%20in%20the%20oven&stream_id=dyn",
        )
        .await;
    assert_eq!(s, 200, "{hits}");
    assert_eq!(hits["items"][0]["clip_key"], "ep/part2.mkv", "{hits}");

    // Where things are: the records in DynamoDB, none of them in Postgres.
    for table in ["streams", "series", "video_clips", "episodes", "tasks"] {
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        assert_eq!(rows, 0, "{table} rows in Postgres");
    }
    let dynamo = gt_records_dynamo::DynamoRecordStore::new(
        aws.dynamo.client().await,
        app.dynamo_table().unwrap(),
    );
    for key in ["ep/part1.mkv", "ep/part2.mkv"] {
        let item = dynamo
            .get(ALICE, &gt_store::catalog::VIDEO_CLIPS, key)
            .await
            .unwrap();
        assert!(item["transcription"].is_object(), "{item}");
    }
    let windows: i64 = sqlx::query_scalar("SELECT count(*) FROM transcript_windows")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(windows > 0, "search windows stay in Postgres");

    // FFmpeg read the recordings in place: every read of a recording was a range request,
    // and all of them together fetched less than the files hold several times over (the
    // probe, the speech scan and the preview each read once; no download first).
    let reads: Vec<_> = aws.s3.requests()[requests_before..]
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/recordings/"))
        .cloned()
        .collect();
    assert!(!reads.is_empty());
    assert!(
        reads.iter().all(|r| r.range.is_some()),
        "a recording was fetched without a range: {reads:?}"
    );
    let cached = walk_files(&app.recordings.path().join("s3-cache"));
    assert!(cached.is_empty(), "downloaded to the cache: {cached:?}");
    eprintln!(
        "{} ranged reads of {} recording bytes",
        reads.len(),
        recording_bytes
    );

    // Previews are in the bucket; /media answers with a presigned link to them.
    let segment = two["transcode"][0]["path"].as_str().unwrap().to_string();
    let in_bucket = aws
        .s3
        .root()
        .join(TEST_BUCKET)
        .join("artifacts")
        .join(&segment);
    let truth = std::fs::read(&in_bucket).unwrap_or_else(|e| panic!("{in_bucket:?}: {e}"));
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let media = no_redirect
        .get(format!("{}/media/{segment}", app.base))
        .bearer_auth(app.token(ALICE))
        .send()
        .await
        .unwrap();
    assert_eq!(media.status(), 307);
    let location = media.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(aws.s3.endpoint()), "{location}");
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), truth.as_slice());
    // Bob gets no link to Alice's preview.
    let theirs = no_redirect
        .get(format!("{}/media/{segment}", app.base))
        .bearer_auth(app.token(BOB))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);

    // Task updates reached Alice's socket from the DynamoDB writer; none reached Bob's.
    let updates = drain(&mut alice_ws, Duration::from_secs(2)).await;
    let statuses: Vec<&Value> = updates
        .iter()
        .filter(|u| u["type"] == "TASK_UPDATE" && u["task"]["task_type"] == "ingestion")
        .map(|u| &u["task"]["status"])
        .collect();
    assert!(
        statuses.iter().any(|s| *s == "RUNNING"),
        "{statuses:?} of {updates:?}"
    );
    assert!(
        drain(&mut bob_ws, Duration::from_millis(200))
            .await
            .is_empty()
    );
    let (s, tasks) = app.get(ALICE, "/records/tasks").await;
    assert_eq!(s, 200, "{tasks}");
    assert!(!tasks["items"].as_array().unwrap().is_empty(), "{tasks}");
    let (_, bobs) = app.get(BOB, "/records/tasks").await;
    assert_eq!(bobs["items"], json!([]), "{bobs}");
    app.stop().await;
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk_files(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
