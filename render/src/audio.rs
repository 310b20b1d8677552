//! The episode's audio: every section's span decoded from the source's OBS tracks, mixed to
//! stereo per `audioMixing`, crossfaded and faded, and encoded to AAC once, continuously.
//!
//! Timeline: output frame `f` starts at output sample `s(f) = round(f · rate / fps)`, so an
//! item covers samples `[s(out_start), s(out_start + out_frames))` and the whole episode is
//! exactly `s(total_frames)` samples — no drift however many cuts. A section's audio starts at
//! the source time of its first video frame (`start_pts · tb + start_frame / fps`, the clock
//! the container gives the audio packets too), so picture and sound stay in sync per section;
//! with Matroska's 1 ms timestamps that sync is as good as ±0.5 ms (audio frame positions are
//! snapped to the codec's frame grid, so the audio itself stays sample-continuous).
//!
//! Mixing semantics (`audioMixing`, one entry = one route with a volume envelope, like a
//! channel strip of the front end's mixer):
//! - `sourceChannel` is the index of the audio *track* in the source (OBS track order, what
//!   `-map 0:a:N` selects).
//! - `outputChannel` is the output *channel*: 0 = left, 1 = right. A stereo (or wider, first
//!   downmixed to stereo) track routed to channel `c` contributes its own channel `c`; a mono
//!   track contributes its only channel. So routing a track to 0 and to 1 passes it through in
//!   stereo, and routing a mono microphone to both centres it.
//! - `keyframes`: volume 0–2 at output frame numbers, linearly interpolated, held constant
//!   before the first and after the last keyframe; no keyframes = 1.0.
//! - No entries at all = track 0 (OBS's full mix) to both channels at 1.0.
//! - A track index no source used by the episode has is `InvalidInput`; a source that lacks a
//!   track some other source has (a stock intro with one track) contributes silence for it.
//! - The sum is clamped to [-1, 1].
//!
//! Transitions: item 0's `fade_in` rises linearly from silence, the last item's `fade_out`
//! falls linearly to silence (gain `(j+1)/(n+1)` like the picture's fade to black); an item's
//! `fade_in` with a previous item is an equal-power crossfade (sin/cos) over the overlap. A
//! hard cut (and the episode's first and last sample without a fade) gets a 3 ms raised-cosine
//! ramp on each side, so two waveforms never meet with a jump (a click).
//!
//! Memory stays bounded: sections are decoded and mixed in chunks, and samples are handed to
//! the encoder as soon as no later item can touch them. Only the encoded packets are kept.

use std::collections::VecDeque;

use ffmpeg::format::Sample;
use ffmpeg::format::sample::Type as SampleLayout;
use ffmpeg::software::resampling;
use ffmpeg::{ChannelLayout, Dictionary, Packet, Rational, codec, encoder, frame};
use ffmpeg_next as ffmpeg;
use gt_types::records::AudioMixing;

use crate::plan::{Plan, SourceInfo};
use crate::{RenderError, RenderProfile};

/// The whole episode's audio, encoded once (AAC, stereo), ready to interleave with the video.
pub struct EncodedAudio {
    /// Codec parameters for the muxer's audio stream (AAC, with its extradata and priming).
    pub parameters: ffmpeg::codec::Parameters,
    /// Time base of the packets' timestamps (1 / sample rate).
    pub time_base: Rational,
    /// Encoded packets in order; pts/dts in `time_base`. The first pts is minus the encoder's
    /// priming (-1024 for FFmpeg's `aac`); an MP4 muxer turns that into an edit list.
    pub packets: Vec<ffmpeg::Packet>,
    /// Audible samples per channel (priming excluded): `round(total_frames / fps · rate)`.
    pub samples: u64,
}

/// Decoding starts this long before a section so the AAC decoder's overlap is settled.
const PRE_ROLL_S: f64 = 1.0;
/// Samples mixed per step.
const CHUNK: usize = 4096;
/// Length of the ramp that softens a hard cut (and the episode's very start and end).
const DECLICK_MS: u64 = 3;

fn failed(what: &str, e: impl std::fmt::Display) -> RenderError {
    RenderError::failed(what, e)
}

/// Output sample at which output frame `frame` starts: `round(frame · rate · den / num)`.
fn sample_at(frame: u64, fps: Rational, rate: u32) -> u64 {
    let num = u128::from(fps.numerator().unsigned_abs());
    let den = u128::from(fps.denominator().unsigned_abs());
    let n = u128::from(frame) * u128::from(rate) * den;
    ((2 * n + num) / (2 * num)) as u64
}

/// A volume envelope over output frames.
#[derive(Debug, Clone)]
struct Envelope {
    /// (frame, volume), sorted by frame; empty = 1.0.
    points: Vec<(f64, f32)>,
}

impl Envelope {
    /// `out[j] = at(f0 + j · step)`, interpolating straight across the span when no keyframe
    /// lies inside it (the envelope is piecewise linear).
    fn fill(&self, f0: f64, step: f64, out: &mut [f32]) {
        let f1 = f0 + step * out.len().saturating_sub(1) as f64;
        if self.points.iter().any(|&(f, _)| f > f0 && f < f1) {
            for (j, o) in out.iter_mut().enumerate() {
                *o = self.at(f0 + step * j as f64);
            }
        } else {
            let (v0, v1) = (self.at(f0), self.at(f1));
            let k = if out.len() > 1 {
                (v1 - v0) / (out.len() - 1) as f32
            } else {
                0.0
            };
            for (j, o) in out.iter_mut().enumerate() {
                *o = v0 + k * j as f32;
            }
        }
    }

    fn at(&self, frame: f64) -> f32 {
        let p = &self.points;
        match p.len() {
            0 => 1.0,
            _ if frame <= p[0].0 => p[0].1,
            _ if frame >= p[p.len() - 1].0 => p[p.len() - 1].1,
            _ => {
                let i = p.partition_point(|&(f, _)| f <= frame);
                let ((f0, v0), (f1, v1)) = (p[i - 1], p[i]);
                let t = ((frame - f0) / (f1 - f0)) as f32;
                v0 + (v1 - v0) * t
            }
        }
    }
}

/// One `audioMixing` entry, validated.
#[derive(Debug, Clone)]
struct Route {
    track: usize,
    out: usize,
    envelope: Envelope,
}

fn routes(mixing: &[AudioMixing], sources: &[&SourceInfo]) -> Result<Vec<Route>, RenderError> {
    let most_tracks = sources
        .iter()
        .map(|s| s.audio_indices.len())
        .max()
        .unwrap_or(0);
    if mixing.is_empty() {
        if most_tracks == 0 {
            return Ok(Vec::new());
        }
        let flat = Envelope { points: Vec::new() };
        return Ok((0..2)
            .map(|out| Route {
                track: 0,
                out,
                envelope: flat.clone(),
            })
            .collect());
    }
    let mut out = Vec::with_capacity(mixing.len());
    for (n, m) in mixing.iter().enumerate() {
        let track = m.source_channel as usize;
        if track >= most_tracks {
            return Err(RenderError::InvalidInput(format!(
                "audioMixing[{n}]: sourceChannel {track} does not exist: the episode's sources \
                 have at most {most_tracks} audio track(s) (counting from 0)"
            )));
        }
        if m.output_channel > 1 {
            return Err(RenderError::InvalidInput(format!(
                "audioMixing[{n}]: outputChannel {} does not exist: the output is stereo \
                 (0 = left, 1 = right)",
                m.output_channel
            )));
        }
        let mut points = Vec::with_capacity(m.keyframes.len());
        for k in &m.keyframes {
            if !(0.0..=2.0).contains(&k.volume) {
                return Err(RenderError::InvalidInput(format!(
                    "audioMixing[{n}]: volume {} at frame {} is outside 0–2",
                    k.volume, k.frame
                )));
            }
            points.push((k.frame as f64, k.volume as f32));
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.push(Route {
            track,
            out: m.output_channel as usize,
            envelope: Envelope { points },
        });
    }
    Ok(out)
}

/// How an item's audio starts or ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ramp {
    /// Linear from/to silence over `n` samples (a fade from/to black).
    Linear(u64),
    /// Equal-power (sin in, cos out) over `n` samples: a crossfade with the neighbour item.
    EqualPower(u64),
    /// A hard cut: a raised-cosine ramp of a few ms so the waveform does not jump (a click).
    Declick(u64),
}

impl Ramp {
    fn len(self) -> u64 {
        match self {
            Ramp::Linear(n) | Ramp::EqualPower(n) | Ramp::Declick(n) => n,
        }
    }

    /// Gain of sample `j` (0-based) of a ramp *in*; a ramp out is read backwards.
    fn rising(self, j: u64) -> f64 {
        use std::f64::consts::{FRAC_PI_2, PI};
        let n = self.len() as f64;
        let x = j as f64 + 0.5;
        match self {
            Ramp::Linear(_) => (j as f64 + 1.0) / (n + 1.0),
            Ramp::EqualPower(_) => (FRAC_PI_2 * x / n).sin(),
            Ramp::Declick(_) => 0.5 - 0.5 * (PI * x / n).cos(),
        }
    }
}

/// Gain of one item over its output samples `[start, end)`: ramps at head and tail.
#[derive(Debug, Clone, Copy)]
struct ItemGain {
    start: u64,
    end: u64,
    head: Ramp,
    tail: Ramp,
}

impl ItemGain {
    fn at(&self, s: u64) -> f32 {
        let mut g = 1.0f64;
        if s < self.start + self.head.len() {
            g *= self.head.rising(s - self.start);
        }
        if s + self.tail.len() >= self.end {
            // A ramp out is the ramp in read backwards (cos(π/2·x/n) = sin(π/2·(n−x)/n),
            // 1 − (j+1)/(n+1) = (n−j)/(n+1)): the last sample gets the ramp-in's first value.
            g *= self.tail.rising(self.end - 1 - s);
        }
        g as f32
    }
}

/// Decodes one audio track of a source from a start time on, resampled to planar float at the
/// output rate (mono stays mono, anything wider becomes stereo).
struct TrackReader {
    stream: usize,
    decoder: ffmpeg::decoder::Audio,
    swr: Option<resampling::Context>,
    rate_in: u32,
    tb: Rational,
    /// First sample on the stream's frame grid (in input samples) and the codec frame size,
    /// for timestamps coarser than a sample (MKV's 1 ms).
    grid: Option<(i64, i64)>,
    channels: usize,
    /// Time (seconds, stream clock) of the first wanted sample.
    target: f64,
    rate_out: u32,
    /// Input sample position expected next (after the first frame).
    next_in: Option<i64>,
    /// Output samples still to drop before `target`.
    drop: u64,
    fifo: [VecDeque<f32>; 2],
    done: bool,
}

impl TrackReader {
    fn new(
        ictx: &ffmpeg::format::context::Input,
        stream: usize,
        target: f64,
        rate_out: u32,
        name: &str,
    ) -> Result<Self, RenderError> {
        let st = ictx
            .stream(stream)
            .ok_or_else(|| RenderError::InvalidInput(format!("{name}: no stream {stream}")))?;
        let tb = st.time_base();
        let mut ctx = codec::context::Context::from_parameters(st.parameters())
            .map_err(|e| RenderError::InvalidInput(format!("{name}: audio track: {e}")))?;
        // SAFETY: setting the packet time base before opening, as the CLI does.
        unsafe {
            (*ctx.as_mut_ptr()).pkt_timebase = tb.into();
        }
        let decoder = ctx.decoder().audio().map_err(|e| {
            RenderError::InvalidInput(format!("{name}: cannot open the audio decoder: {e}"))
        })?;
        let rate_in = decoder.rate();
        let channels = usize::from(decoder.channels());
        if rate_in == 0 || channels == 0 {
            return Err(RenderError::InvalidInput(format!(
                "{name}: audio stream {stream} declares no sample rate or channels"
            )));
        }
        // SAFETY: plain field read of the stream's codec parameters.
        let frame_size = i64::from(unsafe { (*st.parameters().as_ptr()).frame_size });
        let coarse = f64::from(tb) * f64::from(rate_in) > 1.0 + 1e-9;
        let grid = (coarse && frame_size > 0 && st.start_time() != ffmpeg::ffi::AV_NOPTS_VALUE)
            .then(|| {
                let origin = (st.start_time() as f64 * f64::from(tb) * f64::from(rate_in)).round();
                (origin as i64, frame_size)
            });
        Ok(TrackReader {
            stream,
            decoder,
            swr: None,
            rate_in,
            tb,
            grid,
            channels: channels.min(2),
            target,
            rate_out,
            next_in: None,
            drop: 0,
            fifo: [VecDeque::new(), VecDeque::new()],
            done: false,
        })
    }

    /// Input sample position of a decoded frame's timestamp (snapped to the frame grid when
    /// the time base is coarser than a sample).
    fn position(&self, ts: i64) -> i64 {
        let p = (ts as f64 * f64::from(self.tb) * f64::from(self.rate_in)).round() as i64;
        match self.grid {
            Some((origin, size)) => {
                let snapped = origin + ((p - origin) as f64 / size as f64).round() as i64 * size;
                let unit = (f64::from(self.tb) * f64::from(self.rate_in)).ceil() as i64;
                if (snapped - p).abs() <= unit {
                    snapped
                } else {
                    p
                }
            }
            None => p,
        }
    }

    fn push_silence(&mut self, n: u64) {
        let n = self.take_drop(n);
        for c in 0..self.channels {
            self.fifo[c].extend(std::iter::repeat_n(0.0, n as usize));
        }
    }

    /// Consumes up to `n` samples of the pending drop; returns how many remain to keep.
    fn take_drop(&mut self, n: u64) -> u64 {
        let d = self.drop.min(n);
        self.drop -= d;
        n - d
    }

    fn push_converted(&mut self, converted: &frame::Audio) {
        let n = converted.samples() as u64;
        let keep = self.take_drop(n) as usize;
        let from = n as usize - keep;
        for c in 0..self.channels {
            let plane = converted.plane::<f32>(c);
            self.fifo[c].extend(&plane[from..from + keep]);
        }
    }

    fn on_frame(&mut self, decoded: &frame::Audio) -> Result<(), RenderError> {
        let n = decoded.samples() as i64;
        if n == 0 {
            return Ok(());
        }
        let pos = decoded
            .timestamp()
            .or(decoded.pts())
            .map(|t| self.position(t));
        match (self.next_in, pos) {
            (None, pos) => {
                // First frame: work out how much to drop (or pad) to start at `target`.
                let pos = pos.unwrap_or(0);
                let first_s = pos as f64 / f64::from(self.rate_in);
                let offset = ((self.target - first_s) * f64::from(self.rate_out)).round() as i64;
                if offset >= 0 {
                    self.drop = offset as u64;
                } else {
                    self.push_silence((-offset) as u64);
                }
                self.next_in = Some(pos);
            }
            (Some(expected), Some(pos)) if pos > expected + n / 2 => {
                // A hole in the source audio: keep the timeline, fill it with silence.
                let gap =
                    (pos - expected) as f64 * f64::from(self.rate_out) / f64::from(self.rate_in);
                self.push_silence(gap.round() as u64);
                self.next_in = Some(pos);
            }
            _ => {}
        }
        self.next_in = self.next_in.map(|p| p + n);
        if self.swr.is_none() {
            let layout = if decoded.channel_layout().is_empty() {
                ChannelLayout::default(i32::from(decoded.channels()))
            } else {
                decoded.channel_layout()
            };
            let out_layout = if self.channels == 1 {
                ChannelLayout::MONO
            } else {
                ChannelLayout::STEREO
            };
            self.swr = Some(
                resampling::Context::get(
                    decoded.format(),
                    layout,
                    decoded.rate(),
                    Sample::F32(SampleLayout::Planar),
                    out_layout,
                    self.rate_out,
                )
                .map_err(|e| failed("audio resampler", e))?,
            );
        }
        let mut converted = frame::Audio::empty();
        self.swr
            .as_mut()
            .expect("set above")
            .run(decoded, &mut converted)
            .map_err(|e| failed("resampling", e))?;
        self.push_converted(&converted);
        Ok(())
    }

    fn receive(&mut self) -> Result<(), RenderError> {
        let mut decoded = frame::Audio::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            self.on_frame(&decoded)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), RenderError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let _ = self.decoder.send_eof();
        self.receive()?;
        if let Some(swr) = self.swr.as_mut() {
            let mut tail = frame::Audio::empty();
            if swr.flush(&mut tail).is_ok() && tail.samples() > 0 {
                self.push_converted(&tail);
            }
        }
        Ok(())
    }

    fn available(&self) -> usize {
        self.fifo[0].len()
    }

    /// The first `n` samples of output channel `c` (a mono track serves both), padded with
    /// silence past the end of the source.
    fn front(&mut self, c: usize, n: usize) -> &[f32] {
        let c = c.min(self.channels - 1);
        if self.fifo[c].len() < n {
            self.fifo[c].resize(n, 0.0);
        }
        &self.fifo[c].make_contiguous()[..n]
    }

    fn consume(&mut self, n: usize) {
        for c in 0..self.channels {
            let k = n.min(self.fifo[c].len());
            self.fifo[c].drain(..k);
        }
    }
}

/// The audio tracks of one section, read in one pass over the source.
struct SectionReader {
    ictx: ffmpeg::format::context::Input,
    /// Track index (among the source's audio tracks) → reader.
    tracks: Vec<(usize, TrackReader)>,
    eof: bool,
}

impl SectionReader {
    fn open(
        source: &SourceInfo,
        tracks: &[usize],
        start_s: f64,
        rate_out: u32,
    ) -> Result<Self, RenderError> {
        let name = source.path.display().to_string();
        let mut ictx = ffmpeg::format::input(&source.path)
            .map_err(|e| RenderError::InvalidInput(format!("{name}: cannot open: {e}")))?;
        let mut readers = Vec::new();
        for &t in tracks {
            let stream = source.audio_indices[t];
            readers.push((
                t,
                TrackReader::new(&ictx, stream, start_s, rate_out, &name)?,
            ));
        }
        // SAFETY: `discard` is a plain field the demuxer reads; only our tracks are read.
        unsafe {
            let ctx = ictx.as_mut_ptr();
            for i in 0..(*ctx).nb_streams as usize {
                if !readers.iter().any(|(_, r)| r.stream == i) {
                    (**(*ctx).streams.add(i)).discard = ffmpeg::ffi::AVDiscard::AVDISCARD_ALL;
                }
            }
        }
        // SAFETY: plain field read.
        let file_start = unsafe { (*ictx.as_ptr()).start_time };
        let file_start = if file_start == ffmpeg::ffi::AV_NOPTS_VALUE {
            0.0
        } else {
            file_start as f64 / 1e6
        };
        let seek_s = start_s - PRE_ROLL_S;
        if seek_s > file_start {
            let ts = (seek_s * 1e6) as i64;
            ictx.seek(ts, ..ts)
                .map_err(|e| failed(&format!("{name}: seeking to {seek_s:.3} s"), e))?;
        }
        Ok(SectionReader {
            ictx,
            tracks: readers,
            eof: false,
        })
    }

    /// Reads until every track has `n` samples queued or the file ends.
    fn fill(&mut self, n: usize) -> Result<(), RenderError> {
        while !self.eof && self.tracks.iter().any(|(_, r)| r.available() < n) {
            let mut packet = Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    let idx = packet.stream();
                    if let Some((_, r)) = self.tracks.iter_mut().find(|(_, r)| r.stream == idx) {
                        // A damaged packet is skipped, as players do; the timeline stays.
                        if r.decoder.send_packet(&packet).is_ok() {
                            r.receive()?;
                        }
                    }
                }
                Err(ffmpeg::Error::Eof) => {
                    self.eof = true;
                    for (_, r) in &mut self.tracks {
                        r.finish()?;
                    }
                }
                Err(e) => return Err(failed("reading audio", e)),
            }
        }
        Ok(())
    }
}

/// Stereo samples being mixed; the front is handed to the encoder once final.
struct Mixer {
    pending: [VecDeque<f32>; 2],
    /// Output sample index of `pending[_][0]`.
    start: u64,
    enc: encoder::Audio,
    frame_size: usize,
    rate: u32,
    packets: Vec<Packet>,
}

impl Mixer {
    /// Makes sure `pending` reaches output sample `end`.
    fn extend_to(&mut self, end: u64) {
        let have = self.start + self.pending[0].len() as u64;
        if end > have {
            for c in &mut self.pending {
                c.extend(std::iter::repeat_n(0.0, (end - have) as usize));
            }
        }
    }

    /// Encodes whole encoder frames up to output sample `upto` (everything when `last`).
    fn flush(&mut self, upto: u64, last: bool) -> Result<(), RenderError> {
        loop {
            let ready = upto.saturating_sub(self.start) as usize;
            let ready = ready.min(self.pending[0].len());
            let n = if ready >= self.frame_size {
                self.frame_size
            } else if last && ready > 0 {
                ready
            } else {
                break;
            };
            let mut f =
                frame::Audio::new(Sample::F32(SampleLayout::Planar), n, ChannelLayout::STEREO);
            f.set_rate(self.rate);
            for c in 0..2 {
                for (dst, src) in f.plane_mut::<f32>(c)[..n]
                    .iter_mut()
                    .zip(self.pending[c].drain(..n))
                {
                    *dst = src.clamp(-1.0, 1.0);
                }
            }
            f.set_pts(Some(self.start as i64));
            self.start += n as u64;
            self.enc
                .send_frame(&f)
                .map_err(|e| failed("AAC encoding", e))?;
            self.receive();
        }
        if last {
            self.enc.send_eof().map_err(|e| failed("AAC encoding", e))?;
            self.receive();
        }
        Ok(())
    }

    fn receive(&mut self) {
        let mut pkt = Packet::empty();
        while self.enc.receive_packet(&mut pkt).is_ok() {
            self.packets.push(pkt.clone());
        }
    }
}

fn open_encoder(profile: &RenderProfile) -> Result<encoder::Audio, RenderError> {
    let aac = encoder::find(codec::Id::AAC)
        .ok_or_else(|| RenderError::Failed("this FFmpeg has no AAC encoder".into()))?;
    let mut enc = codec::context::Context::new_with_codec(aac)
        .encoder()
        .audio()
        .map_err(|e| failed("AAC encoder", e))?;
    enc.set_rate(profile.audio_sample_rate as i32);
    enc.set_channel_layout(ChannelLayout::STEREO);
    enc.set_format(Sample::F32(SampleLayout::Planar));
    enc.set_bit_rate(profile.audio_bitrate as usize);
    enc.set_time_base(Rational(1, profile.audio_sample_rate as i32));
    // MP4 wants the AudioSpecificConfig in the sample entry, not in-band.
    enc.set_flags(codec::Flags::GLOBAL_HEADER);
    enc.open_with(Dictionary::new())
        .map_err(|e| failed("opening the AAC encoder", e))
}

/// Decodes, mixes and encodes the episode's audio. See the module docs for the semantics.
pub fn render_audio(plan: &Plan, profile: &RenderProfile) -> Result<EncodedAudio, RenderError> {
    crate::init();
    let rate = profile.audio_sample_rate;
    if rate == 0 || rate > 192_000 {
        return Err(RenderError::InvalidInput(format!(
            "audio sample rate {rate} is not usable"
        )));
    }
    let fps = plan.fps;
    if fps.numerator() <= 0 || fps.denominator() <= 0 {
        return Err(RenderError::InvalidInput(format!(
            "frame rate {fps} is not usable"
        )));
    }
    let used: Vec<&SourceInfo> = plan
        .items
        .iter()
        .map(|it| {
            plan.sources.get(it.source).ok_or_else(|| {
                RenderError::InvalidInput(format!("plan item refers to source {}", it.source))
            })
        })
        .collect::<Result<_, _>>()?;
    let routes = routes(&plan.audio_mixing, &used)?;

    let total = sample_at(plan.total_frames, fps, rate);
    let enc = open_encoder(profile)?;
    let frame_size = (enc.frame_size() as usize).max(1);
    let parameters = codec::Parameters::from(&enc);
    let mut mixer = Mixer {
        pending: [VecDeque::new(), VecDeque::new()],
        start: 0,
        enc,
        frame_size,
        rate,
        packets: Vec::new(),
    };

    let mut order: Vec<usize> = (0..plan.items.len()).collect();
    order.sort_by_key(|&i| plan.items[i].out_start);
    let spans: Vec<(u64, u64)> = order
        .iter()
        .map(|&i| {
            let it = &plan.items[i];
            (
                sample_at(it.out_start, fps, rate).min(total),
                sample_at(it.out_end(), fps, rate).min(total),
            )
        })
        .collect();
    let frames_per_sample = f64::from(fps) / f64::from(rate);

    for (k, &i) in order.iter().enumerate() {
        let item = &plan.items[i];
        let source = &plan.sources[item.source];
        let (a, b) = spans[k];
        // Everything before this item's start is final.
        mixer.flush(a, false)?;
        if b <= a {
            continue;
        }
        let declick = Ramp::Declick((u64::from(rate) * DECLICK_MS / 1000).min((b - a) / 4));
        let head = match k {
            0 if item.fade_in > 0 => Ramp::Linear(sample_at(item.fade_in, fps, rate).min(b - a)),
            0 => declick,
            _ => match spans[k - 1].1.saturating_sub(a).min(b - a) {
                0 => declick,
                n => Ramp::EqualPower(n),
            },
        };
        let tail = if k + 1 < order.len() {
            match b.saturating_sub(spans[k + 1].0).min(b - a) {
                0 => declick,
                n => Ramp::EqualPower(n),
            }
        } else if item.fade_out > 0 {
            Ramp::Linear(sample_at(item.fade_out, fps, rate).min(b - a))
        } else {
            declick
        };
        let gain = ItemGain {
            start: a,
            end: b,
            head,
            tail,
        };
        let mut wanted: Vec<usize> = routes
            .iter()
            .map(|r| r.track)
            .filter(|&t| t < source.audio_indices.len())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let final_until = spans.get(k + 1).map_or(total, |&(next, _)| next);
        if wanted.is_empty() {
            // Nothing routed from this source: silence, handed on in bounded steps.
            let mut s = a;
            while s < b {
                s = (s + CHUNK as u64).min(b);
                mixer.extend_to(s);
                mixer.flush(s.min(final_until), false)?;
            }
            continue;
        }
        let start_s = source.start_pts as f64 * f64::from(source.time_base)
            + item.start_frame as f64 / f64::from(source.fps);
        let mut reader = SectionReader::open(source, &wanted, start_s, rate)?;
        let mut s = a;
        let mut gains = vec![0f32; CHUNK];
        let mut levels = vec![0f32; CHUNK];
        while s < b {
            let n = ((b - s) as usize).min(CHUNK);
            reader.fill(n)?;
            mixer.extend_to(s + n as u64);
            for (j, g) in gains[..n].iter_mut().enumerate() {
                *g = gain.at(s + j as u64);
            }
            let dst_at = (s - mixer.start) as usize;
            for r in &routes {
                let Some((_, tr)) = reader.tracks.iter_mut().find(|(t, _)| *t == r.track) else {
                    continue;
                };
                let f0 = s as f64 * frames_per_sample;
                r.envelope.fill(f0, frames_per_sample, &mut levels[..n]);
                let src = tr.front(r.out, n);
                let dst = &mut mixer.pending[r.out].make_contiguous()[dst_at..dst_at + n];
                for (((d, &x), &g), &v) in dst.iter_mut().zip(src).zip(&gains).zip(&levels) {
                    *d += x * g * v;
                }
            }
            for (_, tr) in &mut reader.tracks {
                tr.consume(n);
            }
            s += n as u64;
            // Final up to where the next item starts mixing in.
            mixer.flush(s.min(final_until), false)?;
        }
    }
    mixer.extend_to(total);
    mixer.flush(total, true)?;
    Ok(EncodedAudio {
        parameters,
        time_base: Rational(1, rate as i32),
        packets: mixer.packets,
        samples: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_positions_round_and_never_drift() {
        let fps = Rational(60, 1);
        assert_eq!(sample_at(1, fps, 48_000), 800);
        assert_eq!(sample_at(216_000, fps, 48_000), 172_800_000);
        // 29.97: frame 1 starts at 1601.6 → 1602 samples.
        let ntsc = Rational(30_000, 1001);
        assert_eq!(sample_at(1, ntsc, 48_000), 1602);
        assert_eq!(sample_at(30_000, ntsc, 48_000), 48_048_000);
        // Consecutive spans tile the timeline exactly.
        let parts: u64 = (0..100)
            .map(|i| sample_at((i + 1) * 7, ntsc, 44_100) - sample_at(i * 7, ntsc, 44_100))
            .sum();
        assert_eq!(parts, sample_at(700, ntsc, 44_100));
    }

    #[test]
    fn encoded_audio_can_be_made_on_another_thread() {
        fn send<T: Send>() {}
        send::<EncodedAudio>();
    }

    #[test]
    fn envelope_interpolates_and_holds() {
        let e = Envelope {
            points: vec![(10.0, 0.0), (20.0, 2.0)],
        };
        assert_eq!(e.at(0.0), 0.0);
        assert_eq!(e.at(15.0), 1.0);
        assert_eq!(e.at(25.0), 2.0);
        assert_eq!(Envelope { points: vec![] }.at(3.0), 1.0);
    }

    #[test]
    fn crossfade_gains_are_equal_power() {
        let out = ItemGain {
            start: 0,
            end: 100,
            head: Ramp::Declick(0),
            tail: Ramp::EqualPower(20),
        };
        let inn = ItemGain {
            start: 80,
            end: 200,
            head: Ramp::EqualPower(20),
            tail: Ramp::Declick(0),
        };
        for s in 80..100 {
            let (g0, g1) = (out.at(s), inn.at(s));
            assert!((g0 * g0 + g1 * g1 - 1.0).abs() < 1e-5, "{s}: {g0} {g1}");
        }
        assert_eq!(out.at(79), 1.0);
        assert_eq!(inn.at(100), 1.0);
    }

    #[test]
    fn linear_fades_match_the_picture_and_declick_is_symmetric() {
        let g = ItemGain {
            start: 0,
            end: 10,
            head: Ramp::Linear(4),
            tail: Ramp::Linear(4),
        };
        let got: Vec<f32> = (0..10).map(|s| g.at(s)).collect();
        assert_eq!(got, vec![0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2]);
        let d = ItemGain {
            start: 0,
            end: 8,
            head: Ramp::Declick(4),
            tail: Ramp::Declick(4),
        };
        for s in 0..4 {
            assert!((d.at(s) - d.at(7 - s)).abs() < 1e-6);
            assert!(d.at(s) > 0.0 && d.at(s) < 1.0);
        }
    }
}
