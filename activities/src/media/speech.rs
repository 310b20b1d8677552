//! From silence to speech: the padded speech intervals of a clip and the speech-only audio
//! handed to Whisper, with the map back to clip time.

use gt_types::media::{SpeechAudio, SpeechSegment};

/// Silence between two speech segments in the speech audio, so Whisper hears a pause.
pub const SEGMENT_GAP_S: f64 = 0.25;

/// The complement of `silence` within `[start, end)`, each interval widened by `margin` on both
/// sides (so words are not clipped), clamped and merged.
pub fn speech_intervals(
    silence: &[(f64, f64)],
    start: f64,
    end: f64,
    margin: f64,
) -> Vec<(f64, f64)> {
    let mut speech = Vec::new();
    let mut cursor = start;
    for &(s, e) in silence {
        if s > cursor {
            speech.push((cursor, s.min(end)));
        }
        cursor = cursor.max(e);
    }
    if cursor < end {
        speech.push((cursor, end));
    }
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(speech.len());
    for (s, e) in speech {
        let (s, e) = ((s - margin).max(start), (e + margin).min(end));
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out.retain(|(s, e)| e > s);
    out
}

/// Cuts `speech` out of `pcm` (16 kHz mono, sample 0 at clip time `pcm_start`) and joins the
/// pieces with [`SEGMENT_GAP_S`] of silence. Returns the audio and its segments.
pub fn assemble(
    pcm: &[i16],
    rate: u32,
    pcm_start: f64,
    speech: &[(f64, f64)],
) -> (Vec<i16>, Vec<SpeechSegment>) {
    let r = f64::from(rate);
    let gap = (SEGMENT_GAP_S * r).round() as usize;
    let mut out = Vec::new();
    let mut segments = Vec::with_capacity(speech.len());
    for &(s, e) in speech {
        let a = (((s - pcm_start) * r).round().max(0.0) as usize).min(pcm.len());
        let b = (((e - pcm_start) * r).round().max(0.0) as usize).min(pcm.len());
        if b <= a {
            continue;
        }
        if !out.is_empty() {
            out.resize(out.len() + gap, 0);
        }
        segments.push(SpeechSegment {
            start: pcm_start + a as f64 / r,
            end: pcm_start + b as f64 / r,
            offset: out.len() as f64 / r,
        });
        out.extend_from_slice(&pcm[a..b]);
    }
    (out, segments)
}

/// A 16-bit mono PCM WAV file.
pub fn wav_bytes(pcm: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Samples of a WAV written by [`wav_bytes`] (or any 16-bit mono PCM WAV).
pub fn read_wav(bytes: &[u8]) -> Option<(u32, Vec<i16>)> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut rate = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            let f = bytes.get(body..body + 16)?;
            let (format, channels, bits) = (
                u16::from_le_bytes([f[0], f[1]]),
                u16::from_le_bytes([f[2], f[3]]),
                u16::from_le_bytes([f[14], f[15]]),
            );
            if format != 1 || channels != 1 || bits != 16 {
                return None;
            }
            rate = Some(u32::from_le_bytes(f[4..8].try_into().ok()?));
        } else if id == b"data" {
            let data = bytes.get(body..body + size.min(bytes.len() - body))?;
            let pcm = data
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return Some((rate?, pcm));
        }
        pos = body + size + (size & 1);
    }
    None
}

/// The [`SpeechAudio`] description of assembled audio stored at `key`.
pub fn describe(key: &str, rate: u32, pcm_len: usize, segments: Vec<SpeechSegment>) -> SpeechAudio {
    SpeechAudio {
        key: key.to_string(),
        sample_rate: rate,
        duration: pcm_len as f64 / f64::from(rate),
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_is_the_padded_complement_of_silence() {
        let silence = [(0.0, 2.0), (5.0, 9.0), (9.5, 12.0)];
        assert_eq!(
            speech_intervals(&silence, 0.0, 20.0, 0.25),
            vec![(1.75, 5.25), (8.75, 9.75), (11.75, 20.0)]
        );
        // Margins that meet merge; clamping at the ends.
        assert_eq!(
            speech_intervals(&[(1.0, 1.4)], 0.0, 2.0, 0.25),
            vec![(0.0, 2.0)]
        );
        assert_eq!(speech_intervals(&[(0.0, 10.0)], 0.0, 10.0, 0.25), vec![]);
        assert_eq!(speech_intervals(&[], 0.0, 3.0, 0.25), vec![(0.0, 3.0)]);
    }

    #[test]
    fn assembled_audio_maps_back_to_clip_time() {
        let rate = 100;
        // Sample i holds i, so each output sample says where it came from.
        let pcm: Vec<i16> = (0..1000).collect();
        let (out, segments) = assemble(&pcm, rate, 1.0, &[(2.0, 3.0), (6.5, 7.0)]);
        assert_eq!(out.len(), 100 + 25 + 50);
        let audio = describe("k", rate, out.len(), segments);
        for (i, &s) in out.iter().enumerate() {
            let t = i as f64 / f64::from(rate);
            if s == 0 && i > 0 {
                continue; // the gap
            }
            let clip_t = audio.to_clip_time(t);
            assert!(
                (clip_t - (1.0 + f64::from(s) / f64::from(rate))).abs() < 1e-9,
                "{i}"
            );
        }
        let bytes = wav_bytes(&out, rate);
        assert_eq!(read_wav(&bytes), Some((rate, out)));
    }
}
