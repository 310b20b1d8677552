//! H.264 smart cut: copy the whole GOPs that start at an IDR inside a section, re-encode only
//! the partial GOPs at each cut edge, and write everything through one muxer.
//!
//! Eligibility is strict (see [`eligibility`]); anything it refuses goes through the full
//! re-encode with the reason recorded.
//!
//! **Parameter sets.** The copied GOPs reference the source's SPS/PPS; the re-encoded edges come
//! from our own libx264 with its own SPS/PPS. Putting the encoder's sets in-band under the same
//! ids (0) would overwrite the source's mid-stream and force the source's to be re-inserted
//! in front of the next copied IDR, which changes copied packets (no longer byte-identical) and
//! is exactly the "SPS change" that trips hardware decoders. Instead the edge encoder is told to
//! number its sets with an id the source does not use (x264 `sps-id`), and the output's `avcC`
//! lists both: the source's sets and the encoder's. Every set a slice references is then in the
//! sample entry from the start (valid `avc1`, nothing is ever redefined), copied packets stay
//! byte-identical, and as a belt-and-braces for players that only read the first entry of an
//! `avcC`, the encoder's sets are also repeated in-band at the start of each re-encoded run (an
//! identical repeat of a set already in the sample entry, which decoders treat as a no-op).
//! Sources must share one set of parameter sets (OBS segments of one recording do).
//!
//! **Timestamps.** The output time base is one tick per frame. Each packet's PTS is its output
//! frame; DTS is rebuilt for the whole output in decode order as `k - D` (k = the packet's
//! position, D = the largest reorder depth of any piece), so DTS is monotonic across joins and
//! never exceeds PTS.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use ffmpeg::codec::Id as CodecId;
use ffmpeg::format::Pixel;
use ffmpeg::{Dictionary, Packet, Rational, codec, encoder, frame};
use ffmpeg_next as ffmpeg;

use crate::audio::EncodedAudio;
use crate::mux::{Muxer, file_digest};
use crate::plan::{Plan, frame_pts, pts_frame};
use crate::verify::CopyRecord;
use crate::{RenderError, RenderMethod, RenderProfile, RenderReport};

/// CRF of the re-encoded edges: near-transparent, so an edge frame is indistinguishable from
/// its copied neighbours; the edges are a few seconds per cut, so the bits do not matter.
pub const EDGE_CRF: u32 = 14;

/// One video packet of a source, in decode order.
#[derive(Debug, Clone, Copy)]
struct IndexedPacket {
    pts: i64,
    /// Display position (frame number at the source's rate).
    frame: u64,
    is_idr: bool,
}

/// A closed GOP: packets `[first_packet, end_packet)` showing frames `[first_frame, end_frame)`.
#[derive(Debug, Clone, Copy)]
struct Gop {
    first_packet: usize,
    end_packet: usize,
    first_frame: u64,
    end_frame: u64,
}

/// The demux-only index of one source.
#[derive(Debug)]
struct SourceIndex {
    packets: Vec<IndexedPacket>,
    gops: Vec<Gop>,
    /// Largest (decode position - display position) inside any GOP.
    reorder_depth: u64,
}

impl SourceIndex {
    fn frames(&self) -> u64 {
        self.packets.len() as u64
    }

    /// The GOP showing `frame`.
    fn gop_of(&self, frame: u64) -> usize {
        self.gops.partition_point(|g| g.end_frame <= frame)
    }
}

/// What [`eligibility`] found: everything the smart cut needs.
pub struct SmartIndex {
    indexes: HashMap<usize, SourceIndex>,
    avcc: Avcc,
    /// The video parameters of the first used source (size, pix_fmt, profile, colour).
    source_params: ffmpeg::codec::Parameters,
    /// The source's `has_b_frames` (reorder delay its SPS declares).
    video_delay: i32,
    /// Parameter-set id for the edge encoder, unused by the sources.
    encoder_ps_id: u32,
}

/// Checks that `plan` can be smart-cut and indexes the sources it uses (demux only). `Err`
/// is the reason it cannot, in words, for the task record.
pub fn eligibility(plan: &Plan) -> Result<SmartIndex, String> {
    crate::init();
    if !plan.overlays.is_empty() {
        return Err("the cut list has overlays".into());
    }
    if plan.has_transitions() {
        return Err("the cut list has fades or crossfades".into());
    }
    let mut used: Vec<usize> = plan.items.iter().map(|i| i.source).collect();
    used.sort_unstable();
    used.dedup();
    let first = &plan.sources[plan.items[0].source];
    if plan.width != first.width || plan.height != first.height {
        return Err(format!(
            "the profile's size {}x{} differs from the source's {}x{}",
            plan.width, plan.height, first.width, first.height
        ));
    }
    if encoder::find_by_name("libx264").is_none() {
        return Err("this FFmpeg has no libx264 for the edges".into());
    }
    let mut reference: Option<(ffmpeg::codec::Parameters, Avcc, i32)> = None;
    let mut indexes = HashMap::new();
    for &s in &used {
        let src = &plan.sources[s];
        let name = src.path.display().to_string();
        let why = |m: String| format!("{name}: {m}");
        if src.video_streams != 1 {
            return Err(why(format!("has {} video tracks", src.video_streams)));
        }
        if src.fps != plan.fps {
            return Err(why(format!(
                "frame rate {} differs from the output's {}",
                src.fps, plan.fps
            )));
        }
        if (src.width, src.height) != (plan.width, plan.height) {
            return Err(why(format!(
                "size {}x{} differs from the output's",
                src.width, src.height
            )));
        }
        let ictx = ffmpeg::format::input(&src.path).map_err(|e| why(e.to_string()))?;
        let stream = ictx
            .stream(src.video_index)
            .ok_or_else(|| why("no video".into()))?;
        let params = stream.parameters();
        if params.id() != CodecId::H264 {
            return Err(why(format!("video codec is {:?}, not H.264", params.id())));
        }
        // SAFETY: plain field reads.
        let (format, field_order, profile_idc, delay, extradata) = unsafe {
            let p = params.as_ptr();
            let extra = if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
            };
            (
                (*p).format,
                (*p).field_order,
                (*p).profile,
                (*p).video_delay,
                extra,
            )
        };
        let pix =
            Pixel::from(unsafe { std::mem::transmute::<i32, ffmpeg::ffi::AVPixelFormat>(format) });
        if !matches!(pix, Pixel::YUV420P | Pixel::YUVJ420P) {
            return Err(why(format!("pixel format {pix:?} is not 8-bit 4:2:0")));
        }
        use ffmpeg::ffi::AVFieldOrder::*;
        if !matches!(field_order, AV_FIELD_PROGRESSIVE | AV_FIELD_UNKNOWN) {
            return Err(why("the video is interlaced".into()));
        }
        if x264_profile(profile_idc).is_none() {
            return Err(why(format!(
                "H.264 profile {profile_idc} is not baseline/main/high"
            )));
        }
        let avcc = Avcc::parse(&extradata).map_err(why)?;
        if avcc.nal_length_size != 4 {
            return Err(why(format!(
                "NAL lengths are {} bytes, not 4",
                avcc.nal_length_size
            )));
        }
        match &reference {
            None => reference = Some((params.clone(), avcc.clone(), delay)),
            Some((_, a, _)) => {
                if a.sps != avcc.sps || a.pps != avcc.pps {
                    return Err(why(
                        "its SPS/PPS differ from the first source's (one sample entry cannot hold both)"
                            .into(),
                    ));
                }
            }
        }
        drop(ictx);
        let index = index_source(src, &avcc).map_err(why)?;
        for item in plan.items.iter().filter(|i| i.source == s) {
            if item.end_frame > index.frames() {
                return Err(why(format!(
                    "a section ends at frame {} but the file has {} frames",
                    item.end_frame,
                    index.frames()
                )));
            }
        }
        indexes.insert(s, index);
    }
    let (source_params, avcc, video_delay) = reference.expect("at least one item");
    let encoder_ps_id = avcc
        .free_ps_id()
        .ok_or_else(|| "the sources use every parameter-set id".to_string())?;
    Ok(SmartIndex {
        indexes,
        avcc,
        source_params,
        video_delay,
        encoder_ps_id,
    })
}

/// The x264 profile name for an H.264 `profile_idc` that 8-bit 4:2:0 smart cut supports.
fn x264_profile(profile_idc: i32) -> Option<&'static str> {
    match profile_idc {
        66 | 578 => Some("baseline"),
        77 => Some("main"),
        100 => Some("high"),
        _ => None,
    }
}

/// Demuxes the video of `src` (no decoding) and checks what copying needs: every packet a
/// whole frame with 4-byte NAL lengths, a constant frame rate with no gaps, closed GOPs that
/// start at IDRs (no open-GOP I frames, no recovery points, no intra refresh).
fn index_source(src: &crate::plan::SourceInfo, avcc: &Avcc) -> Result<SourceIndex, String> {
    let mut ictx = ffmpeg::format::input(&src.path).map_err(|e| e.to_string())?;
    discard_all_but(&mut ictx, src.video_index);
    let (fps, tb) = (src.fps, src.time_base);
    let mut packets = Vec::new();
    let mut packet = Packet::empty();
    let tick_s = f64::from(tb);
    let tolerance = if tick_s * 4.0 <= src.frame_seconds() {
        1
    } else {
        0
    };
    loop {
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(e) => return Err(format!("reading the video: {e}")),
        }
        if packet.stream() != src.video_index {
            continue;
        }
        let n = packets.len();
        let pts = packet
            .pts()
            .ok_or_else(|| format!("video packet {n} has no timestamp"))?;
        let f = pts_frame(pts, fps, tb, src.start_pts);
        if f < 0 {
            return Err(format!("video packet {n} is before the first frame"));
        }
        let f = f as u64;
        if (pts - frame_pts(f, fps, tb, src.start_pts)).abs() > tolerance {
            return Err(format!(
                "not constant frame rate: packet {n} at {pts} is off the {fps} grid"
            ));
        }
        let data = packet.data().unwrap_or_default();
        let nals = split_length_prefixed(data, 4)
            .ok_or_else(|| format!("video packet {n} is not made of 4-byte-length NAL units"))?;
        let mut is_idr = false;
        let mut recovery_point = false;
        let mut intra = false;
        for nal in &nals {
            let Some(&h) = nal.first() else { continue };
            match h & 0x1f {
                5 => is_idr = true,
                1 => intra |= slice_is_intra(nal),
                6 => recovery_point |= sei_has_recovery_point(nal),
                7 if !avcc.sps.iter().any(|s| s == nal) => {
                    return Err(format!(
                        "video packet {n} carries an SPS that differs from the header's"
                    ));
                }
                8 if !avcc.pps.iter().any(|s| s == nal) => {
                    return Err(format!(
                        "video packet {n} carries a PPS that differs from the header's"
                    ));
                }
                _ => {}
            }
        }
        if !is_idr && (packet.is_key() || recovery_point) {
            return Err(if intra {
                format!(
                    "open GOP: frame {f} is a non-IDR I frame used as a random access point (recovery point); only IDRs are safe copy starts"
                )
            } else {
                format!(
                    "intra refresh: frame {f} is a recovery point without an IDR or I frame (the stream refreshes gradually)"
                )
            });
        }
        if n == 0 && !is_idr {
            return Err("the video does not start with an IDR".into());
        }
        packets.push(IndexedPacket {
            pts,
            frame: f,
            is_idr,
        });
    }
    if packets.is_empty() {
        return Err("the video track has no packets".into());
    }
    // Constant rate, no gaps or duplicates: the display positions are exactly 0..n.
    let mut seen = vec![false; packets.len()];
    for p in &packets {
        match seen.get_mut(p.frame as usize) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(format!(
                    "not constant frame rate: frame {} is duplicated or beyond the {} packets",
                    p.frame,
                    packets.len()
                ));
            }
        }
    }
    // GOPs: from each IDR to the next, each showing a contiguous range that starts at its IDR.
    let starts: Vec<usize> = (0..packets.len()).filter(|&i| packets[i].is_idr).collect();
    let mut gops = Vec::with_capacity(starts.len());
    let mut reorder_depth = 0;
    for (g, &first) in starts.iter().enumerate() {
        let end = starts.get(g + 1).copied().unwrap_or(packets.len());
        let first_frame = packets[first].frame;
        let (mut lo, mut hi) = (u64::MAX, 0);
        for (k, p) in packets[first..end].iter().enumerate() {
            lo = lo.min(p.frame);
            hi = hi.max(p.frame);
            if p.frame >= first_frame {
                reorder_depth = reorder_depth.max((k as u64).saturating_sub(p.frame - first_frame));
            }
        }
        if lo != first_frame || hi - lo + 1 != (end - first) as u64 {
            return Err(format!(
                "open GOP: the GOP at frame {first_frame} shows frames outside its own range (leading pictures)"
            ));
        }
        gops.push(Gop {
            first_packet: first,
            end_packet: end,
            first_frame,
            end_frame: first_frame + (end - first) as u64,
        });
    }
    Ok(SourceIndex {
        packets,
        gops,
        reorder_depth,
    })
}

fn discard_all_but(ictx: &mut ffmpeg::format::context::Input, keep: usize) {
    // SAFETY: `discard` is a plain field the demuxer reads.
    unsafe {
        let ctx = ictx.as_mut_ptr();
        for i in 0..(*ctx).nb_streams as usize {
            if i != keep {
                (**(*ctx).streams.add(i)).discard = ffmpeg::ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
}

/// A piece of the output video.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// Copy GOPs `[first_gop, end_gop)` of `source` unchanged.
    Copy {
        source: usize,
        first_gop: usize,
        end_gop: usize,
        /// Source frame shown at `out_start`.
        src_frame: u64,
        out_start: u64,
    },
    /// Decode and re-encode source frames `[start, end)`.
    Encode {
        source: usize,
        start: u64,
        end: u64,
        out_start: u64,
    },
}

/// Splits every item into re-encoded edges and copied whole GOPs.
fn segments(plan: &Plan, idx: &SmartIndex) -> Vec<Segment> {
    let mut out = Vec::new();
    for item in &plan.items {
        let index = &idx.indexes[&item.source];
        let (s, e) = (item.start_frame, item.end_frame);
        let o = |f: u64| item.out_start + (f - s);
        // Whole GOPs inside [s, e).
        let first = index.gops.partition_point(|g| g.first_frame < s);
        let mut end = first;
        while end < index.gops.len() && index.gops[end].end_frame <= e {
            end += 1;
        }
        if end == first {
            out.push(Segment::Encode {
                source: item.source,
                start: s,
                end: e,
                out_start: o(s),
            });
            continue;
        }
        let (cs, ce) = (index.gops[first].first_frame, index.gops[end - 1].end_frame);
        if s < cs {
            out.push(Segment::Encode {
                source: item.source,
                start: s,
                end: cs,
                out_start: o(s),
            });
        }
        out.push(Segment::Copy {
            source: item.source,
            first_gop: first,
            end_gop: end,
            src_frame: cs,
            out_start: o(cs),
        });
        if ce < e {
            out.push(Segment::Encode {
                source: item.source,
                start: ce,
                end: e,
                out_start: o(ce),
            });
        }
    }
    out
}

/// The finished smart cut, before verification.
pub struct SmartOutput {
    pub report: RenderReport,
    /// Which output packets were copied from where (for [`crate::verify::verify`]).
    pub copies: Vec<CopyRecord>,
}

/// A source opened for reading video packets in decode order, with a decoder for the edges.
struct SourceReader {
    ictx: ffmpeg::format::context::Input,
    video_index: usize,
    /// Index (in the source's [`SourceIndex`]) of the packet the next read returns.
    next: usize,
    /// Packet `next`, already read while walking to it after a seek.
    pending: Option<Packet>,
    decoder: ffmpeg::decoder::Video,
}

impl SourceReader {
    fn open(src: &crate::plan::SourceInfo) -> Result<Self, RenderError> {
        let mut ictx = ffmpeg::format::input(&src.path)
            .map_err(|e| RenderError::failed(&src.path.display().to_string(), e))?;
        discard_all_but(&mut ictx, src.video_index);
        let mut ctx = codec::context::Context::from_parameters(
            ictx.stream(src.video_index).expect("probed").parameters(),
        )
        .map_err(|e| RenderError::failed("video decoder", e))?;
        ctx.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let decoder = ctx
            .decoder()
            .video()
            .map_err(|e| RenderError::failed("opening the video decoder", e))?;
        Ok(Self {
            ictx,
            video_index: src.video_index,
            next: 0,
            pending: None,
            decoder,
        })
    }

    fn read_raw(&mut self) -> Result<Packet, RenderError> {
        let mut p = Packet::empty();
        loop {
            p.read(&mut self.ictx)
                .map_err(|e| RenderError::failed("reading a source packet", e))?;
            if p.stream() == self.video_index {
                return Ok(p);
            }
        }
    }

    /// The next video packet, checked against the index.
    fn read(&mut self, index: &SourceIndex) -> Result<Packet, RenderError> {
        let k = self.next;
        let p = match self.pending.take() {
            Some(p) => p,
            None => self.read_raw()?,
        };
        let expected = index.packets.get(k).map(|p| p.pts);
        if p.pts() != expected {
            return Err(RenderError::Failed(format!(
                "source packet {k} has timestamp {:?}, the index says {expected:?}",
                p.pts()
            )));
        }
        self.next += 1;
        Ok(p)
    }

    /// Positions the reader so that the next [`SourceReader::read`] returns packet `k`, an IDR
    /// (reading forward when it is close, seeking otherwise).
    fn goto(&mut self, k: usize, index: &SourceIndex) -> Result<(), RenderError> {
        const READ_AHEAD: usize = 600;
        if self.next == k {
            return Ok(());
        }
        if k > self.next && k - self.next <= READ_AHEAD {
            while self.next < k {
                self.read(index)?;
            }
            return Ok(());
        }
        let target = index.packets[k].pts;
        // SAFETY: a plain seek on the open context, in the video stream's time base.
        let ret = unsafe {
            ffmpeg::ffi::av_seek_frame(
                self.ictx.as_mut_ptr(),
                self.video_index as i32,
                target,
                ffmpeg::ffi::AVSEEK_FLAG_BACKWARD,
            )
        };
        if ret < 0 {
            return Err(RenderError::failed(
                "seeking in a source",
                ffmpeg::Error::from(ret),
            ));
        }
        // The demuxer lands on a keyframe at or before the target; walk to it.
        for _ in 0..index.packets.len() {
            let p = self.read_raw()?;
            if p.pts() == Some(target) {
                self.next = k;
                self.pending = Some(p);
                return Ok(());
            }
        }
        Err(RenderError::Failed(format!(
            "seeking did not reach the packet at {target}"
        )))
    }
}

/// Everything smart cut keeps while writing.
struct Writer<'a, 'm> {
    mux: Muxer<'m>,
    /// Packets written (decode positions).
    written: u64,
    reorder: u64,
    copies: Vec<CopyRecord>,
    copied: u64,
    reencoded: u64,
    progress: &'a mut dyn FnMut(f64),
    total: u64,
}

impl Writer<'_, '_> {
    fn write(&mut self, mut p: Packet, out_frame: u64) -> Result<(), RenderError> {
        let k = self.written;
        if out_frame + self.reorder < k {
            return Err(RenderError::Failed(format!(
                "output frame {out_frame} is decoded at position {k}, deeper than the reorder delay {}",
                self.reorder
            )));
        }
        p.set_pts(Some(out_frame as i64));
        p.set_dts(Some(k as i64 - self.reorder as i64));
        p.set_duration(1);
        self.mux.write_video(p)?;
        self.written += 1;
        if self.written.is_multiple_of(256) {
            (self.progress)(self.written as f64 / self.total.max(1) as f64);
        }
        Ok(())
    }
}

/// Renders `plan` by smart cut (the sources already passed [`eligibility`]).
pub fn render_smart(
    plan: &Plan,
    profile: &RenderProfile,
    idx: SmartIndex,
    audio: &EncodedAudio,
    output: &Path,
    progress: &mut dyn FnMut(f64),
) -> Result<SmartOutput, RenderError> {
    let out_tb = plan.fps.invert();
    let segments = segments(plan, &idx);
    let edge = EdgeEncoderConfig::new(plan, profile, &idx)?;
    // One encoder up front: its parameter sets go into the sample entry, its delay into D.
    let (enc_sps, enc_pps, enc_delay) = {
        let enc = edge.open()?;
        let (sps, pps) = annexb_parameter_sets(&extradata_of(&enc));
        if sps.is_empty() || pps.is_empty() {
            return Err(RenderError::Failed(
                "libx264 gave no parameter sets in its header".into(),
            ));
        }
        // SAFETY: plain field read.
        (
            sps,
            pps,
            unsafe { (*enc.as_ptr()).has_b_frames }.max(0) as u64,
        )
    };
    let mut avcc = idx.avcc.clone();
    avcc.sps.extend(enc_sps.iter().cloned());
    avcc.pps.extend(enc_pps.iter().cloned());
    let mut inband = Vec::new();
    for ps in enc_sps.iter().chain(&enc_pps) {
        inband.extend_from_slice(&(ps.len() as u32).to_be_bytes());
        inband.extend_from_slice(ps);
    }
    let mut video_params = idx.source_params.clone();
    set_extradata(&mut video_params, &avcc.write());
    let reorder = idx
        .indexes
        .values()
        .map(|i| i.reorder_depth)
        .max()
        .unwrap_or(0)
        .max(enc_delay);

    let mux = Muxer::new(output, &video_params, out_tb, plan.fps, audio)?;
    let mut w = Writer {
        mux,
        written: 0,
        reorder,
        copies: Vec::new(),
        copied: 0,
        reencoded: 0,
        progress,
        total: plan.total_frames,
    };
    let mut readers: HashMap<usize, SourceReader> = HashMap::new();
    for seg in &segments {
        match *seg {
            Segment::Copy {
                source,
                first_gop,
                end_gop,
                src_frame,
                out_start,
            } => {
                let index = &idx.indexes[&source];
                let reader = reader_for(&mut readers, plan, source)?;
                let (a, b) = (
                    index.gops[first_gop].first_packet,
                    index.gops[end_gop - 1].end_packet,
                );
                reader.goto(a, index)?;
                for k in a..b {
                    let p = reader.read(index)?;
                    let frame = index.packets[k].frame;
                    let data = p.data().unwrap_or_default();
                    w.copies.push(CopyRecord {
                        out_index: w.written,
                        source,
                        source_frame: frame,
                        len: data.len(),
                        hash: packet_hash(data),
                        key: index.packets[k].is_idr,
                    });
                    let mut out = Packet::copy(data);
                    out.set_flags(p.flags());
                    w.write(out, out_start + (frame - src_frame))?;
                    w.copied += 1;
                }
            }
            Segment::Encode {
                source,
                start,
                end,
                out_start,
            } => {
                let index = &idx.indexes[&source];
                let reader = reader_for(&mut readers, plan, source)?;
                let packets = encode_edge(
                    reader,
                    &plan.sources[source],
                    index,
                    &edge,
                    &enc_sps,
                    &enc_pps,
                    (start, end),
                    out_start,
                )?;
                let mut first = true;
                for (mut p, frame) in packets {
                    if first {
                        // In-band copy of the encoder's sets (see the module comment).
                        let mut data = inband.clone();
                        data.extend_from_slice(p.data().unwrap_or_default());
                        let flags = p.flags();
                        let pts = p.pts();
                        p = Packet::copy(&data);
                        p.set_flags(flags);
                        p.set_pts(pts);
                        first = false;
                    }
                    w.write(p, frame)?;
                }
                w.reencoded += end - start;
            }
        }
    }
    if w.written != plan.total_frames {
        return Err(RenderError::Failed(format!(
            "wrote {} video frames, the plan has {}",
            w.written, plan.total_frames
        )));
    }
    let (copied, reencoded, copies) = (w.copied, w.reencoded, std::mem::take(&mut w.copies));
    w.mux.finish()?;
    let (bytes, sha256) = file_digest(output)?;
    Ok(SmartOutput {
        report: RenderReport {
            method: RenderMethod::SmartCut,
            fallback_reason: None,
            frames: plan.total_frames,
            duration_s: plan.duration_s(),
            copied_packets: copied,
            reencoded_frames: reencoded,
            bytes,
            sha256,
            width: plan.width,
            height: plan.height,
            fps: (plan.fps.numerator(), plan.fps.denominator()),
        },
        copies,
    })
}

fn reader_for<'r>(
    readers: &'r mut HashMap<usize, SourceReader>,
    plan: &Plan,
    source: usize,
) -> Result<&'r mut SourceReader, RenderError> {
    if !readers.contains_key(&source) {
        // One source open at a time: items usually walk the sources in order.
        readers.clear();
        readers.insert(source, SourceReader::open(&plan.sources[source])?);
    }
    Ok(readers.get_mut(&source).expect("inserted above"))
}

/// 64-bit hash of a packet's bytes, for the copied-packet check.
pub fn packet_hash(data: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// The edge encoder, matched to the source.
struct EdgeEncoderConfig {
    width: u32,
    height: u32,
    format: Pixel,
    time_base: Rational,
    fps: Rational,
    max_b_frames: i32,
    sar: Rational,
    color: (i32, i32, i32, i32, i32),
    profile: &'static str,
    level: i32,
    preset: String,
    ps_id: u32,
}

impl EdgeEncoderConfig {
    fn new(plan: &Plan, profile: &RenderProfile, idx: &SmartIndex) -> Result<Self, RenderError> {
        // SAFETY: plain field reads of owned parameters.
        let p = unsafe { &*idx.source_params.as_ptr() };
        Ok(Self {
            width: p.width as u32,
            height: p.height as u32,
            format: Pixel::from(unsafe {
                std::mem::transmute::<i32, ffmpeg::ffi::AVPixelFormat>(p.format)
            }),
            time_base: plan.fps.invert(),
            fps: plan.fps,
            max_b_frames: idx.video_delay.max(0),
            sar: p.sample_aspect_ratio.into(),
            color: (
                p.color_range as i32,
                p.color_primaries as i32,
                p.color_trc as i32,
                p.color_space as i32,
                p.chroma_location as i32,
            ),
            profile: x264_profile(p.profile)
                .ok_or_else(|| RenderError::Failed("unsupported H.264 profile".into()))?,
            level: p.level,
            preset: profile.preset.clone(),
            ps_id: idx.encoder_ps_id,
        })
    }

    fn open(&self) -> Result<encoder::Video, RenderError> {
        let codec = encoder::find_by_name("libx264")
            .ok_or_else(|| RenderError::Failed("no libx264 in this FFmpeg".into()))?;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| RenderError::failed("edge encoder", e))?;
        enc.set_width(self.width);
        enc.set_height(self.height);
        enc.set_format(self.format);
        enc.set_time_base(self.time_base);
        enc.set_frame_rate(Some(self.fps));
        enc.set_max_b_frames(self.max_b_frames as usize);
        enc.set_aspect_ratio(self.sar);
        // An edge is shorter than a source GOP: one IDR at its start is all it needs.
        enc.set_gop(10_000);
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
        // SAFETY: plain field writes before opening.
        unsafe {
            let c = enc.as_mut_ptr();
            (*c).color_range = std::mem::transmute::<i32, ffmpeg::ffi::AVColorRange>(self.color.0);
            (*c).color_primaries =
                std::mem::transmute::<i32, ffmpeg::ffi::AVColorPrimaries>(self.color.1);
            (*c).color_trc = std::mem::transmute::<i32, ffmpeg::ffi::AVColorTransferCharacteristic>(
                self.color.2,
            );
            (*c).colorspace = std::mem::transmute::<i32, ffmpeg::ffi::AVColorSpace>(self.color.3);
            (*c).chroma_sample_location =
                std::mem::transmute::<i32, ffmpeg::ffi::AVChromaLocation>(self.color.4);
        }
        let mut opts = Dictionary::new();
        opts.set("preset", &self.preset);
        opts.set("crf", &EDGE_CRF.to_string());
        opts.set("profile", self.profile);
        if self.level > 0 {
            opts.set("level", &format!("{}.{}", self.level / 10, self.level % 10));
        }
        opts.set(
            "x264-params",
            &format!("sps-id={}:open-gop=0:scenecut=0", self.ps_id),
        );
        enc.open_with(opts)
            .map_err(|e| RenderError::failed("opening the edge encoder (libx264)", e))
    }
}

fn extradata_of(enc: &encoder::Video) -> Vec<u8> {
    // SAFETY: plain field reads of an opened encoder.
    unsafe {
        let c = enc.as_ptr();
        if (*c).extradata.is_null() || (*c).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*c).extradata, (*c).extradata_size as usize).to_vec()
        }
    }
}

fn set_extradata(params: &mut ffmpeg::codec::Parameters, data: &[u8]) {
    // SAFETY: replaces the owned extradata with a padded av_malloc'd copy, as FFmpeg expects.
    unsafe {
        let p = params.as_mut_ptr();
        ffmpeg::ffi::av_freep(&mut (*p).extradata as *mut *mut u8 as *mut std::ffi::c_void);
        let pad = ffmpeg::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffmpeg::ffi::av_mallocz(data.len() + pad) as *mut u8;
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        (*p).extradata = buf;
        (*p).extradata_size = data.len() as i32;
    }
}

/// Decodes source frames `[start, end)` (from the IDR that opens their GOP) and encodes them
/// with a fresh edge encoder; returns the packets (length-prefixed) with their output frames.
#[allow(clippy::too_many_arguments)]
fn encode_edge(
    reader: &mut SourceReader,
    src: &crate::plan::SourceInfo,
    index: &SourceIndex,
    edge: &EdgeEncoderConfig,
    sps: &[Vec<u8>],
    pps: &[Vec<u8>],
    (start, end): (u64, u64),
    out_start: u64,
) -> Result<Vec<(Packet, u64)>, RenderError> {
    let mut enc = edge.open()?;
    let (esps, epps) = annexb_parameter_sets(&extradata_of(&enc));
    if esps != sps || epps != pps {
        return Err(RenderError::Failed(
            "the edge encoder's parameter sets changed between runs".into(),
        ));
    }
    let g = index.gop_of(start);
    reader.goto(index.gops[g].first_packet, index)?;
    reader.decoder.flush();
    let last_packet = index.gops[index.gop_of(end - 1)].end_packet;
    let mut frame = frame::Video::empty();
    let mut out = Vec::new();
    let mut next_frame = start;
    let fed = |frame: &mut frame::Video,
               enc: &mut encoder::Video,
               out: &mut Vec<(Packet, u64)>,
               next_frame: &mut u64|
     -> Result<(), RenderError> {
        let Some(ts) = frame.pts().or(frame.timestamp()) else {
            return Err(RenderError::Failed(
                "a decoded frame has no timestamp".into(),
            ));
        };
        let f = pts_frame(ts, src.fps, src.time_base, src.start_pts);
        if f < start as i64 || f >= end as i64 {
            return Ok(());
        }
        if f as u64 != *next_frame {
            return Err(RenderError::Failed(format!(
                "decoded frame {f} where frame {next_frame} was expected"
            )));
        }
        *next_frame += 1;
        frame.set_pts(Some((out_start + (f as u64 - start)) as i64));
        // Do not let the source's picture types force the encoder's.
        frame.set_kind(ffmpeg::picture::Type::None);
        enc.send_frame(frame)
            .map_err(|e| RenderError::failed("encoding an edge frame", e))?;
        drain_encoder(enc, out)
    };
    let mut k = reader.next;
    while k < last_packet && next_frame < end {
        let p = reader.read(index)?;
        k += 1;
        reader
            .decoder
            .send_packet(&p)
            .map_err(|e| RenderError::failed("decoding the source", e))?;
        while reader.decoder.receive_frame(&mut frame).is_ok() {
            fed(&mut frame, &mut enc, &mut out, &mut next_frame)?;
        }
    }
    if next_frame < end {
        reader
            .decoder
            .send_eof()
            .map_err(|e| RenderError::failed("decoding the source", e))?;
        while reader.decoder.receive_frame(&mut frame).is_ok() {
            fed(&mut frame, &mut enc, &mut out, &mut next_frame)?;
        }
    }
    // The decoder was drained or left mid-stream: the next use seeks and flushes it.
    reader.decoder.flush();
    if next_frame != end {
        return Err(RenderError::Failed(format!(
            "decoding stopped at frame {next_frame}, the edge ends at {end}"
        )));
    }
    enc.send_eof()
        .map_err(|e| RenderError::failed("finishing an edge", e))?;
    drain_encoder(&mut enc, &mut out)?;
    if out.len() as u64 != end - start {
        return Err(RenderError::Failed(format!(
            "the edge encoder gave {} packets for {} frames",
            out.len(),
            end - start
        )));
    }
    Ok(out)
}

fn drain_encoder(
    enc: &mut encoder::Video,
    out: &mut Vec<(Packet, u64)>,
) -> Result<(), RenderError> {
    let mut p = Packet::empty();
    while enc.receive_packet(&mut p).is_ok() {
        let frame = p
            .pts()
            .ok_or_else(|| RenderError::Failed("an encoded packet has no timestamp".into()))?;
        let data = to_length_prefixed(p.data().unwrap_or_default());
        let mut q = Packet::copy(&data);
        q.set_flags(p.flags());
        q.set_pts(Some(frame));
        out.push((q, frame as u64));
    }
    Ok(())
}

// ---- H.264 bitstream helpers ------------------------------------------------------------------

/// `AVCDecoderConfigurationRecord` (the `avcC` box / Matroska CodecPrivate).
#[derive(Debug, Clone, PartialEq)]
pub struct Avcc {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    pub nal_length_size: usize,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
    /// Bytes after the PPS list (the High-profile chroma/bit-depth extension), kept verbatim.
    pub tail: Vec<u8>,
}

impl Avcc {
    pub fn parse(d: &[u8]) -> Result<Self, String> {
        if d.len() < 7 || d[0] != 1 {
            return Err("the H.264 header is not an avcC record (Annex B stream?)".into());
        }
        let nal_length_size = usize::from(d[4] & 3) + 1;
        let mut pos = 5;
        let list = |count_mask: u8, pos: &mut usize| -> Result<Vec<Vec<u8>>, String> {
            let n = d.get(*pos).ok_or("truncated avcC")? & count_mask;
            *pos += 1;
            let mut v = Vec::new();
            for _ in 0..n {
                let len = u16::from_be_bytes([
                    *d.get(*pos).ok_or("truncated avcC")?,
                    *d.get(*pos + 1).ok_or("truncated avcC")?,
                ]) as usize;
                *pos += 2;
                v.push(d.get(*pos..*pos + len).ok_or("truncated avcC")?.to_vec());
                *pos += len;
            }
            Ok(v)
        };
        let sps = list(0x1f, &mut pos)?;
        let pps = list(0xff, &mut pos)?;
        if sps.is_empty() || pps.is_empty() {
            return Err("the avcC record has no SPS or no PPS".into());
        }
        Ok(Self {
            profile: d[1],
            compatibility: d[2],
            level: d[3],
            nal_length_size,
            sps,
            pps,
            tail: d[pos..].to_vec(),
        })
    }

    pub fn write(&self) -> Vec<u8> {
        let mut d = vec![
            1,
            self.profile,
            self.compatibility,
            self.level,
            0xfc | (self.nal_length_size as u8 - 1),
            0xe0 | self.sps.len() as u8,
        ];
        for s in &self.sps {
            d.extend_from_slice(&(s.len() as u16).to_be_bytes());
            d.extend_from_slice(s);
        }
        d.push(self.pps.len() as u8);
        for p in &self.pps {
            d.extend_from_slice(&(p.len() as u16).to_be_bytes());
            d.extend_from_slice(p);
        }
        d.extend_from_slice(&self.tail);
        d
    }

    /// The smallest id in 1..=31 used by none of the SPS and PPS.
    fn free_ps_id(&self) -> Option<u32> {
        let mut used = Vec::new();
        for s in &self.sps {
            let rbsp = unescape(&s[1..]);
            let mut r = BitReader::new(&rbsp);
            r.skip(24);
            used.extend(r.ue());
        }
        for p in &self.pps {
            let rbsp = unescape(&p[1..]);
            let mut r = BitReader::new(&rbsp);
            used.extend(r.ue());
        }
        (1..=31).find(|id| !used.contains(id))
    }
}

/// NAL units of a sample with `len_size`-byte big-endian lengths; `None` if they do not add up.
fn split_length_prefixed(data: &[u8], len_size: usize) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len_bytes = data.get(pos..pos + len_size)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        pos += len_size;
        out.push(data.get(pos..pos + len)?);
        pos += len;
    }
    Some(out)
}

/// NAL units of an Annex B byte stream (start codes 00 00 01 / 00 00 00 01).
fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let mut e = starts.get(n + 1).map(|&x| x - 3).unwrap_or(data.len());
        // Trailing zero bytes belong to the next (4-byte) start code.
        while e > s && data[e - 1] == 0 && n + 1 < starts.len() {
            e -= 1;
        }
        out.push(&data[s..e]);
    }
    out
}

fn is_annexb(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}

/// An encoder packet as 4-byte-length-prefixed NAL units (the source's sample layout).
fn to_length_prefixed(data: &[u8]) -> Vec<u8> {
    if !is_annexb(data) {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in split_annexb(data) {
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// SPS and PPS NAL units from an encoder's extradata (Annex B, or avcC).
fn annexb_parameter_sets(extra: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    if let Ok(a) = Avcc::parse(extra) {
        return (a.sps, a.pps);
    }
    let (mut sps, mut pps) = (Vec::new(), Vec::new());
    for nal in split_annexb(extra) {
        match nal.first().map(|h| h & 0x1f) {
            Some(7) => sps.push(nal.to_vec()),
            Some(8) => pps.push(nal.to_vec()),
            _ => {}
        }
    }
    (sps, pps)
}

/// RBSP of a NAL payload: emulation-prevention bytes (00 00 03) removed.
fn unescape(d: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.len());
    let mut zeros = 0;
    for &b in d {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct BitReader<'a> {
    d: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(d: &'a [u8]) -> Self {
        Self { d, bit: 0 }
    }
    fn skip(&mut self, n: usize) {
        self.bit += n;
    }
    fn bit(&mut self) -> Option<u32> {
        let b = self.d.get(self.bit / 8)?;
        let v = (b >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Some(u32::from(v))
    }
    /// Exp-Golomb unsigned.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut v = 0u32;
        for _ in 0..zeros {
            v = (v << 1) | self.bit()?;
        }
        Some((1u32 << zeros) - 1 + v)
    }
}

/// Whether a (non-IDR) slice NAL is an I or SI slice.
fn slice_is_intra(nal: &[u8]) -> bool {
    let rbsp = unescape(&nal[1..nal.len().min(16)]);
    let mut r = BitReader::new(&rbsp);
    let _first_mb = r.ue();
    matches!(r.ue().map(|t| t % 5), Some(2) | Some(4))
}

/// Whether an SEI NAL carries a recovery point message (payload type 6).
fn sei_has_recovery_point(nal: &[u8]) -> bool {
    let d = unescape(&nal[1..]);
    let mut pos = 0;
    while pos < d.len() && d[pos] != 0x80 {
        let mut kind = 0usize;
        while d.get(pos) == Some(&0xff) {
            kind += 255;
            pos += 1;
        }
        let Some(&k) = d.get(pos) else { return false };
        kind += usize::from(k);
        pos += 1;
        let mut size = 0usize;
        while d.get(pos) == Some(&0xff) {
            size += 255;
            pos += 1;
        }
        let Some(&s) = d.get(pos) else { return false };
        size += usize::from(s);
        pos += 1;
        if kind == 6 {
            return true;
        }
        pos += size;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annexb_becomes_length_prefixed() {
        let annexb = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9, 9,
        ];
        let out = to_length_prefixed(&annexb);
        assert_eq!(
            out,
            vec![
                0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3, 0, 0, 0, 4, 0x65, 9, 9, 9
            ]
        );
        let nals = split_length_prefixed(&out, 4).unwrap();
        assert_eq!(nals.len(), 3);
        assert!(split_length_prefixed(&out[..out.len() - 1], 4).is_none());
    }

    #[test]
    fn exp_golomb_and_emulation_prevention() {
        // 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3
        let d = [0b1010_0110, 0b0100_0000];
        let mut r = BitReader::new(&d);
        assert_eq!(
            (r.ue(), r.ue(), r.ue(), r.ue()),
            (Some(0), Some(1), Some(2), Some(3))
        );
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }

    #[test]
    fn recovery_point_sei_is_found_after_other_messages() {
        // user data unregistered (5) of 2 bytes, then recovery point (6) of 1 byte.
        let nal = [0x06, 5, 2, 0xaa, 0xbb, 6, 1, 0x84, 0x80];
        assert!(sei_has_recovery_point(&nal));
        assert!(!sei_has_recovery_point(&[0x06, 5, 1, 0xaa, 0x80]));
    }
}
