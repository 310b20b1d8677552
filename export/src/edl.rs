//! CMX 3600 EDL: one video track with its audio (`B` = video + first audio channel; `A` for
//! sources without video), cuts and dissolves, source timecode in each source's own rate and
//! record timecode in the timeline rate (the first item's), both non-drop-frame from
//! `00:00:00:00`. Reel names are 8 characters at most: every source is the auxiliary reel `AX`
//! and is named by `* FROM CLIP NAME:` (with its file URL in `* FROM CLIP:`), as editors
//! conform EDLs from files; black is reel `BL`. A crossfade is a dissolve event (the outgoing
//! source at its out point, then `D` with the fade's frames), a fade from or to black a
//! dissolve from or to `BL`. Chapters and highlights are `* LOC:` comments on the event they
//! fall in. More than 999 events keep counting with four digits.

use crate::rational::{FrameRate, Rational};
use crate::timeline::{EpisodeTimeline, FadeIn, MarkerKind, Placement};

/// Longest reel name CMX 3600 allows.
pub const MAX_REEL_CHARS: usize = 8;
/// The auxiliary-source reel.
pub const AUX_REEL: &str = "AX";
/// The black reel.
pub const BLACK_REEL: &str = "BL";
const MAX_TITLE_CHARS: usize = 70;

/// Non-drop-frame timecode of `frames` at `rate`.
pub fn timecode(frames: i128, rate: FrameRate) -> String {
    let base = rate.timecode_base() as i128;
    let f = frames.max(0);
    let secs = f / base;
    format!(
        "{:02}:{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        f % base
    )
}

/// One line of comment or title text: no control characters, collapsed whitespace.
fn one_line(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect()
}

struct Event<'a> {
    reel: &'a str,
    channel: &'a str,
    /// Dissolve frames (None: cut).
    dissolve: Option<u64>,
    src: (String, String),
    rec: (String, String),
}

fn event_line(n: usize, e: &Event) -> String {
    let (edit, dur) = match e.dissolve {
        Some(d) => ("D", format!("{d:03}")),
        None => ("C", String::new()),
    };
    format!(
        "{n:03}  {:<8} {:<5} {edit:<4} {dur:<3} {} {} {} {}\n",
        e.reel, e.channel, e.src.0, e.src.1, e.rec.0, e.rec.1
    )
}

/// The episode as a CMX 3600 EDL.
pub fn to_edl(t: &EpisodeTimeline) -> String {
    let tl = t.rate();
    let rec = |seconds: Rational| tl.frames(seconds);
    let mut out = format!(
        "TITLE: {}\nFCM: NON-DROP FRAME\n\n",
        one_line(&t.title, MAX_TITLE_CHARS)
    );
    let markers = t.markers();
    let mut n = 0;
    for (i, p) in t.placements.iter().enumerate() {
        let media = &t.media[p.media];
        let channel = if media.has_video { "B" } else { "A" };
        let fade_out = p.fade_out.unwrap_or(0);
        let shown = p.visible_frames() - fade_out;
        let src_in = i128::from(p.start_frame);
        let src_out = src_in + i128::from(shown);
        let rec_in = rec(p.start);
        let rec_out = rec(p.start + p.rate.seconds(shown));
        let src_tc = |f: i128| timecode(f, p.rate);
        let rec_tc = |f: i128| timecode(f, tl);
        n += 1;
        let this = Event {
            reel: AUX_REEL,
            channel,
            dissolve: None,
            src: (src_tc(src_in), src_tc(src_out)),
            rec: (rec_tc(rec_in), rec_tc(rec_out)),
        };
        match p.fade_in {
            None => {
                out.push_str(&event_line(n, &this));
                out.push_str(&format!(
                    "* FROM CLIP NAME: {}\n* FROM CLIP: {}\n",
                    one_line(&media.name, 200),
                    media.url
                ));
            }
            Some(FadeIn::FromBlack { frames }) => {
                out.push_str(&event_line(
                    n,
                    &Event {
                        reel: BLACK_REEL,
                        channel: "V",
                        dissolve: None,
                        src: (rec_tc(0), rec_tc(0)),
                        rec: (rec_tc(rec_in), rec_tc(rec_in)),
                    },
                ));
                out.push_str(&event_line(
                    n,
                    &Event {
                        dissolve: Some(frames),
                        ..this
                    },
                ));
                out.push_str(&format!(
                    "* FROM CLIP NAME: BLACK\n* TO CLIP NAME: {}\n* TO CLIP: {}\n",
                    one_line(&media.name, 200),
                    media.url
                ));
            }
            Some(FadeIn::Crossfade { frames }) => {
                let prev: &Placement = &t.placements[i - 1];
                let prev_media = &t.media[prev.media];
                let prev_out = i128::from(prev.visible_end_frame());
                out.push_str(&event_line(
                    n,
                    &Event {
                        reel: AUX_REEL,
                        channel: if prev_media.has_video { "B" } else { "A" },
                        dissolve: None,
                        src: (timecode(prev_out, prev.rate), timecode(prev_out, prev.rate)),
                        rec: (rec_tc(rec_in), rec_tc(rec_in)),
                    },
                ));
                out.push_str(&event_line(
                    n,
                    &Event {
                        dissolve: Some(frames),
                        ..this
                    },
                ));
                out.push_str(&format!(
                    "* FROM CLIP NAME: {}\n* FROM CLIP: {}\n* TO CLIP NAME: {}\n* TO CLIP: {}\n",
                    one_line(&prev_media.name, 200),
                    prev_media.url,
                    one_line(&media.name, 200),
                    media.url
                ));
            }
        }
        // Markers that start in this item's visible part.
        let (from, to) = (p.start, p.end());
        for m in markers.iter().filter(|m| m.start >= from && m.start < to) {
            let colour = match m.kind {
                MarkerKind::Chapter => "RED",
                MarkerKind::Highlight => "YELLOW",
            };
            out.push_str(&format!(
                "* LOC: {} {colour:<7} {}\n",
                rec_tc(rec(m.start)),
                one_line(&m.name, 200)
            ));
        }
        if fade_out > 0 {
            n += 1;
            let black_in = rec_out;
            let black_out = rec(p.end());
            out.push_str(&event_line(
                n,
                &Event {
                    reel: AUX_REEL,
                    channel,
                    dissolve: None,
                    src: (src_tc(src_out), src_tc(src_out)),
                    rec: (rec_tc(black_in), rec_tc(black_in)),
                },
            ));
            out.push_str(&event_line(
                n,
                &Event {
                    reel: BLACK_REEL,
                    channel: "V",
                    dissolve: Some(fade_out),
                    src: (rec_tc(0), rec_tc(black_out - black_in)),
                    rec: (rec_tc(black_in), rec_tc(black_out)),
                },
            ));
            out.push_str(&format!(
                "* FROM CLIP NAME: {}\n* TO CLIP NAME: BLACK\n",
                one_line(&media.name, 200)
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timecodes_count_non_drop_frames() {
        let r60 = FrameRate::new(60, 1).unwrap();
        assert_eq!(timecode(0, r60), "00:00:00:00");
        assert_eq!(timecode(59, r60), "00:00:00:59");
        assert_eq!(timecode(60 * 3723 + 7, r60), "01:02:03:07");
        // 29.97 counts 30 frames a timecode second (NDF).
        let ntsc = FrameRate::new(30000, 1001).unwrap();
        assert_eq!(timecode(30, ntsc), "00:00:01:00");
        assert_eq!(timecode(-5, r60), "00:00:00:00");
    }

    #[test]
    fn event_lines_have_eight_fields_and_short_reels() {
        let e = Event {
            reel: AUX_REEL,
            channel: "B",
            dissolve: Some(15),
            src: ("00:00:01:00".into(), "00:00:02:00".into()),
            rec: ("00:00:00:00".into(), "00:00:01:00".into()),
        };
        let line = event_line(2, &e);
        assert_eq!(line.split_whitespace().count(), 9, "{line}");
        assert!(line.starts_with("002  AX       B     D    015 "));
        let cut = event_line(
            7,
            &Event {
                dissolve: None,
                ..e
            },
        );
        assert_eq!(cut.split_whitespace().count(), 8, "{cut}");
        assert!(AUX_REEL.len() <= MAX_REEL_CHARS && BLACK_REEL.len() <= MAX_REEL_CHARS);
        assert_eq!(one_line("a\r\nb\tc  d", 70), "a b c d");
    }

    fn source(key: &str) -> crate::SourceMedia {
        crate::SourceMedia {
            key: key.into(),
            name: key.into(),
            url: format!("file:///r/{key}"),
            rate: FrameRate::new(30, 1).unwrap(),
            duration_frames: None,
            has_video: true,
            transcript: None,
            highlights: vec![],
        }
    }

    /// Fades from and to black, written out by hand: BL dissolves around the one source (which
    /// OTIO's CMX reader cannot read at a track's start, so the judges leave this case to
    /// this test).
    #[test]
    fn fades_from_and_to_black_are_dissolves_with_the_black_reel() {
        let cut: gt_types::records::CutList = serde_json::from_value(serde_json::json!({
            "version": "1.0.0",
            "inputMedia": [{"s3Location": "a.mkv", "sections": [{"startFrame": 30, "endFrame": 330}]}],
            "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0,
                "transitionIn": {"type": "fade", "duration": 15},
                "transitionOut": {"type": "fade", "duration": 45}}]
        }))
        .unwrap();
        let t = EpisodeTimeline::build("Fades", &cut, vec![source("a.mkv")], vec![]).unwrap();
        assert_eq!(
            to_edl(&t),
            "TITLE: Fades\nFCM: NON-DROP FRAME\n\n\
             001  BL       V     C        00:00:00:00 00:00:00:00 00:00:00:00 00:00:00:00\n\
             001  AX       B     D    015 00:00:01:00 00:00:09:15 00:00:00:00 00:00:08:15\n\
             * FROM CLIP NAME: BLACK\n* TO CLIP NAME: a.mkv\n* TO CLIP: file:///r/a.mkv\n\
             002  AX       B     C        00:00:09:15 00:00:09:15 00:00:08:15 00:00:08:15\n\
             002  BL       V     D    045 00:00:00:00 00:00:01:15 00:00:08:15 00:00:10:00\n\
             * FROM CLIP NAME: a.mkv\n* TO CLIP NAME: BLACK\n\n"
        );
    }
}
