//! Many workers on one Temporal: two CPU and two GPU workers share an ingestion and the
//! publishes it starts; every activity runs to completion once, the work is spread over the
//! workers, and the results are those of a single worker of each kind.

use gt_tests::{ALICE, TestApp, test_gpu_config};
use serde_json::{Value, json};

use crate::episodes::{two_topic_stream, wait_for_stage};
use crate::ingest::fetch_history;

/// What an ingestion produced, without the names that differ between two streams.
async fn results(app: &TestApp, stream: &str) -> Value {
    let (s, clips) = app
        .get(ALICE, &format!("/records/video_clips/stream_id/{stream}"))
        .await;
    assert_eq!(s, 200, "{clips}");
    let mut clips: Vec<Value> = clips["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let file = c["key"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string();
            let words: Vec<&str> = c["transcription"]["segments"]
                .as_array()
                .map(|segs| segs.iter().filter_map(|s| s["text"].as_str()).collect())
                .unwrap_or_default();
            json!({"file": file, "start_time": c["start_time"], "silence": c["speech"]["silence"],
                   "transcript": words, "summary": c["summary"]["summary_main_discussion"]})
        })
        .collect();
    clips.sort_by(|a, b| a["file"].as_str().cmp(&b["file"].as_str()));
    let (s, eps) = app.get(ALICE, &format!("/stream/{stream}/episodes")).await;
    assert_eq!(s, 200, "{eps}");
    let episodes: Vec<Value> = eps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({"start": e["start_time"], "end": e["end_time"], "chapters": e["chapters"]}))
        .collect();
    json!({"clips": clips, "episodes": episodes})
}

/// `(activity type, worker identity)` of every started activity, and how many times each
/// scheduled activity completed.
fn activity_runs(history: &Value) -> (Vec<(String, String)>, Vec<usize>) {
    let events = history["events"].as_array().unwrap();
    let attrs = |e: &Value, key: &str| -> Option<Value> {
        e.as_object()?.values().find_map(|v| v.get(key).cloned())
    };
    let mut scheduled = std::collections::BTreeMap::new();
    let mut started = Vec::new();
    let mut completed = std::collections::BTreeMap::<u64, usize>::new();
    for e in events {
        let id = e["event_id"].as_u64().unwrap();
        if let Some(a) = attrs(e, "ActivityTaskScheduledEventAttributes") {
            scheduled.insert(id, a["activity_type"]["name"].as_str().unwrap().to_string());
        }
        if let Some(a) = attrs(e, "ActivityTaskStartedEventAttributes") {
            let kind = scheduled[&a["scheduled_event_id"].as_u64().unwrap()].clone();
            started.push((kind, a["identity"].as_str().unwrap_or_default().to_string()));
        }
        if let Some(a) = attrs(e, "ActivityTaskCompletedEventAttributes") {
            *completed
                .entry(a["scheduled_event_id"].as_u64().unwrap())
                .or_default() += 1;
        }
    }
    let per_activity = scheduled
        .keys()
        .map(|id| completed.get(id).copied().unwrap_or(0))
        .collect();
    (started, per_activity)
}

async fn ingest(app: &TestApp, stream: &str) {
    let (s, b) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": stream, "language": "en",
                   "episodes": {"break_gap": 20.0, "min_length": 15.0, "max_length": 600.0}}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    wait_for_stage(app, stream, "awaiting_review").await;
    // Previews are built while the run waits for review.
    gt_tests::wait_for_previews(app, ALICE, stream).await;
}

#[tokio::test]
async fn two_cpu_and_two_gpu_workers_share_an_ingestion_with_single_worker_results() {
    // One worker of each kind first, each CPU worker taking one activity at a time.
    let mut app = TestApp::start_with(gt_tests::AppOptions {
        cpu_worker: false,
        ..gt_tests::AppOptions::default()
    })
    .await
    .unwrap();
    let one_slot = gt_activities::worker::CpuConfig {
        activity_slots: 1,
        ..app.cpu_config()
    };
    app.start_cpu_worker_with(one_slot.clone()).unwrap();
    let root = app.recordings_of(ALICE);
    two_topic_stream(&root);
    std::fs::create_dir_all(root.join("ep2")).unwrap();
    for f in ["part1.mkv", "part2.mkv"] {
        std::fs::copy(root.join("ep").join(f), root.join("ep2").join(f)).unwrap();
    }
    // Stream ids of this test only: workflow ids are `stream-ingest-{owner}-{stream}` on the
    // Temporal server every test shares.
    for (id, prefix) in [("wk", "ep"), ("wk2", "ep2")] {
        let (s, b) = app
            .post(
                ALICE,
                "/records/streams",
                json!({"id": id, "prefix": prefix, "title": "Sunday"}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    ingest(&app, "wk").await;
    let single = results(&app, "wk").await;
    // The comparison below is of real results, not of missing fields.
    for clip in single["clips"].as_array().unwrap() {
        assert!(
            clip["silence"].as_array().is_some_and(|s| !s.is_empty()),
            "{clip}"
        );
        assert!(
            clip["transcript"].as_array().is_some_and(|t| !t.is_empty()),
            "{clip}"
        );
        assert!(
            clip["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{clip}"
        );
    }
    assert_eq!(single["episodes"].as_array().unwrap().len(), 2, "{single}");

    // A second worker of each kind joins the same queues.
    app.start_cpu_worker_with(one_slot).unwrap();
    app.start_gpu_worker(test_gpu_config()).unwrap();
    ingest(&app, "wk2").await;
    let shared = results(&app, "wk2").await;
    assert_eq!(
        shared, single,
        "two workers of each kind give the single-worker results"
    );

    let history = fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "wk2")).await;
    let (started, completions) = activity_runs(&history);
    assert!(!completions.is_empty());
    assert!(
        completions.iter().all(|&n| n == 1),
        "every activity completed exactly once: {completions:?}"
    );
    let identities = |prefix: &str| {
        started
            .iter()
            .filter(|(_, who)| who.starts_with(prefix))
            .map(|(_, who)| who.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    eprintln!("activities by worker: {started:?}");
    assert_eq!(
        identities("cpu-").len(),
        2,
        "both CPU workers took activities: {started:?}"
    );
    assert!(!identities("gpu-").is_empty(), "{started:?}");

    // Both proposals approved at once: two publishes (render, exports) on the shared workers,
    // each step done once, each render a real file of the episode's length.
    let (_, eps) = app.get(ALICE, "/stream/wk2/episodes").await;
    let ids: Vec<String> = eps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let (s, b) = app
        .post(ALICE, "/stream/wk2/review", json!({"approve": ids}))
        .await;
    assert_eq!(s, 202, "{b}");
    let mut publish_runs = Vec::new();
    for id in &ids {
        let done =
            crate::publish::wait_for_publish(&app, ALICE, id, std::time::Duration::from_secs(300))
                .await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
        let history = fetch_history(&app, &gt_types::episode_publish_workflow_id(ALICE, id)).await;
        // Every step ran once, on its first attempt (the upload step ends in "YouTube is
        // not set up" here: no app is configured, and the run completes without it).
        let (started, completions) = activity_runs(&history);
        let attempts = crate::ingest::activity_attempts_all(&history);
        assert_eq!(attempts.len(), completions.len(), "{started:?}");
        assert!(
            attempts.iter().all(|&a| a == 1),
            "a publish step ran more than once: {attempts:?} {started:?}"
        );
        publish_runs.extend(started);
        let (_, ep) = app.get(ALICE, &format!("/records/episodes/{id}")).await;
        let render = app
            .artifacts
            .path()
            .join(ep["render_uri"].as_str().unwrap());
        let info = gt_activities::media::probe::probe(&render.into(), "render").unwrap();
        let expected = ep["end_time"].as_f64().unwrap() - ep["start_time"].as_f64().unwrap();
        assert!(
            (info.format.duration - expected).abs() < 0.5,
            "render of {} s for an episode of {expected} s",
            info.format.duration
        );
    }
    eprintln!("publish steps by worker: {publish_runs:?}");
    app.stop().await;
}
