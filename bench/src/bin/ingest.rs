//! `bench/ingest`: the whole StreamIngest pipeline (probe, speech maps, transcription with
//! Whisper base on the CPU, previews, summaries, embeddings, proposals) on a generated one-hour
//! recording (four 15-minute OBS-like segments, about 40 % silence), through the real stack:
//! Temporal, Postgres with pgvector, the API and both workers. Prints a stage breakdown taken
//! from the workflow history and `ingest realtime_factor=X`: recording duration ÷ wall time from
//! the start until the proposals wait for review (what the streamer waits for); the previews,
//! built after that, are reported separately (`previews_done_s`).
//!
//! ```sh
//! ./gt bench ingest
//! ```
//!
//! GT_BENCH_MINUTES (default 60) sets the recording length.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gt_cli::media_gen::{RecordingSpec, SENTENCES, Segment, generate};
use gt_tests::{ALICE, TestApp};
use serde_json::{Value, json};

fn segment_spec(minutes: f64, seed: usize) -> RecordingSpec {
    // Talk in runs of sentences with short pauses; between runs, longer silences (gameplay
    // without commentary) so that about 40 % of the time is silent.
    let mut segs = Vec::new();
    let (mut t, mut i) = (0.0, seed);
    while t < minutes * 60.0 {
        for _ in 0..6 {
            segs.push(Segment::Speech(SENTENCES[i % SENTENCES.len()].into()));
            segs.push(Segment::Silence(0.8));
            i += 1;
            t += 5.3;
        }
        let gap = 12.0 + (i % 5) as f64 * 4.0;
        segs.push(Segment::Silence(gap));
        t += gap;
    }
    RecordingSpec::mic(segs, Some((640, 360, 30)))
}

/// Seconds since the epoch of a history event time (RFC 3339).
fn secs(v: &Value) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(t.timestamp_micros() as f64 / 1e6)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let minutes: f64 = std::env::var("GT_BENCH_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    let app = TestApp::start().await?;
    let parts = 4;
    let mut duration = 0.0;
    let mut speech = 0.0;
    let t = Instant::now();
    // Generated once per length and cached (espeak-ng and the video take minutes).
    let cache = gt_bench::cache_dir().join(format!("ingest-{minutes}min"));
    std::fs::create_dir_all(&cache)?;
    for p in 0..parts {
        let name = format!("2026-01-01 20-{:02}-00.mkv", p * 15);
        let cached = cache.join(&name);
        let summary = cache.join(format!("{name}.speech"));
        if !cached.is_file() || !summary.is_file() {
            let g = generate(&segment_spec(minutes / parts as f64, p * 7), &cached)?;
            let talk: f64 = g.speech(0).iter().map(|(a, b)| b - a).sum();
            std::fs::write(&summary, format!("{} {talk}", g.duration))?;
        }
        let text = std::fs::read_to_string(&summary)?;
        let mut it = text.split_whitespace().map(str::parse::<f64>);
        duration += it.next().and_then(Result::ok).unwrap_or(0.0);
        speech += it.next().and_then(Result::ok).unwrap_or(0.0);
        let dest = app.recordings_of(ALICE).as_path().join("bench").join(&name);
        std::fs::create_dir_all(dest.parent().unwrap())?;
        if std::fs::hard_link(&cached, &dest).is_err() {
            std::fs::copy(&cached, &dest)?;
        }
    }
    println!(
        "recording: {:.1} min in {parts} files, {:.0} % silence ({:.0} s to generate or reuse)",
        duration / 60.0,
        100.0 * (1.0 - speech / duration),
        t.elapsed().as_secs_f64()
    );
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "bench", "prefix": "bench"}),
    )
    .await;
    let started = Instant::now();
    let (s, body) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": "bench", "language": "en", "awaitReview": true}),
        )
        .await;
    anyhow::ensure!(s == 202, "start: {s} {body}");
    // The figure: until the proposals are ready for review (what the streamer waits for).
    let limit = Duration::from_secs(6 * 3600);
    let waiting =
        gt_tests::wait_for_stage_within(&app, ALICE, "bench", "awaiting_review", limit).await;
    let wall = started.elapsed().as_secs_f64();
    // Then the previews, which the run builds while it waits for the reviewer.
    let previewed = gt_tests::wait_for_previews_within(&app, ALICE, "bench", limit).await;
    let previews_done = started.elapsed().as_secs_f64();
    let (s, body) = app.post(ALICE, "/stream/bench/cancel", json!({})).await;
    anyhow::ensure!(s < 300, "cancel: {s} {body}");

    // Stage breakdown: for each activity type, first scheduled → last completed, and the sum
    // of its attempts' run times.
    let client = app.temporal_client().await?;
    let history = client
        .get_workflow_handle::<gt_workflows::StreamIngest>(gt_types::stream_ingest_workflow_id(
            ALICE, "bench",
        ))
        .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::builder().build())
        .to_json()
        .await?;
    let history: Value = serde_json::from_slice(&history)?;
    let mut scheduled: BTreeMap<i64, (String, f64)> = BTreeMap::new();
    let mut spans: BTreeMap<String, (f64, f64, f64, u32)> = BTreeMap::new();
    let mut started_at: BTreeMap<i64, f64> = BTreeMap::new();
    for e in history["events"].as_array().into_iter().flatten() {
        let id = e["event_id"].as_i64().unwrap_or(0);
        let at = secs(&e["event_time"]).unwrap_or(0.0);
        let attrs = &e["attributes"];
        if let Some(a) = attrs.get("ActivityTaskScheduledEventAttributes") {
            let kind = a["activity_type"]["name"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            scheduled.insert(id, (kind, at));
        } else if let Some(a) = attrs.get("ActivityTaskStartedEventAttributes") {
            let sid = a["scheduled_event_id"].as_i64().unwrap_or(0);
            started_at.insert(sid, at);
        } else if let Some(a) = attrs.get("ActivityTaskCompletedEventAttributes") {
            let sid = a["scheduled_event_id"].as_i64().unwrap_or(0);
            if let Some((kind, sched)) = scheduled.get(&sid) {
                let run = at - started_at.get(&sid).copied().unwrap_or(*sched);
                let entry = spans.entry(kind.clone()).or_insert((f64::MAX, 0.0, 0.0, 0));
                entry.0 = entry.0.min(*sched);
                entry.1 = entry.1.max(at);
                entry.2 += run;
                entry.3 += 1;
            }
        }
    }
    let origin = spans.values().map(|s| s.0).fold(f64::MAX, f64::min);
    println!(
        "stage breakdown (seconds from the first activity; busy = sum of activity run times):"
    );
    let mut rows: Vec<_> = spans.into_iter().collect();
    rows.sort_by(|a, b| a.1.0.total_cmp(&b.1.0));
    for (kind, (first, last, busy, n)) in rows {
        println!(
            "  {kind:<32} {n:>3}×  {:>7.1} → {:>7.1}  busy {:>7.1}",
            first - origin,
            last - origin,
            busy
        );
    }
    let p = &waiting["progress"];
    println!(
        "at review: {} clips, {} transcribed, {} summarised, {} embedded, {} episodes proposed, {} previews built",
        p["clips_done"],
        p["clips_transcribed"],
        p["clips_summarized"],
        p["clips_embedded"],
        p["episodes_proposed"],
        p["clips_previewed"]
    );
    println!(
        "previews: {} built, {} failures, all done {previews_done:.1} s after the start",
        previewed["progress"]["clips_previewed"],
        previewed["progress"]["failures"]
            .as_array()
            .map_or(0, Vec::len)
    );
    println!(
        "ingest wall_s={wall:.1} audio_s={duration:.1} realtime_factor={:.2} previews_done_s={previews_done:.1}",
        duration / wall
    );
    println!("ingest realtime_factor={:.2}", duration / wall);
    app.stop().await;
    Ok(())
}
