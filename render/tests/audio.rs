//! The episode's audio against truth: sources carry known tones (per track, per channel), the
//! output is decoded by the FFmpeg CLI and compared with the analytically expected mix.

mod b_support;

use b_support::*;
use gt_render::RenderError;
use gt_render::audio::render_audio;
use gt_render::plan::build_plan;
use gt_render::reencode::render_full;
use serde_json::json;

const RATE: usize = 48_000;
/// At 320 kb/s FFmpeg's AAC encoder keeps pure tones ~60 dB clean (at 192 kb/s its
/// perceptual model lets noise rise to ~30 dB below a lone tone), so 40 dB catches a 1 %
/// volume error, a wrong track or a sample of misalignment.
const MIN_SNR_DB: f64 = 40.0;
/// Output samples per 60 fps frame.
const SPF: usize = 800;

fn a_tracks() -> Vec<Vec<Tone>> {
    vec![
        // Track 0: OBS's stereo mix, a different tone per channel.
        vec![
            Tone {
                freq: 440.0,
                amp: 0.5,
            },
            Tone {
                freq: 550.0,
                amp: 0.5,
            },
        ],
        // Track 1: a mono microphone.
        vec![Tone {
            freq: 250.0,
            amp: 0.25,
        }],
    ]
}

fn b_tracks() -> Vec<Vec<Tone>> {
    vec![
        vec![
            Tone {
                freq: 660.0,
                amp: 0.4,
            },
            Tone {
                freq: 770.0,
                amp: 0.4,
            },
        ],
        vec![Tone {
            freq: 330.0,
            amp: 0.3,
        }],
    ]
}

/// Renders `cut` from sources A (48 kHz) and B (44.1 kHz) and decodes the output's audio.
fn render(
    dir: &std::path::Path,
    cut: serde_json::Value,
) -> (gt_render::plan::Plan, u64, (Vec<f32>, Vec<f32>)) {
    let a = obs_source(dir, "a.mkv", "testsrc2", &a_tracks(), 48_000, 5);
    let b = obs_source(dir, "b.mkv", "testsrc2,hue=h=120", &b_tracks(), 44_100, 5);
    let out = dir.join("out.mp4");
    let mut job = job(cut_list(cut), &[&a, &b], &out, test_profile(30));
    job.profile.audio_bitrate = 320_000;
    let plan = build_plan(&job).expect("plan");
    let audio = render_audio(&plan, &job.profile).expect("audio");
    render_full(&plan, &job.profile, &audio, &out, &mut |_| {}).expect("render");
    let pcm = decode_stereo(&out, RATE as u32);
    (plan, audio.samples, pcm)
}

/// The output lasts `want` samples: the encoder's count, the MP4's audio track duration (its
/// edit list, as players honour it), and what the FFmpeg CLI decodes (FFmpeg 5.1 does not trim
/// the last AAC frame's padding, so up to 1023 more).
fn assert_duration(dir: &std::path::Path, samples: u64, want: u64, decoded: usize) {
    assert_eq!(samples, want, "encoded samples");
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=duration_ts,time_base",
        ])
        .args(["-of", "default=nw=1"])
        .arg(dir.join("out.mp4"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("time_base=1/48000"), "{text}");
    let ts: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("duration_ts="))
        .and_then(|v| v.trim().parse().ok())
        .expect("duration_ts");
    eprintln!("audio track duration {ts} samples (want {want}), decoded {decoded}");
    // The MP4 muxer's default movie timescale (1 ms) limits the edit list's precision.
    assert!(
        (ts - want as i64).abs() <= 48,
        "track duration {ts} vs {want}"
    );
    assert!(
        decoded as u64 >= want && (decoded as u64) < want + 1024,
        "decoded {decoded}"
    );
}

/// Linear interpolation of (frame, volume) keyframes, held at the ends.
fn envelope(points: &[(f64, f64)], frame: f64) -> f64 {
    if frame <= points[0].0 {
        return points[0].1;
    }
    for w in points.windows(2) {
        if frame <= w[1].0 {
            return w[0].1 + (w[1].1 - w[0].1) * (frame - w[0].0) / (w[1].0 - w[0].0);
        }
    }
    points[points.len() - 1].1
}

/// Largest sample-to-sample step in `x[range]`.
fn max_step(x: &[f32], from: usize, to: usize) -> f32 {
    x[from..to]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

#[test]
fn routes_tracks_at_their_volumes_and_keyframes_sample_exact_without_clicks() {
    let dir = tempfile::tempdir().unwrap();
    let ramp = [(0.0, 1.0), (120.0, 0.0), (240.0, 1.0)];
    let cut = json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "a.mkv", "sections": [{"startFrame": 30, "endFrame": 150}, {"startFrame": 200, "endFrame": 260}]},
            {"s3Location": "b.mkv", "sections": [{"startFrame": 61, "endFrame": 181}]}
        ],
        "outputTrack": [
            {"mediaIndex": 0, "sectionIndex": 0},
            {"mediaIndex": 1, "sectionIndex": 0},
            {"mediaIndex": 0, "sectionIndex": 1}
        ],
        "audioMixing": [
            {"sourceChannel": 0, "outputChannel": 0},
            {"sourceChannel": 0, "outputChannel": 1,
             "keyframes": [{"frame": 0, "volume": 1.0}, {"frame": 120, "volume": 0.0}, {"frame": 240, "volume": 1.0}]},
            {"sourceChannel": 1, "outputChannel": 1, "keyframes": [{"frame": 0, "volume": 1.5}]}
        ]
    });
    let (plan, samples, (l, r)) = render(dir.path(), cut);
    // 120 + 120 + 60 frames at 60 fps = 5 s: exactly 240 000 samples.
    assert_duration(dir.path(), samples, 240_000, l.len());

    let tracks = [a_tracks(), b_tracks()];
    // (output start frame, source, source start frame) per item.
    let items: Vec<(usize, usize, u64)> = plan
        .items
        .iter()
        .map(|i| (i.out_start as usize, i.source, i.start_frame))
        .collect();
    assert_eq!(items, vec![(0, 0, 30), (120, 1, 61), (240, 0, 200)]);
    for (n, &(out_start, src, start_frame)) in items.iter().enumerate() {
        let a0 = out_start * SPF;
        let len = plan.items[n].out_frames as usize * SPF;
        let t = |s: f64| start_frame as f64 / 60.0 + (s - a0 as f64) / RATE as f64;
        let want_l = |s: f64| tracks[src][0][0].at(t(s));
        let want_r = |s: f64| {
            let v = envelope(&ramp, s / SPF as f64);
            v * tracks[src][0][1].at(t(s)) + 1.5 * tracks[src][1][0].at(t(s))
        };
        // The interior (away from the 3 ms declick ramps).
        let (from, to) = (a0 + 480, a0 + len - 480);
        let (lag_l, snr_l) = best_lag(&l, from, to, 28, want_l);
        let (lag_r, snr_r) = best_lag(&r, from, to, 28, want_r);
        eprintln!(
            "item {n}: left lag {lag_l:.2} SNR {snr_l:.1} dB, right lag {lag_r:.2} SNR {snr_r:.1} dB"
        );
        // The 1 ms container time base limits the sync to ±0.5 ms (24 samples).
        assert!(
            lag_l.abs() <= 24.0 && lag_r.abs() <= 24.0,
            "item {n}: lag {lag_l}/{lag_r}"
        );
        assert!((lag_l - lag_r).abs() < 0.2, "item {n}: channels apart");
        assert!(
            snr_l > MIN_SNR_DB && snr_r > MIN_SNR_DB,
            "item {n}: SNR {snr_l:.1}/{snr_r:.1} dB"
        );
    }
    // The keyframed ramp really moves the level: track 0's right channel is silent at frame 120.
    let rms =
        |x: &[f32]| (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let at_120 = rms(&r[120 * SPF - 2400..120 * SPF - 1200]); // mic only, 1.5 · 0.25 = 0.375 peak
    let at_0 = rms(&r[1200..2400]); // 0.5 + 0.375
    eprintln!("right RMS near frame 0: {at_0:.3}, near frame 120: {at_120:.3}");
    assert!((at_120 - 0.375 / 2f64.sqrt()).abs() < 0.03, "{at_120}");
    assert!(
        (at_0 - (0.5f64.powi(2) / 2.0 + 0.375f64.powi(2) / 2.0).sqrt()).abs() < 0.03,
        "{at_0}"
    );

    // No clicks: the steepest step around each join is no steeper than inside the tones on
    // either side of it (a hard cut between two phases would step by up to 2 × amplitude).
    for join in [120 * SPF, 240 * SPF] {
        let steps = |from: usize, to: usize| max_step(&l, from, to).max(max_step(&r, from, to));
        let inside = steps(join - 9_600, join - 960).max(steps(join + 960, join + 9_600));
        let at = steps(join - 480, join + 480);
        eprintln!("join at {join}: max step {at:.4} (inside the tones {inside:.4})");
        assert!(at <= inside * 1.05, "click at {join}: {at} > {inside}");
    }
}

#[test]
fn crossfades_and_fades_with_a_resampled_source() {
    let dir = tempfile::tempdir().unwrap();
    let cut = json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "a.mkv", "sections": [{"startFrame": 40, "endFrame": 160}]},
            {"s3Location": "b.mkv", "sections": [{"startFrame": 30, "endFrame": 150}]}
        ],
        "outputTrack": [
            {"mediaIndex": 0, "sectionIndex": 0, "transitionIn": {"type": "fade", "duration": 12}},
            {"mediaIndex": 1, "sectionIndex": 0, "transitionIn": {"type": "fade", "duration": 30},
             "transitionOut": {"type": "fade", "duration": 12}}
        ]
    });
    let (_plan, samples, (l, r)) = render(dir.path(), cut);
    // 120 + 120 − 30 overlapping frames = 210 frames = 168 000 samples.
    assert_duration(dir.path(), samples, 168_000, l.len());
    let (a, b) = (a_tracks(), b_tracks());
    // (Sections start past the sources' first 0.5 s, which their own AAC encoding blurs.)
    let ta = |s: f64| 40.0 / 60.0 + s / RATE as f64;
    let tb = |s: f64| 30.0 / 60.0 + (s - 72_000.0) / RATE as f64;
    let xf = 30 * SPF; // crossfade samples, from 72 000 to 96 000
    // No mixing entries: track 0 to both channels, stereo kept (L = 440/660, R = 550/770).
    for (ch, x) in [(0usize, &l), (1, &r)] {
        // The gain steps per output sample; the tone is read at the lagged time.
        let fade_in = |s: f64| (s.round() + 1.0) / (12.0 * SPF as f64 + 1.0) * a[0][ch].at(ta(s));
        let fade_out =
            |s: f64| (168_000.0 - s.round()) / (12.0 * SPF as f64 + 1.0) * b[0][ch].at(tb(s));
        let steady_a = |s: f64| a[0][ch].at(ta(s));
        let steady_b = |s: f64| b[0][ch].at(tb(s));
        let mut lags = Vec::new();
        for (what, from, to, f) in [
            ("fade in", 0, 12 * SPF, &fade_in as &dyn Fn(f64) -> f64),
            ("A alone", 12 * SPF, 72_000, &steady_a),
            ("B alone", 96_000, 168_000 - 12 * SPF, &steady_b),
            ("fade out", 168_000 - 12 * SPF, 168_000, &fade_out),
        ] {
            let (lag, v) = best_lag(x, from, to, 28, f);
            eprintln!("channel {ch} {what}: lag {lag:.2}, SNR {v:.1} dB");
            assert!(lag.abs() <= 24.0, "channel {ch} {what}: lag {lag}");
            assert!(v > MIN_SNR_DB, "channel {ch} {what}: SNR {v:.1} dB");
            lags.push(lag);
        }
        // The crossfade, each source at its own measured lag (A's and B's audio sit up to
        // 0.5 ms apart from their video on the 1 ms grid, differently per file).
        let (la, lb) = (lags[1], lags[2]);
        let cross = |s: usize| {
            let j = s as f64 - 72_000.0 + 0.5;
            let w = std::f64::consts::FRAC_PI_2 * j / xf as f64;
            w.cos() * a[0][ch].at(ta(s as f64 - la)) + w.sin() * b[0][ch].at(tb(s as f64 - lb))
        };
        let want: Vec<f64> = (72_000..96_000).map(cross).collect();
        let v = snr(&x[72_000..96_000], &want);
        eprintln!("channel {ch} crossfade: SNR {v:.1} dB");
        assert!(v > MIN_SNR_DB, "channel {ch} crossfade: SNR {v:.1} dB");
        // Mid-crossfade both tones are there, each at about 1/√2.
        let mid = 84_000;
        let amp = |tone: Tone, t: &dyn Fn(f64) -> f64| {
            // Projection of 20 periods onto the tone (quadrature detection).
            let n = (RATE as f64 / tone.freq * 20.0) as usize;
            let (mut c, mut s2) = (0.0, 0.0);
            for (s, v) in x.iter().enumerate().take(mid + n / 2).skip(mid - n / 2) {
                let ph = 2.0 * std::f64::consts::PI * tone.freq * t(s as f64);
                c += f64::from(*v) * ph.cos();
                s2 += f64::from(*v) * ph.sin();
            }
            2.0 * (c * c + s2 * s2).sqrt() / n as f64 / tone.amp
        };
        let ta_l = |s: f64| ta(s - la);
        let tb_l = |s: f64| tb(s - lb);
        let (ga, gb) = (amp(a[0][ch], &ta_l), amp(b[0][ch], &tb_l));
        eprintln!("channel {ch} mid-crossfade gains: A {ga:.3}, B {gb:.3}");
        assert!(
            (ga - 0.707).abs() < 0.06 && (gb - 0.707).abs() < 0.06,
            "{ga} {gb}"
        );
    }
}

#[test]
fn bad_mixing_entries_are_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let a = obs_source(dir.path(), "a.mkv", "testsrc2", &a_tracks(), 48_000, 1);
    let cut = cut_list(json!({
        "version": "1.0.0",
        "inputMedia": [{"s3Location": "a.mkv", "sections": [{"startFrame": 0, "endFrame": 30}]}],
        "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]
    }));
    let job = job(cut, &[&a], &dir.path().join("out.mp4"), test_profile(30));
    let plan = build_plan(&job).expect("plan");
    for (entry, why) in [
        (
            json!({"sourceChannel": 2, "outputChannel": 0}),
            "sourceChannel 2",
        ),
        (
            json!({"sourceChannel": 0, "outputChannel": 2}),
            "outputChannel 2",
        ),
        (
            json!({"sourceChannel": 1, "outputChannel": 0, "keyframes": [{"frame": 3, "volume": 2.5}]}),
            "volume 2.5",
        ),
    ] {
        let mut bad = plan.clone();
        bad.audio_mixing = vec![serde_json::from_value(entry).unwrap()];
        match render_audio(&bad, &job.profile) {
            Err(RenderError::InvalidInput(msg)) => assert!(msg.contains(why), "{msg}"),
            Err(e) => panic!("{why}: wrong error {e}"),
            Ok(_) => panic!("{why}: accepted"),
        }
    }
    assert!(!dir.path().join("out.mp4").exists());
}

#[test]
fn a_hole_in_the_source_audio_stays_a_hole_and_sync_holds_after_it() {
    // OBS drops audio under load: the packets after the drop carry later timestamps. The
    // output must keep the gap as silence, not pull the later audio forward out of sync.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("gap.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=60:duration=5",
        "-f",
        "lavfi",
        "-i",
        "aevalsrc=0.5*sin(2*PI*440*t):s=48000:d=4.5",
        // Audio from content second 2 on is stamped 0.5 s later.
        "-af",
        "asetpts=PTS+if(gte(T\\,2)\\,0.5/TB\\,0)",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "256k",
        &src.display().to_string(),
    ]);
    let out = dir.path().join("out.mp4");
    let cut = cut_list(json!({
        "version": "1.0.0",
        "inputMedia": [{"s3Location": "gap.mkv", "sections": [{"startFrame": 60, "endFrame": 240}]}],
        "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]
    }));
    let mut job = job(cut, &[&src], &out, test_profile(30));
    job.profile.audio_bitrate = 320_000;
    let plan = build_plan(&job).expect("plan");
    let audio = render_audio(&plan, &job.profile).expect("audio");
    render_full(&plan, &job.profile, &audio, &out, &mut |_| {}).expect("render");
    let (l, _) = decode_stereo(&out, RATE as u32);
    assert_eq!(audio.samples, 144_000);
    let tone = Tone {
        freq: 440.0,
        amp: 0.5,
    };
    // Output second 0..1 = source 1..2 s; 1..1.5 the hole; 1.5..3 = content 2..3.5 s.
    let (lag, before) = best_lag(&l, 2_400, 45_600, 28, |s| tone.at(1.0 + s / RATE as f64));
    let (lag2, after) = best_lag(&l, 74_400, 141_600, 28, |s| {
        tone.at(1.0 + s / RATE as f64 - 0.5)
    });
    let hole = (50_400..69_600).map(|s| l[s].abs()).fold(0.0, f32::max);
    eprintln!(
        "before the hole: lag {lag:.2} SNR {before:.1} dB; after: lag {lag2:.2} SNR {after:.1} dB; \
         peak inside the hole {hole:.4}"
    );
    assert!(
        before > MIN_SNR_DB && after > MIN_SNR_DB,
        "{before:.1} / {after:.1} dB"
    );
    assert!(
        lag.abs() <= 24.0 && lag2.abs() <= 24.0,
        "lags {lag} / {lag2}"
    );
    assert!(hole < 0.01, "the hole is not silent: {hole}");
}
