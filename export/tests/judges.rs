//! Independent judges of the exports: the `.otio` and `.edl` are read by the PyPI
//! `opentimelineio` package (and its CMX 3600 adapter), the `.srt` and `.vtt` by FFmpeg's
//! demuxers and decoders. Every expected time is worked out here from the cut list by hand
//! (the crossfade and rounding rules written out in the comments), never by the crate.
//!
//! Python: `GT_PYTHON` (set by `./gt test`), else the workspace's `.venv`.

use std::path::{Path, PathBuf};
use std::process::Command;

use gt_export::{EpisodeTimeline, FrameRate, SourceMedia, edl, otio, subtitles};
use gt_types::episode::{Chapter, Moment};
use gt_types::records::{
    CutList, InputMedia, OutputTrackItem, Section, Transition, TransitionKind,
};
use gt_types::transcript::{Transcript, TranscriptSegment, Word};
use serde_json::Value;

fn python() -> PathBuf {
    let p = std::env::var_os("GT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        p.exists(),
        "no Python at {} (run ./gt test, which installs opentimelineio into .venv)",
        p.display()
    );
    p
}

/// Runs `script` with `args`; its stdout is JSON.
fn python_json(script: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// What OTIO's reader makes of a timeline: every track's items with their ranges and where
/// they sit, the stack's markers and each clip's markers.
const DESCRIBE: &str = r#"
import json, sys
import opentimelineio as otio
if sys.argv[2] == "otio":
    tl = otio.adapters.read_from_file(sys.argv[1])
else:
    tl = otio.adapters.read_from_string(open(sys.argv[1]).read(), "cmx_3600", rate=float(sys.argv[2]))
def marker(m):
    return {"name": m.name, "color": m.color, "comment": m.comment,
            "start": m.marked_range.start_time.to_seconds(),
            "duration": m.marked_range.duration.to_seconds()}
out = {"name": tl.name, "duration": tl.duration().to_seconds(), "tracks": [],
       "markers": [marker(m) for m in tl.tracks.markers]}
for tr in tl.tracks:
    items = []
    for it in tr:
        d = {"type": type(it).__name__}
        if isinstance(it, otio.schema.Transition):
            d.update(kind=it.transition_type, in_offset=it.in_offset.value,
                     out_offset=it.out_offset.value, rate=it.out_offset.rate)
        else:
            sr = it.source_range
            d.update(name=it.name, start=sr.start_time.value, frames=sr.duration.value,
                     rate=sr.duration.rate, at=it.range_in_parent().start_time.to_seconds(),
                     markers=[marker(m) for m in it.markers])
            if isinstance(it, otio.schema.Clip):
                ref = it.media_reference
                d["url"] = getattr(ref, "target_url", None)
                ar = getattr(ref, "available_range", None)
                d["available"] = [ar.start_time.value, ar.duration.value] if ar else None
        items.append(d)
    out["tracks"].append({"name": tr.name, "kind": str(tr.kind), "items": items})
print(json.dumps(out))
"#;

fn rate(num: u32, den: u32) -> FrameRate {
    FrameRate::new(num, den).unwrap()
}

/// A small deterministic generator (xorshift) for word timings.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 10_000) as f64 / 10_000.0
    }
}

const VOCABULARY: &[&str] = &[
    "the",
    "castle",
    "boss",
    "has",
    "three",
    "phases",
    "and",
    "a",
    "fire",
    "attack",
    "watch",
    "out",
    "for",
    "archers",
    "on",
    "walls",
    "we",
    "finally",
    "beat",
    "it",
    "bread",
    "dough",
    "rises",
    "slowly",
    "under",
    "towel",
    "extraordinarily",
    "oven",
];

/// Talk from `from` to `to` (clip seconds): sentences of 3–14 words, words 0.18–0.45 s
/// with short gaps, pauses of 0.3–1.8 s between sentences. `special` is said as the first
/// sentence after `special_at`.
fn talk(seed: u64, from: f64, to: f64, special: Option<(f64, &str)>) -> Transcript {
    let mut rng = Rng(seed);
    let mut t = from;
    let mut segments = Vec::new();
    let mut special = special;
    while t < to {
        let words: Vec<String> = match special {
            Some((at, text)) if t >= at => {
                special = None;
                text.split(' ').map(str::to_string).collect()
            }
            _ => {
                let n = 3 + (rng.next() * 12.0) as usize;
                (0..n)
                    .map(|_| VOCABULARY[(rng.next() * VOCABULARY.len() as f64) as usize].into())
                    .collect()
            }
        };
        let mut ws = Vec::new();
        for (i, w) in words.iter().enumerate() {
            let len = 0.18 + rng.next() * 0.27;
            let text = if i + 1 == words.len() {
                format!("{w}.")
            } else {
                w.clone()
            };
            ws.push(Word {
                word: text,
                start: t,
                end: t + len,
                probability: 0.9,
            });
            t += len + 0.02 + rng.next() * 0.1;
        }
        let text = ws
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        segments.push(TranscriptSegment {
            start: ws[0].start,
            end: ws.last().unwrap().end,
            text,
            words: ws,
            ..Default::default()
        });
        t += 0.3 + rng.next() * 1.5;
    }
    Transcript {
        language: "en".into(),
        segments,
        ..Default::default()
    }
}

fn source(key: &str, r: FrameRate, seconds: f64, transcript: Transcript) -> SourceMedia {
    SourceMedia {
        key: key.into(),
        name: key.rsplit('/').next().unwrap().into(),
        url: gt_export::file_url(&Path::new("/recordings/alice").join(key)),
        rate: r,
        duration_frames: Some((seconds * r.to_f64()).round() as u64),
        has_video: true,
        transcript: Some(transcript),
        highlights: vec![],
    }
}

fn fade(frames: u64) -> Option<Transition> {
    Some(Transition {
        kind: TransitionKind::Fade,
        duration: frames,
    })
}

fn moment(at: f64, what: &str) -> Moment {
    Moment {
        timestamp_start: at,
        timestamp_end: at + 2.0,
        description: what.into(),
        reasoning: format!("why {what}"),
    }
}

const NTSC: f64 = 30000.0 / 1001.0;

/// Mixed rates: clip A at 29.97 fps, clip B at 60 fps.
///
/// | item | source | frames | transition |
/// |---|---|---|---|
/// | 0 | A | 300..1200 (10.01 s..40.04 s) | fade from black, 15 frames |
/// | 1 | B | 600..2400 (10 s..40 s) | crossfade in, 30 frames (0.5 s) |
/// | 2 | A | 3000..3600 (100.1 s..120.12 s) | fade to black out, 20 frames |
///
/// By hand: item 0 lasts 900 / 29.97 = 30.03 s; the crossfade starts item 1 0.5 s before
/// that ends, at 29.53 s, and hides round(0.5 × 29.97) = round(14.985) = 15 frames of item 0
/// (visible: 300..1185, up to clip second 39.5395); item 1 lasts 30 s, so item 2 starts at
/// 59.53 s and the episode ends 20.02 s later, at 79.55 s.
fn mixed() -> (EpisodeTimeline, Vec<Expected>) {
    let (a_rate, b_rate) = (rate(30000, 1001), rate(60, 1));
    let mut a = source(
        "2024-05-01/a b#1.mkv",
        a_rate,
        130.0,
        talk(7, 0.5, 129.0, None),
    );
    a.highlights = vec![
        moment(5.0, "before the section"),
        moment(39.8, "under the crossfade"),
        moment(105.0, "Bread"),
    ];
    let mut b = source(
        "2024-05-01/b.mkv",
        b_rate,
        60.0,
        talk(11, 0.2, 59.0, Some((20.0, "fish & chips <3 --> tasty"))),
    );
    b.highlights = vec![moment(15.0, "Boss")];
    let cut = CutList {
        version: "1.0.0".into(),
        input_media: vec![
            InputMedia {
                s3_location: a.key.clone(),
                sections: vec![
                    Section {
                        start_frame: 300,
                        end_frame: 1200,
                    },
                    Section {
                        start_frame: 3000,
                        end_frame: 3600,
                    },
                ],
            },
            InputMedia {
                s3_location: b.key.clone(),
                sections: vec![Section {
                    start_frame: 600,
                    end_frame: 2400,
                }],
            },
        ],
        output_track: vec![
            OutputTrackItem {
                media_index: 0,
                section_index: 0,
                transition_in: fade(15),
                transition_out: None,
            },
            OutputTrackItem {
                media_index: 1,
                section_index: 0,
                transition_in: fade(30),
                transition_out: None,
            },
            OutputTrackItem {
                media_index: 0,
                section_index: 1,
                transition_in: None,
                transition_out: fade(20),
            },
        ],
        overlay_tracks: vec![],
        audio_mixing: vec![],
    };
    let expected = vec![
        Expected {
            transcript: a.transcript.clone().unwrap(),
            clip_from: 300.0 / NTSC,
            clip_to: 1185.0 / NTSC,
            at: 0.0,
        },
        Expected {
            transcript: b.transcript.clone().unwrap(),
            clip_from: 10.0,
            clip_to: 40.0,
            at: 29.53,
        },
        Expected {
            transcript: a.transcript.clone().unwrap(),
            clip_from: 3000.0 / NTSC,
            clip_to: 3600.0 / NTSC,
            at: 59.53,
        },
    ];
    let chapters = vec![
        Chapter {
            start: 0.0,
            title: "Intro".into(),
        },
        Chapter {
            start: 40.0,
            title: "Castle".into(),
        },
    ];
    let t = EpisodeTimeline::build("Castle & bread", &cut, vec![a, b], chapters).unwrap();
    (t, expected)
}

/// One item as the test sees it: the part of a transcript from clip second `clip_from` to
/// `clip_to`, placed at episode second `at`.
struct Expected {
    transcript: Transcript,
    clip_from: f64,
    clip_to: f64,
    at: f64,
}

/// (text, start, end) in episode seconds of every word the episode shows, in order: a word
/// is in when its midpoint is inside the visible part, and is clamped to it.
fn expected_words(items: &[Expected]) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    for e in items {
        for s in &e.transcript.segments {
            for w in &s.words {
                let mid = (w.start + w.end) / 2.0;
                if mid >= e.clip_from && mid < e.clip_to {
                    let map = |t: f64| e.at + t.clamp(e.clip_from, e.clip_to) - e.clip_from;
                    out.push((w.word.clone(), map(w.start), map(w.end)));
                }
            }
        }
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn opentimelineio_reads_clips_transitions_and_markers_where_the_cut_list_puts_them() {
    let (t, _) = mixed();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "ep.otio", &otio::to_otio_json(&t));
    let d = python_json(DESCRIBE, &[path.to_str().unwrap(), "otio"]);
    assert_eq!(d["name"], "Castle & bread");
    // Editors place items on frames: item 1 lands within half a frame of 29.53 s.
    let half_a = 0.5 / NTSC + 1e-9;
    assert!(
        close(d["duration"].as_f64().unwrap(), 79.55, half_a),
        "{}",
        d["duration"]
    );
    let tracks = d["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2);
    for (track, kind) in tracks.iter().zip(["Video", "Audio"]) {
        assert_eq!(track["kind"], kind);
        let items = track["items"].as_array().unwrap();
        let types: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "Gap",
                "Transition",
                "Clip",
                "Transition",
                "Clip",
                "Clip",
                "Transition",
                "Gap"
            ],
            "{kind}"
        );
        // Fade from black: 15 frames of A after a zero-length gap.
        assert_eq!(items[0]["frames"], 0.0);
        assert_eq!(
            (
                items[1]["in_offset"].as_f64(),
                items[1]["out_offset"].as_f64()
            ),
            (Some(0.0), Some(15.0))
        );
        assert!(close(items[1]["rate"].as_f64().unwrap(), NTSC, 1e-9));
        // Item 0: A frames 300.. for 900 − 15 hidden = 885 frames, at 0.
        let c0 = &items[2];
        assert_eq!(
            (c0["start"].as_f64(), c0["frames"].as_f64()),
            (Some(300.0), Some(885.0))
        );
        assert!(close(c0["rate"].as_f64().unwrap(), NTSC, 1e-9));
        assert_eq!(c0["at"], 0.0);
        assert_eq!(c0["name"], "a b#1.mkv");
        assert_eq!(
            c0["url"],
            "file:///recordings/alice/2024-05-01/a%20b%231.mkv"
        );
        assert_eq!(
            c0["available"],
            serde_json::json!([0.0, (130.0 * NTSC).round()])
        );
        // The crossfade: 30 frames at 60 fps, starting at the cut.
        assert_eq!(
            (
                items[3]["in_offset"].as_f64(),
                items[3]["out_offset"].as_f64()
            ),
            (Some(0.0), Some(30.0))
        );
        assert_eq!(items[3]["rate"], 60.0);
        // Item 1: B 600..2400 whole, at 29.53 s.
        let c1 = &items[4];
        assert_eq!(
            (
                c1["start"].as_f64(),
                c1["frames"].as_f64(),
                c1["rate"].as_f64()
            ),
            (Some(600.0), Some(1800.0), Some(60.0))
        );
        assert!(
            close(c1["at"].as_f64().unwrap(), 29.53, half_a),
            "{}",
            c1["at"]
        );
        // Item 2: A 3000.. for 600 − 20 (the fade to black is a transition into a 20-frame
        // gap), at 59.53 s.
        let c2 = &items[5];
        assert_eq!(
            (c2["start"].as_f64(), c2["frames"].as_f64()),
            (Some(3000.0), Some(580.0))
        );
        assert!(
            close(c2["at"].as_f64().unwrap(), 59.53, half_a),
            "{}",
            c2["at"]
        );
        assert_eq!(
            (
                items[6]["in_offset"].as_f64(),
                items[6]["out_offset"].as_f64()
            ),
            (Some(0.0), Some(20.0))
        );
        assert_eq!(items[7]["frames"], 20.0);
    }
    // Markers at the timeline rate (29.97), within half a frame: the chapters (each until the
    // next, the last until the end) and the highlights inside visible parts (B at 15 s:
    // 29.53 + 5 = 34.53 s; A at 105 s: 59.53 + (105 − 100.1) = 64.43 s). The highlight at
    // 5 s is before the section, the one at 39.8 s under the crossfade: neither is there.
    let markers = d["markers"].as_array().unwrap();
    let got: Vec<(&str, &str, f64, f64)> = markers
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["color"].as_str().unwrap(),
                m["start"].as_f64().unwrap(),
                m["duration"].as_f64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("Intro", "RED", 0.0, 40.0),
        ("Boss", "YELLOW", 34.53, 2.0),
        ("Castle", "RED", 40.0, 39.55),
        ("Bread", "YELLOW", 64.43, 2.0),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0, g.1), (w.0, w.1), "{got:?}");
        assert!(
            close(g.2, w.2, half_a) && close(g.3, w.3, 2.0 * half_a),
            "{g:?} vs {w:?}"
        );
    }
    assert_eq!(markers[1]["comment"], "why Boss");
}

/// Both clips at 60 fps (an EDL has one rate):
///
/// | item | source | frames | transition |
/// |---|---|---|---|
/// | 0 | C | 120..720 | — |
/// | 1 | D | 60..660 | crossfade in, 30 frames |
/// | 2 | C | 1200..1500 | fade to black out, 24 frames |
///
/// By hand: item 0 shows 600 − 30 = 570 frames (record 0..570), the dissolve to D starts at
/// record 570 and D runs 600 frames to 1170; item 2 shows 300 − 24 = 276 frames (1170..1446),
/// then 24 frames dissolve to black (1446..1470). Chapters at 0 s and 12 s are locators at
/// record frames 0 and 720 (in item 1).
#[test]
fn opentimelineio_reads_the_edl_with_the_cut_lists_ranges() {
    let r = rate(60, 1);
    let c = source("s/c.mkv", r, 40.0, Transcript::default());
    let dm = source("s/d.mkv", r, 40.0, Transcript::default());
    let cut = CutList {
        version: "1.0.0".into(),
        input_media: vec![
            InputMedia {
                s3_location: c.key.clone(),
                sections: vec![
                    Section {
                        start_frame: 120,
                        end_frame: 720,
                    },
                    Section {
                        start_frame: 1200,
                        end_frame: 1500,
                    },
                ],
            },
            InputMedia {
                s3_location: dm.key.clone(),
                sections: vec![Section {
                    start_frame: 60,
                    end_frame: 660,
                }],
            },
        ],
        output_track: vec![
            OutputTrackItem {
                media_index: 0,
                section_index: 0,
                transition_in: None,
                transition_out: None,
            },
            OutputTrackItem {
                media_index: 1,
                section_index: 0,
                transition_in: fade(30),
                transition_out: None,
            },
            OutputTrackItem {
                media_index: 0,
                section_index: 1,
                transition_in: None,
                transition_out: fade(24),
            },
        ],
        overlay_tracks: vec![],
        audio_mixing: vec![],
    };
    let chapters = vec![
        Chapter {
            start: 0.0,
            title: "Intro".into(),
        },
        Chapter {
            start: 12.0,
            title: "Second part".into(),
        },
    ];
    let t = EpisodeTimeline::build("Two sources", &cut, vec![c, dm], chapters).unwrap();
    let text = edl::to_edl(&t);
    assert!(
        text.starts_with("TITLE: Two sources\nFCM: NON-DROP FRAME\n"),
        "{text}"
    );
    for line in text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
    {
        let reel = line.split_whitespace().nth(1).unwrap();
        assert!(reel.len() <= 8, "{line}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "ep.edl", &text);
    let d = python_json(DESCRIBE, &[path.to_str().unwrap(), "60"]);
    assert_eq!(d["name"], "Two sources");
    let tracks = d["tracks"].as_array().unwrap();
    let names: Vec<&str> = tracks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["V", "A1"],
        "B events are video and the first audio channel"
    );
    let frames = |s: f64| (s * 60.0).round();
    let v = tracks[0]["items"].as_array().unwrap();
    let summary: Vec<(String, f64, f64, f64)> = v
        .iter()
        .map(|i| match i["type"].as_str().unwrap() {
            "Transition" => (
                "Transition".to_string(),
                0.0,
                i["out_offset"].as_f64().unwrap(),
                -1.0,
            ),
            _ => (
                i["name"].as_str().unwrap().to_string(),
                i["start"].as_f64().unwrap(),
                i["frames"].as_f64().unwrap(),
                frames(i["at"].as_f64().unwrap()),
            ),
        })
        .collect();
    let want: Vec<(String, f64, f64, f64)> = vec![
        ("c.mkv".into(), 120.0, 570.0, 0.0),
        ("Transition".into(), 0.0, 30.0, -1.0),
        ("d.mkv".into(), 60.0, 600.0, 570.0),
        ("c.mkv".into(), 1200.0, 276.0, 1170.0),
        ("Transition".into(), 0.0, 24.0, -1.0),
        ("BLACK".into(), 0.0, 24.0, 1446.0),
    ];
    assert_eq!(summary, want);
    // The audio channel has the same cuts and the crossfade (black is picture only).
    let a1: Vec<(f64, f64)> = tracks[1]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "Clip")
        .map(|i| (i["start"].as_f64().unwrap(), i["frames"].as_f64().unwrap()))
        .collect();
    assert_eq!(a1, [(120.0, 570.0), (60.0, 600.0), (1200.0, 276.0)]);
    // Locators: the chapters at record 0 and 720.
    let locs: Vec<(String, f64)> = v
        .iter()
        .flat_map(|i| i["markers"].as_array().cloned().unwrap_or_default())
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                frames(m["start"].as_f64().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        locs,
        [
            ("Intro".to_string(), 0.0),
            ("Second part".to_string(), 720.0)
        ]
    );
}

/// A cue as FFmpeg reads it: milliseconds and text lines.
#[derive(Debug)]
struct ReadCue {
    start: i64,
    end: i64,
    lines: Vec<String>,
}

fn srt_ms(t: &str) -> i64 {
    let (hms, ms) = t.trim().split_once(',').unwrap();
    let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + ms.parse::<i64>().unwrap()
}

/// `path` demuxed and decoded by FFmpeg and written back out as SRT, then read.
fn ffmpeg_cues(path: &Path) -> Vec<ReadCue> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "srt", "-"])
        .output()
        .expect("running ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "ffmpeg: {err}"
    );
    let text = String::from_utf8(out.stdout).unwrap().replace('\r', "");
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let lines: Vec<&str> = block.lines().collect();
            let (a, b) = lines[1].split_once(" --> ").unwrap();
            ReadCue {
                start: srt_ms(a),
                end: srt_ms(b),
                lines: lines[2..].iter().map(|l| l.to_string()).collect(),
            }
        })
        .collect()
}

#[test]
fn ffmpeg_reads_the_subtitles_with_every_word_at_its_cut_list_time() {
    let (t, items) = mixed();
    let words = expected_words(&items);
    assert!(words.len() > 150, "enough talk to split: {}", words.len());
    let cuts = [29.53, 59.53];
    let end = 79.55;
    let cues = subtitles::cues(&t);
    let dir = tempfile::tempdir().unwrap();
    let srt_text = subtitles::to_srt(&cues);
    let vtt_text = subtitles::to_webvtt(&cues);
    // WebVTT escapes: no bare `&` or `<` in cue text.
    assert!(
        vtt_text.contains("fish &amp; chips &lt;3 --&gt; tasty."),
        "{vtt_text}"
    );
    assert!(!vtt_text.contains("& ") && !vtt_text.contains("<"));
    for (name, text) in [("ep.srt", srt_text), ("ep.vtt", vtt_text)] {
        let read = ffmpeg_cues(&write(dir.path(), name, &text));
        assert_eq!(read.len(), cues.len(), "{name}: FFmpeg read every cue");
        let mut next_word = 0;
        for (i, c) in read.iter().enumerate() {
            let d = c.end - c.start;
            assert!((1000..=7000).contains(&d), "{name} cue {i}: {d} ms");
            assert!(
                !c.lines.is_empty() && c.lines.len() <= 2,
                "{name} cue {i}: {:?}",
                c.lines
            );
            for l in &c.lines {
                assert!(l.chars().count() <= 42, "{name} cue {i}: {l:?}");
            }
            if let Some(n) = read.get(i + 1) {
                assert!(c.end <= n.start, "{name}: cue {i} overlaps the next");
            }
            assert!(c.start >= 0 && c.end <= (end * 1000.0_f64).round() as i64);
            for cut in cuts {
                let at = (cut * 1000.0_f64).round() as i64;
                assert!(
                    !(c.start < at && c.end > at),
                    "{name} cue {i} spans the cut at {cut}"
                );
            }
            // Its words, in order, each inside the cue at the time the cut list puts it
            // (1 ms: rounding); the cue starts on its first word and ends on its last unless
            // held longer to reach a second.
            let said: Vec<String> = c.lines.join(" ").split(' ').map(str::to_string).collect();
            let mine = &words[next_word..next_word + said.len()];
            let shown: Vec<String> = mine
                .iter()
                .map(|(w, _, _)| {
                    if name == "ep.srt" {
                        w.replace('<', "‹").replace('>', "›")
                    } else {
                        w.clone()
                    }
                })
                .collect();
            assert_eq!(said, shown, "{name} cue {i}");
            let ms = |s: f64| (s * 1000.0).round() as i64;
            for (w, s, e) in mine {
                assert!(
                    ms(*s) >= c.start - 1 && ms(*e) <= c.end + 1,
                    "{name} cue {i}: {w} {s}..{e} vs {c:?}"
                );
            }
            let (first, last) = (ms(mine[0].1), ms(mine.last().unwrap().2));
            assert!(
                (c.start - first).abs() <= 1 || d == 1000,
                "{name} cue {i} starts at {} not {first}",
                c.start
            );
            assert!(
                (c.end - last).abs() <= 1
                    || d == 1000
                    || read.get(i + 1).is_some_and(|n| n.start == c.end),
                "{name} cue {i} ends at {} not {last}",
                c.end
            );
            next_word += said.len();
        }
        assert_eq!(next_word, words.len(), "{name}: every word shown once");
    }
}

/// An overlay (`overlayTracks`: picture-in-picture of clip D's section from timeline frame 90)
/// is a video track of its own above the main one: a 90-frame gap, then the section.
#[test]
fn opentimelineio_reads_overlays_as_tracks_above_the_main_one() {
    let r = rate(60, 1);
    let c = source("s/c.mkv", r, 40.0, Transcript::default());
    let dm = source("s/d.mkv", r, 40.0, Transcript::default());
    let cut: CutList = serde_json::from_value(serde_json::json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "s/c.mkv", "sections": [{"startFrame": 0, "endFrame": 600}]},
            {"s3Location": "s/d.mkv", "sections": [{"startFrame": 60, "endFrame": 240}]}
        ],
        "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}],
        "overlayTracks": [{"startFrame": 90, "mediaIndex": 1, "sectionIndex": 0, "x": 10.0, "y": 20.0, "type": "alpha"}]
    }))
    .unwrap();
    let t = EpisodeTimeline::build("Overlay", &cut, vec![c, dm], vec![]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "ep.otio", &otio::to_otio_json(&t));
    let d = python_json(DESCRIBE, &[path.to_str().unwrap(), "otio"]);
    let tracks = d["tracks"].as_array().unwrap();
    let names: Vec<&str> = tracks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Video 1", "Overlay 1", "Audio 1"]);
    let overlay = tracks[1]["items"].as_array().unwrap();
    assert_eq!(tracks[1]["kind"], "Video");
    assert_eq!(
        (overlay[0]["type"].as_str(), overlay[0]["frames"].as_f64()),
        (Some("Gap"), Some(90.0))
    );
    let clip = &overlay[1];
    assert_eq!(clip["name"], "d.mkv");
    assert_eq!(
        (clip["start"].as_f64(), clip["frames"].as_f64()),
        (Some(60.0), Some(180.0))
    );
    assert_eq!(clip["at"], 1.5);
}
