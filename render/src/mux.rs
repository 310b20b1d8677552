//! The one muxer every render path writes through: an MP4 with one H.264 video stream and the
//! episode's pre-encoded audio, interleaved by time. Never the concat demuxer: every packet is
//! written here, in order, with timestamps on the output's own grid.

use std::path::Path;

use ffmpeg::{Packet, Rational, format};
use ffmpeg_next as ffmpeg;

use crate::RenderError;
use crate::audio::EncodedAudio;

/// Writes `path` (MP4). Video packets come from the caller one by one in decode order with
/// pts/dts in `video_time_base`; audio packets are taken from the [`EncodedAudio`] and written
/// whenever the video has reached their time, so the file is interleaved.
pub struct Muxer<'a> {
    octx: format::context::Output,
    video_out: usize,
    video_tb: Rational,
    video_out_tb: Rational,
    audio: &'a EncodedAudio,
    audio_out: usize,
    audio_out_tb: Rational,
    next_audio: usize,
    video_packets: u64,
}

impl<'a> Muxer<'a> {
    /// Opens `path` and writes the header. `video` are the video stream's codec parameters
    /// (for smart cut: the source's, with an `avcC` that also holds the edge encoder's
    /// parameter sets; for a re-encode: the encoder's); `video_time_base` is the time base of
    /// the packets that [`Muxer::write_video`] will receive; `frame_rate` is recorded on the
    /// stream.
    pub fn new(
        path: &Path,
        video: &ffmpeg::codec::Parameters,
        video_time_base: Rational,
        frame_rate: Rational,
        audio: &'a EncodedAudio,
    ) -> Result<Self, RenderError> {
        crate::init();
        let mut octx = format::output_as(&path, "mp4")
            .map_err(|e| RenderError::failed(&format!("creating {}", path.display()), e))?;
        let video_out = {
            let mut ost = octx
                .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
                .map_err(|e| RenderError::failed("adding the video stream", e))?;
            ost.set_parameters(video.clone());
            ost.set_time_base(video_time_base);
            ost.set_avg_frame_rate(frame_rate);
            ost.set_rate(frame_rate);
            // SAFETY: plain field write before the header: let the MP4 muxer pick its tag (avc1).
            unsafe { (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0 };
            ost.index()
        };
        let audio_out = {
            let mut ost = octx
                .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
                .map_err(|e| RenderError::failed("adding the audio stream", e))?;
            ost.set_parameters(audio.parameters.clone());
            ost.set_time_base(audio.time_base);
            // SAFETY: as above.
            unsafe { (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0 };
            ost.index()
        };
        octx.write_header()
            .map_err(|e| RenderError::failed("writing the MP4 header", e))?;
        let video_out_tb = octx.stream(video_out).expect("added above").time_base();
        let audio_out_tb = octx.stream(audio_out).expect("added above").time_base();
        Ok(Self {
            octx,
            video_out,
            video_tb: video_time_base,
            video_out_tb,
            audio,
            audio_out,
            audio_out_tb,
            next_audio: 0,
            video_packets: 0,
        })
    }

    /// Writes one video packet (decode order; pts/dts in the time base given to `new`), after
    /// any audio that starts before its decode time.
    pub fn write_video(&mut self, mut packet: Packet) -> Result<(), RenderError> {
        let t = packet
            .dts()
            .or(packet.pts())
            .ok_or_else(|| RenderError::Failed("a video packet without timestamps".into()))?;
        self.write_audio_until(Some((t, self.video_tb)))?;
        packet.set_stream(self.video_out);
        packet.set_position(-1);
        packet.rescale_ts(self.video_tb, self.video_out_tb);
        packet
            .write_interleaved(&mut self.octx)
            .map_err(|e| RenderError::failed("writing a video packet", e))?;
        self.video_packets += 1;
        Ok(())
    }

    /// Video packets written so far.
    pub fn video_packets(&self) -> u64 {
        self.video_packets
    }

    fn write_audio_until(&mut self, until: Option<(i64, Rational)>) -> Result<(), RenderError> {
        while let Some(p) = self.audio.packets.get(self.next_audio) {
            let at = p.dts().or(p.pts()).unwrap_or(0);
            if let Some((t, tb)) = until
                && compare_ts(at, self.audio.time_base, t, tb) == std::cmp::Ordering::Greater
            {
                break;
            }
            let mut p = p.clone();
            p.set_stream(self.audio_out);
            p.set_position(-1);
            p.rescale_ts(self.audio.time_base, self.audio_out_tb);
            p.write_interleaved(&mut self.octx)
                .map_err(|e| RenderError::failed("writing an audio packet", e))?;
            self.next_audio += 1;
        }
        Ok(())
    }

    /// Writes the remaining audio and the trailer.
    pub fn finish(mut self) -> Result<(), RenderError> {
        self.write_audio_until(None)?;
        self.octx
            .write_trailer()
            .map_err(|e| RenderError::failed("finishing the MP4", e))?;
        Ok(())
    }
}

/// Orders two timestamps in different time bases exactly.
fn compare_ts(a: i64, atb: Rational, b: i64, btb: Rational) -> std::cmp::Ordering {
    let l = i128::from(a) * i128::from(atb.numerator()) * i128::from(btb.denominator());
    let r = i128::from(b) * i128::from(btb.numerator()) * i128::from(atb.denominator());
    l.cmp(&r)
}

/// Size and SHA-256 (lower-case hex) of a finished file.
pub fn file_digest(path: &Path) -> Result<(u64, String), RenderError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)
        .map_err(|e| RenderError::failed(&format!("reading {}", path.display()), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f
            .read(&mut buf)
            .map_err(|e| RenderError::failed(&format!("reading {}", path.display()), e))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((n, hex))
}
