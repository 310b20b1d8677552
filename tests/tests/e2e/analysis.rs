//! StreamIngest's media analysis end to end: speech maps, speech audio with its time map,
//! thumbnails, the HLS preview and the playlist/media endpoints that serve them.

use std::path::Path;

use gt_activities::media::probe::probe;
use gt_cli::media_gen::{
    AudioCodec, Container, Generated, RecordingSpec, SENTENCES, Segment, Track, generate,
};
use gt_tests::{ALICE, BOB, TestApp, read, wait_for_ingest};
use gt_types::media::SpeechMap;
use gt_worker_kit::wav::read_wav;
use serde_json::{Value, json};

/// Two OBS-like segments: game audio on track 0, speech on track 1 ("Mic").
fn make_stream(dir: &Path) -> Vec<Generated> {
    let clip = |name: &str, mic: Vec<Segment>| {
        generate(
            &RecordingSpec {
                video: Some((320, 180, 15)),
                tracks: vec![
                    Track {
                        title: "Game".into(),
                        segments: vec![Segment::Game(20.0)],
                    },
                    Track {
                        title: "Mic".into(),
                        segments: mic,
                    },
                ],
                container: Container::Mkv,
                audio_codec: AudioCodec::Aac,
            },
            &dir.join("show").join(name),
        )
        .unwrap()
    };
    vec![
        clip(
            "2024-05-01 20-00-00.mkv",
            vec![
                Segment::Silence(2.5),
                Segment::Speech(SENTENCES[0].into()),
                Segment::Silence(4.0),
                Segment::Speech(SENTENCES[2].into()),
                Segment::Silence(2.5),
            ],
        ),
        clip(
            "2024-05-01 20-00-20.mkv",
            vec![
                Segment::Speech(SENTENCES[4].into()),
                Segment::Silence(3.0),
                Segment::Speech(SENTENCES[6].into()),
            ],
        ),
    ]
}

async fn clips(app: &TestApp, stream: &str) -> Vec<Value> {
    let (_, page) = app
        .get(ALICE, &format!("/records/video_clips/stream_id/{stream}"))
        .await;
    let mut items = page["items"].as_array().unwrap().clone();
    items.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    items
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[tokio::test]
async fn ingestion_maps_speech_and_builds_previews() {
    let app = TestApp::start().await.unwrap();
    let made = make_stream(app.recordings_of(ALICE).as_path());
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "show", "prefix": "show"}),
    )
    .await;
    let (s, _) = app
        .post(
            ALICE,
            "/stream",
            json!({"awaitReview": false, "streamId": "show"}),
        )
        .await;
    assert_eq!(s, 202);
    let done = wait_for_ingest(&app, ALICE, "show").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["result"]["failures"], json!([]), "{done}");
    assert_eq!(done["progress"]["clips_analyzed"], 2);
    assert_eq!(done["progress"]["clips_previewed"], 2);
    assert_eq!(done["progress"]["percent"], 100.0);

    let clips = clips(&app, "show").await;
    let mut total_speech = 0.0;
    for (clip, made) in clips.iter().zip(&made) {
        let map: SpeechMap = serde_json::from_value(clip["speech"].clone()).unwrap();
        // The mic track was found by its title, not assumed.
        assert_eq!(map.track, 1);
        assert_eq!(map.track_title.as_deref(), Some("Mic"));
        // Each generated pause of ≥2 s is in the map (espeak pads speech with up to ~0.5 s).
        for (seg, a, b) in &made.tracks[1] {
            if matches!(seg, Segment::Silence(d) if *d >= 2.0) {
                assert!(
                    // (A pause at the end runs on to the end of the file.)
                    map.silence.iter().any(|i| i.start <= a + 0.1
                        && i.end >= b - 0.1
                        && i.start >= a - 0.7
                        && i.end <= (b + 0.7).max(made.duration + 0.1)),
                    "{}: pause {a:.2}-{b:.2} not in {:?}",
                    clip["key"],
                    map.silence
                );
            }
        }
        // Speech is padded by the margin and lies within the clip; stream time = clip time + start.
        let start_time = clip["start_time"].as_f64().unwrap();
        assert_eq!(map.stream_offset, start_time);
        for (sp, st) in map.speech.iter().zip(&map.stream_speech) {
            assert!((st.start - sp.start - start_time).abs() < 1e-9);
            assert!(sp.start >= map.start && sp.end <= map.end + 1e-9);
        }
        assert_eq!(
            clip["silence"].as_array().unwrap().len(),
            map.silence.len(),
            "silence for the front end"
        );
        total_speech += map.speech_seconds;

        // The speech audio: 16 kHz mono, exactly the speech segments plus the gaps between.
        let audio = map.audio.as_ref().unwrap();
        assert_eq!(clip["audio"], json!(audio.key));
        assert!(audio.key.starts_with("alice/speech/show/"));
        let (rate, pcm) =
            read_wav(&std::fs::read(app.artifacts.path().join(&audio.key)).unwrap()).unwrap();
        assert_eq!(rate, 16_000);
        assert!((pcm.len() as f64 / 16_000.0 - audio.duration).abs() < 1e-9);
        let spoken: f64 = audio.segments.iter().map(|s| s.end - s.start).sum();
        let gaps = 0.25 * (audio.segments.len() - 1) as f64;
        assert!(
            (audio.duration - spoken - gaps).abs() < 0.01,
            "{} vs {spoken} + {gaps}",
            audio.duration
        );
        // The time map round-trips at every segment.
        for s in &audio.segments {
            let mid = (s.start + s.end) / 2.0;
            let t = audio.to_audio_time(mid).unwrap();
            assert!((audio.to_clip_time(t) - mid).abs() < 1e-9);
            // And the audio there is speech, not silence.
            let i = (t * 16_000.0) as usize;
            let window = &pcm[i.saturating_sub(4000)..(i + 4000).min(pcm.len())];
            let rms = (window.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>()
                / window.len() as f64)
                .sqrt();
            assert!(rms > 200.0, "{}: quiet speech audio at {t}", clip["key"]);
        }

        // Thumbnails: JPEGs, 200 px wide, at least one per 10 s.
        let keyframes = clip["keyframes"].as_array().unwrap();
        assert!(keyframes.len() >= 2, "{keyframes:?}");
        for k in keyframes {
            let bytes = std::fs::read(app.artifacts.path().join(k.as_str().unwrap())).unwrap();
            assert_eq!(&bytes[..2], &[0xFF, 0xD8], "JPEG magic");
        }
        // The HLS preview: segments that FFmpeg reads as H.264 + AAC (small sources keep their size).
        let transcode = clip["transcode"].as_array().unwrap();
        assert!(!transcode.is_empty());
        let first = app
            .artifacts
            .path()
            .join(transcode[0]["path"].as_str().unwrap());
        let info = probe(&first.into(), "segment").unwrap();
        let codecs: Vec<&str> = info.streams.iter().map(|s| s.codec_name.as_str()).collect();
        assert_eq!(codecs, ["h264", "aac"]);
        assert_eq!(info.streams[0].height, Some(180));
        let covered: f64 = transcode
            .iter()
            .map(|s| s["duration"].as_f64().unwrap())
            .sum();
        assert!(
            (covered - made.duration).abs() < 0.6,
            "{covered} vs {}",
            made.duration
        );
    }
    assert!((done["result"]["speech_seconds"].as_f64().unwrap() - total_speech).abs() < 1e-6);

    // The playlist for the review player: every segment, a discontinuity per clip, signed links.
    let (s, body) = app.get(ALICE, "/playlist/show.m3u8").await;
    assert_eq!(s, 200, "{body}");
    let text = body.as_str().unwrap();
    assert!(text.starts_with("#EXTM3U\n") && text.ends_with("#EXT-X-ENDLIST\n"));
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 2);
    let urls: Vec<&str> = text.lines().filter(|l| l.starts_with("/media/")).collect();
    let segments: usize = clips
        .iter()
        .map(|c| c["transcode"].as_array().unwrap().len())
        .sum();
    assert_eq!(urls.len(), segments);
    // A player fetches the signed link without any header.
    let resp = app
        .http
        .get(format!("{}{}", app.base, urls[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp2t");
    assert!(resp.bytes().await.unwrap().len() > 1000);
    // A tampered or unsigned link is refused.
    let tampered = urls[0].replace("sig=", "sig=A");
    assert_eq!(
        read(
            app.http
                .get(format!("{}{tampered}", app.base))
                .send()
                .await
                .unwrap()
        )
        .await
        .0,
        401
    );
    let bare = urls[0].split('?').next().unwrap();
    assert_eq!(
        read(
            app.http
                .get(format!("{}{bare}", app.base))
                .send()
                .await
                .unwrap()
        )
        .await
        .0,
        401
    );
    // With a token instead: own media yes, another user's no.
    let thumb = clips[0]["keyframes"][0].as_str().unwrap();
    let with_token = |user: &str| {
        format!(
            "{}/media/{}?token={}",
            app.base,
            thumb.replace(' ', "%20"),
            app.token(user)
        )
    };
    let resp = app.http.get(with_token(ALICE)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(
        read(app.http.get(with_token(BOB)).send().await.unwrap())
            .await
            .0,
        404
    );
    // Bob has no such stream.
    assert_eq!(app.get(BOB, "/playlist/show.m3u8").await.0, 404);
    assert_eq!(app.get(ALICE, "/playlist/show.txt").await.0, 404);

    // Re-running reuses the analysis and previews: nothing is rewritten.
    let wav = app
        .artifacts
        .path()
        .join(clips[0]["audio"].as_str().unwrap());
    let seg = app
        .artifacts
        .path()
        .join(clips[0]["transcode"][0]["path"].as_str().unwrap());
    let (wav_t, seg_t) = (mtime(&wav), mtime(&seg));
    app.post(
        ALICE,
        "/stream",
        json!({"awaitReview": false, "streamId": "show"}),
    )
    .await;
    let again = wait_for_ingest(&app, ALICE, "show").await;
    assert_eq!(again["status"], "COMPLETED");
    assert_eq!(
        again["result"]["speech_seconds"],
        done["result"]["speech_seconds"]
    );
    assert_eq!((mtime(&wav), mtime(&seg)), (wav_t, seg_t));
    app.stop().await;
}

#[tokio::test]
async fn speech_track_setting_audio_less_files_and_bad_parameters() {
    let app = TestApp::start().await.unwrap();
    let dir = app.recordings_of(ALICE).as_path().join("cfg");
    generate(
        &RecordingSpec {
            video: Some((160, 90, 10)),
            tracks: vec![
                Track {
                    title: "Desktop".into(),
                    segments: vec![Segment::Game(8.0)],
                },
                Track {
                    title: "Mic".into(),
                    segments: vec![Segment::Silence(3.0), Segment::Speech(SENTENCES[1].into())],
                },
            ],
            container: Container::Mkv,
            audio_codec: AudioCodec::Aac,
        },
        &dir.join("a.mkv"),
    )
    .unwrap();
    generate(
        &RecordingSpec {
            video: Some((160, 90, 10)),
            tracks: vec![],
            container: Container::Mp4,
            audio_codec: AudioCodec::Aac,
        },
        &dir.join("b-video-only.mp4"),
    )
    .unwrap();
    // The stream says its voice is on track 0 (overriding the "Mic" title).
    app.post(
        ALICE,
        "/records/streams",
        json!({"id": "cfg", "prefix": "cfg", "speech_track": 0}),
    )
    .await;
    let (s, body) = app
        .post(ALICE, "/stream", json!({"awaitReview": false, "streamId": "cfg", "analysis": {"noise_db": 10.0, "min_silence": 1.0, "margin": 0.1}}))
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("noise_db"));
    let (s, _) = app
        .post(ALICE, "/stream", json!({"awaitReview": false, "streamId": "cfg", "analysis": {"noise_db": -45.0, "min_silence": 1.0, "margin": 0.1}}))
        .await;
    assert_eq!(s, 202);
    let done = wait_for_ingest(&app, ALICE, "cfg").await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let failures = done["result"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["key"], "cfg/b-video-only.mp4");
    assert!(
        failures[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cfg/b-video-only.mp4: has no audio track")
    );

    let clips = clips(&app, "cfg").await;
    let map: SpeechMap = serde_json::from_value(clips[0]["speech"].clone()).unwrap();
    assert_eq!(map.track, 0);
    assert_eq!(map.params.noise_db, -45.0);
    // Game audio never pauses.
    assert!(map.silence.is_empty(), "{:?}", map.silence);
    // The video-only file still got its preview and probe, just no speech map.
    assert!(clips[1].get("speech").is_none());
    assert!(!clips[1]["transcode"].as_array().unwrap().is_empty());

    // Non-retryable: the audio-less file's analysis ran once.
    let history =
        crate::ingest::fetch_history(&app, &gt_types::stream_ingest_workflow_id(ALICE, "cfg"))
            .await;
    assert_eq!(
        crate::ingest::activity_attempts(&history, "media.analyze_speech"),
        vec![1, 1]
    );
}
