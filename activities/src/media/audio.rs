//! One pass over a recording's speech track: silence runs for the speech map and, optionally,
//! the track resampled to 16 kHz mono for transcription.
//!
//! Only that audio stream is demuxed (every other stream is discarded in the demuxer, so video
//! packets are not even read into packets) and decoded. Long files are decoded in parallel
//! chunks, each with its own demuxer and decoder: a chunk seeks a little before its start (the
//! decoder's overlap needs the previous frame) and keeps exactly the samples of its range;
//! chunks start on whole resampling periods and the resampler gets a pre-roll too, so the
//! merged result is what one sequential pass gives — except where AAC's perceptual noise
//! substitution fills noise bands from a random generator whose state depends on where decoding
//! started (noise hovering at the threshold may then cross it a sample earlier or later).

use std::sync::atomic::{AtomicU64, Ordering};

use ffmpeg::format::Sample;
use ffmpeg::format::sample::Type as SampleLayout;
use ffmpeg::media::Type as MediaType;
use ffmpeg::{ChannelLayout, frame, software::resampling};
use ffmpeg_next as ffmpeg;

use super::silence::{Detector, Runs, SilenceParams, SilenceSample, Strided};
use super::{MediaError, MediaSource, open_input};

/// Sample rate of the speech audio handed to Whisper.
pub const SPEECH_RATE: u32 = 16_000;

/// Chunks start this long before their range so the decoder's state is right at the boundary.
const PRE_ROLL_S: f64 = 0.5;
/// Input samples the resampler sees before a chunk starts (rounded up to its period).
const RESAMPLER_PREROLL: i64 = 512;
/// Files shorter than this are decoded in one piece.
const MIN_PARALLEL_S: f64 = 60.0;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub params: SilenceParams,
    /// Decode in up to this many parallel chunks.
    pub threads: usize,
    /// Also produce the 16 kHz mono track.
    pub speech_audio: bool,
}

/// The result of a scan.
#[derive(Debug, Clone)]
pub struct AudioScan {
    /// Index among the file's audio streams (what `-map 0:a:N` selects).
    pub track: usize,
    pub rate: u32,
    pub channels: usize,
    /// Silence intervals in clip seconds, as `silencedetect` reports them.
    pub silence: Vec<(f64, f64)>,
    /// Clip seconds of the first and one-past-last decoded sample.
    pub start: f64,
    pub end: f64,
    /// The track at 16 kHz mono (when asked for); index 0 is at clip time `start`.
    pub pcm16k: Vec<i16>,
    /// How many chunks were decoded in parallel.
    pub chunks: usize,
}

/// Which file and track to scan, and how progress is reported.
pub struct ScanInput<'a> {
    /// The recording: a file, or a URL that answers range requests (each parallel chunk opens
    /// its own connection and seeks).
    pub source: &'a MediaSource,
    /// How the file is named in errors (its blob key).
    pub name: &'a str,
    pub track: usize,
    /// Receives the fraction of the file decoded so far (0–1), from any thread.
    pub progress: &'a (dyn Fn(f64) + Sync),
}

struct StreamFacts {
    index: usize,
    rate: u32,
    channels: usize,
    /// Stream time base.
    tb: ffmpeg::Rational,
    /// Container start time in stream time base units (subtracted, like the CLI does).
    start_ts: i64,
    duration_s: f64,
    /// Time-base units per sample are coarser than a sample (MKV/FLV millisecond timestamps).
    coarse: bool,
}

fn stream_facts(
    ictx: &ffmpeg::format::context::Input,
    name: &str,
    track: usize,
) -> Result<StreamFacts, MediaError> {
    let audio: Vec<_> = ictx
        .streams()
        .filter(|s| s.parameters().medium() == MediaType::Audio)
        .collect();
    if audio.is_empty() {
        return Err(MediaError::NoAudio(name.into()));
    }
    let Some(stream) = audio.get(track) else {
        return Err(MediaError::NoSuchTrack(name.into(), audio.len(), track));
    };
    let ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| MediaError::Corrupt(name.into(), e.to_string()))?;
    let dec = ctx
        .decoder()
        .audio()
        .map_err(|e| MediaError::Corrupt(name.into(), e.to_string()))?;
    let (rate, channels) = (dec.rate(), usize::from(dec.channels()));
    if rate == 0 || channels == 0 {
        return Err(MediaError::Corrupt(
            name.into(),
            "the audio track declares no sample rate or channels".into(),
        ));
    }
    let tb = stream.time_base();
    // SAFETY: plain field read of an open context.
    let fmt_start = unsafe { (*ictx.as_ptr()).start_time };
    let start_ts = if fmt_start == i64::MIN {
        0
    } else {
        ffmpeg::Rescale::rescale(&fmt_start, ffmpeg::rescale::TIME_BASE, tb)
    };
    let duration_s = if ictx.duration() > 0 {
        ictx.duration() as f64 / 1e6
    } else if stream.duration() > 0 {
        stream.duration() as f64 * f64::from(tb)
    } else {
        0.0
    };
    let coarse = f64::from(tb) * f64::from(rate) > 1.0 + 1e-9;
    Ok(StreamFacts {
        index: stream.index(),
        rate,
        channels,
        tb,
        start_ts,
        duration_s,
        coarse,
    })
}

/// Discards every stream but `keep` so the demuxer skips their packets.
fn discard_others(ictx: &mut ffmpeg::format::context::Input, keep: usize) {
    // SAFETY: the context is open; `discard` is a plain field read by the demuxer.
    unsafe {
        let ctx = ictx.as_mut_ptr();
        for i in 0..(*ctx).nb_streams as usize {
            if i != keep {
                (**(*ctx).streams.add(i)).discard = ffmpeg::ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
}

fn decoder_for(
    ictx: &ffmpeg::format::context::Input,
    facts: &StreamFacts,
    name: &str,
) -> Result<ffmpeg::decoder::Audio, MediaError> {
    let stream = ictx.stream(facts.index).expect("stream exists");
    let mut ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| MediaError::Corrupt(name.into(), e.to_string()))?;
    // SAFETY: setting the packet time base before opening, as the CLI does.
    unsafe {
        (*ctx.as_mut_ptr()).pkt_timebase = facts.tb.into();
    }
    ctx.decoder().audio().map_err(|e| {
        MediaError::Corrupt(name.into(), format!("cannot open the audio decoder: {e}"))
    })
}

/// Sample positions of decoded frames: contiguous like the CLI's `av_rescale_delta`, re-synced
/// only on a real jump; after a seek in a coarse time base, snapped to the first chunk's grid.
struct Clock {
    rate: u32,
    tb: ffmpeg::Rational,
    start_ts: i64,
    /// Tolerance in samples for "contiguous".
    tolerance: i64,
    next: Option<i64>,
    grid: Option<(i64, i64)>,
}

impl Clock {
    fn new(facts: &StreamFacts, grid: Option<(i64, i64)>) -> Self {
        let unit = (f64::from(facts.tb) * f64::from(facts.rate)).ceil() as i64;
        Clock {
            rate: facts.rate,
            tb: facts.tb,
            start_ts: facts.start_ts,
            tolerance: unit.max(1),
            next: None,
            grid,
        }
    }

    fn position(&mut self, frame: &frame::Audio) -> i64 {
        let pts = frame.pts().or(frame.timestamp());
        let measured = pts.map(|p| {
            ffmpeg::Rescale::rescale(
                &(p - self.start_ts),
                self.tb,
                ffmpeg::Rational(1, self.rate as i32),
            )
        });
        let pos = match (self.next, measured) {
            (Some(e), Some(m)) if (m - e).abs() <= self.tolerance => e,
            (Some(e), None) => e,
            (None, Some(m)) => match self.grid {
                Some((origin, step)) if step > 0 => {
                    origin + ((m - origin) as f64 / step as f64).round() as i64 * step
                }
                _ => m,
            },
            (_, Some(m)) => m,
            (None, None) => 0,
        };
        self.next = Some(pos + frame.samples() as i64);
        pos
    }
}

/// What one chunk saw.
struct ChunkOut {
    runs: Runs,
    /// Sample position of the chunk's first kept sample and one past its last.
    begin: i64,
    end: i64,
    pcm16k: Vec<i16>,
}

/// Scans the track. See the module documentation.
pub fn scan(input: &ScanInput<'_>, opts: &ScanOptions) -> Result<AudioScan, MediaError> {
    let name = input.name;
    let mut ictx = open_input(input.source, name)?;
    let facts = stream_facts(&ictx, name, input.track)?;
    discard_others(&mut ictx, facts.index);

    // The first frames fix the origin and the frame size that later chunks snap to.
    let (origin, frame_size) = first_frames(&mut ictx, &facts, name)?;
    let duration_s = facts.duration_s;
    let mut chunks = opts.threads.max(1);
    if duration_s < MIN_PARALLEL_S || (facts.coarse && frame_size.is_none()) {
        chunks = 1;
    }
    let total = (duration_s * f64::from(facts.rate)).max(1.0);
    // Chunks start on whole resampling periods, so each chunk's 16 kHz samples fall exactly on
    // the sequential pass's 16 kHz grid.
    let (period, _) = resampling_period(facts.rate);
    let bounds: Vec<i64> = (0..chunks)
        .map(|i| origin + ((total * i as f64) / chunks as f64) as i64 / period * period)
        .collect();
    let done = AtomicU64::new(0);
    let report = |n: u64| {
        let d = done.fetch_add(n, Ordering::Relaxed) + n;
        (input.progress)((d as f64 / total).min(1.0));
    };

    let results: Vec<Result<ChunkOut, MediaError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..chunks)
            .map(|i| {
                let begin = bounds[i];
                let end = bounds.get(i + 1).copied();
                let facts = &facts;
                let report = &report;
                let grid = frame_size.map(|f| (origin, f));
                scope.spawn(move || {
                    scan_chunk(
                        input.source,
                        name,
                        facts,
                        begin,
                        end,
                        grid,
                        i > 0,
                        opts,
                        origin,
                        report,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(MediaError::Corrupt(
                        name.into(),
                        "decoder thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let mut parts = Vec::with_capacity(chunks);
    for r in results {
        parts.push(r?);
    }

    let ch = facts.channels as u64;
    let min_run = opts.params.min_samples(facts.rate) * ch;
    let mut merged: Option<Runs> = None;
    let mut pcm16k = Vec::new();
    let (first_begin, last_end) = (parts[0].begin, parts[parts.len() - 1].end);
    for part in parts {
        if let Some(m) = &merged
            && part.begin != (m.end / ch) as i64 + origin
        {
            // A seek landed after its chunk's start: fall back to one sequential pass.
            return scan(
                input,
                &ScanOptions {
                    threads: 1,
                    ..opts.clone()
                },
            );
        }
        pcm16k.extend(part.pcm16k);
        merged = Some(match merged {
            None => part.runs,
            Some(m) => m.then(part.runs, min_run),
        });
    }
    let runs = merged.expect("at least one chunk");
    let tb = 1.0 / f64::from(facts.rate);
    let silence = super::silence::intervals(
        &runs.all(min_run),
        &opts.params,
        facts.rate,
        facts.channels,
        origin,
    );
    let start = tb * first_begin as f64;
    let end = tb * last_end as f64;
    // A file whose header promises more than its audio holds was cut short.
    if duration_s > 0.0 && end - start + 1.0 < duration_s * 0.99 {
        return Err(MediaError::Truncated(name.into(), duration_s, end - start));
    }
    if end <= start {
        return Err(MediaError::Corrupt(
            name.into(),
            "no audio could be decoded".into(),
        ));
    }
    Ok(AudioScan {
        track: input.track,
        rate: facts.rate,
        channels: facts.channels,
        silence,
        start,
        end,
        pcm16k,
        chunks,
    })
}

/// Decodes the first frames: the sample position of the very first one, and the frame size if
/// the first frames all have the same one (needed to snap seeks in coarse time bases).
fn first_frames(
    ictx: &mut ffmpeg::format::context::Input,
    facts: &StreamFacts,
    name: &str,
) -> Result<(i64, Option<i64>), MediaError> {
    let mut decoder = decoder_for(ictx, facts, name)?;
    let mut clock = Clock::new(facts, None);
    let mut sizes = Vec::new();
    let mut origin = None;
    let mut frame = frame::Audio::empty();
    let mut packets = 0;
    for (stream, packet) in ictx.packets() {
        if stream.index() != facts.index {
            continue;
        }
        packets += 1;
        if decoder.send_packet(&packet).is_err() {
            continue;
        }
        while decoder.receive_frame(&mut frame).is_ok() {
            let pos = clock.position(&frame);
            origin.get_or_insert(pos);
            sizes.push(frame.samples() as i64);
        }
        if sizes.len() >= 4 || packets > 64 {
            break;
        }
    }
    if origin.is_none() {
        let _ = decoder.send_eof();
        while decoder.receive_frame(&mut frame).is_ok() {
            let pos = clock.position(&frame);
            origin.get_or_insert(pos);
        }
    }
    let Some(origin) = origin else {
        return Err(MediaError::Corrupt(
            name.into(),
            "no audio frame could be decoded".into(),
        ));
    };
    // The first frame may be shorter (encoder priming trimmed); the ones after tell the size.
    let size = match sizes.get(1..) {
        Some(rest) if rest.len() >= 2 && rest.iter().all(|&s| s == rest[0] && s > 0) => {
            Some(rest[0])
        }
        _ => None,
    };
    Ok((origin, size))
}

#[allow(clippy::too_many_arguments)]
fn scan_chunk(
    source: &MediaSource,
    name: &str,
    facts: &StreamFacts,
    begin: i64,
    end: Option<i64>,
    grid: Option<(i64, i64)>,
    seek: bool,
    opts: &ScanOptions,
    origin: i64,
    report: &(dyn Fn(u64) + Sync),
) -> Result<ChunkOut, MediaError> {
    let mut ictx = open_input(source, name)?;
    discard_others(&mut ictx, facts.index);
    if seek {
        let t = ((begin as f64 / f64::from(facts.rate)) - PRE_ROLL_S).max(0.0)
            + facts.start_ts as f64 * f64::from(facts.tb);
        let ts = (t * 1e6) as i64;
        ictx.seek(ts, ..ts)
            .map_err(|e| MediaError::Corrupt(name.into(), format!("cannot seek: {e}")))?;
    }
    let mut decoder = decoder_for(&ictx, facts, name)?;
    let mut clock = Clock::new(facts, if seek { grid } else { None });
    let ch = facts.channels;
    let start_index = ((begin - origin) as u64) * ch as u64;
    let mut out = ChunkState {
        facts,
        begin,
        end,
        kept_begin: None,
        kept_end: begin,
        pcm16k: Vec::new(),
        resampler: None,
        want_16k: opts.speech_audio,
        preroll: if seek {
            let (p_in, _) = resampling_period(facts.rate);
            (RESAMPLER_PREROLL + p_in - 1) / p_in * p_in
        } else {
            0
        },
        detector: AnyDetector::None,
        params: opts.params,
        start_index,
        report,
    };
    let mut frame = frame::Audio::empty();
    let mut decode_errors = 0u64;
    let mut finished = false;
    for (stream, packet) in ictx.packets() {
        if stream.index() != facts.index {
            continue;
        }
        if decoder.send_packet(&packet).is_err() {
            decode_errors += 1;
            continue;
        }
        while decoder.receive_frame(&mut frame).is_ok() {
            let pos = clock.position(&frame);
            if out.frame(&frame, pos, name)? {
                finished = true;
                break;
            }
        }
        if finished {
            break;
        }
    }
    if !finished {
        let _ = decoder.send_eof();
        while decoder.receive_frame(&mut frame).is_ok() {
            let pos = clock.position(&frame);
            if out.frame(&frame, pos, name)? {
                break;
            }
        }
    }
    if decode_errors > 0 {
        tracing::debug!(name, decode_errors, "audio packets the decoder rejected");
    }
    out.finish()
}

enum AnyDetector {
    None,
    F32(Detector<f32>),
    F64(Detector<f64>),
    I16(Detector<i16>),
    I32(Detector<i32>),
}

struct ChunkState<'a> {
    facts: &'a StreamFacts,
    begin: i64,
    end: Option<i64>,
    kept_begin: Option<i64>,
    kept_end: i64,
    pcm16k: Vec<i16>,
    resampler: Option<resampling::Context>,
    want_16k: bool,
    /// Input samples fed to the resampler before `begin`.
    preroll: i64,
    detector: AnyDetector,
    params: SilenceParams,
    start_index: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

fn push_frame<T: SilenceSample + ffmpeg::frame::audio::Sample>(
    det: &mut Detector<T>,
    frame: &frame::Audio,
    from: usize,
    to: usize,
    ch: usize,
) {
    let n = to - from;
    if frame.is_planar() {
        let planes: Vec<&[T]> = (0..ch).map(|c| frame.plane::<T>(c)).collect();
        det.push(n, |c| Strided {
            data: planes[c],
            offset: from,
            stride: 1,
        });
    } else {
        let data = frame.plane::<T>(0);
        det.push(n, |c| Strided {
            data,
            offset: from * ch + c,
            stride: ch,
        });
    }
}

impl ChunkState<'_> {
    /// Takes the part of `frame` (at sample position `pos`) inside the chunk. Returns true once
    /// the chunk's end is reached.
    fn frame(&mut self, frame: &frame::Audio, pos: i64, name: &str) -> Result<bool, MediaError> {
        let n = frame.samples() as i64;
        let frame_end = pos + n;
        let to = match self.end {
            Some(e) if e < frame_end => (e - pos).max(0) as usize,
            _ => n as usize,
        };
        // The resampler starts a little before the chunk (its output there is dropped), so its
        // filter has history at the boundary, as in one sequential pass.
        let resample_from = self.begin - self.preroll;
        if self.want_16k && frame_end > resample_from && pos < self.begin {
            let a = (resample_from.max(pos) - pos) as usize;
            let b = ((self.begin - pos) as usize).min(to);
            if a < b {
                self.resample(frame, a, b, name)?;
            }
        }
        if frame_end <= self.begin {
            return Ok(false);
        }
        let from = (self.begin.max(pos) - pos) as usize;
        if from >= to {
            return Ok(self.end.is_some_and(|e| pos >= e));
        }
        let first = pos + from as i64;
        if self.kept_begin.is_none() {
            // If this is after `begin` (a seek that landed late), the caller notices and falls
            // back to a sequential pass.
            self.kept_begin = Some(first);
        } else if first != self.kept_end {
            // A gap or overlap inside the stream: keep counting like the CLI does.
            tracing::debug!(
                name,
                expected = self.kept_end,
                got = first,
                "audio timestamp jump"
            );
        }
        let ch = self.facts.channels;
        if frame.channels() as usize != ch {
            return Err(MediaError::Corrupt(
                name.into(),
                format!(
                    "the number of audio channels changes mid-stream ({} → {})",
                    ch,
                    frame.channels()
                ),
            ));
        }
        if matches!(self.detector, AnyDetector::None) {
            let (params, rate, start) = (&self.params, self.facts.rate, self.start_index);
            self.detector = match frame.format() {
                Sample::F32(_) => AnyDetector::F32(Detector::new(params, rate, ch, start)),
                Sample::F64(_) => AnyDetector::F64(Detector::new(params, rate, ch, start)),
                Sample::I16(_) => AnyDetector::I16(Detector::new(params, rate, ch, start)),
                Sample::I32(_) => AnyDetector::I32(Detector::new(params, rate, ch, start)),
                other => {
                    return Err(MediaError::Corrupt(
                        name.into(),
                        format!("unsupported decoded sample format {other:?}"),
                    ));
                }
            };
        }
        match &mut self.detector {
            AnyDetector::F32(d) => push_frame(d, frame, from, to, ch),
            AnyDetector::F64(d) => push_frame(d, frame, from, to, ch),
            AnyDetector::I16(d) => push_frame(d, frame, from, to, ch),
            AnyDetector::I32(d) => push_frame(d, frame, from, to, ch),
            AnyDetector::None => unreachable!(),
        }
        if self.want_16k {
            self.resample(frame, from, to, name)?;
        }
        self.kept_end = pos + to as i64;
        (self.report)((to - from) as u64);
        Ok(self.end.is_some_and(|e| self.kept_end >= e))
    }

    fn resample(
        &mut self,
        frame: &frame::Audio,
        from: usize,
        to: usize,
        name: &str,
    ) -> Result<(), MediaError> {
        let err = |e: ffmpeg::Error| MediaError::Corrupt(name.into(), format!("resampling: {e}"));
        let layout = if frame.channel_layout().is_empty() {
            ChannelLayout::default(frame.channels() as i32)
        } else {
            frame.channel_layout()
        };
        if self.resampler.is_none() {
            self.resampler = Some(
                resampling::Context::get(
                    frame.format(),
                    layout,
                    frame.rate(),
                    Sample::I16(SampleLayout::Packed),
                    ChannelLayout::MONO,
                    SPEECH_RATE,
                )
                .map_err(err)?,
            );
        }
        let part;
        // A frame without a channel layout (PCM in Matroska) is copied with the layout the
        // resampler was set up for: swresample refuses a frame whose layout differs ("Input
        // changed"), and "unspecified" differs from mono.
        let input = if from == 0 && to == frame.samples() && !frame.channel_layout().is_empty() {
            frame
        } else {
            part = slice_frame(frame, from, to, layout);
            &part
        };
        let mut converted = frame::Audio::empty();
        let swr = self.resampler.as_mut().expect("created above");
        swr.run(input, &mut converted).map_err(err)?;
        self.pcm16k
            .extend_from_slice(&converted.plane::<i16>(0)[..converted.samples()]);
        Ok(())
    }

    fn finish(mut self) -> Result<ChunkOut, MediaError> {
        if let Some(swr) = self.resampler.as_mut() {
            loop {
                let mut tail =
                    frame::Audio::new(Sample::I16(SampleLayout::Packed), 1024, ChannelLayout::MONO);
                match swr.flush(&mut tail) {
                    Ok(_) if tail.samples() > 0 => {
                        self.pcm16k
                            .extend_from_slice(&tail.plane::<i16>(0)[..tail.samples()]);
                    }
                    _ => break,
                }
            }
        }
        let begin = self.kept_begin.unwrap_or(self.begin);
        // Exactly as many 16 kHz samples as the chunk's time span holds, so chunks abut.
        if self.want_16k {
            // Drop what the pre-roll produced; keep exactly the chunk's span (chunk bounds are
            // multiples of the resampling period, so this is exact where chunks meet).
            let (p_in, p_out) = resampling_period(self.facts.rate);
            let drop = (self.preroll / p_in * p_out) as usize;
            self.pcm16k.drain(..drop.min(self.pcm16k.len()));
            let rate = f64::from(self.facts.rate);
            let want = (((self.kept_end - begin) as f64 / rate) * f64::from(SPEECH_RATE)).round();
            self.pcm16k.resize(want.max(0.0) as usize, 0);
        }
        let runs = match self.detector {
            AnyDetector::None => Runs::empty(self.start_index),
            AnyDetector::F32(d) => d.finish(),
            AnyDetector::F64(d) => d.finish(),
            AnyDetector::I16(d) => d.finish(),
            AnyDetector::I32(d) => d.finish(),
        };
        Ok(ChunkOut {
            runs,
            begin,
            end: self.kept_end,
            pcm16k: self.pcm16k,
        })
    }
}

/// `(input samples, output samples)` after which the resampling phase repeats.
fn resampling_period(rate: u32) -> (i64, i64) {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let g = gcd(rate, SPEECH_RATE);
    (i64::from(rate / g), i64::from(SPEECH_RATE / g))
}

/// Samples `from..to` of `frame` as a frame of their own.
fn slice_frame(
    frame: &frame::Audio,
    from: usize,
    to: usize,
    layout: ChannelLayout,
) -> frame::Audio {
    let n = to - from;
    let mut out = frame::Audio::new(frame.format(), n, layout);
    out.set_rate(frame.rate());
    let bytes = frame.format().bytes();
    if frame.is_planar() {
        for p in 0..frame.planes() {
            let src = &frame.data(p)[from * bytes..to * bytes];
            out.data_mut(p)[..n * bytes].copy_from_slice(src);
        }
    } else {
        let ch = frame.channels() as usize;
        let src = &frame.data(0)[from * bytes * ch..to * bytes * ch];
        out.data_mut(0)[..n * bytes * ch].copy_from_slice(src);
    }
    out
}
