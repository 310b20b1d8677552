//! From silence to speech: the padded speech intervals of a clip, the voice inside them, and the
//! speech-only audio handed to Whisper, with the map back to clip time.

use gt_types::media::{SpeechAudio, SpeechSegment};
use gt_vad::{SileroVad, VadParams};

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

/// How [`voice_in`] decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoiceParams {
    /// Silero probability from which a window is voice; 0 keeps every interval whole.
    pub threshold: f64,
    /// Seconds added on both sides of each stretch of voice.
    pub margin: f64,
    /// Stretches of voice closer than this (seconds) are joined.
    pub min_gap: f64,
    /// Threads for the VAD's feature extraction.
    pub threads: usize,
}

/// The voice inside `intervals` (clip seconds, e.g. everything louder than the noise
/// threshold): Silero VAD runs over each interval of `pcm` (16 kHz mono, sample 0 at clip time
/// `pcm_start`); the voice it finds is padded by the margin, joined across gaps shorter than
/// `min_gap` and kept inside its interval. Music, noise and game sound drop out.
pub fn voice_in(
    vad: &SileroVad,
    pcm: &[i16],
    pcm_start: f64,
    intervals: &[(f64, f64)],
    p: &VoiceParams,
) -> Vec<(f64, f64)> {
    if p.threshold <= 0.0 {
        return intervals.to_vec();
    }
    let rate = f64::from(gt_vad::SAMPLE_RATE);
    let threshold = p.threshold as f32;
    let params = VadParams {
        threshold,
        neg_threshold: (threshold - 0.15).max(0.01),
        ..VadParams::default()
    };
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &(a, b) in intervals {
        let lo = (((a - pcm_start) * rate).round().max(0.0) as usize).min(pcm.len());
        let hi = (((b - pcm_start) * rate).round().max(0.0) as usize).min(pcm.len());
        if hi <= lo {
            continue;
        }
        let samples: Vec<f32> = pcm[lo..hi]
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        let probs = vad.probabilities(&samples, p.threads);
        let start = pcm_start + lo as f64 / rate;
        let mut inside: Vec<(f64, f64)> = Vec::new();
        for (s, e) in gt_vad::speech_segments(&probs, samples.len(), &params) {
            let (s, e) = ((start + s - p.margin).max(a), (start + e + p.margin).min(b));
            match inside.last_mut() {
                Some(last) if s - last.1 < p.min_gap => last.1 = last.1.max(e),
                _ => inside.push((s, e)),
            }
        }
        out.extend(inside.into_iter().filter(|(s, e)| e > s));
    }
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
    }
}
