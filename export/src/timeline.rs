//! An episode in episode time: where each output-track section of a cut list lands, and what
//! was said in it.
//!
//! # Episode time
//!
//! Items of `outputTrack` play one after another. Frames are those of each item's own source
//! (its clip's frame rate), `endFrame` exclusive, so an item lasts `(end - start) / rate`
//! seconds, computed exactly ([`Rational`]). A `transitionIn` fade of `d` frames on item
//! `i > 0` is a crossfade, as the renderer draws it: item `i` starts `d / rate_i` seconds
//! before item `i - 1` ends, so the two overlap and the episode is that much shorter. The
//! incoming item owns the overlap: item `i - 1` is *visible* (in editor timelines, subtitles and
//! markers) up to the start of the crossfade, and its last frames appear only as the
//! transition's handle. This is the CMX 3600 convention for a dissolve and what OpenTimelineIO
//! readers expect (the transition starts at the cut, `in_offset` 0, `out_offset` `d`).
//!
//! A `transitionIn` fade on the first item is a fade from black over its first `d` frames and a
//! `transitionOut` fade is a fade to black over the item's last `d` frames; neither changes
//! timing. A fade-out followed by a crossfade is drawn as the crossfade only. `cut` transitions
//! are plain cuts.
//!
//! # What was said
//!
//! A clip's transcript (clip seconds) is mapped into episode time section by section: a word
//! belongs to a section when its midpoint lies inside the section's visible part, and its times
//! are clamped to the section's edges, so nothing said in a cut-away part leaks in and no word
//! spans a cut. Segments a reviewer edited keep their word timings when the word count is
//! unchanged (typo fixes); otherwise the edited words are spread over the time the original
//! words took, in proportion to their length. Segments without word timings are treated the
//! same way over the segment's time.

use gt_types::episode::{Chapter, ClipSummary, Moment};
use gt_types::records::{CutList, OutputTrackItem, TransitionKind, VideoClip};
use gt_types::transcript::{Transcript, TranscriptSegment};

use crate::ExportError;
use crate::rational::{FrameRate, Rational};

/// Frame rate of clips without video, as ingestion writes their cut lists
/// (`gt_activities::episodes::AUDIO_ONLY_FPS`).
pub const AUDIO_ONLY_FPS: u32 = 60;

/// One source file of the cut list (one per `inputMedia` entry), as editors and subtitles need
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMedia {
    /// The clip key (`s3Location`).
    pub key: String,
    /// File name shown in editors.
    pub name: String,
    /// Where editors find the file: a `file://` URL (see [`crate::file_url`]).
    pub url: String,
    /// The rate the cut list's frame numbers for this file count in.
    pub rate: FrameRate,
    /// Length of the file in frames, when known.
    pub duration_frames: Option<u64>,
    pub has_video: bool,
    /// Clip seconds; the stored transcript, reviewer edits included.
    pub transcript: Option<Transcript>,
    /// Clip seconds; from the clip's summary.
    pub highlights: Vec<Moment>,
}

impl SourceMedia {
    /// Everything the exports need from a clip record; `url` is where editors open it.
    pub fn from_clip(clip: &VideoClip, url: String) -> Self {
        let video = clip
            .metadata
            .as_ref()
            .and_then(|m| m.video_tracks().next().cloned());
        let rate = video
            .as_ref()
            .and_then(|v| {
                let exact = v.frame_rate.as_deref().and_then(FrameRate::parse);
                // Ingestion counts frames at the measured average rate; the exact fraction is
                // used when it is that rate.
                match (v.fps.and_then(FrameRate::from_fps), exact) {
                    (Some(avg), Some(exact))
                        if (avg.to_f64() - exact.to_f64()).abs() <= 1e-3 * exact.to_f64() =>
                    {
                        Some(exact)
                    }
                    (Some(avg), _) => Some(avg),
                    (None, exact) => exact,
                }
            })
            .unwrap_or_else(|| FrameRate::new(AUDIO_ONLY_FPS, 1).expect("positive"));
        let duration_frames = clip
            .metadata
            .as_ref()
            .map(|m| m.format.duration)
            .filter(|d| d.is_finite() && *d > 0.0)
            .map(|d| (d * rate.to_f64()).round() as u64);
        let name = clip.key.rsplit('/').next().unwrap_or(&clip.key).to_string();
        Self {
            key: clip.key.clone(),
            name,
            url,
            rate,
            duration_frames,
            has_video: video.is_some(),
            transcript: clip
                .transcription
                .clone()
                .and_then(|t| serde_json::from_value(t).ok()),
            highlights: clip
                .summary
                .clone()
                .and_then(|s| serde_json::from_value::<ClipSummary>(s).ok())
                .map(|s| s.highlights)
                .unwrap_or_default(),
        }
    }
}

/// How an item begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FadeIn {
    /// From black over the item's first frames (first item only).
    FromBlack { frames: u64 },
    /// A crossfade: the item's first frames blend with the previous item's last ones.
    Crossfade { frames: u64 },
}

/// Where one output-track item lands in the episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Index in `outputTrack`.
    pub item: usize,
    /// Index in `inputMedia` (and in [`EpisodeTimeline::media`]).
    pub media: usize,
    pub rate: FrameRate,
    /// Section start frame (inclusive).
    pub start_frame: u64,
    /// Section end frame (exclusive).
    pub end_frame: u64,
    /// Frames at the section's end under the next item's crossfade (its handle).
    pub hidden_tail: u64,
    /// Episode seconds of the item's first frame.
    pub start: Rational,
    pub fade_in: Option<FadeIn>,
    /// Frames of a fade to black at the visible part's end.
    pub fade_out: Option<u64>,
}

impl Placement {
    /// Frames shown in the timeline (section minus the crossfade handle).
    pub fn visible_frames(&self) -> u64 {
        self.end_frame - self.start_frame - self.hidden_tail
    }

    /// Source frame where the visible part ends (exclusive).
    pub fn visible_end_frame(&self) -> u64 {
        self.end_frame - self.hidden_tail
    }

    /// Episode seconds where the visible part ends (the next item's start).
    pub fn end(&self) -> Rational {
        self.start + self.rate.seconds(self.visible_frames())
    }

    /// Episode seconds of clip second `t` (no clamping).
    pub fn episode_time(&self, clip_seconds: f64) -> f64 {
        self.start.to_f64() + clip_seconds - self.rate.seconds(self.start_frame).to_f64()
    }

    /// Clip seconds of the visible part `[start, end)`.
    pub fn clip_range(&self) -> (f64, f64) {
        (
            self.rate.seconds(self.start_frame).to_f64(),
            self.rate.seconds(self.visible_end_frame()).to_f64(),
        )
    }
}

/// A word in episode seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    pub text: String,
    pub start: f64,
    pub end: f64,
}

/// A transcript segment (or the part of it inside one section) in episode seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeSegment {
    /// Index of the placement (output item) it lies in: segments of different items are
    /// separated by a cut.
    pub item: usize,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub words: Vec<TimedWord>,
}

/// What a marker marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    Chapter,
    Highlight,
}

/// A chapter or highlight in episode time.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeMarker {
    pub kind: MarkerKind,
    pub name: String,
    pub comment: String,
    /// Episode seconds.
    pub start: Rational,
    pub duration: Rational,
}

/// An episode laid out in episode time.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeTimeline {
    pub title: String,
    pub media: Vec<SourceMedia>,
    pub placements: Vec<Placement>,
    pub chapters: Vec<Chapter>,
    /// Overlay items of the cut list, kept for editors (`start_frame` counts in the timeline
    /// rate).
    pub overlays: Vec<gt_types::records::OverlayTrackItem>,
    /// Sections of each `inputMedia` entry (for overlays).
    sections: Vec<Vec<gt_types::records::Section>>,
}

fn fade_frames(t: &Option<gt_types::records::Transition>) -> Option<u64> {
    t.as_ref()
        .filter(|t| t.kind == TransitionKind::Fade && t.duration > 0)
        .map(|t| t.duration)
}

impl EpisodeTimeline {
    /// Lays out `cut`; `media[i]` describes `cut.input_media[i]`.
    pub fn build(
        title: &str,
        cut: &CutList,
        media: Vec<SourceMedia>,
        chapters: Vec<Chapter>,
    ) -> Result<Self, ExportError> {
        let bad = |m: String| Err(ExportError::InvalidCutList(m));
        if media.len() != cut.input_media.len() {
            return bad(format!(
                "{} source files described for {} inputMedia entries",
                media.len(),
                cut.input_media.len()
            ));
        }
        if cut.output_track.is_empty() {
            return bad("outputTrack is empty".into());
        }
        for (i, (input, m)) in cut.input_media.iter().zip(&media).enumerate() {
            if input.s3_location != m.key {
                return bad(format!(
                    "inputMedia {i} is '{}' but the source given is '{}'",
                    input.s3_location, m.key
                ));
            }
        }
        let mut placements: Vec<Placement> = Vec::with_capacity(cut.output_track.len());
        for (i, item) in cut.output_track.iter().enumerate() {
            let OutputTrackItem {
                media_index,
                section_index,
                ..
            } = *item;
            let Some(input) = cut.input_media.get(media_index) else {
                return bad(format!(
                    "outputTrack {i}: mediaIndex {media_index} is out of range (inputMedia has {})",
                    cut.input_media.len()
                ));
            };
            let Some(section) = input.sections.get(section_index) else {
                return bad(format!(
                    "outputTrack {i}: sectionIndex {section_index} is out of range ('{}' has {} sections)",
                    input.s3_location,
                    input.sections.len()
                ));
            };
            if section.end_frame <= section.start_frame {
                return bad(format!(
                    "outputTrack {i}: section {section_index} of '{}' is empty (frames {}..{})",
                    input.s3_location, section.start_frame, section.end_frame
                ));
            }
            let source = &media[media_index];
            if let Some(total) = source.duration_frames
                && section.end_frame > total + 1
            {
                // One frame of slack: ingestion rounds the end up to a whole frame.
                return bad(format!(
                    "outputTrack {i}: section {section_index} of '{}' ends at frame {} but the file has {total} frames",
                    input.s3_location, section.end_frame
                ));
            }
            let length = section.end_frame - section.start_frame;
            let rate = source.rate;
            let fade_in = fade_frames(&item.transition_in);
            let mut start = Rational::ZERO;
            let fade_in = match (placements.last_mut(), fade_in) {
                (None, Some(frames)) => {
                    if frames > length {
                        return bad(format!(
                            "outputTrack {i}: a fade of {frames} frames is longer than the item ({length} frames)"
                        ));
                    }
                    Some(FadeIn::FromBlack { frames })
                }
                (None, None) => None,
                (Some(prev), fade) => {
                    let prev_end =
                        prev.start + prev.rate.seconds(prev.end_frame - prev.start_frame);
                    match fade {
                        None => {
                            start = prev_end;
                            None
                        }
                        Some(frames) => {
                            let overlap = rate.seconds(frames);
                            let prev_length = prev.end_frame - prev.start_frame;
                            let hidden = prev.rate.frames(overlap);
                            if frames > length || hidden < 0 || hidden as u64 > prev_length {
                                return bad(format!(
                                    "outputTrack {i}: a crossfade of {frames} frames is longer than the item or the one before it"
                                ));
                            }
                            prev.hidden_tail = hidden as u64;
                            // The crossfade replaces a fade to black of the previous item.
                            prev.fade_out = None;
                            start = prev_end - overlap;
                            Some(FadeIn::Crossfade { frames })
                        }
                    }
                }
            };
            let fade_out = fade_frames(&item.transition_out);
            if let Some(frames) = fade_out
                && frames > length
            {
                return bad(format!(
                    "outputTrack {i}: a fade-out of {frames} frames is longer than the item ({length} frames)"
                ));
            }
            placements.push(Placement {
                item: i,
                media: media_index,
                rate,
                start_frame: section.start_frame,
                end_frame: section.end_frame,
                hidden_tail: 0,
                start,
                fade_in,
                fade_out,
            });
        }
        // A fade-out shorter than what is left visible after a crossfade handle.
        for p in &mut placements {
            if let Some(f) = p.fade_out
                && f > p.visible_frames()
            {
                return bad(format!(
                    "outputTrack {}: a fade-out of {f} frames is longer than the {} frames shown before the next crossfade",
                    p.item,
                    p.visible_frames()
                ));
            }
        }
        for (i, o) in cut.overlay_tracks.iter().enumerate() {
            let ok = cut
                .input_media
                .get(o.media_index)
                .and_then(|m| m.sections.get(o.section_index))
                .is_some_and(|s| s.end_frame > s.start_frame);
            if !ok {
                return bad(format!(
                    "overlayTracks {i}: mediaIndex {} / sectionIndex {} name no section",
                    o.media_index, o.section_index
                ));
            }
        }
        Ok(Self {
            title: title.to_string(),
            media,
            placements,
            chapters,
            overlays: cut.overlay_tracks.clone(),
            sections: cut.input_media.iter().map(|m| m.sections.clone()).collect(),
        })
    }

    /// The rate of the episode's timeline (editor exports): the first item's.
    pub fn rate(&self) -> FrameRate {
        self.placements[0].rate
    }

    /// Episode length in seconds (exact).
    pub fn duration(&self) -> Rational {
        let last = self.placements.last().expect("at least one item");
        last.end()
    }

    /// The section an overlay shows: `(media, start_frame, end_frame)`.
    pub fn overlay_section(&self, overlay: usize) -> (usize, u64, u64) {
        let o = &self.overlays[overlay];
        let s = self.sections[o.media_index][o.section_index];
        (o.media_index, s.start_frame, s.end_frame)
    }

    /// What was said, in episode time, item by item (see the module docs).
    pub fn segments(&self) -> Vec<EpisodeSegment> {
        let mut out = Vec::new();
        for (pi, p) in self.placements.iter().enumerate() {
            let Some(transcript) = &self.media[p.media].transcript else {
                continue;
            };
            let (a, b) = p.clip_range();
            for seg in &transcript.segments {
                if seg.end < a || seg.start > b {
                    continue;
                }
                let words: Vec<TimedWord> = segment_words(seg)
                    .into_iter()
                    .filter(|w| {
                        let mid = (w.start + w.end) / 2.0;
                        mid >= a && mid < b
                    })
                    .map(|w| TimedWord {
                        text: w.text,
                        start: p.episode_time(w.start.clamp(a, b)),
                        end: p.episode_time(w.end.clamp(a, b)),
                    })
                    .collect();
                if words.is_empty() {
                    continue;
                }
                out.push(EpisodeSegment {
                    item: pi,
                    start: words[0].start,
                    end: words.iter().map(|w| w.end).fold(words[0].start, f64::max),
                    text: words
                        .iter()
                        .map(|w| w.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    words,
                });
            }
        }
        out
    }

    /// Chapters (episode seconds already; each lasts until the next, the last until the end)
    /// and the clips' highlights that fall inside visible sections, in time order.
    pub fn markers(&self) -> Vec<EpisodeMarker> {
        let duration = self.duration();
        let mut chapters: Vec<&Chapter> = self
            .chapters
            .iter()
            .filter(|c| c.start.is_finite() && c.start >= 0.0)
            .collect();
        chapters.sort_by(|a, b| a.start.total_cmp(&b.start));
        let mut out = Vec::new();
        let at = |t: f64| seconds_rational(t);
        for (i, c) in chapters.iter().enumerate() {
            let start = at(c.start);
            if start >= duration {
                continue;
            }
            let end = chapters
                .get(i + 1)
                .map_or(duration, |n| at(n.start).min(duration));
            out.push(EpisodeMarker {
                kind: MarkerKind::Chapter,
                name: c.title.clone(),
                comment: String::new(),
                start,
                duration: end - start,
            });
        }
        for p in &self.placements {
            let (a, b) = p.clip_range();
            for h in &self.media[p.media].highlights {
                let t = h.timestamp_start;
                if !(t.is_finite() && t >= a && t < b) {
                    continue;
                }
                let end = h.timestamp_end.clamp(t, b);
                let start = at(p.episode_time(t));
                out.push(EpisodeMarker {
                    kind: MarkerKind::Highlight,
                    name: h.description.clone(),
                    comment: h.reasoning.clone(),
                    start,
                    duration: at(p.episode_time(end)) - start,
                });
            }
        }
        out.sort_by_key(|m| m.start);
        out
    }
}

/// Seconds as a rational to the microsecond (the precision stored times carry).
fn seconds_rational(t: f64) -> Rational {
    Rational::new((t * 1e6).round() as i128, 1_000_000).expect("non-zero denominator")
}

/// A word in clip seconds.
#[derive(Debug, Clone, PartialEq)]
struct ClipWord {
    text: String,
    start: f64,
    end: f64,
}

/// The segment's words with clip times: the recognised words, or the edited text timed as
/// the module docs say.
fn segment_words(seg: &TranscriptSegment) -> Vec<ClipWord> {
    let tokens: Vec<&str> = seg.text.split_whitespace().collect();
    if tokens.is_empty() {
        return Vec::new();
    }
    let words: Vec<(&str, f64, f64)> = seg
        .words
        .iter()
        .filter(|w| !w.word.trim().is_empty() && w.start.is_finite() && w.end.is_finite())
        .map(|w| (w.word.trim(), w.start, w.end.max(w.start)))
        .collect();
    let recognised: Vec<&str> = words
        .iter()
        .flat_map(|(w, _, _)| w.split_whitespace())
        .collect();
    if !words.is_empty() && recognised == tokens {
        return words
            .iter()
            .map(|(w, s, e)| ClipWord {
                text: w.split_whitespace().collect::<Vec<_>>().join(" "),
                start: *s,
                end: *e,
            })
            .collect();
    }
    if words.len() == tokens.len() {
        // An edit that kept the word count: each word keeps its timing.
        return words
            .iter()
            .zip(&tokens)
            .map(|((_, s, e), t)| ClipWord {
                text: (*t).to_string(),
                start: *s,
                end: *e,
            })
            .collect();
    }
    let (from, to) = match (words.first(), words.last()) {
        (Some(f), Some(l)) => (f.1, l.2.max(f.1)),
        _ => (seg.start, seg.end.max(seg.start)),
    };
    spread(&tokens, from, to)
}

/// `tokens` over `[from, to]`, each taking time in proportion to its length (plus one for the
/// space after it).
fn spread(tokens: &[&str], from: f64, to: f64) -> Vec<ClipWord> {
    let weight = |t: &str| (t.chars().count() + 1) as f64;
    let total: f64 = tokens.iter().map(|t| weight(t)).sum();
    let mut at = from;
    tokens
        .iter()
        .map(|t| {
            let len = (to - from) * weight(t) / total;
            let w = ClipWord {
                text: (*t).to_string(),
                start: at,
                end: at + len,
            };
            at += len;
            w
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gt_types::records::{InputMedia, Section, Transition};
    use gt_types::transcript::Word;

    pub(crate) fn media(key: &str, rate: FrameRate) -> SourceMedia {
        SourceMedia {
            key: key.into(),
            name: key.into(),
            url: format!("file:///r/{key}"),
            rate,
            duration_frames: None,
            has_video: true,
            transcript: None,
            highlights: vec![],
        }
    }

    fn cut(sections: &[(u64, u64)], fades: &[u64]) -> CutList {
        CutList {
            version: "1.0.0".into(),
            input_media: sections
                .iter()
                .enumerate()
                .map(|(i, &(s, e))| InputMedia {
                    s3_location: format!("m{i}"),
                    sections: vec![Section {
                        start_frame: s,
                        end_frame: e,
                    }],
                })
                .collect(),
            output_track: (0..sections.len())
                .map(|i| OutputTrackItem {
                    media_index: i,
                    section_index: 0,
                    transition_in: fades.get(i).filter(|d| **d > 0).map(|&d| Transition {
                        kind: TransitionKind::Fade,
                        duration: d,
                    }),
                    transition_out: None,
                })
                .collect(),
            overlay_tracks: vec![],
            audio_mixing: vec![],
        }
    }

    #[test]
    fn crossfades_overlap_the_previous_item_and_fades_from_black_do_not() {
        let r30 = FrameRate::new(30, 1).unwrap();
        let ntsc = FrameRate::new(30000, 1001).unwrap();
        let c = cut(&[(30, 330), (0, 300), (100, 160)], &[15, 30, 0]);
        let m = vec![media("m0", r30), media("m1", ntsc), media("m2", r30)];
        let t = EpisodeTimeline::build("t", &c, m, vec![]).unwrap();
        let p = &t.placements;
        assert_eq!(p[0].fade_in, Some(FadeIn::FromBlack { frames: 15 }));
        assert_eq!(p[0].start, Rational::ZERO);
        // 30 frames at 29.97 = 1.001 s overlap = 30.03 frames at 30 fps: 30 hidden (rounded).
        assert_eq!(p[0].hidden_tail, 30);
        assert_eq!(p[1].start, Rational::new(10_000 - 1001, 1000).unwrap());
        assert_eq!(p[1].hidden_tail, 0);
        // 300 frames at 29.97 fps = 10.01 s.
        assert_eq!(p[2].start, p[1].start + Rational::new(1001, 100).unwrap());
        assert_eq!(t.duration(), p[2].start + Rational::integer(2));
    }

    #[test]
    fn bad_cut_lists_are_refused_with_the_reason() {
        let r30 = FrameRate::new(30, 1).unwrap();
        let m = || vec![media("m0", r30), media("m1", r30)];
        let mut c = cut(&[(0, 30), (0, 30)], &[0, 31]);
        let e = EpisodeTimeline::build("t", &c, m(), vec![]).unwrap_err();
        assert!(e.to_string().contains("crossfade of 31 frames"), "{e}");
        c.output_track[1].transition_in = None;
        c.output_track[1].section_index = 3;
        let e = EpisodeTimeline::build("t", &c, m(), vec![]).unwrap_err();
        assert!(e.to_string().contains("sectionIndex 3"), "{e}");
        c.output_track[1].section_index = 0;
        c.input_media[0].sections[0].end_frame = 0;
        let e = EpisodeTimeline::build("t", &c, m(), vec![]).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    fn word(w: &str, s: f64, e: f64) -> Word {
        Word {
            word: w.into(),
            start: s,
            end: e,
            probability: 1.0,
        }
    }

    #[test]
    fn words_map_into_episode_time_and_are_cut_at_section_edges() {
        let r10 = FrameRate::new(10, 1).unwrap();
        // Section 2 s..4 s of the clip, then 10 s..11 s.
        let mut c = cut(&[(20, 40), (100, 110)], &[]);
        c.input_media[1].s3_location = "m0".into();
        c.output_track[1].media_index = 0;
        c.input_media[0].sections.push(Section {
            start_frame: 100,
            end_frame: 110,
        });
        c.output_track[1].section_index = 1;
        let mut m0 = media("m0", r10);
        m0.transcript = Some(Transcript {
            segments: vec![TranscriptSegment {
                start: 1.5,
                end: 10.9,
                text: "out in both half late x".into(),
                words: vec![
                    word("out", 1.5, 1.9),
                    word("in", 1.9, 2.5),    // midpoint 2.2: in, clamped to 2.0
                    word("both", 3.5, 3.9),  // inside
                    word("half", 3.9, 4.3),  // midpoint 4.1: cut away
                    word("late", 9.8, 10.4), // midpoint 10.1: second section
                    word("x", 10.95, 11.2),  // midpoint 11.075: past the end
                ],
                ..Default::default()
            }],
            ..Default::default()
        });
        let m1 = media("m0", r10);
        let t = EpisodeTimeline::build("t", &c, vec![m0, m1], vec![]).unwrap();
        let segs = t.segments();
        assert_eq!(segs.len(), 2, "{segs:?}");
        let s = &segs[0];
        assert_eq!((s.item, s.text.as_str()), (0, "in both"));
        assert!((s.words[0].start - 0.0).abs() < 1e-9);
        assert!((s.words[0].end - 0.5).abs() < 1e-9);
        assert!((s.words[1].start - 1.5).abs() < 1e-9);
        // The same clip again from 10 s: "late" starts at the cut (2 s into the episode),
        // "x" ends past the section and is dropped.
        let s = &segs[1];
        assert_eq!((s.item, s.text.as_str()), (1, "late"));
        assert!(
            (s.start - 2.0).abs() < 1e-9 && (s.end - 2.4).abs() < 1e-9,
            "{s:?}"
        );
    }

    #[test]
    fn edited_segments_keep_or_spread_word_timings() {
        let seg = |text: &str| TranscriptSegment {
            start: 0.0,
            end: 2.0,
            text: text.into(),
            words: vec![word("teh", 0.0, 0.5), word("castle", 0.6, 1.2)],
            ..Default::default()
        };
        let same = segment_words(&seg("the castle"));
        assert_eq!(same[0].text, "the");
        assert_eq!((same[1].start, same[1].end), (0.6, 1.2));
        let longer = segment_words(&seg("the old castle"));
        assert_eq!(longer.len(), 3);
        assert_eq!(longer[0].start, 0.0);
        assert!((longer[2].end - 1.2).abs() < 1e-9);
        // Lengths 4, 4, 7 (with a space each): 15 parts of 1.2 s.
        assert!((longer[1].start - 0.32).abs() < 1e-9, "{longer:?}");
        let untimed = TranscriptSegment {
            start: 1.0,
            end: 3.0,
            text: "a b".into(),
            ..Default::default()
        };
        let w = segment_words(&untimed);
        assert_eq!((w[0].start, w[1].end), (1.0, 3.0));
    }
}
