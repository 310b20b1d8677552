//! Checks a finished render before it is published: the output decodes end to end with no
//! decoder error, has exactly the planned frames on the planned timestamps, its copied packets
//! are byte-identical to the source packets they came from, and its audio lasts as long as the
//! video.

use std::path::Path;

use ffmpeg::media::Type as MediaType;
use ffmpeg::{Packet, codec, frame};
use ffmpeg_next as ffmpeg;

use crate::audio::EncodedAudio;
use crate::plan::Plan;

/// One output video packet that smart cut copied from a source.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyRecord {
    /// Position of the packet among the output's video packets (decode order).
    pub out_index: u64,
    pub source: usize,
    /// The source frame it shows.
    pub source_frame: u64,
    /// Size and hash ([`crate::smart::packet_hash`]) of the source packet's bytes, as read from
    /// the source.
    pub len: usize,
    pub hash: u64,
    /// Whether it is an IDR (starts a closed GOP).
    pub key: bool,
}

/// How much of the output [`verify_with`] decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyDepth {
    /// Every frame.
    Full,
    /// Every re-encoded frame, and the first and last GOP of every run of copied GOPs; the
    /// GOPs in between are checked packet by packet (byte-identical to the source, on the
    /// planned timestamps) but not decoded. They are closed GOPs copied bit for bit whose
    /// parameter sets are unchanged, so they decode exactly as they do in the source; what a
    /// join can break (parameter sets, reference state, reordering) shows in the GOPs at the
    /// edges of each run. This keeps verification proportional to the edited part, not to the
    /// episode's length.
    EditPoints,
}

/// Verifies `output` against `plan`. `copies` lists the packets that must be byte-identical to
/// their source packets (empty for a full re-encode). `Err` says what is wrong.
pub fn verify(
    plan: &Plan,
    audio: &EncodedAudio,
    output: &Path,
    copies: &[CopyRecord],
) -> Result<(), String> {
    verify_with(plan, audio, output, copies, VerifyDepth::Full)
}

/// Output packets (decode order) that [`VerifyDepth::EditPoints`] leaves undecoded.
fn undecoded(copies: &[CopyRecord]) -> std::collections::HashSet<u64> {
    let mut skip = std::collections::HashSet::new();
    let mut i = 0;
    while i < copies.len() {
        // A run of consecutive copied packets.
        let mut j = i + 1;
        while j < copies.len() && copies[j].out_index == copies[j - 1].out_index + 1 {
            j += 1;
        }
        let keys: Vec<usize> = (i..j).filter(|&k| copies[k].key).collect();
        if keys.len() >= 3 {
            // Skip from the second GOP to just before the last one.
            for c in &copies[keys[1]..keys[keys.len() - 1]] {
                skip.insert(c.out_index);
            }
        }
        i = j;
    }
    skip
}

/// [`verify`] at a chosen depth.
pub fn verify_with(
    plan: &Plan,
    audio: &EncodedAudio,
    output: &Path,
    copies: &[CopyRecord],
    depth: VerifyDepth,
) -> Result<(), String> {
    crate::init();
    let mut ictx = ffmpeg::format::input(&output).map_err(|e| format!("cannot open: {e}"))?;
    let video = ictx
        .streams()
        .find(|s| s.parameters().medium() == MediaType::Video)
        .ok_or("the output has no video")?;
    let (v_index, v_tb) = (video.index(), video.time_base());
    let mut vctx = codec::context::Context::from_parameters(video.parameters())
        .map_err(|e| format!("video decoder: {e}"))?;
    vctx.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: 0,
        ..Default::default()
    });
    // SAFETY: plain field write before opening: report bitstream errors instead of concealing.
    unsafe {
        (*vctx.as_mut_ptr()).err_recognition |= ffmpeg::ffi::AV_EF_EXPLODE;
    }
    let mut vdec = vctx
        .decoder()
        .video()
        .map_err(|e| format!("video decoder: {e}"))?;
    let audio_stream = ictx
        .streams()
        .find(|s| s.parameters().medium() == MediaType::Audio)
        .ok_or("the output has no audio")?;
    let a_index = audio_stream.index();
    let mut adec = codec::context::Context::from_parameters(audio_stream.parameters())
        .and_then(|c| c.decoder().audio())
        .map_err(|e| format!("audio decoder: {e}"))?;

    let frame_s = f64::from(plan.fps.invert());
    let tb_s = f64::from(v_tb);
    let skip = match depth {
        VerifyDepth::Full => Default::default(),
        VerifyDepth::EditPoints => undecoded(copies),
    };
    let mut decoded_packets = 0u64;
    let mut last_frame: i64 = -1;
    // Display positions of the packets, from their timestamps.
    let mut shown = vec![false; plan.total_frames as usize];
    let mut frames = 0u64;
    let mut video_packets = 0u64;
    let mut copy = copies.iter().peekable();
    let mut samples = 0u64;
    let mut vframe = frame::Video::empty();
    let mut aframe = frame::Audio::empty();
    let mut check_frame = |f: &frame::Video, frames: &mut u64| -> Result<(), String> {
        if f.is_corrupt() {
            return Err(format!("frame {frames} decoded as corrupt"));
        }
        // SAFETY: plain field read.
        if unsafe { (*f.as_ptr()).decode_error_flags } != 0 {
            return Err(format!("frame {frames} has decode errors"));
        }
        let ts = f
            .pts()
            .or(f.timestamp())
            .ok_or_else(|| format!("frame {frames} has no timestamp"))?;
        let at = ts as f64 * tb_s;
        let n = (at / frame_s).round();
        if (at - n * frame_s).abs() > frame_s / 2.0 - 1e-9 || n as i64 <= last_frame {
            return Err(format!(
                "decoded frame {frames} is at {at:.4} s, off the plan's grid or out of order"
            ));
        }
        last_frame = n as i64;
        *frames += 1;
        Ok(())
    };
    let mut packet = Packet::empty();
    loop {
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(e) => return Err(format!("reading the output: {e}")),
        }
        if packet.stream() == v_index {
            if let Some(c) = copy.peek()
                && c.out_index == video_packets
            {
                let data = packet.data().unwrap_or_default();
                if data.len() != c.len || crate::smart::packet_hash(data) != c.hash {
                    return Err(format!(
                        "output packet {video_packets} differs from frame {} of source {} it was copied from",
                        c.source_frame, c.source
                    ));
                }
                copy.next();
            }
            let at = packet.pts().ok_or("a video packet without timestamp")? as f64 * tb_s;
            let n = (at / frame_s).round();
            if (at - n * frame_s).abs() > frame_s / 2.0 - 1e-9
                || n < 0.0
                || n as u64 >= plan.total_frames
                || std::mem::replace(&mut shown[n as usize], true)
            {
                return Err(format!(
                    "video packet {video_packets} at {at:.4} s is off the plan's frames or repeats one"
                ));
            }
            let decode = !skip.contains(&video_packets);
            video_packets += 1;
            if !decode {
                continue;
            }
            decoded_packets += 1;
            vdec.send_packet(&packet)
                .map_err(|e| format!("video packet {video_packets}: decoder error: {e}"))?;
            loop {
                match vdec.receive_frame(&mut vframe) {
                    Ok(()) => check_frame(&vframe, &mut frames)?,
                    Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::ffi::EAGAIN => break,
                    Err(ffmpeg::Error::Eof) => break,
                    Err(e) => return Err(format!("decoder error after frame {frames}: {e}")),
                }
            }
        } else if packet.stream() == a_index {
            adec.send_packet(&packet)
                .map_err(|e| format!("audio decoder error: {e}"))?;
            while adec.receive_frame(&mut aframe).is_ok() {
                samples += aframe.samples() as u64;
            }
        }
    }
    vdec.send_eof().map_err(|e| format!("video decoder: {e}"))?;
    loop {
        match vdec.receive_frame(&mut vframe) {
            Ok(()) => check_frame(&vframe, &mut frames)?,
            Err(ffmpeg::Error::Eof) => break,
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::ffi::EAGAIN => break,
            Err(e) => return Err(format!("decoder error after frame {frames}: {e}")),
        }
    }
    let _ = adec.send_eof();
    while adec.receive_frame(&mut aframe).is_ok() {
        samples += aframe.samples() as u64;
    }
    if let Some(c) = copy.next() {
        return Err(format!(
            "copied packet {} is missing from the output ({} video packets)",
            c.out_index, video_packets
        ));
    }
    if video_packets != plan.total_frames || frames != decoded_packets {
        return Err(format!(
            "{video_packets} video packets ({frames} frames decoded from {decoded_packets}), the plan has {} frames",
            plan.total_frames
        ));
    }
    // Audio: the decoder drops the encoder's priming; what remains must cover the video within
    // one AAC frame (1024 samples) of the audible length.
    let rate = f64::from(audio.time_base.invert());
    let audio_s = samples as f64 / rate;
    let want_s = audio.samples as f64 / rate;
    let tolerance = 1024.0 / rate + frame_s / 2.0;
    if (audio_s - want_s).abs() > tolerance || (want_s - plan.duration_s()).abs() > tolerance {
        return Err(format!(
            "audio lasts {audio_s:.3} s ({want_s:.3} s encoded), the video {:.3} s",
            plan.duration_s()
        ));
    }
    Ok(())
}
