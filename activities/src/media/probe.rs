//! In-process probing with FFmpeg's libraries (no `ffprobe` process): container, streams,
//! tracks, and a duration that is checked against where the data really ends.

use ffmpeg::media::Type as MediaType;
use ffmpeg_next as ffmpeg;
use gt_types::media::{CodecType, FormatInfo, MediaInfo, StreamInfo};

use super::{MediaError, MediaSource, input_size, open_input};

const AV_TIME_BASE: f64 = 1_000_000.0;
const AV_NOPTS_VALUE: i64 = i64::MIN;

/// How far before the declared end the end check starts reading.
const END_CHECK_WINDOW_S: f64 = 20.0;

fn rational_to_f64(r: ffmpeg::Rational) -> Option<f64> {
    (r.denominator() != 0 && r.numerator() > 0)
        .then(|| f64::from(r.numerator()) / f64::from(r.denominator()))
}

fn codec_type(t: MediaType) -> CodecType {
    match t {
        MediaType::Video => CodecType::Video,
        MediaType::Audio => CodecType::Audio,
        MediaType::Subtitle => CodecType::Subtitle,
        MediaType::Data => CodecType::Data,
        MediaType::Attachment => CodecType::Attachment,
        MediaType::Unknown => CodecType::Unknown,
    }
}

fn tag(dict: &ffmpeg::DictionaryRef<'_>, key: &str) -> Option<String> {
    dict.get(key)
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "und")
        .map(str::to_string)
}

/// Probes `source` (a file or a URL that answers range requests). `name` is how the file is
/// called in error messages (its blob key).
pub fn probe(source: &MediaSource, name: &str) -> Result<MediaInfo, MediaError> {
    let mut ictx = open_input(source, name)?;
    let size = input_size(&ictx);
    if size == 0 {
        return Err(MediaError::Empty(name.into()));
    }

    let mut streams = Vec::new();
    for stream in ictx.streams() {
        let params = stream.parameters();
        let kind = codec_type(params.medium());
        let codec_name = params.id().name().to_string();
        let tb = stream.time_base();
        let duration = (stream.duration() != AV_NOPTS_VALUE && stream.duration() > 0)
            .then(|| stream.duration() as f64 * f64::from(tb));
        // SAFETY: `params` wraps the stream's live AVCodecParameters; we only read plain fields.
        let bit_rate = unsafe { (*params.as_ptr()).bit_rate };
        let meta = stream.metadata();
        let mut info = StreamInfo {
            index: stream.index(),
            codec_type: kind,
            codec_name,
            duration,
            bit_rate: (bit_rate > 0).then_some(bit_rate as u64),
            language: tag(&meta, "language"),
            title: tag(&meta, "title").or_else(|| tag(&meta, "handler_name")),
            ..Default::default()
        };
        let ctx = ffmpeg::codec::context::Context::from_parameters(params).map_err(|e| {
            MediaError::Corrupt(name.into(), format!("stream {}: {e}", stream.index()))
        })?;
        match kind {
            CodecType::Audio => {
                if let Ok(audio) = ctx.decoder().audio() {
                    info.sample_rate = Some(audio.rate()).filter(|r| *r > 0);
                    info.channels = Some(u32::from(audio.channels())).filter(|c| *c > 0);
                }
            }
            CodecType::Video => {
                if let Ok(video) = ctx.decoder().video() {
                    info.width = Some(video.width()).filter(|w| *w > 0);
                    info.height = Some(video.height()).filter(|h| *h > 0);
                }
                let rate = if stream.avg_frame_rate().numerator() > 0 {
                    stream.avg_frame_rate()
                } else {
                    stream.rate()
                };
                info.fps = rational_to_f64(rate);
                info.frame_rate = info
                    .fps
                    .map(|_| format!("{}/{}", rate.numerator(), rate.denominator()));
            }
            _ => {}
        }
        streams.push(info);
    }
    if !streams
        .iter()
        .any(|s| matches!(s.codec_type, CodecType::Audio | CodecType::Video))
    {
        return Err(MediaError::NotMedia(
            name.into(),
            "it has no audio or video stream".into(),
        ));
    }

    // SAFETY: the context is open; start_time is a plain field.
    let st = unsafe { (*ictx.as_ptr()).start_time };
    let start_time = if st == AV_NOPTS_VALUE {
        0.0
    } else {
        st as f64 / AV_TIME_BASE
    };
    let declared = (ictx.duration() != AV_NOPTS_VALUE && ictx.duration() > 0)
        .then(|| ictx.duration() as f64 / AV_TIME_BASE);
    let format_name = ictx.format().name().to_string();
    let bit_rate = (ictx.bit_rate() > 0).then_some(ictx.bit_rate() as u64);

    if let Some(v) = streams
        .iter()
        .position(|s| s.codec_type == CodecType::Video)
    {
        let index = streams[v].index;
        streams[v].keyframe_interval = keyframe_interval(&mut ictx, index);
        // Back to the start for the end-of-data check.
        let _ = ictx.seek(0, ..0);
    }
    let data_end = data_end(&mut ictx, declared, start_time, name)?;
    let duration = match (declared, data_end) {
        // The header promises more than the file holds: cut short while it was written or copied.
        (Some(d), Some(end)) if end + 1.0 < d * 0.99 => {
            return Err(MediaError::Truncated(name.into(), d, end));
        }
        (Some(d), _) => d,
        (None, Some(end)) => end,
        (None, None) => {
            return Err(MediaError::Corrupt(
                name.into(),
                "no packet with a timestamp could be read".into(),
            ));
        }
    };
    Ok(MediaInfo {
        format: FormatInfo {
            format_name,
            duration,
            size,
            bit_rate,
            start_time,
        },
        streams,
    })
}

/// Median gap between the first keyframes of stream `index` (reading at most ~2 minutes or 2000
/// packets from the current position).
fn keyframe_interval(ictx: &mut ffmpeg::format::context::Input, index: usize) -> Option<f64> {
    let tb = f64::from(ictx.stream(index)?.time_base());
    let mut keys: Vec<f64> = Vec::new();
    let mut packets = 0;
    for (stream, packet) in ictx.packets() {
        packets += 1;
        if packets > 2000 || keys.len() >= 9 {
            break;
        }
        if stream.index() != index || !packet.is_key() {
            continue;
        }
        if let Some(ts) = packet.pts().or(packet.dts()) {
            let t = ts as f64 * tb;
            if keys.last().is_some_and(|&l| t - l > 120.0) {
                break;
            }
            keys.push(t);
        }
    }
    keys.sort_by(f64::total_cmp);
    let mut gaps: Vec<f64> = keys
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0.0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_by(f64::total_cmp);
    Some((gaps[gaps.len() / 2] * 1000.0).round() / 1000.0)
}

/// Where the data really ends (seconds since the container's start), read from the packets at
/// the end of the file: after a seek near the declared end, or from the start when there is no
/// declared duration (OBS files from a crash carry none) or nothing follows the seek point.
fn data_end(
    ictx: &mut ffmpeg::format::context::Input,
    declared: Option<f64>,
    start_time: f64,
    name: &str,
) -> Result<Option<f64>, MediaError> {
    if let Some(d) = declared {
        let target = ((start_time + d - END_CHECK_WINDOW_S).max(0.0) * AV_TIME_BASE) as i64;
        if target > 0 && ictx.seek(target, ..target).is_ok() {
            if let (Some(end), _) = scan_packets(ictx, start_time, name)? {
                return Ok(Some(end));
            }
            // Nothing after the seek point: the data stops earlier. Measure from the start.
            ictx.seek(0, ..0)
                .map_err(|e| MediaError::Corrupt(name.into(), format!("cannot seek: {e}")))?;
        }
    }
    match scan_packets(ictx, start_time, name)? {
        (_, 0) => Err(MediaError::Corrupt(
            name.into(),
            "it contains no packets".into(),
        )),
        (end, _) => Ok(end),
    }
}

/// Reads packets to the end; returns the latest end timestamp seen and the packet count.
fn scan_packets(
    ictx: &mut ffmpeg::format::context::Input,
    start_time: f64,
    name: &str,
) -> Result<(Option<f64>, u64), MediaError> {
    let time_bases: Vec<ffmpeg::Rational> = ictx.streams().map(|s| s.time_base()).collect();
    let mut end: Option<f64> = None;
    let mut packets = 0u64;
    let mut errors = 0u64;
    loop {
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(ictx) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(_) if packets > 0 => {
                // Damage at the tail (a cut-off last packet) ends the data there.
                errors += 1;
                if errors > 16 {
                    break;
                }
                continue;
            }
            Err(e) => {
                return Err(MediaError::Corrupt(
                    name.into(),
                    format!("cannot read packets: {e}"),
                ));
            }
        }
        packets += 1;
        let tb = f64::from(time_bases[packet.stream()]);
        let Some(ts) = packet.pts().or(packet.dts()) else {
            continue;
        };
        let t = (ts as f64 + packet.duration().max(0) as f64) * tb - start_time;
        end = Some(end.map_or(t, |e: f64| e.max(t)));
    }
    Ok((end, packets))
}
