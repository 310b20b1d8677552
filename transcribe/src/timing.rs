//! From Whisper's tokens to timed words and segments in clip time.
//!
//! Measured against forced alignments of a real voice (see `tests/e2e/timestamps.rs`):
//!
//! - whisper.cpp files each token's DTW time at the alignment row *after* the one that predicts
//!   it, so `t_dtw` marks where a token ends (it runs ~0.2 s late as a start). A token starts
//!   where the one before it ends.
//! - After a pause that span begins in the pause, so a word's start is then moved to where the
//!   sound really begins: the last rise out of quiet (25 dB under the span's loudest 10 ms) in
//!   the span. Trailing quiet is trimmed from its end the same way.
//! - Whisper's timestamp tokens (`t0`/`t1`) are tenths of seconds off, and seconds off after
//!   the first 30 s window: they are only used when no DTW time exists at all.
//! - Times go through the speech audio's map to the clip: a start that falls in a gap between
//!   speech segments belongs to the segment after it, an end to the segment before it.
//! - A segment never spans a pause: words in different speech segments start new segments.
//!   Its start is its first word's, its end its last word's, so both lie in speech.
//! - Whisper's non-speech annotations (`[Music]`, `(applause)`, `♪`…) are not words.

use gt_types::media::SpeechAudio;
use gt_types::transcript::{TranscriptSegment, Word};

use crate::engine::{Decoded, Token, compression_ratio};

/// 10 ms analysis frames for onsets.
const FRAME_S: f64 = 0.01;
/// A frame this far under the loudest frame of a span is quiet.
const QUIET_DB: f64 = 25.0;
/// Quiet shorter than this many frames inside speech is a consonant, not a pause.
const MIN_PAUSE_FRAMES: usize = 8;
/// A span whose loudest frame is under this has nothing to snap to.
const FLOOR_DB: f64 = -65.0;

/// Loudness (dBFS) of each 10 ms frame of 16 kHz audio.
pub fn frame_levels(pcm: &[f32]) -> Vec<f64> {
    let n = (FRAME_S * 16_000.0) as usize;
    pcm.chunks(n)
        .map(|f| {
            let power = f.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>() / n as f64;
            10.0 * (power + 1e-12).log10()
        })
        .collect()
}

fn frame_span(levels: &[f64], a: f64, b: f64) -> (usize, usize) {
    let fa = ((a / FRAME_S).floor().max(0.0) as usize).min(levels.len());
    let fb = ((b / FRAME_S).ceil().max(0.0) as usize).min(levels.len());
    (fa, fb.max(fa))
}

/// Where sound begins in `[a, b]`: after the last pause (a quiet run of at least
/// [`MIN_PAUSE_FRAMES`], or quiet from `a` on) before the span's last loud frame; `a` when the
/// span is loud throughout or silent. Shorter quiet runs are stop consonants inside words.
pub fn onset(levels: &[f64], a: f64, b: f64) -> f64 {
    let (fa, fb) = frame_span(levels, a, b);
    let span = &levels[fa..fb];
    let Some(peak) = span.iter().copied().reduce(f64::max) else {
        return a;
    };
    if peak < FLOOR_DB {
        return a;
    }
    let quiet = peak - QUIET_DB;
    let Some(last_loud) = span.iter().rposition(|&l| l >= quiet) else {
        return a;
    };
    // Walk back over quiet runs before the last loud frame; the latest pause wins.
    let mut i = last_loud;
    while i > 0 {
        let Some(end) = span[..i].iter().rposition(|&l| l < quiet) else {
            break;
        };
        let start = span[..end]
            .iter()
            .rposition(|&l| l >= quiet)
            .map_or(0, |k| k + 1);
        if end + 1 - start >= MIN_PAUSE_FRAMES || start == 0 {
            return ((fa + end + 1) as f64 * FRAME_S).clamp(a, b);
        }
        i = start;
    }
    a
}

/// Where sound ends in `[a, b]`: after the span's last loud frame.
pub fn offset(levels: &[f64], a: f64, b: f64) -> f64 {
    let (fa, fb) = frame_span(levels, a, b);
    let span = &levels[fa..fb];
    let Some(peak) = span.iter().copied().reduce(f64::max) else {
        return b;
    };
    if peak < FLOOR_DB {
        return b;
    }
    match span.iter().rposition(|&l| l >= peak - QUIET_DB) {
        Some(v) => ((fa + v + 1) as f64 * FRAME_S).clamp(a, b),
        None => b,
    }
}

/// A sentence followed by at least this much quiet ends its segment, even when Whisper ran the
/// next sentence into the same one (short pauses stay inside one speech segment).
const SENTENCE_PAUSE_S: f64 = 0.4;

fn ends_sentence(word: &str) -> bool {
    word.trim_end_matches(['"', '\'', ')'])
        .ends_with(['.', '!', '?'])
}

/// Whether anything in `[a, b]` is loud enough to be heard.
pub(crate) fn sounds(levels: &[f64], a: f64, b: f64) -> bool {
    let (fa, fb) = frame_span(levels, a, b);
    levels[fa..fb].iter().any(|&l| l >= FLOOR_DB)
}

/// Whether a word is one of Whisper's descriptions of sound rather than speech.
fn is_annotation_start(w: &str) -> Option<char> {
    match w.chars().next()? {
        '[' => Some(']'),
        '(' => Some(')'),
        '*' if w.chars().count() > 1 => Some('*'),
        _ => None,
    }
}

/// Token ends: the DTW times, gaps filled in between known ones, never decreasing, inside
/// `[0, duration]`. Without any DTW time, Whisper's own token ends.
fn token_ends(tokens: &[&Token], duration: f64) -> Vec<f64> {
    let known: Vec<(usize, f64)> = tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.dtw.map(|d| (i, d)))
        .collect();
    let mut ends: Vec<f64> = if known.is_empty() {
        tokens.iter().map(|t| t.t1).collect()
    } else {
        (0..tokens.len())
            .map(|i| {
                let before = known.iter().rev().find(|(k, _)| *k <= i);
                let after = known.iter().find(|(k, _)| *k >= i);
                match (before, after) {
                    (Some(&(k0, v0)), Some(&(k1, v1))) if k1 > k0 => {
                        v0 + (v1 - v0) * (i - k0) as f64 / (k1 - k0) as f64
                    }
                    (Some(&(_, v)), _) | (None, Some(&(_, v))) => v,
                    (None, None) => 0.0,
                }
            })
            .collect()
    };
    let mut last = 0.0f64;
    for e in &mut ends {
        *e = e.clamp(last, duration.max(last));
        last = *e;
    }
    repair_collapses(&mut ends, tokens);
    ends
}

/// Where the alignment path shot straight through several rows (three or more tokens ending at
/// the same moment), the tokens' ends are unknown: Whisper's own ends that lie inside the
/// collapsed span, in order, are kept as anchors and the other tokens are spread evenly between
/// them.
fn repair_collapses(ends: &mut [f64], tokens: &[&Token]) {
    let n = ends.len();
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && ends[j + 1] == ends[i] {
            j += 1;
        }
        if j - i + 1 >= 3 {
            let (s, e) = (if i > 0 { ends[i - 1] } else { 0.0 }, ends[i]);
            // (token index, end); the span's start belongs to the token before the run.
            let mut anchors: Vec<(f64, f64)> = vec![(i as f64 - 1.0, s)];
            for (k, t) in tokens.iter().enumerate().take(j).skip(i) {
                if t.t1 > anchors.last().unwrap().1 && t.t1 < e {
                    anchors.push((k as f64, t.t1));
                }
            }
            anchors.push((j as f64, e));
            for (k, end) in ends.iter_mut().enumerate().take(j).skip(i) {
                let x = k as f64;
                let after = anchors.iter().position(|a| a.0 >= x).unwrap();
                let (b, a) = (anchors[after], anchors[after - 1]);
                *end = if b.0 == x {
                    b.1
                } else {
                    a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
                };
            }
        }
        i = j + 1;
    }
}

/// A word being built: its tokens (indices into the flat token list) and its text.
struct Draft {
    /// Whisper segment it came from.
    segment: usize,
    tokens: Vec<usize>,
    text: String,
}

/// Timed segments in clip time from one decoded chunk. `pcm` is the chunk's audio (16 kHz),
/// `chunk_start` where it begins in the speech audio that `audio` maps to the clip.
pub fn timed_segments(
    decoded: &Decoded,
    pcm: &[f32],
    audio: &SpeechAudio,
    chunk_start: f64,
) -> Vec<TranscriptSegment> {
    let duration = pcm.len() as f64 / 16_000.0;
    let levels = frame_levels(pcm);
    let flat: Vec<(usize, &Token)> = decoded
        .segments
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.tokens.iter().map(move |t| (i, t)))
        .collect();
    let toks: Vec<&Token> = flat.iter().map(|(_, t)| *t).collect();
    let ends = token_ends(&toks, duration);
    let starts: Vec<f64> = (0..toks.len())
        .map(|i| if i == 0 { 0.0 } else { ends[i - 1] })
        .collect();

    // Tokens into words: a leading space, or a new Whisper segment, starts a word.
    let mut drafts: Vec<Draft> = Vec::new();
    for (i, (seg, tok)) in flat.iter().enumerate() {
        match drafts.last_mut() {
            Some(d) if d.segment == *seg && !tok.text.starts_with(' ') => {
                d.tokens.push(i);
                d.text.push_str(&tok.text);
            }
            _ => drafts.push(Draft {
                segment: *seg,
                tokens: vec![i],
                text: tok.text.trim_start().to_string(),
            }),
        }
    }

    // Annotations ("[Music]", "(upbeat music)", "*laughs*") and symbol-only words go.
    let mut kept: Vec<Draft> = Vec::new();
    let mut closing: Option<char> = None;
    for d in drafts {
        let text = d.text.trim();
        if let Some(close) = closing {
            if text.ends_with(close) {
                closing = None;
            }
            continue;
        }
        if let Some(close) = is_annotation_start(text) {
            if !text[1..].ends_with(close) {
                closing = Some(close);
            }
            continue;
        }
        if !text.chars().any(char::is_alphanumeric) {
            continue;
        }
        kept.push(d);
    }

    // Time each word in the chunk, then in the clip.
    struct Timed {
        draft: Draft,
        start: f64,
        end: f64,
        speech_segment: usize,
    }
    let mut timed: Vec<Timed> = Vec::with_capacity(kept.len());
    for d in kept {
        let first = d.tokens[0];
        let last_spoken = d
            .tokens
            .iter()
            .rev()
            .copied()
            .find(|&k| toks[k].text.chars().any(char::is_alphanumeric))
            .unwrap_or(first);
        // The DTW span (start, end of the first token, end of the word); if the alignment put
        // the word where nothing sounds (it drifts into the silent gaps between speech
        // segments now and then), Whisper's own estimate.
        let dtw = (starts[first], ends[first], ends[last_spoken]);
        let whisper = (
            toks[first].t0.max(0.0),
            toks[first].t1.min(duration),
            toks[last_spoken].t1.min(duration),
        );
        let (a, first_end, b) = if !sounds(&levels, dtw.0, dtw.2)
            && whisper.2 > whisper.0
            && sounds(&levels, whisper.0, whisper.2)
        {
            whisper
        } else {
            dtw
        };
        let start = onset(&levels, a, first_end.max(a));
        let end = offset(&levels, start, b.max(start));
        let at = chunk_start + start;
        // A start in a gap begins the speech after it, unless the word continues a sentence
        // of the speech before it (same Whisper segment as the previous word).
        let after_gap = audio.segment_of_start(at).unwrap_or(0);
        let before_gap = audio.segment_at(at).unwrap_or(0);
        let continues = timed.last().is_some_and(|p: &Timed| {
            p.draft.segment == d.segment && p.speech_segment == before_gap
        });
        let (clip_start, speech_segment) = if after_gap != before_gap && continues {
            (audio.to_clip_time(at), before_gap)
        } else {
            (audio.to_clip_start(at), after_gap)
        };
        let clip_end = audio.to_clip_time(chunk_start + end).max(clip_start);
        timed.push(Timed {
            speech_segment,
            draft: d,
            start: clip_start,
            end: clip_end,
        });
    }
    // Words in order, each ending before the next begins.
    for i in 1..timed.len() {
        let prev_start = timed[i - 1].start;
        timed[i].start = timed[i].start.max(prev_start);
        timed[i].end = timed[i].end.max(timed[i].start);
        let next_start = timed[i].start;
        let p = &mut timed[i - 1];
        p.end = p.end.min(next_start).max(p.start);
    }

    // Segments: runs of words from one Whisper segment and one stretch of speech.
    let mut out: Vec<TranscriptSegment> = Vec::new();
    let mut run: Vec<Timed> = Vec::new();
    let flush = |run: &mut Vec<Timed>, out: &mut Vec<TranscriptSegment>| {
        if run.is_empty() {
            return;
        }
        let words: Vec<Word> = run
            .iter()
            .map(|t| Word {
                word: t.draft.text.trim().to_string(),
                start: t.start,
                end: t.end,
                probability: t
                    .draft
                    .tokens
                    .iter()
                    .map(|&k| toks[k].p)
                    .fold(1.0, f64::min),
            })
            .collect();
        let tokens: Vec<usize> = run.iter().flat_map(|t| t.draft.tokens.clone()).collect();
        let text = words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let seg = flat[tokens[0]].0;
        out.push(TranscriptSegment {
            start: words[0].start,
            end: words.iter().map(|w| w.end).fold(words[0].start, f64::max),
            avg_logprob: tokens.iter().map(|&k| toks[k].logprob).sum::<f64>() / tokens.len() as f64,
            compression_ratio: compression_ratio(&text),
            no_speech_prob: decoded.segments[seg].no_speech_prob,
            temperature: 0.0,
            tokens: tokens.iter().map(|&k| toks[k].id).collect(),
            text,
            words,
        });
        run.clear();
    };
    for t in timed {
        if let Some(prev) = run.last()
            && (prev.draft.segment != t.draft.segment
                || prev.speech_segment != t.speech_segment
                || (ends_sentence(&prev.draft.text) && t.start - prev.end >= SENTENCE_PAUSE_S))
        {
            flush(&mut run, &mut out);
        }
        run.push(t);
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RawSegment;
    use gt_types::media::SpeechSegment;

    fn tok(text: &str, dtw: f64) -> Token {
        Token {
            id: 1,
            text: text.into(),
            dtw: Some(dtw),
            p: 0.9,
            logprob: -0.1,
            ..Default::default()
        }
    }

    /// 16 kHz audio: loud (a 300 Hz tone at -12 dBFS) in `loud` intervals, digital silence
    /// elsewhere.
    fn pcm(duration: f64, loud: &[(f64, f64)]) -> Vec<f32> {
        (0..(duration * 16_000.0) as usize)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                if loud.iter().any(|&(a, b)| t >= a && t < b) {
                    (0.25 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()) as f32
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn identity(duration: f64) -> SpeechAudio {
        SpeechAudio::whole("k", duration)
    }

    #[test]
    fn onsets_and_offsets_follow_the_sound() {
        let levels = frame_levels(&pcm(4.0, &[(1.0, 2.0), (2.5, 3.0)]));
        // A span from a pause into speech starts where the sound does.
        assert!((onset(&levels, 0.2, 1.3) - 1.0).abs() < 0.011);
        // Loud throughout: the span's own start.
        assert!((onset(&levels, 1.2, 1.5) - 1.2).abs() < 1e-9);
        // Two sounds in the span: the last rise after a pause.
        assert!((onset(&levels, 0.5, 2.7) - 2.5).abs() < 0.011);
        // A 50 ms stop inside a word is not a pause: the word's own rise counts.
        let word = frame_levels(&pcm(2.0, &[(0.5, 0.8), (0.85, 1.2)]));
        assert!((onset(&word, 0.1, 1.1) - 0.5).abs() < 0.011);
        // All quiet: unchanged.
        assert!((onset(&levels, 3.2, 3.8) - 3.2).abs() < 1e-9);
        assert!((offset(&levels, 1.5, 2.4) - 2.0).abs() < 0.011);
    }

    #[test]
    fn words_start_where_they_are_said_and_segments_break_at_pauses() {
        // Speech audio: clip 10–12 at 0, clip 20–22 at 2.25 (a 0.25 s gap between).
        let audio = SpeechAudio {
            key: "k".into(),
            sample_rate: 16_000,
            duration: 4.25,
            segments: vec![
                SpeechSegment {
                    start: 10.0,
                    end: 12.0,
                    offset: 0.0,
                },
                SpeechSegment {
                    start: 20.0,
                    end: 22.0,
                    offset: 2.25,
                },
            ],
        };
        // Sound: "one two" 0.3–1.6, then "three" 2.6–3.4 (after the gap, with lead-in quiet).
        let audio_pcm = pcm(4.25, &[(0.3, 0.9), (1.0, 1.6), (2.6, 3.4)]);
        // DTW marks each token's end; "three" spans 1.6 → 3.4 by the token before it.
        let decoded = Decoded {
            language: "en".into(),
            segments: vec![RawSegment {
                tokens: vec![
                    tok(" one", 0.9),
                    tok(" two", 1.6),
                    tok(" three", 3.4),
                    tok(".", 3.9),
                ],
                no_speech_prob: 0.01,
            }],
        };
        let segs = timed_segments(&decoded, &audio_pcm, &audio, 0.0);
        assert_eq!(segs.len(), 2, "{segs:#?}");
        assert_eq!(segs[0].text, "one two");
        assert_eq!(segs[1].text, "three.");
        let w = &segs[0].words;
        // "one" starts at the sound (0.3 s → clip 10.3), not at 0.
        assert!((w[0].start - 10.3).abs() < 0.011, "{w:?}");
        assert!((w[1].start - 11.0).abs() < 0.011, "{w:?}");
        let three = &segs[1].words[0];
        // Audio 2.6 s is 0.35 s into the second segment: clip 20.35.
        assert!((three.start - 20.35).abs() < 0.011, "{three:?}");
        // Its end is its last spoken token's, trimmed to the sound, not the full stop's.
        assert!((three.end - 21.15).abs() < 0.011, "{three:?}");
        assert!((segs[1].start - three.start).abs() < 1e-9);
        for s in &segs {
            for w in &s.words {
                assert!(w.start >= s.start && w.end <= s.end);
            }
        }
    }

    #[test]
    fn a_sentence_after_a_short_pause_starts_its_own_segment() {
        // One speech segment; "Stop." then 0.6 s of quiet, then "Go on" (one Whisper segment).
        let audio_pcm = pcm(3.0, &[(0.2, 0.8), (1.4, 2.4)]);
        let decoded = Decoded {
            language: "en".into(),
            segments: vec![RawSegment {
                tokens: vec![
                    tok(" Stop", 0.8),
                    tok(".", 0.9),
                    tok(" Go", 1.9),
                    tok(" on", 2.4),
                ],
                no_speech_prob: 0.0,
            }],
        };
        let segs = timed_segments(&decoded, &audio_pcm, &identity(3.0), 0.0);
        let texts: Vec<&str> = segs.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["Stop.", "Go on"]);
        assert!((segs[1].start - 1.4).abs() < 0.011, "{segs:?}");
        // Without the pause (or without the full stop) it stays one segment.
        let tight = pcm(3.0, &[(0.2, 2.4)]);
        assert_eq!(
            timed_segments(&decoded, &tight, &identity(3.0), 0.0).len(),
            1
        );
    }

    #[test]
    fn annotations_are_not_words() {
        let decoded = Decoded {
            language: "en".into(),
            segments: vec![
                RawSegment {
                    tokens: vec![tok(" [", 0.5), tok("Music", 0.6), tok("]", 0.7)],
                    no_speech_prob: 0.9,
                },
                RawSegment {
                    tokens: vec![
                        tok(" (", 1.0),
                        tok("up", 1.1),
                        tok("beat", 1.2),
                        tok(" music", 1.3),
                        tok(")", 1.4),
                        tok(" ♪", 1.5),
                        tok(" hello", 1.8),
                        tok(" *", 1.9),
                        tok("laughs", 2.0),
                        tok("*", 2.1),
                    ],
                    no_speech_prob: 0.1,
                },
            ],
        };
        let segs = timed_segments(&decoded, &pcm(3.0, &[(0.0, 3.0)]), &identity(3.0), 0.0);
        assert_eq!(segs.len(), 1, "{segs:#?}");
        assert_eq!(segs[0].text, "hello");
        assert!(
            timed_segments(
                &Decoded {
                    language: "en".into(),
                    segments: vec![decoded.segments[0].clone()]
                },
                &pcm(3.0, &[]),
                &identity(3.0),
                0.0
            )
            .is_empty()
        );
    }

    #[test]
    fn a_collapsed_alignment_is_spread_back_over_its_span() {
        // Measured on a real voice: "an ill-disposed young man." all ended at 20.24 (where the
        // next sentence starts); Whisper's own ends mostly lie inside 17.94–20.24.
        let mut toks: Vec<Token> = [
            (" not", 17.94, 17.40),
            (" an", 20.24, 17.60),
            (" ill", 20.24, 17.79),
            ("-", 20.24, 18.00),
            ("osed", 20.24, 18.74),
            (" young", 20.24, 19.32),
            (" man", 20.24, 19.62),
            (".", 20.24, 20.00),
            (" Had", 20.40, 20.23),
        ]
        .iter()
        .map(|&(t, d, t1)| Token { t1, ..tok(t, d) })
        .collect();
        toks[0].t1 = 17.40;
        let refs: Vec<&Token> = toks.iter().collect();
        let ends = token_ends(&refs, 30.0);
        // In order, inside the span, Whisper's ends where they fit.
        assert!(ends.windows(2).all(|w| w[0] <= w[1]), "{ends:?}");
        assert!(ends[1] > 17.94 && ends[1] < 18.0, "{ends:?}");
        assert_eq!(ends[3], 18.0);
        assert_eq!(ends[4], 18.74);
        assert_eq!(ends[5], 19.32);
        assert_eq!(ends[7], 20.24);
        assert_eq!(ends[8], 20.40);
    }

    #[test]
    fn missing_dtw_times_are_interpolated_not_taken_from_timestamp_tokens() {
        let mut toks = [tok(" a", 1.0), tok(" b", 0.0), tok(" c", 3.0)];
        toks[1].dtw = None;
        toks[1].t1 = 9.0; // a wild timestamp-token estimate
        let refs: Vec<&Token> = toks.iter().collect();
        assert_eq!(token_ends(&refs, 5.0), vec![1.0, 2.0, 3.0]);
        // Going back in time is not allowed; nor is running past the audio.
        let toks = [tok(" a", 2.0), tok(" b", 1.0), tok(" c", 7.0)];
        let refs: Vec<&Token> = toks.iter().collect();
        assert_eq!(token_ends(&refs, 5.0), vec![2.0, 2.0, 5.0]);
    }
}
