//! Full re-encode: every output frame is decoded from its source, composed (scale, fades,
//! crossfades, overlays) and encoded with the profile's encoder, then muxed with the episode's
//! audio through the one [`Muxer`].
//!
//! - **Frames.** Each item is decoded from the keyframe before its first frame; a decoded frame
//!   is source frame `round((pts - start_pts) · tb · fps)` (rounded, never floored: OBS's 1 ms
//!   time base). Output frame `k` of an item shows source frame
//!   `start_frame + round((k - out_start) · source fps / output fps)` — the nearest source
//!   frame, so a different output rate drops or repeats frames and never blends them. A frame
//!   missing from the source (a VFR hole) is replaced by the nearest decoded one.
//! - **Size.** Sources are scaled to fit the output size keeping their aspect ratio (pixel
//!   dimensions; square pixels assumed), centred, with black bars where the aspect differs
//!   (letterbox / pillarbox) — a plain stretch would distort 4:3 or phone footage.
//! - **Fades** blend in Y'CbCr (linear in R'G'B' too, as the conversion is affine). With
//!   `j` counting from 0 over an `n`-frame transition, the incoming picture's weight is
//!   `(j+1)/(n+1)`: never all-old or all-new, symmetric, and the middle frame of an odd-length
//!   crossfade is exactly half of each. Item 0 fades in from black, the last item fades out to
//!   black, a later item's `fade_in` crossfades with the previous item's last frames.
//! - **Overlays** are drawn at their native size at `(x, y)` output pixels (clipped at the
//!   edges), on top of fades, during `[out_start, out_start + length)`. `alpha` uses the
//!   overlay's own alpha channel (opaque when it has none); `colorkey` keys out black like the
//!   original's `colorkey=black` (RGB distance ≤ 0.01, no blend) and draws the rest at 0.8
//!   opacity (`colorchannelmixer=aa=0.8`).
//! - **Colour.** Sections are not converted between matrices: the output carries the first
//!   item's source tags (primaries, transfer, matrix; limited range), read from its first
//!   decoded frame since Matroska often keeps them only in the H.264 headers. Overlays (R'G'B'A
//!   internally, where alpha and the colour key live) are converted into that matrix (untagged:
//!   BT.709 from 720 lines up, BT.601 below, as players assume).
//! - **Encoding**: yuv420p, closed GOPs with a keyframe every 2 s, up to 2 B-frames; libx264
//!   (and libx265) take `preset` and `crf`, or `video_bitrate` when set (libx264: no scene-cut
//!   keyframes, so GOPs stay on the 2 s grid); NVENC encoders take `preset` (x264 names mapped
//!   to p1–p7) and `cq`; any other encoder by name gets `preset` and the bit rate if given. An
//!   encoder this FFmpeg lacks or cannot open is `InvalidInput`; on any failure the partial
//!   output file is removed.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{Dictionary, Packet, codec, encoder, frame};
use ffmpeg_next as ffmpeg;
use gt_types::records::OverlayKind;

use crate::audio::EncodedAudio;
use crate::mux::{Muxer, file_digest};
use crate::plan::{Plan, SourceInfo, convert_frames, frame_pts, pts_frame};
use crate::{RenderError, RenderMethod, RenderProfile, RenderReport};

/// Limited-range black.
const BLACK: [u8; 3] = [16, 128, 128];

/// The Y'CbCr matrix (`SWS_CS_*`) a picture of this tag and height is meant in: its tag, or,
/// untagged, what players assume (BT.709 from 720 lines up, BT.601 below).
fn matrix(space: ffmpeg::ffi::AVColorSpace, height: u32) -> i32 {
    use ffmpeg::ffi::AVColorSpace::*;
    match space {
        AVCOL_SPC_BT709 => ffmpeg::ffi::SWS_CS_ITU709,
        AVCOL_SPC_BT470BG | AVCOL_SPC_SMPTE170M => ffmpeg::ffi::SWS_CS_ITU601,
        _ if height >= 720 => ffmpeg::ffi::SWS_CS_ITU709,
        _ => ffmpeg::ffi::SWS_CS_ITU601,
    }
}

/// Tells a scaler which matrices and ranges its input and output use.
fn set_matrices(ctx: &mut scaling::Context, src: (i32, bool), dst: (i32, bool)) {
    // SAFETY: the context is live; the coefficient tables are static in libswscale.
    unsafe {
        ffmpeg::ffi::sws_setColorspaceDetails(
            ctx.as_mut_ptr(),
            ffmpeg::ffi::sws_getCoefficients(src.0),
            i32::from(src.1),
            ffmpeg::ffi::sws_getCoefficients(dst.0),
            i32::from(dst.1),
            0,
            1 << 16,
            1 << 16,
        );
    }
}

/// Colour tags of the output: those of the first item's source (sections are re-encoded
/// without a matrix conversion, so the tags carry over), limited range.
#[derive(Clone, Copy)]
struct Colour {
    primaries: ffmpeg::ffi::AVColorPrimaries,
    transfer: ffmpeg::ffi::AVColorTransferCharacteristic,
    space: ffmpeg::ffi::AVColorSpace,
    /// `SWS_CS_*` of the output.
    matrix: i32,
}

type ColourTags = (
    ffmpeg::ffi::AVColorPrimaries,
    ffmpeg::ffi::AVColorTransferCharacteristic,
    ffmpeg::ffi::AVColorSpace,
);

fn first_frame_colour(src: &SourceInfo) -> Option<ColourTags> {
    let mut ictx = ffmpeg::format::input(&src.path).ok()?;
    let par = ictx.stream(src.video_index)?.parameters();
    let mut decoder = codec::context::Context::from_parameters(par)
        .ok()?
        .decoder()
        .video()
        .ok()?;
    let mut f = frame::Video::empty();
    for (stream, packet) in ictx.packets() {
        if stream.index() != src.video_index || decoder.send_packet(&packet).is_err() {
            continue;
        }
        if decoder.receive_frame(&mut f).is_ok() {
            break;
        }
    }
    if f.width() == 0 {
        let _ = decoder.send_eof();
        decoder.receive_frame(&mut f).ok()?;
    }
    // SAFETY: plain field reads of a decoded frame.
    unsafe {
        let p = f.as_ptr();
        Some(((*p).color_primaries, (*p).color_trc, (*p).colorspace))
    }
}

fn output_colour(plan: &Plan) -> Colour {
    let unspecified = Colour {
        primaries: ffmpeg::ffi::AVColorPrimaries::AVCOL_PRI_UNSPECIFIED,
        transfer: ffmpeg::ffi::AVColorTransferCharacteristic::AVCOL_TRC_UNSPECIFIED,
        space: ffmpeg::ffi::AVColorSpace::AVCOL_SPC_UNSPECIFIED,
        matrix: matrix(
            ffmpeg::ffi::AVColorSpace::AVCOL_SPC_UNSPECIFIED,
            plan.height,
        ),
    };
    let Some(src) = plan.items.first().and_then(|i| plan.sources.get(i.source)) else {
        return unspecified;
    };
    // Matroska often keeps the tags only in the H.264 headers, so they are read from the first
    // decoded frame.
    let Some((primaries, transfer, space)) = first_frame_colour(src) else {
        return unspecified;
    };
    Colour {
        primaries,
        transfer,
        space,
        matrix: matrix(space, plan.height),
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> RenderError {
    RenderError::failed(what, e)
}

/// A tightly packed 4:2:0 picture (the output canvas, or an overlay with its alpha).
#[derive(Clone)]
struct Picture {
    w: usize,
    h: usize,
    /// Y, Cb, Cr (and alpha, full size, for overlays).
    planes: Vec<Vec<u8>>,
}

impl Picture {
    fn black(w: usize, h: usize) -> Self {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Picture {
            w,
            h,
            planes: vec![
                vec![BLACK[0]; w * h],
                vec![BLACK[1]; cw * ch],
                vec![BLACK[2]; cw * ch],
            ],
        }
    }

    fn plane_size(&self, p: usize) -> (usize, usize) {
        if p == 1 || p == 2 {
            (self.w.div_ceil(2), self.h.div_ceil(2))
        } else {
            (self.w, self.h)
        }
    }

    /// Copies planes of a frame (its pixel format must match the picture's layout).
    fn from_frame(f: &frame::Video, planes: usize) -> Self {
        let (w, h) = (f.width() as usize, f.height() as usize);
        let mut pic = Picture {
            w,
            h,
            planes: Vec::with_capacity(planes),
        };
        for p in 0..planes {
            let (pw, ph) = if p == 1 || p == 2 {
                (w.div_ceil(2), h.div_ceil(2))
            } else {
                (w, h)
            };
            let (data, stride) = (f.data(p), f.stride(p));
            let mut out = Vec::with_capacity(pw * ph);
            for row in 0..ph {
                out.extend_from_slice(&data[row * stride..row * stride + pw]);
            }
            pic.planes.push(out);
        }
        pic
    }

    /// `self = self · (1 - a) + other · a`.
    fn blend_toward(&mut self, other: &Picture, a: f32) {
        for (dst, src) in self.planes.iter_mut().zip(&other.planes) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = (f32::from(*d) + (f32::from(*s) - f32::from(*d)) * a).round() as u8;
            }
        }
    }

    /// `self = self · (1 - a) + black · a`.
    fn fade_to_black(&mut self, a: f32) {
        for (p, plane) in self.planes.iter_mut().enumerate() {
            let b = f32::from(BLACK[p]);
            for d in plane.iter_mut() {
                *d = (f32::from(*d) + (b - f32::from(*d)) * a).round() as u8;
            }
        }
    }

    /// Draws `ov` (Y, Cb, Cr, alpha) with its top-left corner at `(x, y)`.
    fn overlay(&mut self, ov: &Picture, x: i64, y: i64) {
        let alpha = &ov.planes[3];
        // Luma: per pixel.
        for oy in 0..ov.h {
            let ty = y + oy as i64;
            if ty < 0 || ty >= self.h as i64 {
                continue;
            }
            for ox in 0..ov.w {
                let tx = x + ox as i64;
                if tx < 0 || tx >= self.w as i64 {
                    continue;
                }
                let a = u32::from(alpha[oy * ov.w + ox]);
                let d = &mut self.planes[0][ty as usize * self.w + tx as usize];
                let s = u32::from(ov.planes[0][oy * ov.w + ox]);
                *d = ((u32::from(*d) * (255 - a) + s * a + 127) / 255) as u8;
            }
        }
        // Chroma: alpha averaged over the 2×2 luma pixels a chroma sample covers.
        let (cw, ch) = self.plane_size(1);
        let (ocw, och) = ov.plane_size(1);
        let (cx, cy) = (x.div_euclid(2), y.div_euclid(2));
        for oy in 0..och {
            let ty = cy + oy as i64;
            if ty < 0 || ty >= ch as i64 {
                continue;
            }
            for ox in 0..ocw {
                let tx = cx + ox as i64;
                if tx < 0 || tx >= cw as i64 {
                    continue;
                }
                let mut sum = 0u32;
                let mut n = 0u32;
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let (ay, ax) = (2 * oy + dy, 2 * ox + dx);
                    if ay < ov.h && ax < ov.w {
                        sum += u32::from(alpha[ay * ov.w + ax]);
                        n += 1;
                    }
                }
                let a = (sum + n / 2) / n.max(1);
                for p in 1..3 {
                    let d = &mut self.planes[p][ty as usize * cw + tx as usize];
                    let s = u32::from(ov.planes[p][oy * ocw + ox]);
                    *d = ((u32::from(*d) * (255 - a) + s * a + 127) / 255) as u8;
                }
            }
        }
    }

    fn to_frame(&self) -> frame::Video {
        let mut f = frame::Video::new(Pixel::YUV420P, self.w as u32, self.h as u32);
        for p in 0..3 {
            let (pw, ph) = self.plane_size(p);
            let stride = f.stride(p);
            let data = f.data_mut(p);
            for row in 0..ph {
                data[row * stride..row * stride + pw]
                    .copy_from_slice(&self.planes[p][row * pw..(row + 1) * pw]);
            }
        }
        f
    }
}

/// How a reader turns decoded frames into pictures.
#[derive(Clone, Copy)]
enum Conversion {
    /// Fit into the output canvas (letterbox), Y'CbCr 4:2:0.
    Canvas { w: u32, h: u32 },
    /// Native size with alpha, for an overlay; converted to the output's matrix (`SWS_CS_*`).
    Overlay(OverlayKind, i32),
}

/// Decodes one source's frames in order from a start frame on and hands out converted
/// pictures by source frame number.
struct FrameReader {
    ictx: ffmpeg::format::context::Input,
    stream: usize,
    decoder: ffmpeg::decoder::Video,
    source: SourceInfo,
    conversion: Conversion,
    scaler: Option<(Pixel, u32, u32, scaling::Context)>,
    /// Second scaler for overlays (RGBA → YUVA420P).
    to_yuva: Option<(u32, u32, scaling::Context)>,
    /// The latest decoded frame at or before the frame asked for, converted.
    current: Option<(i64, Picture)>,
    /// A decoded frame past the frame asked for, not yet converted.
    ahead: Option<(i64, frame::Video)>,
    eof: bool,
    name: String,
}

impl FrameReader {
    fn open(
        source: &SourceInfo,
        start_frame: u64,
        conversion: Conversion,
    ) -> Result<Self, RenderError> {
        let name = source.path.display().to_string();
        let mut ictx = ffmpeg::format::input(&source.path)
            .map_err(|e| RenderError::InvalidInput(format!("{name}: cannot open: {e}")))?;
        let stream = source.video_index;
        let par = ictx
            .stream(stream)
            .ok_or_else(|| RenderError::InvalidInput(format!("{name}: no video stream")))?
            .parameters();
        let mut ctx = codec::context::Context::from_parameters(par)
            .map_err(|e| RenderError::InvalidInput(format!("{name}: video track: {e}")))?;
        ctx.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        // SAFETY: packet time base before opening, as the CLI sets it.
        unsafe {
            (*ctx.as_mut_ptr()).pkt_timebase = source.time_base.into();
        }
        let decoder = ctx.decoder().video().map_err(|e| {
            RenderError::InvalidInput(format!("{name}: cannot open the video decoder: {e}"))
        })?;
        // SAFETY: `discard` is a plain field the demuxer reads; only the video is read.
        unsafe {
            let ctx = ictx.as_mut_ptr();
            for i in 0..(*ctx).nb_streams as usize {
                if i != stream {
                    (**(*ctx).streams.add(i)).discard = ffmpeg::ffi::AVDiscard::AVDISCARD_ALL;
                }
            }
        }
        if start_frame > 0 {
            // Land on the keyframe at or before the first wanted frame.
            let pts = frame_pts(start_frame, source.fps, source.time_base, source.start_pts);
            let us = ffmpeg::Rescale::rescale(&pts, source.time_base, ffmpeg::rescale::TIME_BASE);
            ictx.seek(us, ..us)
                .map_err(|e| failed(&format!("{name}: seeking to frame {start_frame}"), e))?;
        }
        Ok(FrameReader {
            ictx,
            stream,
            decoder,
            source: source.clone(),
            conversion,
            scaler: None,
            to_yuva: None,
            current: None,
            ahead: None,
            eof: false,
            name,
        })
    }

    /// The next decoded frame with its source frame number, or `None` at the end.
    fn decode_next(&mut self) -> Result<Option<(i64, frame::Video)>, RenderError> {
        let mut f = frame::Video::empty();
        loop {
            if self.decoder.receive_frame(&mut f).is_ok() {
                let Some(ts) = f.timestamp().or(f.pts()) else {
                    continue;
                };
                let s = &self.source;
                return Ok(Some((pts_frame(ts, s.fps, s.time_base, s.start_pts), f)));
            }
            if self.eof {
                return Ok(None);
            }
            let mut packet = Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) if packet.stream() == self.stream => {
                    // A damaged packet is skipped; the nearest good frame stands in.
                    let _ = self.decoder.send_packet(&packet);
                }
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => {
                    self.eof = true;
                    let _ = self.decoder.send_eof();
                }
                Err(e) => return Err(failed(&format!("{}: reading video", self.name), e)),
            }
        }
    }

    /// The picture of source frame `want` (or the nearest decoded one).
    fn picture(&mut self, want: u64) -> Result<&Picture, RenderError> {
        let want = want as i64;
        let current_ok = matches!(&self.current, Some((i, _)) if *i == want);
        if !current_ok {
            let mut best: Option<(i64, frame::Video)> = None;
            loop {
                if let Some((i, _)) = &self.ahead
                    && *i > want
                {
                    break;
                }
                let next = match self.ahead.take() {
                    Some(x) => Some(x),
                    None => self.decode_next()?,
                };
                match next {
                    Some((i, f)) if i <= want => best = Some((i, f)),
                    Some(x) => {
                        self.ahead = Some(x);
                        break;
                    }
                    None => break,
                }
                if matches!(&best, Some((i, _)) if *i == want) {
                    break;
                }
            }
            // Nearest of: the best at or before `want`, the current one, the one after.
            let cur_idx = self.current.as_ref().map(|(i, _)| *i);
            let best_idx = best.as_ref().map(|(i, _)| *i);
            let ahead_idx = self.ahead.as_ref().map(|(i, _)| *i);
            let before = best_idx.or(cur_idx);
            let use_ahead = match (before, ahead_idx) {
                (Some(b), Some(a)) => a - want < want - b,
                (None, Some(_)) => true,
                _ => false,
            };
            if use_ahead {
                let (i, f) = self.ahead.take().expect("checked");
                let pic = self.convert(&f)?;
                self.current = Some((i, pic));
            } else if let Some((i, f)) = best {
                let pic = self.convert(&f)?;
                self.current = Some((i, pic));
            } else if self.current.is_none() {
                return Err(RenderError::InvalidInput(format!(
                    "{}: no video frame decodes at or near frame {want}",
                    self.name
                )));
            }
        }
        Ok(&self.current.as_ref().expect("set above").1)
    }

    fn convert(&mut self, f: &frame::Video) -> Result<Picture, RenderError> {
        let (fw, fh) = (f.width(), f.height());
        match self.conversion {
            Conversion::Canvas { w, h } => {
                // Fit keeping the aspect ratio; even sizes and offsets for 4:2:0.
                let scale = f64::min(f64::from(w) / f64::from(fw), f64::from(h) / f64::from(fh));
                let sw = ((f64::from(fw) * scale / 2.0).round() as u32 * 2).clamp(2, w);
                let sh = ((f64::from(fh) * scale / 2.0).round() as u32 * 2).clamp(2, h);
                let scaled = self.scale(f, Pixel::YUV420P, sw, sh)?;
                let small = Picture::from_frame(&scaled, 3);
                if sw == w && sh == h {
                    return Ok(small);
                }
                let mut canvas = Picture::black(w as usize, h as usize);
                let (ox, oy) = (((w - sw) / 4 * 2) as usize, ((h - sh) / 4 * 2) as usize);
                for p in 0..3 {
                    let (pw, ph) = small.plane_size(p);
                    let (cw, _) = canvas.plane_size(p);
                    let (px, py) = if p == 0 { (ox, oy) } else { (ox / 2, oy / 2) };
                    for row in 0..ph {
                        canvas.planes[p][(py + row) * cw + px..(py + row) * cw + px + pw]
                            .copy_from_slice(&small.planes[p][row * pw..(row + 1) * pw]);
                    }
                }
                Ok(canvas)
            }
            Conversion::Overlay(kind, out_matrix) => {
                // Through R'G'B'A: the alpha channel and the colour key are defined there.
                let mut rgba = self.scale(f, Pixel::RGBA, fw, fh)?;
                let stride = rgba.stride(0);
                let data = rgba.data_mut(0);
                for row in 0..fh as usize {
                    for px in data[row * stride..row * stride + 4 * fw as usize].chunks_exact_mut(4)
                    {
                        px[3] = match kind {
                            OverlayKind::Alpha => px[3],
                            OverlayKind::Colorkey => {
                                let (r, g, b) =
                                    (f64::from(px[0]), f64::from(px[1]), f64::from(px[2]));
                                let diff = ((r * r + g * g + b * b) / (255.0 * 255.0 * 3.0)).sqrt();
                                if diff > 0.01 {
                                    (255.0f64 * 0.8).round() as u8
                                } else {
                                    0
                                }
                            }
                        };
                    }
                }
                if self.to_yuva.as_ref().map(|(w, h, _)| (*w, *h)) != Some((fw, fh)) {
                    let ctx = scaling::Context::get(
                        Pixel::RGBA,
                        fw,
                        fh,
                        Pixel::YUVA420P,
                        fw,
                        fh,
                        scaling::Flags::BICUBIC,
                    )
                    .map_err(|e| failed("overlay scaler", e))?;
                    let mut ctx = ctx;
                    set_matrices(&mut ctx, (out_matrix, true), (out_matrix, false));
                    self.to_yuva = Some((fw, fh, ctx));
                }
                let mut yuva = frame::Video::empty();
                self.to_yuva
                    .as_mut()
                    .expect("set above")
                    .2
                    .run(&rgba, &mut yuva)
                    .map_err(|e| failed("overlay conversion", e))?;
                Ok(Picture::from_frame(&yuva, 4))
            }
        }
    }

    fn scale(
        &mut self,
        f: &frame::Video,
        to: Pixel,
        w: u32,
        h: u32,
    ) -> Result<frame::Video, RenderError> {
        let key = (f.format(), f.width(), f.height());
        if self.scaler.as_ref().map(|(p, w, h, _)| (*p, *w, *h)) != Some(key) {
            let mut ctx =
                scaling::Context::get(key.0, key.1, key.2, to, w, h, scaling::Flags::BICUBIC)
                    .map_err(|e| failed("scaler", e))?;
            if to == Pixel::RGBA
                && !matches!(
                    key.0,
                    Pixel::RGBA
                        | Pixel::RGB24
                        | Pixel::BGRA
                        | Pixel::ARGB
                        | Pixel::ABGR
                        | Pixel::RGB48LE
                        | Pixel::RGBA64LE
                )
            {
                // A Y'CbCr overlay: read it in its own matrix and range.
                // SAFETY: plain field reads of the decoded frame.
                let (space, range) =
                    unsafe { ((*f.as_ptr()).colorspace, (*f.as_ptr()).color_range) };
                let full = range == ffmpeg::ffi::AVColorRange::AVCOL_RANGE_JPEG
                    || matches!(key.0, Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P);
                let m = matrix(space, key.2);
                set_matrices(&mut ctx, (m, full), (m, true));
            }
            self.scaler = Some((key.0, key.1, key.2, ctx));
        }
        let mut out = frame::Video::empty();
        self.scaler
            .as_mut()
            .expect("set above")
            .3
            .run(f, &mut out)
            .map_err(|e| failed("scaling", e))?;
        Ok(out)
    }
}

/// NVENC's presets (p1 fastest … p7 best) for x264's preset names, so one profile serves both
/// a CPU and a GPU worker; anything else is passed through as NVENC's own name.
fn nvenc_preset(x264: &str) -> &str {
    match x264 {
        "ultrafast" | "superfast" => "p1",
        "veryfast" => "p2",
        "faster" => "p3",
        "fast" | "medium" => "p4",
        "slow" => "p5",
        "slower" => "p6",
        "veryslow" | "placebo" => "p7",
        other => other,
    }
}

/// Opens the profile's encoder for the plan's output.
fn open_encoder(
    plan: &Plan,
    profile: &RenderProfile,
    colour: Colour,
) -> Result<encoder::Video, RenderError> {
    let name = profile.encoder.as_str();
    let codec = encoder::find_by_name(name).ok_or_else(|| {
        RenderError::InvalidInput(format!("this FFmpeg has no video encoder named {name:?}"))
    })?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| failed(&format!("{name} encoder"), e))?;
    let fps = plan.fps;
    enc.set_width(plan.width);
    enc.set_height(plan.height);
    enc.set_format(Pixel::YUV420P);
    enc.set_color_range(ffmpeg::color::Range::MPEG);
    enc.set_color_primaries(colour.primaries.into());
    enc.set_color_transfer_characteristic(colour.transfer.into());
    enc.set_colorspace(colour.space.into());
    enc.set_time_base(fps.invert());
    enc.set_frame_rate(Some(fps));
    let gop = (2.0 * f64::from(fps)).round().max(1.0) as u32;
    enc.set_gop(gop);
    enc.set_max_b_frames(2);
    enc.set_flags(codec::Flags::GLOBAL_HEADER | codec::Flags::CLOSED_GOP);
    let mut opts = Dictionary::new();
    if !profile.preset.is_empty() {
        let preset = if name.ends_with("_nvenc") {
            nvenc_preset(&profile.preset)
        } else {
            &profile.preset
        };
        opts.set("preset", preset);
    }
    match profile.video_bitrate {
        Some(bps) => enc.set_bit_rate(bps as usize),
        None if name == "libx264" || name == "libx265" => {
            opts.set("crf", &profile.crf.to_string());
        }
        None if name.ends_with("_nvenc") => {
            opts.set("rc", "vbr");
            opts.set("cq", &profile.crf.to_string());
        }
        None => {}
    }
    if name == "libx264" {
        // Keyframes only on the 2 s grid (no scene-cut IDRs): predictable GOPs for players and
        // for a later smart cut of this output.
        opts.set("sc_threshold", "0");
        opts.set("profile", "high");
    }
    enc.open_with(opts)
        .map_err(|e| RenderError::InvalidInput(format!("cannot open the {name} encoder here: {e}")))
}

/// One item's or overlay's reader, opened when its first output frame comes up.
struct Active {
    reader: Option<FrameReader>,
}

/// Renders the whole plan by decoding and re-encoding every frame. See the module docs.
pub fn render_full(
    plan: &Plan,
    profile: &RenderProfile,
    audio: &EncodedAudio,
    output: &Path,
    progress: &mut dyn FnMut(f64),
) -> Result<RenderReport, RenderError> {
    crate::init();
    let (w, h, fps) = (plan.width, plan.height, plan.fps);
    if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 {
        return Err(RenderError::InvalidInput(format!(
            "output size {w}x{h} must be even and non-zero"
        )));
    }
    if fps.numerator() <= 0 || fps.denominator() <= 0 {
        return Err(RenderError::InvalidInput(format!(
            "output frame rate {fps} is not usable"
        )));
    }
    for (i, it) in plan.items.iter().enumerate() {
        if it.source >= plan.sources.len() {
            return Err(RenderError::InvalidInput(format!(
                "plan item {i} refers to source {}",
                it.source
            )));
        }
    }
    for (i, o) in plan.overlays.iter().enumerate() {
        if o.source >= plan.sources.len() || o.end_frame <= o.start_frame {
            return Err(RenderError::InvalidInput(format!(
                "overlay {i} is not usable"
            )));
        }
    }
    let colour = output_colour(plan);
    let mut enc = open_encoder(plan, profile, colour)?;
    let enc_tb = fps.invert();
    let written = Muxer::new(output, &codec::Parameters::from(&enc), enc_tb, fps, audio).and_then(
        |mut mux| {
            encode_frames(plan, colour, &mut enc, &mut mux, progress)?;
            mux.finish()
        },
    );
    if let Err(e) = written {
        // Nothing half-written is left behind.
        let _ = std::fs::remove_file(output);
        return Err(e);
    }
    progress(1.0);
    let (bytes, sha256) = file_digest(output)?;
    Ok(RenderReport {
        method: RenderMethod::FullReencode,
        fallback_reason: None,
        frames: plan.total_frames,
        duration_s: plan.duration_s(),
        copied_packets: 0,
        reencoded_frames: plan.total_frames,
        bytes,
        sha256,
        width: w,
        height: h,
        fps: (fps.numerator(), fps.denominator()),
    })
}

/// Composes and encodes every output frame into `mux`.
fn encode_frames(
    plan: &Plan,
    colour: Colour,
    enc: &mut encoder::Video,
    mux: &mut Muxer,
    progress: &mut dyn FnMut(f64),
) -> Result<(), RenderError> {
    let (w, h, fps) = (plan.width, plan.height, plan.fps);

    let mut items: Vec<Active> = plan.items.iter().map(|_| Active { reader: None }).collect();
    let overlay_frames: Vec<u64> = plan
        .overlays
        .iter()
        .map(|o| {
            convert_frames(o.end_frame - o.start_frame, plan.sources[o.source].fps, fps).max(1)
        })
        .collect();
    let mut overlays: Vec<Active> = plan
        .overlays
        .iter()
        .map(|_| Active { reader: None })
        .collect();
    let last = plan.items.len().saturating_sub(1);
    let mut pkt = Packet::empty();
    let total = plan.total_frames;

    for k in 0..total {
        let mut canvas: Option<Picture> = None;
        for (i, it) in plan.items.iter().enumerate() {
            if k < it.out_start || k >= it.out_end() {
                if k >= it.out_end() {
                    items[i].reader = None; // done: close the file
                }
                continue;
            }
            let src = &plan.sources[it.source];
            let j = k - it.out_start;
            let want = (it.start_frame + convert_frames(j, fps, src.fps)).min(it.end_frame - 1);
            if items[i].reader.is_none() {
                items[i].reader = Some(FrameReader::open(
                    src,
                    it.start_frame,
                    Conversion::Canvas { w, h },
                )?);
            }
            let mut pic = items[i]
                .reader
                .as_mut()
                .expect("opened")
                .picture(want)?
                .clone();
            if it.fade_in > 0 && j < it.fade_in {
                let a = (j + 1) as f32 / (it.fade_in + 1) as f32;
                match canvas.take() {
                    // Crossfade: the previous item is already on the canvas.
                    Some(mut prev) if i > 0 => {
                        prev.blend_toward(&pic, a);
                        pic = prev;
                    }
                    _ => pic.fade_to_black(1.0 - a),
                }
            }
            if i == last && it.fade_out > 0 && k + it.fade_out >= it.out_end() {
                let jj = k + it.fade_out - it.out_end();
                pic.fade_to_black((jj + 1) as f32 / (it.fade_out + 1) as f32);
            }
            canvas = Some(pic);
        }
        let mut canvas = canvas.unwrap_or_else(|| Picture::black(w as usize, h as usize));
        for (n, o) in plan.overlays.iter().enumerate() {
            let end = o.out_start + overlay_frames[n];
            if k < o.out_start || k >= end {
                if k >= end {
                    overlays[n].reader = None;
                }
                continue;
            }
            let src = &plan.sources[o.source];
            let want = (o.start_frame + convert_frames(k - o.out_start, fps, src.fps))
                .min(o.end_frame - 1);
            if overlays[n].reader.is_none() {
                overlays[n].reader = Some(FrameReader::open(
                    src,
                    o.start_frame,
                    Conversion::Overlay(o.kind, colour.matrix),
                )?);
            }
            let ov = overlays[n].reader.as_mut().expect("opened").picture(want)?;
            canvas.overlay(ov, o.x, o.y);
        }
        let mut f = canvas.to_frame();
        f.set_pts(Some(k as i64));
        enc.send_frame(&f).map_err(|e| failed("encoding", e))?;
        while enc.receive_packet(&mut pkt).is_ok() {
            mux.write_video(pkt.clone())?;
        }
        if k % 30 == 0 {
            progress(k as f64 / total.max(1) as f64);
        }
    }
    enc.send_eof().map_err(|e| failed("encoding", e))?;
    while enc.receive_packet(&mut pkt).is_ok() {
        mux.write_video(pkt.clone())?;
    }
    Ok(())
}
