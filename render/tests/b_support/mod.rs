//! Test media and judges for the audio and full re-encode tests: sources made by the FFmpeg
//! CLI from known signals, outputs decoded by the FFmpeg CLI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use gt_render::{RenderJob, RenderProfile};
use gt_types::records::CutList;

pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg CLI");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ffmpeg_stdout(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg CLI");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A tone on one channel: `amp · sin(2π · freq · t)`, t in seconds of the generated signal.
#[derive(Clone, Copy, Debug)]
pub struct Tone {
    pub freq: f64,
    pub amp: f64,
}

impl Tone {
    pub fn at(&self, t: f64) -> f64 {
        self.amp * (2.0 * std::f64::consts::PI * self.freq * t).sin()
    }
}

/// An OBS-like source: H.264 (closed GOP, keyint 2 s, B-frames, yuv420p, BT.709) at 60 fps in MKV
/// (1 ms time base), `seconds` long, one AAC track per entry of `tracks` (each entry = its
/// channels' tones), at `rate` Hz.
pub fn obs_source(
    dir: &Path,
    name: &str,
    video: &str,
    tracks: &[Vec<Tone>],
    rate: u32,
    seconds: u32,
) -> PathBuf {
    let path = dir.join(name);
    let mut args: Vec<String> = vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        // `video` is a lavfi source, optionally followed by filters: "testsrc2,hue=h=120".
        match video.split_once(',') {
            Some((src, filters)) => {
                format!("{src}=size=320x180:rate=60:duration={seconds},{filters}")
            }
            None => format!("{video}=size=320x180:rate=60:duration={seconds}"),
        },
    ];
    for t in tracks {
        let expr: Vec<String> = t
            .iter()
            .map(|c| format!("{}*sin(2*PI*{}*t)", c.amp, c.freq))
            .collect();
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("aevalsrc={}:s={rate}:d={seconds}", expr.join("|")),
        ]);
    }
    args.extend(["-map".into(), "0:v".into()]);
    for i in 0..tracks.len() {
        args.extend(["-map".into(), format!("{}:a", i + 1)]);
    }
    for a in [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "12",
        "-g",
        "120",
        "-keyint_min",
        "120",
        "-sc_threshold",
        "0",
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "256k",
        // Tagged BT.709 like OBS's default.
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-colorspace",
        "bt709",
    ] {
        args.push(a.into());
    }
    args.push(path.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(&refs);
    path
}

/// The output's audio as the FFmpeg CLI decodes it: (left, right) at `rate`.
pub fn decode_stereo(path: &Path, rate: u32) -> (Vec<f32>, Vec<f32>) {
    let raw = ffmpeg_stdout(&[
        "-i",
        &path.display().to_string(),
        "-map",
        "0:a:0",
        "-ar",
        &rate.to_string(),
        "-ac",
        "2",
        "-f",
        "f32le",
        "-",
    ]);
    let s: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let l = s.iter().step_by(2).copied().collect();
    let r = s.iter().skip(1).step_by(2).copied().collect();
    (l, r)
}

/// Every decoded video frame (presentation order, no frame-rate conversion) as yuv420p
/// (optionally scaled with `vf`).
pub fn decode_frames(path: &Path, w: usize, h: usize, vf: Option<&str>) -> Vec<Vec<u8>> {
    let p = path.display().to_string();
    let mut args = vec!["-i", &p, "-map", "0:v:0", "-fps_mode", "passthrough"];
    if let Some(vf) = vf {
        args.extend(["-vf", vf]);
    }
    args.extend(["-pix_fmt", "yuv420p", "-f", "rawvideo", "-"]);
    let raw = ffmpeg_stdout(&args);
    let n = w * h * 3 / 2;
    assert_eq!(raw.len() % n, 0, "raw video size");
    raw.chunks_exact(n).map(<[u8]>::to_vec).collect()
}

/// PSNR in dB of two equal-length byte slices (99 when identical).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// Signal-to-noise ratio in dB of `got` against `want`.
pub fn snr(got: &[f32], want: &[f64]) -> f64 {
    let sig: f64 = want.iter().map(|w| w * w).sum();
    let noise: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (f64::from(g) - w).powi(2))
        .sum();
    10.0 * (sig / noise.max(1e-30)).log10()
}

/// The lag (output samples, within ±`max`, to 1/20 sample) at which `got[start..end]` best
/// matches `want(t)` (`t` in output samples, fractional), and the SNR there.
pub fn best_lag(
    got: &[f32],
    start: usize,
    end: usize,
    max: i64,
    want: impl Fn(f64) -> f64,
) -> (f64, f64) {
    let score = |lag: f64| {
        let w: Vec<f64> = (start..end).map(|s| want(s as f64 - lag)).collect();
        snr(&got[start..end], &w)
    };
    let mut best = (0.0, f64::MIN);
    for lag in -max..=max {
        let v = score(lag as f64);
        if v > best.1 {
            best = (lag as f64, v);
        }
    }
    let centre = best.0;
    for k in -10..=10 {
        let lag = centre + f64::from(k) / 20.0;
        let v = score(lag);
        if v > best.1 {
            best = (lag, v);
        }
    }
    best
}

pub fn cut_list(json: serde_json::Value) -> CutList {
    serde_json::from_value(json).expect("cut list")
}

pub fn job(
    cut_list: CutList,
    sources: &[&Path],
    output: &Path,
    profile: RenderProfile,
) -> RenderJob {
    RenderJob {
        cut_list,
        sources: sources.iter().map(|p| p.to_path_buf()).collect(),
        output: output.to_path_buf(),
        profile,
        force_full: true,
    }
}

/// A fast profile for tests.
pub fn test_profile(crf: u32) -> RenderProfile {
    RenderProfile {
        preset: "veryfast".into(),
        crf,
        ..RenderProfile::default()
    }
}
