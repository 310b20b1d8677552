//! `GET /episodes/{id}/export.otio|.edl|.srt|.vtt` over the real API and Postgres: clips,
//! transcripts and summaries are stored as ingestion stores them, a transcript segment is
//! corrected through `POST /transcripts/edit`, episodes are created through `/records`. The
//! files are judged by the PyPI `opentimelineio` reader (and its CMX 3600 adapter) and by
//! FFmpeg, against times worked out here from the cut list. A second user with same-named
//! stream, clips and episode gets only their own, and 404 for what is only Alice's; nothing in
//! the database changes.

use std::path::{Path, PathBuf};
use std::process::Command;

use gt_store::{InsightStore, PipelineStore};
use gt_tests::{ALICE, AppOptions, BOB, TestApp};
use gt_types::episode::{ClipSummary, Moment};
use gt_types::media::{CodecType, FormatInfo, MediaInfo, StreamInfo};
use gt_types::transcript::{Transcript, TranscriptSegment, Word};
use serde_json::{Value, json};

fn python() -> PathBuf {
    PathBuf::from(
        std::env::var("GT_PYTHON").expect("GT_PYTHON is not set: run the suite with ./gt test"),
    )
}

/// A 30 fps clip of `seconds`.
fn probe(seconds: f64) -> MediaInfo {
    MediaInfo {
        format: FormatInfo {
            format_name: "matroska,webm".into(),
            duration: seconds,
            size: 1000,
            ..Default::default()
        },
        streams: vec![StreamInfo {
            index: 0,
            codec_type: CodecType::Video,
            codec_name: "h264".into(),
            width: Some(320),
            height: Some(180),
            fps: Some(30.0),
            frame_rate: Some("30/1".into()),
            ..Default::default()
        }],
    }
}

/// Segments of words: `(start, text)`, each word 0.3 s with 0.1 s between.
fn transcript(sentences: &[(f64, &str)]) -> Transcript {
    let segments = sentences
        .iter()
        .map(|&(start, text)| {
            let words: Vec<Word> = text
                .split(' ')
                .enumerate()
                .map(|(i, w)| Word {
                    word: w.into(),
                    start: start + 0.4 * i as f64,
                    end: start + 0.4 * i as f64 + 0.3,
                    probability: 0.9,
                })
                .collect();
            TranscriptSegment {
                start,
                end: words.last().unwrap().end,
                text: text.into(),
                words,
                ..Default::default()
            }
        })
        .collect();
    Transcript {
        language: "en".into(),
        segments,
        ..Default::default()
    }
}

fn summary(highlights: &[(f64, &str)]) -> ClipSummary {
    ClipSummary {
        title: "t".into(),
        highlights: highlights
            .iter()
            .map(|&(t, d)| Moment {
                timestamp_start: t,
                timestamp_end: t + 1.0,
                description: d.into(),
                reasoning: String::new(),
            })
            .collect(),
        ..Default::default()
    }
}

async fn clip(app: &TestApp, user: &str, key: &str, seconds: f64, t: Transcript) {
    app.store
        .upsert_clip_probe(user, "same", key, &probe(seconds))
        .await
        .unwrap();
    app.store
        .save_transcript(user, "same", key, 0.0, &t)
        .await
        .unwrap();
}

/// Every row of both users a request could change.
async fn snapshot(app: &TestApp) -> Value {
    let mut out = serde_json::Map::new();
    for table in [
        "streams",
        "video_clips",
        "episodes",
        "tasks",
        "transcript_segments",
    ] {
        let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(t) FROM {table} t ORDER BY to_jsonb(t)::text"
        )))
        .fetch_all(app.store.pool())
        .await
        .unwrap();
        out.insert(table.into(), Value::Array(rows));
    }
    Value::Object(out)
}

/// Status, headers and body text of `GET path` as `user`.
async fn download(
    app: &TestApp,
    user: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = app
        .http
        .get(format!("{}{path}", app.base))
        .header("Authorization", app.token(user))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// The cut list of both users' `ep`: clip a 2 s..15 s (frames 60..450), then clip b
/// 5 s..20 s (frames 150..600) crossfading in over 15 frames (0.5 s).
///
/// By hand: item 0 starts at 0 and shows frames 60..435 (the last 15 under the crossfade),
/// clip seconds 2..14.5; item 1 starts at 13 − 0.5 = 12.5 s and ends at 27.5 s. A word at
/// clip-a second t is at t − 2 in the episode, a word at clip-b second t at 12.5 + t − 5.
fn cut_list() -> Value {
    json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "same/a.mkv", "sections": [{"startFrame": 60, "endFrame": 450}]},
            {"s3Location": "same/b.mkv", "sections": [{"startFrame": 150, "endFrame": 600}]}
        ],
        "outputTrack": [
            {"mediaIndex": 0, "sectionIndex": 0},
            {"mediaIndex": 1, "sectionIndex": 0, "transitionIn": {"type": "fade", "duration": 15}}
        ]
    })
}

/// What OTIO reads from a `.otio` (or a `.edl` at 30 fps): the first track's items.
const DESCRIBE: &str = r#"
import json, sys
import opentimelineio as otio
if sys.argv[2] == "otio":
    tl = otio.adapters.read_from_file(sys.argv[1])
else:
    tl = otio.adapters.read_from_string(open(sys.argv[1]).read(), "cmx_3600", rate=30)
items = []
for it in tl.tracks[0]:
    if isinstance(it, otio.schema.Transition):
        items.append({"type": "Transition", "frames": it.out_offset.value})
    else:
        sr = it.source_range
        items.append({"type": type(it).__name__, "name": it.name, "start": sr.start_time.value,
                      "frames": sr.duration.value,
                      "at": round(it.range_in_parent().start_time.to_seconds(), 6),
                      "url": getattr(it.media_reference, "target_url", None)})
markers = [{"name": m.name, "at": round(m.marked_range.start_time.to_seconds(), 6)}
           for m in tl.tracks.markers]
print(json.dumps({"name": tl.name, "tracks": len(tl.tracks), "items": items, "markers": markers}))
"#;

fn describe(path: &Path, kind: &str) -> Value {
    let out = Command::new(python())
        .arg("-c")
        .arg(DESCRIBE)
        .arg(path)
        .arg(kind)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "opentimelineio could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Cues as FFmpeg reads the file: `(start ms, end ms, text)`.
fn ffmpeg_cues(path: &Path) -> Vec<(i64, i64, String)> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "srt", "-"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "ffmpeg: {err}"
    );
    let ms = |t: &str| -> i64 {
        let (hms, ms) = t.trim().split_once(',').unwrap();
        let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + ms.parse::<i64>().unwrap()
    };
    String::from_utf8(out.stdout)
        .unwrap()
        .replace('\r', "")
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let lines: Vec<&str> = b.lines().collect();
            let (a, z) = lines[1].split_once(" --> ").unwrap();
            (ms(a), ms(z), lines[2..].join(" "))
        })
        .collect()
}

#[tokio::test]
async fn exports_are_valid_files_for_the_owner_and_not_found_for_anyone_else() {
    let app = TestApp::start_with(AppOptions::api_only()).await.unwrap();
    for user in [ALICE, BOB] {
        let (s, b) = app
            .post(
                user,
                "/records/streams",
                json!({"id": "same", "prefix": "same"}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    // Alice: words before, inside and after the sections; a misheard sentence.
    clip(
        &app,
        ALICE,
        "same/a.mkv",
        60.0,
        transcript(&[
            (0.5, "Too early to show."),
            (2.5, "Welcome back to the castle."),
            (6.0, "The castel bos has three phases."),
            (14.45, "Hidden under fade."),
        ]),
    )
    .await;
    clip(
        &app,
        ALICE,
        "same/b.mkv",
        60.0,
        transcript(&[(6.0, "Now we bake bread."), (25.0, "Not in the episode.")]),
    )
    .await;
    app.store
        .save_summary(ALICE, "same/a.mkv", &summary(&[(6.0, "Boss phases")]))
        .await
        .unwrap();
    // Bob: the same keys, his own words, and a clip Alice does not have.
    for key in ["same/a.mkv", "same/b.mkv", "same/bob-only.mkv"] {
        clip(
            &app,
            BOB,
            key,
            60.0,
            transcript(&[
                (2.5, "Bob private words here."),
                (6.0, "More of Bob talking."),
            ]),
        )
        .await;
    }
    // A reviewer's correction, kept word for word (same count): the words keep their times.
    let (s, b) = app
        .post(
            ALICE,
            "/transcripts/edit",
            json!({"clipKey": "same/a.mkv", "segments": [{"idx": 2, "text": "The castle boss has three phases."}]}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    for user in [ALICE, BOB] {
        let (s, b) = app
            .post(
                user,
                "/records/episodes",
                json!({"id": "ep", "title": "Castle night", "stream_id": "same",
                       "cut_list": cut_list(),
                       "chapters": [{"start": 0.0, "title": "Welcome"}, {"start": 12.5, "title": "Baking"}]}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    for (id, body) in [
        (
            "alice-only",
            json!({"title": "Mine", "cut_list": cut_list()}),
        ),
        ("no-cut", json!({"title": "Not cut yet"})),
        (
            "foreign",
            json!({"title": "Bob's clip", "cut_list": {"version": "1.0.0",
                "inputMedia": [{"s3Location": "same/bob-only.mkv", "sections": [{"startFrame": 0, "endFrame": 30}]}],
                "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]}}),
        ),
    ] {
        let mut body = body;
        body["id"] = json!(id);
        let (s, b) = app.post(ALICE, "/records/episodes", body).await;
        assert_eq!(s, 201, "{b}");
    }

    let before = snapshot(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let alice_seg = gt_types::owner_segment(ALICE);
    for (ext, content_type) in [
        ("otio", "application/json"),
        ("edl", "text/plain; charset=utf-8"),
        ("srt", "application/x-subrip; charset=utf-8"),
        ("vtt", "text/vtt; charset=utf-8"),
    ] {
        let (s, h, body) = download(&app, ALICE, &format!("/episodes/ep/export.{ext}")).await;
        assert_eq!(s, 200, "{ext}: {body}");
        assert_eq!(h["content-type"], content_type, "{ext}");
        let disposition = h["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with(&format!("attachment; filename=\"Castle night.{ext}\"")),
            "{disposition}"
        );
        assert!(
            !body.contains("Bob") && !body.contains("bob"),
            "{ext}: Bob's words or files in Alice's export"
        );
        let path = dir.path().join(format!("alice.{ext}"));
        std::fs::write(&path, &body).unwrap();
        match ext {
            "otio" | "edl" => {
                let d = describe(&path, ext);
                assert_eq!(d["name"], "Castle night");
                let items = d["items"].as_array().unwrap();
                let got: Vec<(String, f64, f64, f64)> = items
                    .iter()
                    .map(|i| {
                        (
                            i["type"].as_str().unwrap().to_string(),
                            i["start"].as_f64().unwrap_or(-1.0),
                            i["frames"].as_f64().unwrap(),
                            i["at"].as_f64().unwrap_or(-1.0),
                        )
                    })
                    .collect();
                assert_eq!(
                    got,
                    [
                        ("Clip".to_string(), 60.0, 375.0, 0.0),
                        ("Transition".to_string(), -1.0, 15.0, -1.0),
                        ("Clip".to_string(), 150.0, 450.0, 12.5),
                    ],
                    "{ext}"
                );
                assert_eq!(items[0]["name"], "a.mkv");
                assert_eq!(items[2]["name"], "b.mkv");
                if ext == "otio" {
                    assert_eq!(d["tracks"], 2, "video and audio");
                    for (item, key) in [(&items[0], "same/a.mkv"), (&items[2], "same/b.mkv")] {
                        let url = item["url"].as_str().unwrap();
                        let tail = format!("{alice_seg}/{key}");
                        assert!(
                            url == tail
                                || (url.starts_with("file:///")
                                    && url.ends_with(&format!("/{tail}"))),
                            "{url}"
                        );
                    }
                    // Chapters where the episode says, the highlight at 6 s of clip a at 4 s.
                    let markers: Vec<(String, f64)> = d["markers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| {
                            (
                                m["name"].as_str().unwrap().into(),
                                m["at"].as_f64().unwrap(),
                            )
                        })
                        .collect();
                    assert_eq!(
                        markers,
                        [
                            ("Welcome".into(), 0.0),
                            ("Boss phases".into(), 4.0),
                            ("Baking".into(), 12.5)
                        ]
                    );
                }
            }
            _ => {
                let cues = ffmpeg_cues(&path);
                let text: Vec<&str> = cues.iter().map(|c| c.2.as_str()).collect();
                let all = text.join(" ");
                assert_eq!(
                    all,
                    "Welcome back to the castle. The castle boss has three phases. Now we bake bread.",
                    "{ext}: the edited text, only what the cut list shows: {cues:?}"
                );
                // Each sentence starts on its first word's episode time: 2.5 − 2, 6 − 2,
                // 12.5 + 6 − 5; none crosses the cut at 12.5 s.
                let starts: Vec<i64> = cues.iter().map(|c| c.0).collect();
                assert_eq!(starts, [500, 4000, 13_500], "{ext}: {cues:?}");
                for (a, z, t) in &cues {
                    assert!(!(*a < 12_500 && *z > 12_500), "{ext}: {t} spans the cut");
                    assert!(
                        (1000..=7000).contains(&(z - a)),
                        "{ext}: {t} lasts {} ms",
                        z - a
                    );
                }
                // The last words end where the transcript says: "bread." at 6 + 3 × 0.4 + 0.3
                // = 7.5 s of clip b, 15 s into the episode.
                assert_eq!(cues[2].1, 15_000, "{ext}");
            }
        }
    }

    // Bob: his own same-named episode is his (his words, his paths); Alice's others are 404.
    let (s, _, body) = download(&app, BOB, "/episodes/ep/export.srt").await;
    assert_eq!(s, 200);
    assert!(
        body.contains("Bob private words here.") && !body.contains("castle"),
        "{body}"
    );
    let (s, _, body) = download(&app, BOB, "/episodes/ep/export.otio").await;
    assert_eq!(s, 200);
    assert!(body.contains(&format!("{}/same/a.mkv", gt_types::owner_segment(BOB))));
    assert!(
        !body.contains(&format!("{alice_seg}/")),
        "Alice's paths in Bob's export"
    );
    for ext in ["otio", "edl", "srt", "vtt"] {
        let (s, _, body) = download(&app, BOB, &format!("/episodes/alice-only/export.{ext}")).await;
        assert_eq!(s, 404, "{ext}: {body}");
        assert!(!body.contains("Mine"), "{body}");
        // Refusals for Alice's own episodes say why.
        let (s, _, body) = download(&app, ALICE, &format!("/episodes/no-cut/export.{ext}")).await;
        assert_eq!(s, 409, "{body}");
        assert!(body.contains("no cut list"), "{body}");
        let (s, _, body) = download(&app, ALICE, &format!("/episodes/foreign/export.{ext}")).await;
        assert_eq!(s, 409, "{body}");
        assert!(body.contains("not one of your clips"), "{body}");
    }
    let (s, _, _) = download(&app, ALICE, "/episodes/ep/export.mp4").await;
    assert_eq!(s, 404);
    let no_token = app
        .http
        .get(format!("{}/episodes/ep/export.srt", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status().as_u16(), 401);
    assert_eq!(snapshot(&app).await, before, "exports change nothing");
    app.stop().await;
}
