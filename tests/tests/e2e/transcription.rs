//! Transcription with the real Whisper base model on real Temporal: accuracy and timing on
//! generated speech, empty audio, prompt chaining across clips, and a GPU worker killed in the
//! middle of a clip.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use gt_cli::media_gen::{
    AudioCodec, Container, Generated, RecordingSpec, SENTENCES, Segment, Track, generate,
};
use gt_tests::{ALICE, AppOptions, TestApp, wait_for_ingest};
use gt_types::transcript::Transcript;
use serde_json::{Value, json};

use crate::ingest::fetch_history;

use gt_tests::whisper_model as model;
use gt_tests::{wer, words};

fn mic_clip(path: &Path, sentences: &[&str], pause: f64) -> Generated {
    let mut segments = vec![Segment::Silence(1.0)];
    for s in sentences {
        segments.push(Segment::Speech((*s).into()));
        segments.push(Segment::Silence(pause));
    }
    generate(&RecordingSpec::mic(segments, None), path).unwrap()
}

async fn transcript_of(app: &TestApp, key: &str) -> (Value, Transcript) {
    let (s, clip) = app
        .get(
            ALICE,
            &format!(
                "/records/video_clips/{}",
                key.replace('/', "%2F").replace(' ', "%20")
            ),
        )
        .await;
    assert_eq!(s, 200, "{clip}");
    let t: Transcript =
        serde_json::from_value(clip["transcription"].clone()).expect("a transcript");
    (clip, t)
}

async fn segment_rows(app: &TestApp, key: &str) -> Vec<(i32, f64, String)> {
    sqlx::query_as("SELECT idx, stream_start, text FROM transcript_segments WHERE user_id = $1 AND clip_key = $2 ORDER BY idx")
        .bind(ALICE)
        .bind(key)
        .fetch_all(app.store.pool())
        .await
        .unwrap()
}

/// The scheduled inputs of every `activity_type` activity in a history.
fn activity_inputs(history: &Value, activity_type: &str) -> Vec<Value> {
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["attributes"].get("ActivityTaskScheduledEventAttributes"))
        .filter(|a| a["activity_type"]["name"] == activity_type)
        .map(|a| {
            let data = a["input"]["payloads"][0]["data"].as_str().unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn spoken_sentences_are_transcribed_accurately_and_in_place() {
    let app = TestApp::start().await.unwrap();
    let dir = app.recordings_of(ALICE).as_path().join("talk");
    let first = &SENTENCES[0..4];
    let second = &SENTENCES[4..8];
    let clips = [
        ("talk/a.mkv", mic_clip(&dir.join("a.mkv"), first, 2.5)),
        ("talk/b.mkv", mic_clip(&dir.join("b.mkv"), second, 2.5)),
    ];
    // A clip where nobody speaks.
    generate(
        &RecordingSpec {
            video: None,
            tracks: vec![Track {
                title: "Mic".into(),
                segments: vec![Segment::Silence(6.0)],
            }],
            container: Container::Mkv,
            audio_codec: AudioCodec::Aac,
        },
        &dir.join("c-silent.mkv"),
    )
    .unwrap();
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "talk", "prefix": "talk"}),
    )
    .await;
    let (s, started) = app
        .post(
            ALICE,
            "/stream",
            json!({"awaitReview": false, "streamId": "talk", "initialPrompt": "A gaming stream.", "language": "en"}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    let done = wait_for_ingest(&app, ALICE, "talk").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["failures"], json!([]), "{done}");
    assert_eq!(done["progress"]["clips_transcribed"], 3);

    let mut full_reference = String::new();
    let mut full_transcript = String::new();
    for ((key, made), sentences) in clips.iter().zip([first, second]) {
        let (clip, t) = transcript_of(&app, key).await;
        assert_eq!(t.language, "en");
        assert!(!t.segments.is_empty());
        let reference = sentences.join(" ");
        let rate = wer(&reference, &t.text);
        assert!(
            rate <= 0.15,
            "{key}: WER {rate:.3}\nref: {reference}\nhyp: {}",
            t.text
        );
        full_reference.push_str(&reference);
        full_reference.push(' ');
        full_transcript.push_str(&t.text);
        full_transcript.push(' ');
        for s in &t.segments {
            assert!(
                s.end >= s.start && s.avg_logprob <= 0.0 && (0.0..=1.0).contains(&s.no_speech_prob)
            );
            assert!(!s.tokens.is_empty() && s.compression_ratio > 0.0 && s.temperature == 0.0);
        }

        // Each sentence starts in the transcript within 0.5 s of where it was placed, in
        // stream time (clip start + position in the clip): its first word, found by aligning
        // the transcript's words with the sentences'.
        let start_time = clip["start_time"].as_f64().unwrap();
        let timed: Vec<(String, f64)> = t
            .segments
            .iter()
            .flat_map(|s| s.words.iter())
            .map(|w| (w.word.clone(), w.start + start_time))
            .collect();
        let placed: Vec<(&str, f64)> = made
            .speech_onsets(0)
            .into_iter()
            .filter_map(|(seg, at)| match seg {
                Segment::Speech(text) => Some((text.as_str(), at + start_time)),
                _ => None,
            })
            .collect();
        let mut reference = Vec::new();
        let mut first_word_of = Vec::new();
        for (text, _) in &placed {
            first_word_of.push(reference.len());
            reference.extend(words(text));
        }
        let hypothesis: Vec<String> = timed.iter().map(|(w, _)| w.clone()).collect();
        let pairs = gt_tests::truth::align(&reference, &hypothesis);
        for ((text, at), first) in placed.iter().zip(first_word_of) {
            let &(_, j) = pairs.iter().find(|(r, _)| *r == first).unwrap_or_else(|| {
                panic!("{key}: the first word of \"{text}\" is not in {timed:?}")
            });
            let got = timed[j].1;
            assert!(
                (got - at).abs() <= 0.5,
                "{key}: \"{text}\" placed at {at:.2} s, transcribed at {got:.2} s"
            );
        }

        // One row per segment, in stream time.
        let rows = segment_rows(&app, key).await;
        assert_eq!(rows.len(), t.segments.len());
        for ((idx, stream_start, text), (i, s)) in rows.iter().zip(t.segments.iter().enumerate()) {
            assert_eq!(*idx as usize, i);
            assert_eq!(text, &s.text);
            assert!((stream_start - (s.start + start_time)).abs() < 1e-9);
        }
    }
    let overall = wer(&full_reference, &full_transcript);
    assert!(overall <= 0.15, "overall WER {overall:.3}");

    // Silence in, nothing out, and no error.
    let (_, silent) = transcript_of(&app, "talk/c-silent.mkv").await;
    assert!(
        silent.segments.is_empty() && silent.text.is_empty(),
        "{silent:?}"
    );

    // The prompt chains: the stream's prompt for the first clip, then each clip's tail.
    let history = fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "talk")).await;
    let inputs = activity_inputs(&history, "gpu.transcribe_clip");
    assert_eq!(inputs.len(), 3);
    assert_eq!(inputs[0]["initial_prompt"], "A gaming stream.");
    let (_, a) = transcript_of(&app, "talk/a.mkv").await;
    let (_, b) = transcript_of(&app, "talk/b.mkv").await;
    assert_eq!(inputs[1]["initial_prompt"], json!(a.tail(200)));
    assert_eq!(inputs[2]["initial_prompt"], json!(b.tail(200)));
    app.stop().await;
}

fn spawn_worker(app: &TestApp, env: &[(&str, &str)]) -> std::process::Child {
    app.worker_process("worker-gpu")
        .env("GT_WHISPER_MODEL", model())
        .env("GT_WHISPER_THREADS", "2")
        // Small chunks so the clip has several and a stop lands between two.
        .env("GT_TRANSCRIBE_CHUNK_S", "8")
        .envs(env.iter().copied())
        .spawn()
        .unwrap()
}

/// Ingests a stream `stream` of one 10-sentence clip (transcription on a worker process the
/// test started) and returns once its first transcription chunk is durable: the sentences
/// spoken, and the partial transcript's path.
async fn long_clip_until_first_chunk(
    app: &TestApp,
    stream: &str,
) -> (Vec<&'static str>, std::path::PathBuf) {
    let sentences: Vec<&str> = SENTENCES
        .iter()
        .chain(SENTENCES.iter())
        .take(10)
        .copied()
        .collect();
    mic_clip(
        &app.recordings_of(ALICE)
            .as_path()
            .join(format!("{stream}/clip.mkv")),
        &sentences,
        2.5,
    );
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": stream, "prefix": stream}),
    )
    .await;
    let (s, _) = app
        .post(
            ALICE,
            "/stream",
            json!({"awaitReview": false, "streamId": stream, "language": "en"}),
        )
        .await;
    assert_eq!(s, 202);
    let partial = app
        .artifacts
        .path()
        .join(format!("alice/transcripts/{stream}/clip.mkv.partial.json"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(bytes) = std::fs::read(&partial)
            && let Ok(p) = serde_json::from_slice::<Value>(&bytes)
            && p["chunks_done"].as_u64().unwrap_or(0) >= 1
        {
            return (sentences, partial);
        }
        assert!(tokio::time::Instant::now() < deadline, "no chunk finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_worker_killed_mid_clip_resumes_and_leaves_exactly_one_transcript() {
    // The GPU worker runs as real processes here, so one can be killed.
    let app = TestApp::start_with(AppOptions {
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut worker = spawn_worker(&app, &[]);
    // Kill it without warning once the first chunk is durable.
    let (sentences, partial) = long_clip_until_first_chunk(&app, "long").await;
    worker.kill().unwrap();
    worker.wait().unwrap();
    // A new worker picks the activity up after the heartbeat timeout and resumes.
    let mut second = spawn_worker(&app, &[]);
    let done = wait_for_ingest(&app, ALICE, "long").await;
    second.kill().ok();
    second.wait().ok();
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["failures"], json!([]), "{done}");

    let history = fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "long")).await;
    let attempts = crate::ingest::activity_attempts(&history, "gpu.transcribe_clip");
    assert_eq!(
        attempts,
        vec![2],
        "one activity, finished by its second attempt"
    );
    let completed: Vec<Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["attributes"].get("ActivityTaskCompletedEventAttributes"))
        .filter_map(|a| {
            let data = a["result"]["payloads"][0]["data"].as_str()?;
            let v: Value = serde_json::from_slice(
                &base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .ok()?,
            )
            .ok()?;
            v.get("resumed_from_chunk").is_some().then_some(v)
        })
        .collect();
    assert_eq!(completed.len(), 1);
    assert!(
        completed[0]["chunks"].as_u64().unwrap() >= 3,
        "{}",
        completed[0]
    );
    assert!(
        completed[0]["resumed_from_chunk"].as_u64().unwrap() >= 1,
        "{}",
        completed[0]
    );

    // Exactly one transcript: every segment once, rows matching, nothing repeated or lost.
    let (_, t) = transcript_of(&app, "long/clip.mkv").await;
    let rows = segment_rows(&app, "long/clip.mkv").await;
    assert_eq!(rows.len(), t.segments.len());
    assert!(rows.iter().enumerate().all(|(i, r)| r.0 as usize == i));
    assert!(
        t.segments.windows(2).all(|w| w[1].start >= w[0].start),
        "segments in time order"
    );
    let rate = wer(&sentences.join(" "), &t.text);
    assert!(rate <= 0.15, "WER {rate:.3}: {}", t.text);
    assert!(!partial.exists(), "the partial transcript is cleaned up");
}

#[tokio::test]
async fn a_worker_asked_to_stop_finishes_its_clip_before_it_exits() {
    // A rolling deploy sends SIGTERM: the worker takes nothing new, finishes the transcription
    // it is running (well past the old 5 s grace) and only then exits. No other GPU worker
    // exists, so the ingestion can only complete if that first attempt completed.
    let app = TestApp::start_with(AppOptions {
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut worker = spawn_worker(&app, &[("GT_SHUTDOWN_GRACE_SECS", "300")]);
    // Stop it as soon as the first chunk is durable: most of the clip is still to decode.
    let (sentences, _) = long_clip_until_first_chunk(&app, "drain").await;
    let asked = std::time::Instant::now();
    // SAFETY: our own child process.
    unsafe {
        libc::kill(worker.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || worker.wait())
        .await
        .unwrap()
        .unwrap();
    eprintln!("worker exited {status} {:?} after SIGTERM", asked.elapsed());
    assert!(status.success(), "{status}");
    let done = wait_for_ingest(&app, ALICE, "drain").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["failures"], json!([]), "{done}");
    let history = fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "drain")).await;
    assert_eq!(
        crate::ingest::activity_attempts(&history, "gpu.transcribe_clip"),
        vec![1],
        "the transcription was finished by the worker that was stopping"
    );
    let (_, t) = transcript_of(&app, "drain/clip.mkv").await;
    let rate = wer(&sentences.join(" "), &t.text);
    assert!(rate <= 0.15, "WER {rate:.3}: {}", t.text);
    app.stop().await;
}

#[test]
fn word_error_rate() {
    assert_eq!(wer("the cat sat", "the cat sat"), 0.0);
    assert_eq!(wer("The cat, sat.", "the cat sat"), 0.0);
    assert!((wer("the cat sat on the mat", "the cat sat on mat") - 1.0 / 6.0).abs() < 1e-9);
    assert!((wer("a b", "a x b y") - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn a_broken_model_fails_transcription_once_naming_the_file() {
    let mut app = TestApp::start_with(AppOptions {
        gpu_worker: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let bad = app.artifacts.path().join("ggml-broken.bin");
    std::fs::write(&bad, b"lmgg\x01\x00\x00\x00 truncated").unwrap();
    app.start_gpu_worker(gt_transcribe::worker::GpuConfig {
        model: bad.clone(),
        threads: 1,
        chunk_s: 120.0,
        lanes: 0,
        shutdown_grace: gt_tests::TEST_SHUTDOWN_GRACE,
        quantization: gt_transcribe::worker::DEFAULT_QUANTIZATION,
    })
    .unwrap();
    mic_clip(
        &app.recordings_of(ALICE).as_path().join("m/a.mkv"),
        &SENTENCES[..1],
        1.0,
    );
    app.post(ALICE, "/records/streams", json!({"id": "m", "prefix": "m"}))
        .await;
    app.post(
        ALICE,
        "/stream",
        json!({"awaitReview": false, "streamId": "m"}),
    )
    .await;
    let done = wait_for_ingest(&app, ALICE, "m").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let failures = done["result"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("Whisper model") && reason.contains(bad.to_str().unwrap()),
        "{reason}"
    );
    let history = fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "m")).await;
    assert_eq!(
        crate::ingest::activity_attempts(&history, "gpu.transcribe_clip"),
        vec![1]
    );
}

/// `pcm` decoded as the activity decodes one chunk (two threads), prompted with `prompt`.
fn decode_whole(
    t: &gt_transcribe::Transcriber,
    pcm: &[f32],
    prompt: &str,
) -> gt_transcribe::engine::Decoded {
    use gt_transcribe::activity::{ChunkContext, LaneJob, decode_chunk};
    let chunks = [(0.0, pcm.len() as f64 / 16_000.0)];
    let job = LaneJob {
        transcriber: t,
        pcm,
        chunks: &chunks,
        language: Some("en"),
        first_prompt: prompt,
        context: ChunkContext::Unprompted,
        threads_per_lane: 2,
        abort: Default::default(),
    };
    let mut session = t.session().unwrap();
    decode_chunk(&job, &mut session, pcm, prompt).unwrap()
}

/// Prompted with the text before it, whisper.cpp can end a chunk after its first sentence (a
/// timestamp at the chunk's end skips the rest); the activity's decode goes on from the last
/// word while sound goes on after it. The audio and prompt are chunk 8 of bench/transcribe's
/// set, where this was seen: a recorded voice, then a spoken sentence.
#[test]
fn a_prompted_chunk_is_transcribed_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let voice = gt_tests::truth::librivox().into_iter().nth(2).unwrap();
    let said = "Grab a drink and stretch your legs, we will be back after a short break.";
    let mkv = dir.path().join("chunk.mkv");
    generate(
        &RecordingSpec {
            video: None,
            tracks: vec![Track {
                title: "Mic".into(),
                segments: vec![
                    Segment::Recorded(voice.wav.clone()),
                    Segment::Silence(0.6),
                    Segment::Speech(said.into()),
                    Segment::Silence(0.6),
                ],
            }],
            container: Container::Mkv,
            audio_codec: AudioCodec::Pcm,
        },
        &mkv,
    )
    .unwrap();
    let samples = gt_tests::truth::ffmpeg_16k_mono(&mkv, None, None);
    let pcm: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let prompt = "I think the puzzle won't justify the torches in the order of the paintings. \
                  This speedrun route keeps the entire second chapter with a wall clip.";
    let reference = format!("{} {said}", voice.text);

    let t = gt_tests::test_gpu_config().transcriber();
    let one_pass = t
        .transcribe(&pcm, prompt, Some("en"), 2, |_| {}, None)
        .unwrap()
        .text();
    let covered = decode_whole(&t, &pcm, prompt).text();
    let (one_pass_wer, covered_wer) = (wer(&reference, &one_pass), wer(&reference, &covered));
    println!(
        "one pass, WER {one_pass_wer:.3}: {one_pass}\ncovered, WER {covered_wer:.3}: {covered}"
    );
    assert!(covered_wer <= 0.15, "WER {covered_wer:.3}: {covered}");
    // The case this guards against really happens here: one pass loses the last sentence.
    assert!(
        one_pass_wer >= covered_wer + 0.2,
        "whisper.cpp no longer ends this chunk early; find another case: {one_pass}"
    );
}

/// Given silence, Whisper writes a word anyway. The chunk planner can leave a chunk of nothing
/// but the pause after the last sentence (bench/transcribe's audio ended with one of 0.82 s,
/// transcribed "you"); the activity's decode does not run Whisper on it.
#[test]
fn a_chunk_of_silence_is_not_transcribed() {
    let pcm = vec![0.0f32; (0.82 * 16_000.0) as usize];
    let t = gt_tests::test_gpu_config().transcriber();
    let one_pass = t
        .transcribe(&pcm, "", Some("en"), 2, |_| {}, None)
        .unwrap()
        .text();
    let decoded = decode_whole(&t, &pcm, "");
    println!("Whisper on the silence: {one_pass:?}");
    assert!(decoded.segments.is_empty(), "{:?}", decoded.text());
    // The case this guards against really happens: Whisper writes something on it.
    assert!(
        !one_pass.trim().is_empty(),
        "Whisper no longer writes anything on silence; the guard may be unneeded"
    );
}
