//! The pipeline's typed operations (probes, finalizing, derived fields, transcripts, tasks and
//! their notifications, proposals and review), run once on `PgStore` and once on
//! `DynamoPgStore` (records in DynamoDB Local, transcripts in Postgres). Expected values come
//! from the inputs each test wrote, never from either backend.

use std::sync::Arc;

use gt_records_dynamo::local::DynamoLocal;
use gt_records_dynamo::{DynamoPgStore, DynamoRecordStore};
use gt_store::catalog::{EPISODES, SERIES, STREAMS, TASKS, VIDEO_CLIPS};
use gt_store::{PgStore, Store, StoreError};
use gt_types::episode::ReviewStatus;
use gt_types::media::{MediaInfo, Preview, SpeechMap};
use gt_types::records::{TaskStatus, TaskType};
use gt_types::transcript::Transcript;
use gt_types::workflow::{ClipFailure, FinalizeClips, TaskUpdate};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

static DYNAMO_LOCAL: OnceCell<DynamoLocal> = OnceCell::const_new();

const ALICE: &str = "alice";
const BOB: &str = "bob";

/// A store and the Postgres pool behind it (for LISTEN).
struct Backend {
    store: Arc<dyn Store>,
    pool: sqlx::PgPool,
}

async fn pool() -> sqlx::PgPool {
    let url = gt_tests::fresh_database().await.expect("fresh database");
    gt_store::pg::connect(&url, 4).await.expect("connect")
}

/// The first place two JSON values differ (for a readable failure on megabyte documents).
/// Numbers may differ in the last bit: serde_json's default float parsing is not always
/// correctly rounded, so a time read back from Postgres's jsonb can be one ulp off.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            ((x - y).abs() > 1e-9 * x.abs().max(1.0)).then(|| format!("{path}: {x} vs {y}"))
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

async fn postgres() -> Backend {
    let pool = pool().await;
    Backend {
        store: Arc::new(PgStore::new(pool.clone())),
        pool,
    }
}

async fn dynamodb() -> Backend {
    let local = DYNAMO_LOCAL
        .get_or_init(|| async { DynamoLocal::start().await.expect("DynamoDB Local") })
        .await;
    let table = format!("records_{}", uuid::Uuid::new_v4().simple());
    let dynamo = DynamoRecordStore::new(local.client().await, table);
    dynamo.ensure_table().await.expect("create table");
    let pool = pool().await;
    Backend {
        store: Arc::new(DynamoPgStore::new(dynamo, PgStore::new(pool.clone()))),
        pool,
    }
}

macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(super::postgres().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                super::$body(super::dynamodb().await).await;
            }
        }
    )*};
}

on_both_backends!(
    probes_finalize_in_stream_order,
    derived_fields_and_transcripts,
    task_updates_are_stored_and_announced,
    proposals_and_review,
    archive_state_is_server_managed,
    a_long_clips_documents_round_trip,
);

fn probe(duration: f64) -> MediaInfo {
    serde_json::from_value(json!({
        "format": {"format_name": "matroska,webm", "duration": duration, "size": 1000,
                   "start_time": 0.0},
        "streams": []
    }))
    .unwrap()
}

async fn stream(b: &Backend, user: &str, id: &str, extra: Value) {
    let mut body = json!({"id": id, "prefix": id, "title": "Sunday"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b.store.create(user, &STREAMS, &[body]).await.unwrap();
}

async fn probes_finalize_in_stream_order(b: Backend) {
    let s = &b.store;
    stream(&b, ALICE, "st", json!({})).await;
    for (key, d) in [
        ("st/a.mkv", 10.0),
        ("st/b.mkv", 20.5),
        ("st/stale.mkv", 3.0),
    ] {
        s.upsert_clip_probe(ALICE, "st", key, &probe(d))
            .await
            .unwrap();
    }
    s.mark_clip_failed(ALICE, "st", "st/bad.mkv", "not media")
        .await
        .unwrap();
    // Bob cannot finalize Alice's stream or clips, and nothing of Alice's changes.
    let bobs = FinalizeClips {
        user_id: BOB.into(),
        stream_id: "st".into(),
        keys: vec!["st/a.mkv".into()],
        failures: vec![],
    };
    assert!(s.finalize_clips(&bobs).await.is_err());
    assert_eq!(
        s.get_clip(ALICE, "st/a.mkv").await.unwrap().start_time,
        None
    );
    assert!(matches!(
        s.get_clip(BOB, "st/a.mkv").await,
        Err(StoreError::NotFound(_))
    ));
    // An unprobed key is refused.
    let unprobed = FinalizeClips {
        user_id: ALICE.into(),
        stream_id: "st".into(),
        keys: vec!["st/a.mkv".into(), "st/never.mkv".into()],
        failures: vec![],
    };
    assert!(matches!(
        s.finalize_clips(&unprobed).await,
        Err(StoreError::Invalid(_))
    ));

    let input = FinalizeClips {
        user_id: ALICE.into(),
        stream_id: "st".into(),
        keys: vec!["st/b.mkv".into(), "st/bad.mkv".into(), "st/a.mkv".into()],
        failures: vec![ClipFailure {
            key: "st/bad.mkv".into(),
            reason: "not media".into(),
        }],
    };
    // Twice: a retried activity leaves the same result.
    for _ in 0..2 {
        let done = s.finalize_clips(&input).await.unwrap();
        assert_eq!(done.clip_count, 2);
        assert_eq!(done.duration, 30.5);
        let starts: Vec<(&str, f64)> = done
            .clips
            .iter()
            .map(|c| (c.key.as_str(), c.start_time))
            .collect();
        assert_eq!(starts, vec![("st/b.mkv", 0.0), ("st/a.mkv", 20.5)]);
    }
    assert_eq!(
        s.get_clip(ALICE, "st/a.mkv").await.unwrap().start_time,
        Some(20.5)
    );
    // The stale clip (no longer listed) is gone; the failed one keeps its reason.
    assert!(matches!(
        s.get_clip(ALICE, "st/stale.mkv").await,
        Err(StoreError::NotFound(_))
    ));
    let bad = s.get_clip(ALICE, "st/bad.mkv").await.unwrap();
    assert_eq!(bad.error.as_deref(), Some("not media"));
    let st = s.get_stream(ALICE, "st").await.unwrap();
    assert_eq!(st.video_clip_count, Some(2));
    assert_eq!(st.duration, Some(30.5));
    // Only finalized, working clips are the stream's clips, in stream order.
    let keys: Vec<String> = s
        .stream_clips(ALICE, "st")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(keys, vec!["st/b.mkv", "st/a.mkv"]);
    // A re-probe clears the error.
    s.upsert_clip_probe(ALICE, "st", "st/bad.mkv", &probe(1.0))
        .await
        .unwrap();
    assert_eq!(s.get_clip(ALICE, "st/bad.mkv").await.unwrap().error, None);
}

async fn derived_fields_and_transcripts(b: Backend) {
    let s = &b.store;
    stream(&b, ALICE, "st", json!({"speech_track": 1})).await;
    s.upsert_clip_probe(ALICE, "st", "st/a.mkv", &probe(60.0))
        .await
        .unwrap();
    assert_eq!(s.speech_track(ALICE, "st").await.unwrap(), Some(1));
    stream(&b, ALICE, "other", json!({})).await;
    assert_eq!(s.speech_track(ALICE, "other").await.unwrap(), None);

    let map: SpeechMap = serde_json::from_value(json!({
        "version": "v", "track": 1,
        "params": {"noise_db": -40.0, "min_silence": 0.5, "margin": 0.25},
        "start": 0.0, "end": 60.0,
        "silence": [{"start": 0.0, "end": 2.0}], "speech": [{"start": 1.75, "end": 60.0}],
        "stream_offset": 0.0, "stream_speech": [{"start": 1.75, "end": 60.0}],
        "speech_seconds": 58.25,
        "audio": {"key": "alice/speech/st/a.wav", "sample_rate": 16000, "duration": 58.25,
                  "segments": [{"start": 1.75, "end": 60.0, "offset": 0.0}]}
    }))
    .unwrap();
    s.save_speech(ALICE, "st/a.mkv", &map).await.unwrap();
    let preview = Preview {
        version: "p".into(),
        playlist: "alice/hls/a/index.m3u8".into(),
        segments: vec![gt_types::media::PreviewSegment {
            key: "alice/hls/a/00000.ts".into(),
            duration: 6.0,
        }],
        keyframes: vec!["alice/kf/a/0.jpg".into(), "alice/kf/a/10.jpg".into()],
    };
    s.save_preview(ALICE, "st/a.mkv", &preview).await.unwrap();
    let transcript: Transcript = serde_json::from_value(json!({
        "language": "en", "text": "hello there general kenobi",
        "segments": [
            {"start": 2.0, "end": 4.0, "text": "hello there", "tokens": [1], "temperature": 0.0,
             "avg_logprob": -0.2, "compression_ratio": 1.1, "no_speech_prob": 0.01},
            {"start": 5.0, "end": 7.5, "text": "general kenobi", "tokens": [2],
             "temperature": 0.0, "avg_logprob": -0.3, "compression_ratio": 1.2,
             "no_speech_prob": 0.02}
        ]
    }))
    .unwrap();
    s.save_transcript(ALICE, "st", "st/a.mkv", 100.0, &transcript)
        .await
        .unwrap();
    // Saving twice replaces: still two rows.
    s.save_transcript(ALICE, "st", "st/a.mkv", 100.0, &transcript)
        .await
        .unwrap();

    let clip = s.get_clip(ALICE, "st/a.mkv").await.unwrap();
    let speech = serde_json::to_value(clip.speech.as_ref().unwrap()).unwrap();
    assert_eq!(
        first_difference(&speech, &serde_json::to_value(&map).unwrap(), ""),
        None
    );
    assert_eq!(clip.audio.as_deref(), Some("alice/speech/st/a.wav"));
    assert_eq!(clip.keyframes, Some(preview.keyframes.clone()));
    assert_eq!(
        clip.transcription,
        Some(serde_json::to_value(&transcript).unwrap())
    );
    let doc = s.get(ALICE, &VIDEO_CLIPS, "st/a.mkv").await.unwrap();
    assert_eq!(
        doc["transcode"],
        json!([{"path": "alice/hls/a/00000.ts", "duration": 6.0}])
    );
    assert_eq!(doc["silence"], json!([{"start": 0.0, "end": 2.0}]));
    let rows = s.transcript_rows(ALICE, "st/a.mkv").await.unwrap();
    let times: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r.stream_start, r.stream_end))
        .collect();
    assert_eq!(times, vec![(102.0, 104.0), (105.0, 107.5)]);

    // A reviewer's correction reaches the rows and the clip's transcript.
    assert_eq!(
        s.edit_segment(ALICE, "st/a.mkv", 1, "general grievous")
            .await
            .unwrap(),
        "st"
    );
    let clip = s.get_clip(ALICE, "st/a.mkv").await.unwrap();
    let t = clip.transcription.unwrap();
    assert_eq!(t["segments"][1]["text"], "general grievous");
    assert_eq!(t["text"], "hello there general grievous");
    assert!(s.transcript_rows(ALICE, "st/a.mkv").await.unwrap()[1].edited);

    // Derived writes to a clip that is not there (or another user's) change nothing.
    for user in [ALICE, BOB] {
        let key = if user == ALICE {
            "st/none.mkv"
        } else {
            "st/a.mkv"
        };
        assert!(matches!(
            s.save_speech(user, key, &map).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.save_transcript(user, "st", key, 0.0, &transcript).await,
            Err(StoreError::NotFound(_))
        ));
    }
    assert!(s.transcript_rows(BOB, "st/a.mkv").await.unwrap().is_empty());
}

async fn task_updates_are_stored_and_announced(b: Backend) {
    let mut listener = sqlx::postgres::PgListener::connect_with(&b.pool)
        .await
        .unwrap();
    listener.listen("task_updates").await.unwrap();
    let update = |status: TaskStatus, message: &str, progress: Option<f64>| TaskUpdate {
        user_id: ALICE.into(),
        task_id: "t1".into(),
        task_type: TaskType::Ingestion,
        status,
        record_id: "st".into(),
        workflow_id: "wf".into(),
        message: Some(message.into()),
        progress,
    };
    b.store
        .upsert_task(&update(TaskStatus::Running, "probing", Some(0.25)))
        .await
        .unwrap();
    b.store
        .upsert_task(&update(TaskStatus::Completed, "done", None))
        .await
        .unwrap();
    // A late progress write after the end changes nothing and announces nothing: the next
    // notification is another task's.
    b.store
        .upsert_task(&update(TaskStatus::Running, "late", Some(0.5)))
        .await
        .unwrap();
    b.store
        .upsert_task(&TaskUpdate {
            task_id: "t2".into(),
            ..update(TaskStatus::Pending, "queued", None)
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        let p: Value = serde_json::from_str(n.payload()).unwrap();
        seen.push(json!([
            p["user_id"],
            p["id"],
            p["status"],
            p["old_status"],
            p["message"],
            p["progress"],
            p["message_included"]
        ]));
    }
    assert_eq!(
        seen,
        vec![
            json!([ALICE, "t1", "RUNNING", null, "probing", 0.25, true]),
            json!([ALICE, "t1", "COMPLETED", "RUNNING", "done", null, true]),
            json!([ALICE, "t2", "PENDING", null, "queued", null, true]),
        ]
    );
    let task = b.store.get(ALICE, &TASKS, "t1").await.unwrap();
    assert_eq!(task["status"], "COMPLETED");
    assert_eq!(task["message"], "done");
    assert_eq!(task["record_id"], "st");
    assert_eq!(task["task_type"], "ingestion");
    assert!(matches!(
        b.store.get(BOB, &TASKS, "t1").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn proposals_and_review(b: Backend) {
    let s = &b.store;
    s.create(
        ALICE,
        &SERIES,
        &[
            json!({"id": "ser", "title": "Castle", "max_episode_order_index": 4,
                 "episode_title_template": "${title} #${episode_order_index}"}),
        ],
    )
    .await
    .unwrap();
    stream(
        &b,
        ALICE,
        "st",
        json!({"series_id": "ser", "description": "Bread."}),
    )
    .await;
    stream(&b, ALICE, "plain", json!({})).await;
    let t = s.series_templates(ALICE, "st").await.unwrap();
    assert_eq!(t.series_id.as_deref(), Some("ser"));
    assert_eq!(t.title_template, "${title} #${episode_order_index}");
    assert_eq!(t.description_template, "${stream_description}");
    assert_eq!(t.stream_description, "Bread.");
    assert_eq!(t.max_order_index, 4);
    let plain = s.series_templates(ALICE, "plain").await.unwrap();
    assert_eq!(
        plain.title_template,
        "${title} - Episode ${episode_order_index}"
    );
    assert!(matches!(
        s.series_templates(BOB, "st").await,
        Err(StoreError::NotFound(_))
    ));

    let proposal = |id: &str, start: f64| {
        json!({"id": id, "title": format!("ep {id}"), "order_index": 5, "start_time": start,
               "end_time": start + 10.0, "series_id": "ser", "tracks": [],
               "cut_list": {"version": "1.0.0"}, "chapters": []})
    };
    let created = s
        .replace_proposals(ALICE, "st", &[proposal("p2", 50.0), proposal("p1", 5.0)])
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    let ids = |eps: Vec<Value>| -> Vec<String> {
        eps.iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(s.proposals(ALICE, "st").await.unwrap()),
        vec!["p1", "p2"]
    );
    let p1 = &s.proposals(ALICE, "st").await.unwrap()[0];
    assert_eq!(p1["review_status"], "awaiting_review");
    assert_eq!(p1["upload_status"], "not_ready_to_upload");
    assert_eq!(p1["stream_id"], "st");
    assert!(p1.get("user_id").is_none());

    // A review naming an episode that is not awaiting review changes nothing.
    let refused = s
        .apply_review(
            ALICE,
            "st",
            &[("p1".into(), json!({"title": "Renamed"}))],
            &["p1".into()],
            &["nope".into()],
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(
        s.get(ALICE, &EPISODES, "p1").await.unwrap()["title"],
        "ep p1"
    );
    // A bad edit is refused before anything is written.
    let bad = s
        .apply_review(
            ALICE,
            "st",
            &[("p1".into(), json!({"order_index": "seven"}))],
            &["p2".into()],
            &[],
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    assert_eq!(
        s.get(ALICE, &EPISODES, "p2").await.unwrap()["review_status"],
        "awaiting_review"
    );

    s.apply_review(
        ALICE,
        "st",
        &[("p1".into(), json!({"title": "Renamed"}))],
        &["p1".into()],
        &["p2".into()],
    )
    .await
    .unwrap();
    let p1 = s.get(ALICE, &EPISODES, "p1").await.unwrap();
    assert_eq!(p1["title"], "Renamed");
    assert_eq!(p1["review_status"], ReviewStatus::Approved.as_str());
    assert_eq!(
        s.get(ALICE, &EPISODES, "p2").await.unwrap()["review_status"],
        ReviewStatus::Rejected.as_str()
    );
    // A new proposal run replaces only what awaits review: decided episodes stay.
    let again = s
        .replace_proposals(ALICE, "st", &[proposal("p1", 5.0), proposal("p3", 70.0)])
        .await
        .unwrap();
    assert_eq!(again, vec!["p3"]);
    assert_eq!(
        s.get(ALICE, &EPISODES, "p1").await.unwrap()["title"],
        "Renamed"
    );
    assert_eq!(
        ids(s.proposals(ALICE, "st").await.unwrap()),
        vec!["p1", "p2", "p3"]
    );
    s.set_review_status(ALICE, "st", &["p3".into()], ReviewStatus::Approved)
        .await
        .unwrap();
    assert!(matches!(
        s.set_review_status(BOB, "st", &["p3".into()], ReviewStatus::Rejected)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s.proposals(BOB, "st").await.unwrap().is_empty());

    // Publish state: merged, counted, other keys kept.
    let patch = gt_store::EpisodePatch {
        publish: Some(json!({"render": {"key": "r.mp4"}})),
        add_upload_attempt: true,
        ..Default::default()
    };
    s.patch_episode(ALICE, "p1", &patch).await.unwrap();
    let patch2 = gt_store::EpisodePatch {
        publish: Some(json!({"upload": {"video_id": "v"}})),
        add_upload_attempt: true,
        is_published: Some(true),
        ..Default::default()
    };
    s.patch_episode(ALICE, "p1", &patch2).await.unwrap();
    let p1 = s.get(ALICE, &EPISODES, "p1").await.unwrap();
    assert_eq!(
        p1["publish"],
        json!({"render": {"key": "r.mp4"}, "upload": {"video_id": "v"}})
    );
    assert_eq!(p1["upload_attempts"], 2);
    assert_eq!(p1["is_published"], true);
    assert!(matches!(
        s.patch_episode(BOB, "p1", &patch).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn archive_state_is_server_managed(b: Backend) {
    use gt_store::archive::{StreamArchiveState, stream_archive_state};
    let s = &b.store;
    stream(&b, ALICE, "st", json!({})).await;
    assert_eq!(
        stream_archive_state(s.as_ref(), ALICE, "st").await.unwrap(),
        StreamArchiveState::Standard
    );
    s.set_stream_archive_state(ALICE, "st", StreamArchiveState::Archived)
        .await
        .unwrap();
    let doc = s.get(ALICE, &STREAMS, "st").await.unwrap();
    assert_eq!(doc["archive_state"], "archived");
    assert!(doc["archive_state_at"].is_string(), "{doc}");
    // A client's write cannot change it; another user's stream is not found.
    s.update(
        ALICE,
        &STREAMS,
        "st",
        &json!({"archive_state": "standard", "title": "T"}),
    )
    .await
    .unwrap();
    assert_eq!(
        stream_archive_state(s.as_ref(), ALICE, "st").await.unwrap(),
        StreamArchiveState::Archived
    );
    assert!(matches!(
        s.set_stream_archive_state(BOB, "st", StreamArchiveState::Restoring)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// A 4-hour clip's transcript with word times is megabytes, past DynamoDB's 400 KB item limit:
/// it must still be stored and read back exactly, through every read path.
async fn a_long_clips_documents_round_trip(b: Backend) {
    let s = &b.store;
    stream(&b, ALICE, "long", json!({})).await;
    s.upsert_clip_probe(ALICE, "long", "long/4h.mkv", &probe(14_400.0))
        .await
        .unwrap();
    let segments: Vec<Value> = (0..3000)
        .map(|i| {
            let start = i as f64 * 4.8;
            let words: Vec<Value> = (0..10)
                .map(|w| {
                    json!({"word": format!(" word{i}_{w}"), "start": start + w as f64 * 0.4,
                           "end": start + w as f64 * 0.4 + 0.3, "probability": 0.9})
                })
                .collect();
            json!({"start": start, "end": start + 4.0, "text": format!("sentence number {i}"),
                   "tokens": [i], "temperature": 0.0, "avg_logprob": -0.25,
                   "compression_ratio": 1.3, "no_speech_prob": 0.02, "words": words})
        })
        .collect();
    let transcript: Transcript = serde_json::from_value(json!({
        "language": "en", "text": "many sentences", "segments": segments
    }))
    .unwrap();
    let size = serde_json::to_vec(&transcript).unwrap().len();
    assert!(size > 1_000_000, "{size} bytes");
    let silence: Vec<Value> = (0..4000)
        .map(|i| json!({"start": i as f64 * 3.6, "end": i as f64 * 3.6 + 0.8}))
        .collect();
    let map: SpeechMap = serde_json::from_value(json!({
        "version": "v", "track": 0,
        "params": {"noise_db": -40.0, "min_silence": 0.5, "margin": 0.25},
        "start": 0.0, "end": 14_400.0, "silence": silence, "speech": [],
        "stream_offset": 0.0, "stream_speech": [], "speech_seconds": 0.0
    }))
    .unwrap();
    s.save_speech(ALICE, "long/4h.mkv", &map).await.unwrap();
    s.save_transcript(ALICE, "long", "long/4h.mkv", 0.0, &transcript)
        .await
        .unwrap();

    let expected = serde_json::to_value(&transcript).unwrap();
    let clip = s.get_clip(ALICE, "long/4h.mkv").await.unwrap();
    let stored = clip.transcription.clone().unwrap_or_default();
    assert_eq!(first_difference(&stored, &expected, ""), None);
    let speech = serde_json::to_value(clip.speech.as_ref().unwrap()).unwrap();
    assert_eq!(
        first_difference(&speech, &serde_json::to_value(&map).unwrap(), ""),
        None
    );
    let doc = s.get(ALICE, &VIDEO_CLIPS, "long/4h.mkv").await.unwrap();
    assert_eq!(first_difference(&doc["transcription"], &expected, ""), None);
    assert_eq!(
        first_difference(&doc["silence"], &json!(map.silence), ""),
        None
    );
    let related = s
        .related(ALICE, &VIDEO_CLIPS, "stream_id", "long")
        .await
        .unwrap();
    assert_eq!(
        first_difference(&related[0]["transcription"], &expected, ""),
        None
    );
    let page = s
        .list(ALICE, &VIDEO_CLIPS, &gt_store::ListQuery::default())
        .await
        .unwrap();
    assert_eq!(
        first_difference(&page.items[0]["transcription"], &expected, ""),
        None
    );
    assert_eq!(
        s.transcript_rows(ALICE, "long/4h.mkv").await.unwrap().len(),
        3000
    );
    // A reviewer's edit of one segment rewrites the document.
    s.edit_segment(ALICE, "long/4h.mkv", 2999, "the very end")
        .await
        .unwrap();
    let clip = s.get_clip(ALICE, "long/4h.mkv").await.unwrap();
    assert_eq!(
        clip.transcription.unwrap()["segments"][2999]["text"],
        "the very end"
    );
    // Bob reads none of it.
    assert!(matches!(
        s.get(BOB, &VIDEO_CLIPS, "long/4h.mkv").await,
        Err(StoreError::NotFound(_))
    ));
    // Gone with its record.
    s.delete(ALICE, &VIDEO_CLIPS, "long/4h.mkv").await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM record_documents")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
