//! Timestamps against truth, through the whole pipeline (speech map → VAD → speech audio →
//! Whisper → time map → segments, windows, search links, proposals):
//!
//! - generated speech (espeak-ng) with pauses from 0.6 to 40 s on the mic track of an OBS-like
//!   recording, in AAC and in Opus: every sentence's segment and first word start within 0.3 s
//!   of where the sentence begins in the audio (measured on the rendered audio), every word
//!   inside its segment and in order, and a search for a sentence links to within 1 s of it;
//! - a real recorded human voice (LibriVox, public domain) with ~3 s pauses between repeated
//!   sentences: the same, plus every word against an independent forced alignment;
//! - ten minutes of music, noise and game sound with no voice: no words, no windows, no
//!   proposals.
//!
//! The error statistics are printed (`--nocapture` shows them) for the closing notes.

use gt_cli::media_gen::{
    AudioCodec, Container, Generated, RecordingSpec, SENTENCES, Segment, Track, generate,
};
use gt_tests::truth::{ErrorStats, TimedWord, align, librivox};
use gt_tests::{ALICE, AppOptions, TestApp, wait_for_ingest_within, wer, words};
use gt_types::transcript::Transcript;
use serde_json::{Value, json};

/// A spoken sentence and when it really starts (stream seconds); `words` when an independent
/// alignment gives every word's time.
#[derive(Debug, Clone)]
struct Sentence {
    text: String,
    onset: f64,
    words: Vec<TimedWord>,
}

/// A transcript segment in stream time.
#[derive(Debug, Clone)]
struct Seg {
    start: f64,
    end: f64,
    text: String,
    words: Vec<TimedWord>,
}

/// Speech on track 1, game audio under it on track 0 (the OBS layout).
fn obs_spec(mic: Vec<Segment>, codec: AudioCodec) -> RecordingSpec {
    // The game track as long as the mic track (a little longer is harmless: the shorter one
    // is padded with silence).
    let total: f64 = mic.iter().map(Segment::nominal_seconds).sum();
    RecordingSpec {
        video: None,
        tracks: vec![
            Track {
                title: "Game".into(),
                segments: vec![Segment::Game(total)],
            },
            Track {
                title: "Mic".into(),
                segments: mic,
            },
        ],
        container: Container::Mkv,
        audio_codec: codec,
    }
}

/// The sentences of track 1 with their true onsets (clip starts at stream time 0).
fn sentences_of(made: &Generated, texts: &[String], aligned: &[Vec<TimedWord>]) -> Vec<Sentence> {
    made.speech_onsets(1)
        .into_iter()
        .zip(texts)
        .enumerate()
        .map(|(i, ((_, onset), text))| {
            let at = made.tracks[1]
                .iter()
                .filter(|(s, _, _)| matches!(s, Segment::Speech(_) | Segment::Recorded(_)))
                .nth(i)
                .map(|(_, a, _)| *a)
                .unwrap();
            let words: Vec<TimedWord> = aligned
                .get(i)
                .map(|ws| {
                    ws.iter()
                        .map(|w| TimedWord {
                            word: w.word.clone(),
                            start: at + w.start,
                            end: at + w.end,
                        })
                        .collect()
                })
                .unwrap_or_default();
            Sentence {
                text: text.clone(),
                // With an alignment, the first aligned word is the onset (room noise before it
                // is above -50 dBFS); otherwise the measured lead-in.
                onset: words.first().map_or(onset, |w| w.start),
                words,
            }
        })
        .collect()
}

async fn ingest(app: &TestApp, stream_id: &str) -> Value {
    let (s, body) = app
        .post(
            ALICE,
            "/records/streams",
            json!({"id": stream_id, "prefix": stream_id}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, started) = app
        .post(
            ALICE,
            "/stream",
            json!({"streamId": stream_id, "language": "en", "awaitReview": false,
                   "episodes": {"min_length": 10.0}}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    let done =
        wait_for_ingest_within(app, ALICE, stream_id, std::time::Duration::from_secs(900)).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    done
}

/// Every transcript segment of the stream in stream time, in order.
async fn segments(app: &TestApp, stream_id: &str) -> Vec<Seg> {
    let (s, clips) = app
        .get(
            ALICE,
            &format!("/records/video_clips/stream_id/{stream_id}"),
        )
        .await;
    assert_eq!(s, 200, "{clips}");
    let mut out = Vec::new();
    for clip in clips["items"].as_array().unwrap() {
        let offset = clip["start_time"].as_f64().unwrap_or(0.0);
        let Ok(t) = serde_json::from_value::<Transcript>(clip["transcription"].clone()) else {
            continue;
        };
        for s in t.segments {
            out.push(Seg {
                start: s.start + offset,
                end: s.end + offset,
                text: s.text,
                words: s
                    .words
                    .iter()
                    .map(|w| TimedWord {
                        word: w.word.clone(),
                        start: w.start + offset,
                        end: w.end + offset,
                    })
                    .collect(),
            });
        }
    }
    out.sort_by(|a, b| a.start.total_cmp(&b.start));
    out
}

/// What a recording's transcript got right and wrong.
struct Report {
    name: String,
    /// Per sentence: segment start − onset.
    segment_starts: Vec<f64>,
    /// Per sentence: first word start − onset.
    first_words: Vec<f64>,
    /// Per aligned word with a known time: start − truth.
    words: Vec<f64>,
    wer: f64,
    /// The transcript, a segment per line with its times.
    transcript: String,
    /// Broken invariants and sentences off by more than 0.3 s, described.
    problems: Vec<String>,
}

impl Report {
    fn print(&self) {
        println!(
            "[timestamps] {}: WER {:.3}\n  segment starts: {}\n  first words:    {}\n  all words:      {}",
            self.name,
            self.wer,
            ErrorStats::of(&self.segment_starts),
            ErrorStats::of(&self.first_words),
            ErrorStats::of(&self.words),
        );
        for p in &self.problems {
            println!("  ! {p}");
        }
    }
}

fn measure(name: &str, sentences: &[Sentence], segs: &[Seg]) -> Report {
    let mut problems = Vec::new();
    // Invariants: segments in order and apart; words in order and inside their segment.
    let eps = 1e-6;
    for (i, s) in segs.iter().enumerate() {
        if s.end < s.start {
            problems.push(format!("segment {i} ends before it starts: {s:?}"));
        }
        if i > 0 && s.start < segs[i - 1].end - eps {
            problems.push(format!(
                "segment {i} starts at {:.2} inside segment {} (ends {:.2})",
                s.start,
                i - 1,
                segs[i - 1].end
            ));
        }
        for (k, w) in s.words.iter().enumerate() {
            if w.start < s.start - eps || w.end > s.end + eps || w.end < w.start {
                problems.push(format!(
                    "segment {i} [{:.2}, {:.2}]: word {:?} at [{:.2}, {:.2}] is outside it",
                    s.start, s.end, w.word, w.start, w.end
                ));
            }
            if k > 0 && w.start < s.words[k - 1].start - eps {
                problems.push(format!("segment {i}: word {:?} goes back in time", w.word));
            }
        }
    }
    // Reference words (sentence, index in sentence) against the transcript's words.
    let mut reference: Vec<String> = Vec::new();
    let mut owner: Vec<(usize, usize)> = Vec::new();
    for (si, s) in sentences.iter().enumerate() {
        for (wi, w) in words(&s.text).into_iter().enumerate() {
            reference.push(w);
            owner.push((si, wi));
        }
    }
    let hyp: Vec<(usize, &TimedWord)> = segs
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.words.iter().map(move |w| (i, w)))
        .collect();
    let hyp_words: Vec<String> = hyp.iter().map(|(_, w)| w.word.clone()).collect();
    let pairs = align(&reference, &hyp_words);
    let (mut segment_starts, mut first_words, mut word_errors) = (Vec::new(), Vec::new(), vec![]);
    for (si, s) in sentences.iter().enumerate() {
        // The sentence's first word, if the transcript has it.
        let Some(&(_, j)) = pairs.iter().find(|(r, _)| owner[*r] == (si, 0)) else {
            problems.push(format!(
                "sentence {si} ({:?}…): first word not transcribed",
                words(&s.text)[0]
            ));
            continue;
        };
        let (seg_index, word) = hyp[j];
        let seg_error = segs[seg_index].start - s.onset;
        let word_error = word.start - s.onset;
        segment_starts.push(seg_error);
        first_words.push(word_error);
        if seg_error.abs() > 0.3 || word_error.abs() > 0.3 {
            problems.push(format!(
                "sentence {si} starts at {:.2}: its segment starts at {:.2} ({seg_error:+.2}), its first word {:?} at {:.2} ({word_error:+.2})",
                s.onset, segs[seg_index].start, word.word, word.start
            ));
        }
    }
    // Every word with a known time (the aligned voice).
    let truth: Vec<Option<&TimedWord>> = owner
        .iter()
        .map(|&(si, wi)| sentences[si].words.get(wi))
        .collect();
    let mut worst: Vec<(f64, String)> = Vec::new();
    for &(r, j) in &pairs {
        if let Some(t) = truth[r] {
            let e = hyp[j].1.start - t.start;
            word_errors.push(e);
            worst.push((
                e,
                format!(
                    "{:?} said at {:.2}, timed {:.2}",
                    t.word, t.start, hyp[j].1.start
                ),
            ));
        }
    }
    worst.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    if let Some((e, w)) = worst.first()
        && e.abs() > 0.5
    {
        println!("  worst word: {w}");
    }
    let full_ref: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
    let full_hyp: Vec<&str> = segs.iter().map(|s| s.text.as_str()).collect();
    Report {
        name: name.into(),
        segment_starts,
        first_words,
        words: word_errors,
        wer: wer(&full_ref.join(" "), &full_hyp.join(" ")),
        transcript: segs
            .iter()
            .map(|s| format!("{:8.2} {:8.2}  {}", s.start, s.end, s.text))
            .collect::<Vec<_>>()
            .join("\n"),
        problems,
    }
}

/// The deep link of the best search hit for `q` in the stream, as seconds.
async fn search_link_seconds(app: &TestApp, stream_id: &str, q: &str) -> Option<f64> {
    let (s, hits) = app
        .get(
            ALICE,
            &format!(
                "/search?stream_id={stream_id}&limit=1&q={}",
                url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            ),
        )
        .await;
    assert_eq!(s, 200, "{hits}");
    let link = hits["items"][0]["link"].as_str()?;
    link.split("t=").nth(1)?.parse().ok()
}

/// Espeak sentences with pauses from 0.6 s (inside one stretch of speech) to 40 s; the same
/// audio in AAC and in Opus.
fn espeak_mic() -> (Vec<Segment>, Vec<String>) {
    let pauses = [3.0, 40.0, 0.6, 12.0, 1.2, 25.0, 8.0, 3.0];
    let mut mic = vec![Segment::Silence(2.0)];
    let mut texts = Vec::new();
    for (s, p) in SENTENCES.iter().zip(pauses) {
        mic.push(Segment::Speech((*s).into()));
        mic.push(Segment::Silence(p));
        texts.push((*s).to_string());
    }
    (mic, texts)
}

/// The LibriVox utterances three times over in different orders, ~3 s apart.
fn voice_mic() -> (Vec<Segment>, Vec<String>, Vec<Vec<TimedWord>>) {
    let voices = librivox();
    let order = [0, 1, 2, 3, 4, 2, 0, 4, 1, 3, 1, 4, 3, 0, 2];
    let pauses = [3.0, 2.6, 3.4, 3.0, 2.8, 3.2];
    let mut mic = vec![Segment::Silence(1.5)];
    let (mut texts, mut aligned) = (Vec::new(), Vec::new());
    for (k, &i) in order.iter().enumerate() {
        mic.push(Segment::Recorded(voices[i].wav.clone()));
        mic.push(Segment::Silence(pauses[k % pauses.len()]));
        texts.push(voices[i].text.clone());
        aligned.push(voices[i].words.clone());
    }
    (mic, texts, aligned)
}

#[tokio::test]
async fn speech_is_timed_where_it_was_said() {
    let app = TestApp::start_with(AppOptions::default()).await.unwrap();
    let root = app.recordings_of(ALICE);
    let root = root.as_path();
    let (mic, texts) = espeak_mic();
    let (voice, voice_texts, voice_words) = voice_mic();
    let recordings = [
        (
            "pauses-aac",
            obs_spec(mic.clone(), AudioCodec::Aac),
            texts.clone(),
            vec![],
        ),
        (
            "pauses-opus",
            obs_spec(mic, AudioCodec::Opus),
            texts,
            vec![],
        ),
        (
            "voice",
            obs_spec(voice.clone(), AudioCodec::Aac),
            voice_texts.clone(),
            voice_words.clone(),
        ),
        (
            "voice-opus",
            obs_spec(voice, AudioCodec::Opus),
            voice_texts,
            voice_words,
        ),
    ];
    let mut reports = Vec::new();
    for (name, spec, texts, aligned) in &recordings {
        let made = generate(spec, &root.join(name).join("a.mkv")).unwrap();
        let sentences = sentences_of(&made, texts, aligned);
        ingest(&app, name).await;
        let segs = segments(&app, name).await;
        let report = measure(name, &sentences, &segs);
        report.print();
        let (_, clips) = app
            .get(ALICE, &format!("/records/video_clips/stream_id/{name}"))
            .await;
        let speech: Vec<String> = clips["items"][0]["speech"]["speech"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                format!(
                    "{:.2}-{:.2}",
                    i["start"].as_f64().unwrap_or(0.0),
                    i["end"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        println!(
            "  speech: {}\n  sentences: {:?}\n{}",
            speech.join(" "),
            sentences
                .iter()
                .map(|s| (s.onset * 100.0).round() / 100.0)
                .collect::<Vec<_>>(),
            report.transcript
        );
        // A search for a sentence links to where it was said (one of the places, when it was
        // said more than once).
        let mut links = Vec::new();
        for s in sentences.iter().take(8) {
            let at = search_link_seconds(&app, name, &s.text).await;
            let said: Vec<f64> = sentences
                .iter()
                .filter(|o| o.text == s.text)
                .map(|o| o.onset)
                .collect();
            let nearest = said
                .iter()
                .copied()
                .min_by(|a, b| {
                    let d = |x: f64| (x - at.unwrap_or(f64::NAN)).abs();
                    d(*a).total_cmp(&d(*b))
                })
                .unwrap_or(s.onset);
            links.push((nearest, at));
        }
        println!("  search links (onset, link): {links:?}");
        reports.push((report, links));
    }
    for (report, links) in &reports {
        assert!(
            report.problems.is_empty(),
            "{}: {:#?}",
            report.name,
            report.problems
        );
        assert!(
            report.wer <= 0.15,
            "{}: WER {:.3}\n{}",
            report.name,
            report.wer,
            report.transcript
        );
        for (onset, at) in links {
            let at = at.unwrap_or(f64::NAN);
            assert!(
                (at - onset).abs() <= 1.0,
                "{}: a search for the sentence at {onset:.2} s links to {at:.2} s",
                report.name
            );
        }
    }
    for (voice, _) in &reports[2..] {
        let stats = ErrorStats::of(&voice.words);
        assert!(
            stats.n as f64 >= 0.8 * 15.0 * 10.0,
            "{}: too few aligned words: {stats}",
            voice.name
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn music_noise_and_game_sound_are_not_speech() {
    let app = TestApp::start_with(AppOptions::default()).await.unwrap();
    let mic = vec![
        Segment::Music(240.0),
        Segment::Game(120.0),
        Segment::QuietNoise(30.0),
        Segment::Music(150.0),
        Segment::Tone(60.0),
    ];
    let spec = RecordingSpec {
        video: None,
        tracks: vec![
            Track {
                title: "Game".into(),
                segments: vec![Segment::Game(600.0)],
            },
            Track {
                title: "Mic".into(),
                segments: mic,
            },
        ],
        container: Container::Mkv,
        audio_codec: AudioCodec::Aac,
    };
    generate(
        &spec,
        &app.recordings_of(ALICE).as_path().join("music/a.mkv"),
    )
    .unwrap();
    let done = ingest(&app, "music").await;
    let segs = segments(&app, "music").await;
    let words: usize = segs.iter().map(|s| s.words.len()).sum();
    println!(
        "[timestamps] music: {} segments, {words} words: {:?}",
        segs.len(),
        segs.iter().map(|s| s.text.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(words, 0, "{segs:?}");
    assert!(segs.is_empty(), "{segs:?}");
    assert_eq!(done["result"]["episodes_proposed"], json!([]), "{done}");
    let (_, hits) = app
        .get(
            ALICE,
            "/search?q=welcome%20to%20the%20stream&stream_id=music",
        )
        .await;
    assert_eq!(hits["items"], json!([]), "{hits}");
    let windows: i64 = sqlx::query_scalar("SELECT count(*) FROM transcript_windows")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(windows, 0);
    app.stop().await;
}
