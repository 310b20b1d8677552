//! Subtitles in episode time: cues from the transcript's word timings, SRT and WebVTT.
//!
//! Cues follow what players and YouTube expect: at most [`MAX_LINES`] lines of at most
//! [`MAX_LINE_CHARS`] characters, shown [`MIN_CUE_MS`] to [`MAX_CUE_MS`], never overlapping the
//! next cue and never across a cut (each output item is cued on its own). Words are grouped
//! greedily; a group ends where the next word would break a limit, at a pause of
//! [`PAUSE_MS`] or more, and at a transcript segment (sentence) boundary once the group is long
//! enough; a group that ends for length is split after its last punctuation mark when that
//! leaves at least half of it. Groups shorter than the minimum are merged with a neighbour when
//! the result still fits, else shown longer (into the silence after, or before, them). The only
//! cues that can stay shorter than [`MIN_CUE_MS`] are those in an item that is itself shorter.
//! Times are rounded to whole milliseconds (never floored).

use crate::rational::Rational;
use crate::timeline::EpisodeTimeline;

pub const MAX_LINE_CHARS: usize = 42;
pub const MAX_LINES: usize = 2;
pub const MIN_CUE_MS: i64 = 1000;
pub const MAX_CUE_MS: i64 = 7000;
/// A pause this long between two words always ends a cue (no text over silence).
pub const PAUSE_MS: i64 = 1000;

/// One subtitle: episode milliseconds `[start_ms, end_ms)` and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: i64,
    pub end_ms: i64,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct MsWord {
    text: String,
    start: i64,
    end: i64,
    /// First word of a transcript segment.
    segment_start: bool,
}

fn ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

fn ms_rational(seconds: Rational) -> i64 {
    (seconds * Rational::integer(1000)).round() as i64
}

/// The episode's cues.
pub fn cues(timeline: &EpisodeTimeline) -> Vec<Cue> {
    let segments = timeline.segments();
    let mut out = Vec::new();
    for (pi, p) in timeline.placements.iter().enumerate() {
        let (lo, hi) = (ms_rational(p.start), ms_rational(p.end()));
        let mut words: Vec<MsWord> = Vec::new();
        for s in segments.iter().filter(|s| s.item == pi) {
            for (i, w) in s.words.iter().enumerate() {
                words.push(MsWord {
                    text: w.text.clone(),
                    start: ms(w.start).clamp(lo, hi),
                    end: ms(w.end).clamp(lo, hi),
                    segment_start: i == 0,
                });
            }
        }
        out.extend(piece_cues(words, lo, hi));
    }
    out
}

/// Cues of one uncut stretch `[lo, hi)` of the episode.
fn piece_cues(mut words: Vec<MsWord>, lo: i64, hi: i64) -> Vec<Cue> {
    // In order, each word ending before the next begins.
    words.sort_by_key(|w| w.start);
    for i in 0..words.len() {
        if i + 1 < words.len() {
            let next = words[i + 1].start;
            words[i].end = words[i].end.min(next);
        }
        words[i].end = words[i].end.max(words[i].start);
    }
    let groups = merge_short(group(words));
    let mut out: Vec<Cue> = Vec::new();
    let mut lower = lo;
    for (i, g) in groups.iter().enumerate() {
        let upper = groups.get(i + 1).map_or(hi, |n| n[0].start).min(hi);
        let mut start = g[0].start.max(lower);
        let mut end = g.last().unwrap().end.min(upper);
        if end - start > MAX_CUE_MS {
            end = start + MAX_CUE_MS;
        }
        if end - start < MIN_CUE_MS {
            end = (start + MIN_CUE_MS).min(upper);
        }
        if end - start < MIN_CUE_MS {
            start = (end - MIN_CUE_MS).max(lower);
        }
        let text: Vec<&str> = g.iter().map(|w| w.text.as_str()).collect();
        let lines = wrap(&text).unwrap_or_else(|| hard_wrap(&text.join(" ")));
        if end <= start {
            // No time left for it (words at the very edge of an item): its words join the cue
            // before when they fit, else they are not shown.
            if let Some(prev) = out.last_mut() {
                let mut all: Vec<String> = prev.lines.clone();
                all.extend(lines);
                let joined = all.join(" ");
                let all_words: Vec<&str> = joined.split(' ').collect();
                if let Some(l) = wrap(&all_words) {
                    prev.lines = l;
                }
            }
            continue;
        }
        out.push(Cue {
            start_ms: start,
            end_ms: end,
            lines,
        });
        lower = end;
    }
    out
}

fn fits(words: &[&str]) -> bool {
    wrap(words).is_some()
}

fn words_of(g: &[MsWord]) -> Vec<&str> {
    g.iter().map(|w| w.text.as_str()).collect()
}

fn ends_clause(w: &str) -> bool {
    w.ends_with(['.', ',', '?', '!', ';', ':', '…'])
}

/// Greedy groups (see the module docs).
fn group(words: Vec<MsWord>) -> Vec<Vec<MsWord>> {
    let mut groups: Vec<Vec<MsWord>> = Vec::new();
    let mut cur: Vec<MsWord> = Vec::new();
    for w in words {
        if let (Some(first), Some(last)) = (cur.first(), cur.last()) {
            let mut with: Vec<&str> = words_of(&cur);
            with.push(&w.text);
            let too_long = !fits(&with) || w.end - first.start > MAX_CUE_MS;
            let pause = w.start - last.end >= PAUSE_MS;
            let sentence = w.segment_start && last.end - first.start >= MIN_CUE_MS;
            if too_long || pause || sentence {
                let mut rest = Vec::new();
                if too_long && !pause && !sentence {
                    // Split after the last clause end when that keeps at least half.
                    if let Some(k) = cur.iter().rposition(|x| ends_clause(&x.text))
                        && k + 1 < cur.len()
                        && 2 * (k + 1) >= cur.len()
                    {
                        rest = cur.split_off(k + 1);
                    }
                }
                groups.push(std::mem::take(&mut cur));
                if !rest.is_empty() {
                    // The carried words keep their own cue if `w` would still break a limit
                    // with them.
                    let mut with = words_of(&rest);
                    with.push(&w.text);
                    if w.end - rest[0].start > MAX_CUE_MS || !fits(&with) {
                        groups.push(rest);
                    } else {
                        cur = rest;
                    }
                }
            }
        }
        cur.push(w);
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    groups
}

fn span(g: &[MsWord]) -> i64 {
    g.last().unwrap().end - g[0].start
}

/// Whether `a` then `b` can be one cue.
fn joinable(a: &[MsWord], b: &[MsWord]) -> bool {
    let mut all = words_of(a);
    all.extend(words_of(b));
    b[0].start - a.last().unwrap().end < PAUSE_MS
        && b.last().unwrap().end - a[0].start <= MAX_CUE_MS
        && fits(&all)
}

/// Merges groups shorter than [`MIN_CUE_MS`] into a neighbour where the result fits.
fn merge_short(mut groups: Vec<Vec<MsWord>>) -> Vec<Vec<MsWord>> {
    let mut i = 0;
    while i < groups.len() {
        if span(&groups[i]) < MIN_CUE_MS {
            if i + 1 < groups.len() && joinable(&groups[i], &groups[i + 1]) {
                let next = groups.remove(i + 1);
                groups[i].extend(next);
                continue;
            }
            if i > 0 && joinable(&groups[i - 1], &groups[i]) {
                let cur = groups.remove(i);
                groups[i - 1].extend(cur);
                i -= 1;
                continue;
            }
        }
        i += 1;
    }
    groups
}

/// `words` as at most [`MAX_LINES`] lines of at most [`MAX_LINE_CHARS`] characters, the break
/// where the lines are most even (the second line the longer on a tie); `None` if they do not
/// fit.
pub fn wrap(words: &[&str]) -> Option<Vec<String>> {
    let len = |ws: &[&str]| -> usize {
        ws.iter().map(|w| w.chars().count()).sum::<usize>() + ws.len().saturating_sub(1)
    };
    if words.is_empty() {
        return Some(vec![]);
    }
    if len(words) <= MAX_LINE_CHARS {
        return Some(vec![words.join(" ")]);
    }
    (1..words.len())
        .map(|k| (k, len(&words[..k]), len(&words[k..])))
        .filter(|&(_, a, b)| a <= MAX_LINE_CHARS && b <= MAX_LINE_CHARS)
        .min_by_key(|&(_, a, b)| (a.max(b), a > b))
        .map(|(k, _, _)| vec![words[..k].join(" "), words[k..].join(" ")])
}

/// A single word too long for a line (a URL), cut into lines; what does not fit in
/// [`MAX_LINES`] lines is shortened with an ellipsis.
fn hard_wrap(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = chars
        .chunks(MAX_LINE_CHARS)
        .map(|c| c.iter().collect())
        .collect();
    if lines.len() > MAX_LINES {
        lines.truncate(MAX_LINES);
        let last = lines.last_mut().unwrap();
        let keep: String = last.chars().take(MAX_LINE_CHARS - 1).collect();
        *last = format!("{keep}…");
    }
    lines
}

/// `HH:MM:SS<sep>mmm` (hours keep growing past 99).
fn clock(ms: i64, sep: char) -> String {
    let ms = ms.max(0);
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// SRT timestamp, `HH:MM:SS,mmm`.
pub fn srt_time(ms: i64) -> String {
    clock(ms, ',')
}

/// WebVTT timestamp, `HH:MM:SS.mmm`.
pub fn vtt_time(ms: i64) -> String {
    clock(ms, '.')
}

/// SRT has no escapes, and players read `<…>` as markup (FFmpeg drops `<3 ->` from
/// "chips <3 -> tasty"), so angle brackets are written as the look-alike single angle quotes
/// `‹` `›`; that also keeps `-->` from reading as a timing line.
pub fn srt_text(line: &str) -> String {
    line.replace('<', "‹").replace('>', "›")
}

/// WebVTT cue text: `&`, `<` and `>` as character references (`-->` cannot occur then).
pub fn vtt_text(line: &str) -> String {
    line.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// SubRip: numbered from 1, CRLF line ends (what Windows-born players expect; every reader
/// takes them).
pub fn to_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, c) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\r\n{} --> {}\r\n",
            i + 1,
            srt_time(c.start_ms),
            srt_time(c.end_ms)
        ));
        for l in &c.lines {
            out.push_str(&srt_text(l));
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
    }
    out
}

/// WebVTT.
pub fn to_webvtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (i, c) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n",
            i + 1,
            vtt_time(c.start_ms),
            vtt_time(c.end_ms)
        ));
        for l in &c.lines {
            out.push_str(&vtt_text(l));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str, start: i64, end: i64, segment_start: bool) -> MsWord {
        MsWord {
            text: text.into(),
            start,
            end,
            segment_start,
        }
    }

    /// `n` words of `len` letters, one every `step` ms, one segment.
    fn run(n: usize, len: usize, step: i64) -> Vec<MsWord> {
        (0..n)
            .map(|i| {
                let t = i as i64 * step;
                w(&"x".repeat(len), t, t + step - 10, i == 0)
            })
            .collect()
    }

    fn check_limits(cues: &[Cue], lo: i64, hi: i64) {
        for (i, c) in cues.iter().enumerate() {
            assert!(c.lines.len() <= MAX_LINES && !c.lines.is_empty(), "{c:?}");
            for l in &c.lines {
                assert!(l.chars().count() <= MAX_LINE_CHARS, "{l:?}");
            }
            let d = c.end_ms - c.start_ms;
            assert!((MIN_CUE_MS..=MAX_CUE_MS).contains(&d), "cue {i}: {d} ms");
            assert!(c.start_ms >= lo && c.end_ms <= hi, "{c:?}");
            if let Some(n) = cues.get(i + 1) {
                assert!(c.end_ms <= n.start_ms, "overlap: {c:?} {n:?}");
            }
        }
    }

    #[test]
    fn fast_talk_splits_into_cues_of_at_most_two_lines_of_42() {
        // 60 seven-letter words, 4 per second: text limits bind before time.
        let cues = piece_cues(run(60, 7, 250), 0, 20_000);
        check_limits(&cues, 0, 20_000);
        let words: usize = cues
            .iter()
            .map(|c| c.lines.iter().map(|l| l.split(' ').count()).sum::<usize>())
            .sum();
        assert_eq!(words, 60, "no word lost or doubled");
        // Two lines of 42 hold 5 words of 7 letters each: 10 a cue.
        assert_eq!(
            cues[0].lines,
            vec!["xxxxxxx ".repeat(5).trim_end().to_string(); 2]
        );
    }

    #[test]
    fn slow_talk_splits_at_seven_seconds() {
        // A short word every 0.9 s: duration binds before text.
        let cues = piece_cues(run(20, 2, 900), 0, 30_000);
        check_limits(&cues, 0, 30_000);
        assert!(cues.len() >= 3, "{cues:?}");
    }

    #[test]
    fn short_cues_are_merged_or_held_longer_but_never_overlap() {
        // "Yes." then a pause then a sentence: "Yes." is shown 1 s.
        let words = vec![
            w("Yes.", 0, 300, true),
            w("Then", 1500, 1700, true),
            w("we", 1700, 1800, false),
            w("go.", 1800, 2000, false),
        ];
        let cues = piece_cues(words, 0, 10_000);
        check_limits(&cues, 0, 10_000);
        assert_eq!(cues[0].lines, vec!["Yes."]);
        assert_eq!((cues[0].start_ms, cues[0].end_ms), (0, 1000));
        assert_eq!((cues[1].start_ms, cues[1].end_ms), (1500, 2500));
        // No room after: held longer by starting earlier.
        let cues = piece_cues(vec![w("Late.", 9800, 9950, true)], 0, 10_000);
        assert_eq!((cues[0].start_ms, cues[0].end_ms), (9000, 10_000));
        // Two short sentences close together become one cue.
        let cues = piece_cues(
            vec![w("Hi.", 0, 200, true), w("Hello.", 300, 500, true)],
            0,
            10_000,
        );
        assert_eq!(cues.len(), 1);
        assert_eq!(cues[0].lines, vec!["Hi. Hello."]);
    }

    #[test]
    fn a_piece_shorter_than_a_second_keeps_its_cue_inside_it() {
        let cues = piece_cues(vec![w("Cut.", 5100, 5400, true)], 5000, 5600);
        assert_eq!((cues[0].start_ms, cues[0].end_ms), (5000, 5600));
    }

    #[test]
    fn lines_are_balanced() {
        let words: Vec<&str> = "the quick brown fox jumps over the lazy dog and runs far away"
            .split(' ')
            .collect();
        let l = wrap(&words).unwrap();
        assert_eq!(l.len(), 2);
        let (a, b) = (l[0].chars().count(), l[1].chars().count());
        assert!(a.abs_diff(b) <= 6, "{l:?}");
        assert_eq!(wrap(&["a".repeat(43).as_str()]), None);
        assert_eq!(hard_wrap(&"a".repeat(100)).len(), 2);
        // Characters, not bytes.
        assert_eq!(wrap(&["é".repeat(42).as_str()]).unwrap().len(), 1);
    }

    #[test]
    fn timestamps_past_an_hour() {
        assert_eq!(srt_time(0), "00:00:00,000");
        assert_eq!(srt_time(3_723_004), "01:02:03,004");
        assert_eq!(vtt_time(3_723_004), "01:02:03.004");
        assert_eq!(vtt_time(360_000_000), "100:00:00.000");
    }

    #[test]
    fn formats_escape_what_they_must() {
        let cues = vec![
            Cue {
                start_ms: 0,
                end_ms: 1500,
                lines: vec!["Fish & chips <3".into(), "a --> b".into()],
            },
            Cue {
                start_ms: 3_600_000,
                end_ms: 3_601_000,
                lines: vec!["Bye".into()],
            },
        ];
        let srt = to_srt(&cues);
        assert_eq!(
            srt,
            "1\r\n00:00:00,000 --> 00:00:01,500\r\nFish & chips ‹3\r\na --› b\r\n\r\n\
             2\r\n01:00:00,000 --> 01:00:01,000\r\nBye\r\n\r\n"
        );
        let vtt = to_webvtt(&cues);
        assert!(vtt.starts_with("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.500\n"));
        assert!(
            vtt.contains("Fish &amp; chips &lt;3\na --&gt; b\n\n"),
            "{vtt}"
        );
    }

    #[test]
    fn milliseconds_round_never_floor() {
        assert_eq!(ms(1.0006), 1001);
        assert_eq!(ms(0.9996), 1000);
        assert_eq!(ms_rational(Rational::new(1001, 30_000).unwrap()), 33);
        assert_eq!(ms_rational(Rational::new(2, 3).unwrap()), 667);
    }
}
