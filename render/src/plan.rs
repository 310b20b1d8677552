//! From a cut list to a frame-exact render plan: which source frames go where in the output.
//!
//! Frames in the cut list are counted at each source's own frame rate (ingestion writes them
//! that way, see `cut_list` in `gt-activities`), so every section is converted here once, and
//! everything downstream works in whole frames.

use std::path::{Path, PathBuf};

use ffmpeg::Rational;
use ffmpeg::media::Type as MediaType;
use ffmpeg_next as ffmpeg;
use gt_types::records::{AudioMixing, OverlayKind, TransitionKind};

use crate::{RenderError, RenderJob, init};

/// The cut-list version this renderer understands.
pub const CUT_LIST_VERSION: &str = "1.0.0";

/// What the renderer needs to know about one source file.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub path: PathBuf,
    /// Index of the (first) video stream in the container.
    pub video_index: usize,
    /// Exact frame rate (the stream's average rate, or `r_frame_rate` when that is unset).
    pub fps: Rational,
    pub time_base: Rational,
    pub width: u32,
    pub height: u32,
    /// Presentation timestamp of frame 0, in `time_base`.
    pub start_pts: i64,
    /// Frames in the stream, from the container's frame count or its duration.
    pub frames_estimate: u64,
    /// Audio streams (container indices), in order: the OBS tracks.
    pub audio_indices: Vec<usize>,
    /// How many video streams the file has (smart cut needs exactly one).
    pub video_streams: usize,
}

impl SourceInfo {
    /// Seconds per frame.
    pub fn frame_seconds(&self) -> f64 {
        f64::from(self.fps.invert())
    }
}

/// Reads what [`SourceInfo`] holds from a file's headers (no decoding).
pub fn probe_source(path: &Path) -> Result<SourceInfo, RenderError> {
    init();
    let name = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| RenderError::InvalidInput(format!("{name}: cannot read the source: {e}")))?;
    if meta.len() == 0 {
        return Err(RenderError::InvalidInput(format!(
            "{name}: the source is empty (0 bytes)"
        )));
    }
    let ictx = ffmpeg::format::input(&path).map_err(|e| {
        RenderError::InvalidInput(format!("{name}: not a media file FFmpeg can read ({e})"))
    })?;
    let videos: Vec<_> = ictx
        .streams()
        .filter(|s| s.parameters().medium() == MediaType::Video)
        .collect();
    let Some(stream) = videos.first() else {
        return Err(RenderError::InvalidInput(format!(
            "{name}: has no video track"
        )));
    };
    let fps = [stream.avg_frame_rate(), stream.rate()]
        .into_iter()
        .find(|r| r.numerator() > 0 && r.denominator() > 0)
        .ok_or_else(|| {
            RenderError::InvalidInput(format!("{name}: the video track has no frame rate"))
        })?
        .reduce();
    let time_base = stream.time_base();
    // SAFETY: plain field reads of a live stream.
    let (width, height, start_time, nb_frames, duration) = unsafe {
        let st = stream.as_ptr();
        let par = (*st).codecpar;
        (
            (*par).width.max(0) as u32,
            (*par).height.max(0) as u32,
            (*st).start_time,
            (*st).nb_frames,
            (*st).duration,
        )
    };
    if width == 0 || height == 0 {
        return Err(RenderError::InvalidInput(format!(
            "{name}: the video track has no picture size"
        )));
    }
    let start_pts = if start_time == ffmpeg::ffi::AV_NOPTS_VALUE {
        0
    } else {
        start_time
    };
    let seconds = if duration != ffmpeg::ffi::AV_NOPTS_VALUE && duration > 0 {
        duration as f64 * f64::from(time_base)
    } else if let Some(d) = stream
        .metadata()
        .get("DURATION")
        .and_then(parse_matroska_duration)
    {
        // Matroska keeps per-track durations as a tag (`HH:MM:SS.nnnnnnnnn`).
        d - start_pts as f64 * f64::from(time_base)
    } else {
        (ictx.duration().max(0) as f64 / 1e6) - start_pts as f64 * f64::from(time_base)
    };
    let frames_estimate = if nb_frames > 0 {
        nb_frames as u64
    } else {
        (seconds * f64::from(fps)).round().max(0.0) as u64
    };
    let audio_indices = ictx
        .streams()
        .filter(|s| s.parameters().medium() == MediaType::Audio)
        .map(|s| s.index())
        .collect();
    Ok(SourceInfo {
        path: path.to_path_buf(),
        video_index: stream.index(),
        fps,
        time_base,
        width,
        height,
        start_pts,
        frames_estimate,
        audio_indices,
        video_streams: videos.len(),
    })
}

fn parse_matroska_duration(s: &str) -> Option<f64> {
    let mut parts = s.trim().split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + sec)
}

/// One piece of the output track: source frames `[start_frame, end_frame)` of `source`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanItem {
    pub source: usize,
    pub start_frame: u64,
    /// Exclusive, in source frames.
    pub end_frame: u64,
    /// Output frame where this item starts (earlier than the previous item's end by the
    /// crossfade, `fade_in`, for items after the first).
    pub out_start: u64,
    /// Output frames this item lasts (equal to `end_frame - start_frame` when the source's
    /// rate equals the output's).
    pub out_frames: u64,
    /// Frames. For item 0: a fade from black; for later items: a crossfade overlapping the
    /// previous item's last `fade_in` frames.
    pub fade_in: u64,
    /// Frames of fade to black at the end; only honoured on the last item (a fade between
    /// items is the next item's `fade_in`).
    pub fade_out: u64,
}

impl PlanItem {
    /// Output frame just after this item.
    pub fn out_end(&self) -> u64 {
        self.out_start + self.out_frames
    }
}

/// A picture-in-picture overlay: source frames `[start_frame, end_frame)` drawn at `(x, y)`
/// from output frame `out_start`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOverlay {
    pub source: usize,
    pub start_frame: u64,
    pub end_frame: u64,
    pub out_start: u64,
    pub x: i64,
    pub y: i64,
    pub kind: OverlayKind,
}

/// A validated, frame-exact render plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub sources: Vec<SourceInfo>,
    pub items: Vec<PlanItem>,
    pub overlays: Vec<PlanOverlay>,
    /// Output frame rate.
    pub fps: Rational,
    pub width: u32,
    pub height: u32,
    /// Output frames.
    pub total_frames: u64,
    pub audio_mixing: Vec<AudioMixing>,
}

impl Plan {
    /// Output duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.total_frames as f64 * f64::from(self.fps.invert())
    }

    /// Whether any item fades or crossfades.
    pub fn has_transitions(&self) -> bool {
        self.items.iter().any(|i| i.fade_in > 0 || i.fade_out > 0)
    }
}

fn invalid(msg: impl Into<String>) -> RenderError {
    RenderError::InvalidInput(msg.into())
}

/// Converts `n` frames at rate `from` into frames at rate `to` (rounded).
pub fn convert_frames(n: u64, from: Rational, to: Rational) -> u64 {
    if from == to {
        return n;
    }
    // n * to / from, exactly in integers: n * to.num * from.den / (to.den * from.num).
    let num = i128::from(n) * i128::from(to.numerator()) * i128::from(from.denominator());
    let den = i128::from(to.denominator()) * i128::from(from.numerator());
    div_round(num, den).max(0) as u64
}

/// `num / den` rounded to the nearest integer, halves away from zero.
fn div_round(num: i128, den: i128) -> i128 {
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    if num >= 0 {
        (2 * num + den) / (2 * den)
    } else {
        -((-2 * num + den) / (2 * den))
    }
}

/// Presentation timestamp (in `tb`) of frame `frame` of a stream at `fps` whose frame 0 is at
/// `start_pts`. Rounded to the nearest tick, never floored: at 60 fps in a 1 ms time base the
/// frames are 16.67 ms apart and flooring would land a third of them a tick early.
pub fn frame_pts(frame: u64, fps: Rational, tb: Rational, start_pts: i64) -> i64 {
    // frame / fps / tb = frame * fps.den * tb.den / (fps.num * tb.num)
    let num = i128::from(frame) * i128::from(fps.denominator()) * i128::from(tb.denominator());
    let den = i128::from(fps.numerator()) * i128::from(tb.numerator());
    start_pts + div_round(num, den) as i64
}

/// The frame (at `fps`) whose presentation time is nearest to `pts` (in `tb`); the inverse of
/// [`frame_pts`]. Negative for timestamps before `start_pts`.
pub fn pts_frame(pts: i64, fps: Rational, tb: Rational, start_pts: i64) -> i64 {
    let num =
        i128::from(pts - start_pts) * i128::from(tb.numerator()) * i128::from(fps.numerator());
    let den = i128::from(tb.denominator()) * i128::from(fps.denominator());
    div_round(num, den) as i64
}

fn fade_frames(t: &Option<gt_types::records::Transition>) -> u64 {
    match t {
        Some(t) if t.kind == TransitionKind::Fade => t.duration,
        _ => 0,
    }
}

/// Probes the sources and checks the cut list against them: version, indices, ranges,
/// transition lengths. Every failure is [`RenderError::InvalidInput`].
pub fn build_plan(job: &RenderJob) -> Result<Plan, RenderError> {
    let cl = &job.cut_list;
    if cl.version != CUT_LIST_VERSION {
        return Err(invalid(format!(
            "cut list version {:?} is not supported (expected {CUT_LIST_VERSION})",
            cl.version
        )));
    }
    if cl.input_media.len() != job.sources.len() {
        return Err(invalid(format!(
            "the cut list names {} input media but {} source files were given",
            cl.input_media.len(),
            job.sources.len()
        )));
    }
    if cl.output_track.is_empty() {
        return Err(invalid("the cut list's output track is empty"));
    }
    let p = &job.profile;
    if p.width == Some(0) || p.height == Some(0) {
        return Err(invalid("the profile's picture size must not be 0"));
    }
    if p.width.is_some_and(|w| w % 2 == 1) || p.height.is_some_and(|h| h % 2 == 1) {
        return Err(invalid(
            "the profile's picture size must be even (4:2:0 video)",
        ));
    }
    if let Some((n, d)) = p.fps
        && (n <= 0 || d <= 0)
    {
        return Err(invalid(format!(
            "the profile's frame rate {n}/{d} is not positive"
        )));
    }
    // Only the sources the output uses must be readable, but every named one must exist.
    let sources = job
        .sources
        .iter()
        .map(|p| probe_source(p))
        .collect::<Result<Vec<_>, _>>()?;
    let section = |media: usize, section: usize, what: &str| {
        let m = cl
            .input_media
            .get(media)
            .ok_or_else(|| invalid(format!("{what}: media index {media} does not exist")))?;
        let s = m.sections.get(section).ok_or_else(|| {
            invalid(format!(
                "{what}: section {section} of media {media} does not exist"
            ))
        })?;
        if s.end_frame <= s.start_frame {
            return Err(invalid(format!(
                "{what}: section {section} of media {media} is empty or reversed ({}..{})",
                s.start_frame, s.end_frame
            )));
        }
        let src = &sources[media];
        if s.end_frame > src.frames_estimate {
            return Err(invalid(format!(
                "{what}: section {section} of media {media} ends at frame {} but {} has {} frames",
                s.end_frame,
                src.path.display(),
                src.frames_estimate
            )));
        }
        Ok(*s)
    };

    let first = &sources[cl.output_track[0].media_index.min(sources.len() - 1)];
    let fps = p
        .fps
        .map(|(n, d)| Rational(n, d).reduce())
        .unwrap_or(first.fps);
    let width = p.width.unwrap_or(first.width);
    let height = p.height.unwrap_or(first.height);

    let n = cl.output_track.len();
    let mut items: Vec<PlanItem> = Vec::with_capacity(n);
    for (i, t) in cl.output_track.iter().enumerate() {
        let what = format!("output track item {i}");
        let s = section(t.media_index, t.section_index, &what)?;
        let src = &sources[t.media_index];
        let out_frames = convert_frames(s.end_frame - s.start_frame, src.fps, fps).max(1);
        // A transition between two items is one crossfade, whichever side the editor put it on.
        let mut fade_in = fade_frames(&t.transition_in);
        if i > 0 {
            fade_in = fade_in.max(fade_frames(&cl.output_track[i - 1].transition_out));
        }
        let fade_out = if i + 1 == n {
            fade_frames(&t.transition_out)
        } else {
            0
        };
        let out_start = match items.last() {
            None => 0,
            Some(prev) => {
                if fade_in > prev.out_frames || fade_in > out_frames {
                    return Err(invalid(format!(
                        "{what}: the {fade_in}-frame crossfade is longer than an item it joins"
                    )));
                }
                prev.out_end() - fade_in
            }
        };
        if i == 0 && fade_in > out_frames {
            return Err(invalid(format!(
                "{what}: the {fade_in}-frame fade-in is longer than the item"
            )));
        }
        if fade_out > out_frames || (n == 1 && fade_in + fade_out > out_frames) {
            return Err(invalid(format!(
                "{what}: the fades are longer than the item ({out_frames} frames)"
            )));
        }
        items.push(PlanItem {
            source: t.media_index,
            start_frame: s.start_frame,
            end_frame: s.end_frame,
            out_start,
            out_frames,
            fade_in,
            fade_out,
        });
    }
    let total_frames = items.last().map(PlanItem::out_end).unwrap_or(0);

    let mut overlays = Vec::new();
    for (i, o) in cl.overlay_tracks.iter().enumerate() {
        let what = format!("overlay {i}");
        let s = section(o.media_index, o.section_index, &what)?;
        if o.start_frame >= total_frames {
            return Err(invalid(format!(
                "{what}: starts at output frame {} but the output has {total_frames} frames",
                o.start_frame
            )));
        }
        let coord = |v: Option<f64>, axis: &str| match v {
            None => Ok(0),
            Some(v) if v.is_finite() => Ok(v.round() as i64),
            Some(v) => Err(invalid(format!("{what}: {axis} = {v} is not a number"))),
        };
        overlays.push(PlanOverlay {
            source: o.media_index,
            start_frame: s.start_frame,
            end_frame: s.end_frame,
            out_start: o.start_frame,
            x: coord(o.x, "x")?,
            y: coord(o.y, "y")?,
            kind: o.kind,
        });
    }

    for (i, m) in cl.audio_mixing.iter().enumerate() {
        let tracks = sources
            .iter()
            .map(|s| s.audio_indices.len())
            .max()
            .unwrap_or(0);
        if m.source_channel as usize >= tracks {
            return Err(invalid(format!(
                "audio mixing {i}: source track {} does not exist (the sources have {tracks})",
                m.source_channel
            )));
        }
        if let Some(k) = m
            .keyframes
            .iter()
            .find(|k| !(0.0..=2.0).contains(&k.volume))
        {
            return Err(invalid(format!(
                "audio mixing {i}: volume {} is outside 0–2",
                k.volume
            )));
        }
    }

    Ok(Plan {
        sources,
        items,
        overlays,
        fps,
        width,
        height,
        total_frames,
        audio_mixing: cl.audio_mixing.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_pts_rounds_on_a_millisecond_time_base() {
        let (fps, tb) = (Rational(60, 1), Rational(1, 1000));
        // 16.67 ms per frame: frame 1 at 17 ms (floor would say 16), frame 2 at 33, frame 3 at 50.
        let got: Vec<i64> = (0..7).map(|f| frame_pts(f, fps, tb, 0)).collect();
        assert_eq!(got, vec![0, 17, 33, 50, 67, 83, 100]);
        for f in 0..100_000 {
            assert_eq!(pts_frame(frame_pts(f, fps, tb, 40), fps, tb, 40), f as i64);
        }
        // NTSC in 1/90000.
        let ntsc = Rational(30000, 1001);
        assert_eq!(frame_pts(3, ntsc, Rational(1, 90000), 0), 9009);
        assert_eq!(pts_frame(-17, fps, tb, 0), -1);
    }

    #[test]
    fn frames_convert_between_rates() {
        assert_eq!(convert_frames(60, Rational(60, 1), Rational(30, 1)), 30);
        assert_eq!(convert_frames(61, Rational(60, 1), Rational(30, 1)), 31);
        assert_eq!(convert_frames(7, Rational(25, 1), Rational(25, 1)), 7);
    }
}
