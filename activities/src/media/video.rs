//! Pictures from a recording: small JPEG thumbnails at keyframes, and a 480p HLS preview.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::format::Sample;
use ffmpeg::format::sample::Type as SampleLayout;
use ffmpeg::media::Type as MediaType;
use ffmpeg::software::scaling;
use ffmpeg::{ChannelLayout, Dictionary, Packet, Rational, codec, encoder, frame};
use ffmpeg_next as ffmpeg;

use super::{MediaError, MediaSource, init, open_input};

fn corrupt(name: &str, what: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Corrupt(name.into(), format!("{what}: {e}"))
}

fn discard_all_but(ictx: &mut ffmpeg::format::context::Input, keep: &[usize]) {
    // SAFETY: `discard` is a plain field the demuxer reads.
    unsafe {
        let ctx = ictx.as_mut_ptr();
        for i in 0..(*ctx).nb_streams as usize {
            if !keep.contains(&i) {
                (**(*ctx).streams.add(i)).discard = ffmpeg::ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32).max(1) * 2
}

/// Seconds of `ts` in `tb`, from the container's start.
fn seconds(ts: i64, tb: Rational, start: f64) -> f64 {
    ts as f64 * f64::from(tb) - start
}

fn container_start(ictx: &ffmpeg::format::context::Input) -> f64 {
    // SAFETY: plain field read.
    let st = unsafe { (*ictx.as_ptr()).start_time };
    if st == i64::MIN { 0.0 } else { st as f64 / 1e6 }
}

/// A thumbnail: clip time and JPEG bytes.
pub struct Thumbnail {
    pub time: f64,
    pub jpeg: Vec<u8>,
}

/// JPEG thumbnails `width` pixels wide at the first keyframe of every `every_s` seconds.
/// Only those keyframes are decoded; audio is not read. Returns `Ok(vec![])` for a file
/// without video.
pub fn thumbnails(
    source: &MediaSource,
    name: &str,
    every_s: f64,
    width: u32,
    progress: &dyn Fn(f64),
) -> Result<Vec<Thumbnail>, MediaError> {
    init();
    let mut ictx = open_input(source, name)?;
    let Some(stream) = ictx
        .streams()
        .find(|s| s.parameters().medium() == MediaType::Video)
    else {
        return Ok(Vec::new());
    };
    let (index, tb) = (stream.index(), stream.time_base());
    let duration = (ictx.duration() as f64 / 1e6).max(0.001);
    let start = container_start(&ictx);
    let mut decoder = codec::context::Context::from_parameters(stream.parameters())
        .and_then(|c| c.decoder().video())
        .map_err(|e| corrupt(name, "cannot open the video decoder", e))?;
    discard_all_but(&mut ictx, &[index]);

    let mut jpeg: Option<(encoder::Video, scaling::Context, u32, u32)> = None;
    let mut out = Vec::new();
    let mut next_due = 0.0;
    let mut decoded = frame::Video::empty();
    for (s, packet) in ictx.packets() {
        if s.index() != index || !packet.is_key() {
            continue;
        }
        let Some(ts) = packet.pts().or(packet.dts()) else {
            continue;
        };
        let t = seconds(ts, tb, start);
        if t + 1e-6 < next_due {
            continue;
        }
        // An isolated keyframe: decode it, drain the decoder, reset it for the next one.
        if decoder.send_packet(&packet).is_err() {
            continue;
        }
        let _ = decoder.send_eof();
        let mut got = false;
        while decoder.receive_frame(&mut decoded).is_ok() {
            if got {
                continue;
            }
            got = true;
            if jpeg.is_none() {
                let (w, h) = (decoded.width(), decoded.height());
                let tw = width.min(w).max(2);
                let th = even(f64::from(h) * f64::from(tw) / f64::from(w));
                let tw = even(f64::from(tw));
                let scaler = scaling::Context::get(
                    decoded.format(),
                    w,
                    h,
                    Pixel::YUVJ420P,
                    tw,
                    th,
                    scaling::Flags::BICUBIC,
                )
                .map_err(|e| corrupt(name, "scaler", e))?;
                let enc = jpeg_encoder(tw, th).map_err(|e| corrupt(name, "JPEG encoder", e))?;
                jpeg = Some((enc, scaler, tw, th));
            }
            let (enc, scaler, _, _) = jpeg.as_mut().expect("set above");
            let mut small = frame::Video::empty();
            scaler
                .run(&decoded, &mut small)
                .map_err(|e| corrupt(name, "scaling", e))?;
            small.set_pts(Some(out.len() as i64));
            enc.send_frame(&small)
                .map_err(|e| corrupt(name, "JPEG encoding", e))?;
            let mut pkt = Packet::empty();
            if enc.receive_packet(&mut pkt).is_ok() {
                out.push(Thumbnail {
                    time: t,
                    jpeg: pkt.data().unwrap_or_default().to_vec(),
                });
            }
        }
        decoder.flush();
        if got {
            next_due = t + every_s;
            progress((t / duration).min(1.0));
        }
    }
    Ok(out)
}

fn jpeg_encoder(w: u32, h: u32) -> Result<encoder::Video, ffmpeg::Error> {
    let codec = encoder::find(codec::Id::MJPEG).ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(Pixel::YUVJ420P);
    enc.set_time_base(Rational(1, 25));
    // Fixed quality (qscale 4 of 2–31) rather than a bit rate.
    enc.set_flags(codec::Flags::QSCALE);
    enc.set_global_quality(4 * 118);
    enc.open_with(Dictionary::new())
}

/// Options of the HLS preview.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    pub height: u32,
    pub segment_s: u32,
    pub crf: u32,
    pub preset: String,
    /// Audio track (among audio streams) in the preview; OBS puts the full mix on track 0.
    pub audio_track: usize,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        Self {
            height: 480,
            segment_s: 4,
            crf: 30,
            preset: "veryfast".into(),
            audio_track: 0,
        }
    }
}

/// One file of the preview, as the playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct HlsSegment {
    pub file: String,
    pub duration: f64,
}

/// Transcodes `source` into `out_dir/index.m3u8` + `out_dir/NNNNN.ts` (480p H.264 + AAC).
/// Returns the segments, or an empty list for a file without video.
pub fn hls_preview(
    source: &MediaSource,
    name: &str,
    out_dir: &Path,
    opts: &PreviewOptions,
    progress: &dyn Fn(f64),
) -> Result<Vec<HlsSegment>, MediaError> {
    init();
    let mut ictx = open_input(source, name)?;
    let Some(vstream) = ictx
        .streams()
        .find(|s| s.parameters().medium() == MediaType::Video)
    else {
        return Ok(Vec::new());
    };
    let (v_index, v_tb) = (vstream.index(), vstream.time_base());
    let fps = if vstream.avg_frame_rate().numerator() > 0 {
        vstream.avg_frame_rate()
    } else {
        vstream.rate()
    };
    let audio_streams: Vec<_> = ictx
        .streams()
        .filter(|s| s.parameters().medium() == MediaType::Audio)
        .map(|s| (s.index(), s.time_base()))
        .collect();
    let audio = audio_streams
        .get(opts.audio_track)
        .or(audio_streams.first())
        .copied();
    let duration = (ictx.duration() as f64 / 1e6).max(0.001);
    let start = container_start(&ictx);

    let mut vdec = {
        let mut ctx =
            codec::context::Context::from_parameters(ictx.stream(v_index).unwrap().parameters())
                .map_err(|e| corrupt(name, "video decoder", e))?;
        ctx.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        ctx.decoder()
            .video()
            .map_err(|e| corrupt(name, "video decoder", e))?
    };
    let mut adec = match audio {
        Some((i, _)) => Some(
            codec::context::Context::from_parameters(ictx.stream(i).unwrap().parameters())
                .and_then(|c| c.decoder().audio())
                .map_err(|e| corrupt(name, "audio decoder", e))?,
        ),
        None => None,
    };
    let mut keep = vec![v_index];
    keep.extend(audio.map(|(i, _)| i));
    discard_all_but(&mut ictx, &keep);

    std::fs::create_dir_all(out_dir)
        .map_err(|e| MediaError::Unreadable(out_dir.display().to_string(), e.to_string()))?;
    let playlist = out_dir.join("index.m3u8");
    let mut octx =
        ffmpeg::format::output_as(&playlist, "hls").map_err(|e| corrupt(name, "HLS muxer", e))?;

    // Video: scale to `height` lines (never up), H.264, a keyframe at every segment start.
    let (src_w, src_h) = (vdec.width(), vdec.height());
    if src_w == 0 || src_h == 0 {
        return Err(MediaError::Corrupt(
            name.into(),
            "the video track has no picture size".into(),
        ));
    }
    let out_h = even(f64::from(opts.height.min(src_h)));
    let out_w = even(f64::from(src_w) * f64::from(out_h) / f64::from(src_h));
    let h264 = encoder::find_by_name("libx264")
        .or_else(|| encoder::find(codec::Id::H264))
        .ok_or_else(|| {
            MediaError::Corrupt(name.into(), "no H.264 encoder in this FFmpeg".into())
        })?;
    let mut venc = codec::context::Context::new_with_codec(h264)
        .encoder()
        .video()
        .map_err(|e| corrupt(name, "H.264 encoder", e))?;
    venc.set_width(out_w);
    venc.set_height(out_h);
    venc.set_format(Pixel::YUV420P);
    venc.set_time_base(v_tb);
    venc.set_frame_rate(Some(fps));
    let fps_f = if fps.denominator() > 0 && fps.numerator() > 0 {
        f64::from(fps)
    } else {
        30.0
    };
    let gop = ((fps_f * f64::from(opts.segment_s)).round() as u32).max(1);
    venc.set_gop(gop);
    let mut vopts = Dictionary::new();
    vopts.set("preset", &opts.preset);
    vopts.set("crf", &opts.crf.to_string());
    vopts.set("keyint_min", &gop.to_string());
    vopts.set("sc_threshold", "0");
    let mut venc = venc
        .open_with(vopts)
        .map_err(|e| corrupt(name, "opening the H.264 encoder", e))?;
    let v_out = {
        let mut ost = octx
            .add_stream(h264)
            .map_err(|e| corrupt(name, "HLS stream", e))?;
        ost.set_parameters(&venc);
        ost.set_time_base(v_tb);
        ost.index()
    };
    let mut scaler: Option<scaling::Context> = None;

    // Audio: AAC stereo 48 kHz, 128 kb/s, re-chunked to the encoder's frame size.
    let mut aenc_state = match &adec {
        Some(_) => {
            let aac = encoder::find(codec::Id::AAC)
                .ok_or_else(|| MediaError::Corrupt(name.into(), "no AAC encoder".into()))?;
            let mut aenc = codec::context::Context::new_with_codec(aac)
                .encoder()
                .audio()
                .map_err(|e| corrupt(name, "AAC encoder", e))?;
            aenc.set_rate(48_000);
            aenc.set_channel_layout(ChannelLayout::STEREO);
            aenc.set_format(Sample::F32(SampleLayout::Planar));
            aenc.set_bit_rate(128_000);
            aenc.set_time_base(Rational(1, 48_000));
            let aenc = aenc
                .open_with(Dictionary::new())
                .map_err(|e| corrupt(name, "opening the AAC encoder", e))?;
            let mut ost = octx
                .add_stream(aac)
                .map_err(|e| corrupt(name, "HLS stream", e))?;
            ost.set_parameters(&aenc);
            ost.set_time_base(Rational(1, 48_000));
            Some(AudioOut {
                frame_size: aenc.frame_size().max(1024) as usize,
                enc: aenc,
                index: ost.index(),
                swr: None,
                fifo: [Vec::new(), Vec::new()],
                next_pts: 0,
            })
        }
        None => None,
    };

    let mut mux_opts = Dictionary::new();
    mux_opts.set("hls_time", &opts.segment_s.to_string());
    mux_opts.set("hls_list_size", "0");
    mux_opts.set("hls_playlist_type", "vod");
    mux_opts.set(
        "hls_segment_filename",
        &out_dir.join("%05d.ts").display().to_string(),
    );
    octx.write_header_with(mux_opts)
        .map_err(|e| corrupt(name, "writing the HLS header", e))?;
    let v_stream_tb = octx.stream(v_out).unwrap().time_base();
    let a_stream_tb = aenc_state
        .as_ref()
        .map(|a| octx.stream(a.index).unwrap().time_base());

    let mut vframe = frame::Video::empty();
    let mut aframe = frame::Audio::empty();
    let a_index = audio.map(|(i, _)| i);
    let mut last_report = 0.0;
    for (s, packet) in ictx.packets() {
        if s.index() == v_index {
            if vdec.send_packet(&packet).is_err() {
                continue;
            }
            while vdec.receive_frame(&mut vframe).is_ok() {
                encode_video(
                    &mut vframe,
                    &mut scaler,
                    &mut venc,
                    out_w,
                    out_h,
                    &mut octx,
                    v_out,
                    v_tb,
                    v_stream_tb,
                    name,
                )?;
                if let Some(ts) = vframe.timestamp() {
                    let f = (seconds(ts, v_tb, start) / duration).clamp(0.0, 1.0);
                    if f - last_report > 0.01 {
                        progress(f);
                        last_report = f;
                    }
                }
            }
        } else if Some(s.index()) == a_index {
            let (Some(dec), Some(a)) = (adec.as_mut(), aenc_state.as_mut()) else {
                continue;
            };
            if dec.send_packet(&packet).is_err() {
                continue;
            }
            while dec.receive_frame(&mut aframe).is_ok() {
                a.push(&aframe, &mut octx, a_stream_tb.unwrap(), name)?;
            }
        }
    }
    // Drain decoders and encoders.
    let _ = vdec.send_eof();
    while vdec.receive_frame(&mut vframe).is_ok() {
        encode_video(
            &mut vframe,
            &mut scaler,
            &mut venc,
            out_w,
            out_h,
            &mut octx,
            v_out,
            v_tb,
            v_stream_tb,
            name,
        )?;
    }
    venc.send_eof()
        .map_err(|e| corrupt(name, "H.264 encoder", e))?;
    write_packets(&mut venc, &mut octx, v_out, v_tb, v_stream_tb, name)?;
    if let (Some(dec), Some(a)) = (adec.as_mut(), aenc_state.as_mut()) {
        let _ = dec.send_eof();
        while dec.receive_frame(&mut aframe).is_ok() {
            a.push(&aframe, &mut octx, a_stream_tb.unwrap(), name)?;
        }
        a.finish(&mut octx, a_stream_tb.unwrap(), name)?;
    }
    octx.write_trailer()
        .map_err(|e| corrupt(name, "finishing the HLS output", e))?;
    progress(1.0);
    parse_playlist(&playlist).map_err(|e| corrupt(name, "reading the HLS playlist", e))
}

#[allow(clippy::too_many_arguments)]
fn encode_video(
    decoded: &mut frame::Video,
    scaler: &mut Option<scaling::Context>,
    venc: &mut encoder::Video,
    w: u32,
    h: u32,
    octx: &mut ffmpeg::format::context::Output,
    out_index: usize,
    enc_tb: Rational,
    stream_tb: Rational,
    name: &str,
) -> Result<(), MediaError> {
    if scaler.is_none() {
        *scaler = Some(
            scaling::Context::get(
                decoded.format(),
                decoded.width(),
                decoded.height(),
                Pixel::YUV420P,
                w,
                h,
                scaling::Flags::BILINEAR,
            )
            .map_err(|e| corrupt(name, "scaler", e))?,
        );
    }
    let mut scaled = frame::Video::empty();
    scaler
        .as_mut()
        .unwrap()
        .run(decoded, &mut scaled)
        .map_err(|e| corrupt(name, "scaling", e))?;
    scaled.set_pts(decoded.timestamp());
    venc.send_frame(&scaled)
        .map_err(|e| corrupt(name, "H.264 encoding", e))?;
    write_packets(venc, octx, out_index, enc_tb, stream_tb, name)
}

fn write_packets(
    enc: &mut encoder::Video,
    octx: &mut ffmpeg::format::context::Output,
    out_index: usize,
    enc_tb: Rational,
    stream_tb: Rational,
    name: &str,
) -> Result<(), MediaError> {
    let mut pkt = Packet::empty();
    while enc.receive_packet(&mut pkt).is_ok() {
        pkt.set_stream(out_index);
        pkt.rescale_ts(enc_tb, stream_tb);
        pkt.write_interleaved(octx)
            .map_err(|e| corrupt(name, "writing HLS", e))?;
    }
    Ok(())
}

struct AudioOut {
    enc: encoder::Audio,
    index: usize,
    frame_size: usize,
    swr: Option<ffmpeg::software::resampling::Context>,
    /// Planar stereo samples waiting to fill an encoder frame.
    fifo: [Vec<f32>; 2],
    next_pts: i64,
}

impl AudioOut {
    fn push(
        &mut self,
        input: &frame::Audio,
        octx: &mut ffmpeg::format::context::Output,
        stream_tb: Rational,
        name: &str,
    ) -> Result<(), MediaError> {
        if self.swr.is_none() {
            let layout = if input.channel_layout().is_empty() {
                ChannelLayout::default(i32::from(input.channels()))
            } else {
                input.channel_layout()
            };
            self.swr = Some(
                ffmpeg::software::resampling::Context::get(
                    input.format(),
                    layout,
                    input.rate(),
                    Sample::F32(SampleLayout::Planar),
                    ChannelLayout::STEREO,
                    48_000,
                )
                .map_err(|e| corrupt(name, "audio resampler", e))?,
            );
        }
        let mut converted = frame::Audio::empty();
        self.swr
            .as_mut()
            .unwrap()
            .run(input, &mut converted)
            .map_err(|e| corrupt(name, "resampling", e))?;
        let n = converted.samples();
        for c in 0..2 {
            self.fifo[c].extend_from_slice(&converted.plane::<f32>(c)[..n]);
        }
        self.drain(octx, stream_tb, name, false)
    }

    fn drain(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        stream_tb: Rational,
        name: &str,
        all: bool,
    ) -> Result<(), MediaError> {
        while self.fifo[0].len() >= self.frame_size || (all && !self.fifo[0].is_empty()) {
            let n = self.fifo[0].len().min(self.frame_size);
            let mut f =
                frame::Audio::new(Sample::F32(SampleLayout::Planar), n, ChannelLayout::STEREO);
            f.set_rate(48_000);
            for c in 0..2 {
                f.plane_mut::<f32>(c)[..n].copy_from_slice(&self.fifo[c][..n]);
                self.fifo[c].drain(..n);
            }
            f.set_pts(Some(self.next_pts));
            self.next_pts += n as i64;
            self.enc
                .send_frame(&f)
                .map_err(|e| corrupt(name, "AAC encoding", e))?;
            self.write(octx, stream_tb, name)?;
        }
        Ok(())
    }

    fn write(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        stream_tb: Rational,
        name: &str,
    ) -> Result<(), MediaError> {
        let mut pkt = Packet::empty();
        while self.enc.receive_packet(&mut pkt).is_ok() {
            pkt.set_stream(self.index);
            pkt.rescale_ts(Rational(1, 48_000), stream_tb);
            pkt.write_interleaved(octx)
                .map_err(|e| corrupt(name, "writing HLS", e))?;
        }
        Ok(())
    }

    fn finish(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        stream_tb: Rational,
        name: &str,
    ) -> Result<(), MediaError> {
        self.drain(octx, stream_tb, name, true)?;
        self.enc
            .send_eof()
            .map_err(|e| corrupt(name, "AAC encoder", e))?;
        self.write(octx, stream_tb, name)
    }
}

/// Segment files and durations from an HLS media playlist.
pub fn parse_playlist(path: &Path) -> std::io::Result<Vec<HlsSegment>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    let mut pending: Option<f64> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            pending = rest.split(',').next().and_then(|d| d.parse().ok());
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Some(d) = pending.take()
        {
            let file = Path::new(line)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| line.to_string());
            out.push(HlsSegment { file, duration: d });
        }
    }
    Ok(out)
}
