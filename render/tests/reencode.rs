//! The full re-encode against truth: every output frame is compared with the source frame the
//! plan puts there (decoded by the FFmpeg CLI), fades with the blend of those frames, overlays
//! with the FFmpeg CLI's own `colorkey`/`overlay` composition (the original's filter graph).

mod b_support;

use std::path::Path;
use std::process::Command;

use b_support::*;
use gt_render::audio::render_audio;
use gt_render::plan::build_plan;
use gt_render::reencode::render_full;
use gt_render::{RenderError, RenderMethod, RenderProfile};
use serde_json::json;

const W: usize = 320;
const H: usize = 180;
/// libx264 at crf 16 on these 320×180 test patterns stays well above this.
const MIN_PSNR_DB: f64 = 35.0;

fn tone() -> Vec<Vec<Tone>> {
    vec![vec![Tone {
        freq: 440.0,
        amp: 0.3,
    }]]
}

fn render(
    cut: serde_json::Value,
    sources: &[&Path],
    out: &Path,
    profile: RenderProfile,
) -> gt_render::RenderReport {
    let job = job(cut_list(cut), sources, out, profile);
    let plan = build_plan(&job).expect("plan");
    let audio = render_audio(&plan, &job.profile).expect("audio");
    let mut last = -1.0;
    let report = render_full(&plan, &job.profile, &audio, out, &mut |f| {
        assert!(f >= last, "progress went back");
        last = f;
    })
    .expect("render");
    assert_eq!(last, 1.0);
    report
}

fn ffprobe(path: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `x · (1 − a) + y · a` per byte, rounded.
fn blend(x: &[u8], y: &[u8], a: f64) -> Vec<u8> {
    x.iter()
        .zip(y)
        .map(|(&p, &q)| (f64::from(p) + (f64::from(q) - f64::from(p)) * a).round() as u8)
        .collect()
}

fn black() -> Vec<u8> {
    let mut f = vec![16u8; W * H];
    f.extend(vec![128u8; W * H / 2]);
    f
}

#[test]
fn every_frame_is_the_planned_source_frame() {
    let dir = tempfile::tempdir().unwrap();
    let a = obs_source(dir.path(), "a.mkv", "testsrc2", &tone(), 48_000, 3);
    let b = obs_source(
        dir.path(),
        "b.mkv",
        "testsrc2,hue=h=120",
        &tone(),
        48_000,
        4,
    );
    let out = dir.path().join("out.mp4");
    let cut = json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "a.mkv", "sections": [{"startFrame": 31, "endFrame": 151}]},
            {"s3Location": "b.mkv", "sections": [{"startFrame": 137, "endFrame": 199}]}
        ],
        "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}, {"mediaIndex": 1, "sectionIndex": 0}]
    });
    let report = render(cut, &[&a, &b], &out, test_profile(16));
    assert_eq!(report.method, RenderMethod::FullReencode);
    assert_eq!(
        (
            report.frames,
            report.reencoded_frames,
            report.copied_packets
        ),
        (182, 182, 0)
    );
    assert_eq!(
        (report.width, report.height, report.fps),
        (320, 180, (60, 1))
    );
    assert_eq!(report.bytes, std::fs::metadata(&out).unwrap().len());

    let (fa, fb) = (decode_frames(&a, W, H, None), decode_frames(&b, W, H, None));
    let got = decode_frames(&out, W, H, None);
    assert_eq!(got.len(), 182, "decoded frames");
    let mut worst = f64::MAX;
    for (k, frame) in got.iter().enumerate() {
        let (src, i) = if k < 120 {
            (&fa, 31 + k)
        } else {
            (&fb, 137 + k - 120)
        };
        let p = psnr(frame, &src[i]);
        worst = worst.min(p);
        assert!(
            p >= MIN_PSNR_DB,
            "frame {k}: PSNR {p:.1} dB against source frame {i}"
        );
        // A neighbouring source frame would not pass for it.
        let off = psnr(frame, &src[i + 1]).max(psnr(frame, &src[i - 1]));
        assert!(
            off < p - 5.0,
            "frame {k}: neighbour {off:.1} dB vs {p:.1} dB"
        );
    }
    eprintln!("worst PSNR against the planned source frame: {worst:.1} dB");

    // Timestamps: 60 fps CFR from 0; closed GOPs, an IDR every 2 s (120 frames).
    let frames = ffprobe(
        &out,
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "frame=pts_time,key_frame,pict_type",
            "-of",
            "csv=p=0",
        ],
    );
    // (ffprobe prints a blank line after a frame with side data.)
    let rows: Vec<Vec<&str>> = frames
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 182);
    for (k, r) in rows.iter().enumerate() {
        let t: f64 = r[1].parse().unwrap();
        assert!((t - k as f64 / 60.0).abs() < 0.0011, "frame {k} at {t}");
        assert_eq!(r[0] == "1", k % 120 == 0, "frame {k}: key {}", r[0]);
    }
    let params = ffprobe(
        &out,
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "stream=codec_name,pix_fmt,r_frame_rate",
            "-of",
            "csv=p=0",
        ],
    );
    assert_eq!(params.trim(), "h264,yuv420p,60/1");
    // The sources' colour tags carry over (sections are not converted between matrices).
    let colour = ffprobe(
        &out,
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "stream=color_range,color_space,color_transfer,color_primaries",
            "-of",
            "csv=p=0",
        ],
    );
    assert_eq!(colour.trim(), "tv,bt709,bt709,bt709");
}

#[test]
fn fades_and_crossfades_blend_the_planned_frames() {
    let dir = tempfile::tempdir().unwrap();
    let a = obs_source(dir.path(), "a.mkv", "testsrc2", &tone(), 48_000, 2);
    let b = obs_source(
        dir.path(),
        "b.mkv",
        "testsrc2,hue=h=120",
        &tone(),
        48_000,
        2,
    );
    let out = dir.path().join("out.mp4");
    let cut = json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "a.mkv", "sections": [{"startFrame": 30, "endFrame": 90}]},
            {"s3Location": "b.mkv", "sections": [{"startFrame": 0, "endFrame": 60}]}
        ],
        "outputTrack": [
            {"mediaIndex": 0, "sectionIndex": 0, "transitionIn": {"type": "fade", "duration": 10}},
            {"mediaIndex": 1, "sectionIndex": 0, "transitionIn": {"type": "fade", "duration": 21},
             "transitionOut": {"type": "fade", "duration": 10}}
        ]
    });
    let report = render(cut, &[&a, &b], &out, test_profile(16));
    assert_eq!(report.frames, 99);
    let (fa, fb) = (decode_frames(&a, W, H, None), decode_frames(&b, W, H, None));
    let got = decode_frames(&out, W, H, None);
    assert_eq!(got.len(), 99);
    // Item 0: out [0, 60), fade from black over 10; item 1: out [39, 99), crossfade over
    // 21 (frames 39..60), fade to black over the last 10. Weight of the incoming picture at
    // step j of n: (j+1)/(n+1).
    for (k, frame) in got.iter().enumerate() {
        let want = match k {
            0..10 => blend(&black(), &fa[30 + k], (k + 1) as f64 / 11.0),
            10..39 => fa[30 + k].clone(),
            39..60 => blend(&fa[30 + k], &fb[k - 39], (k - 39 + 1) as f64 / 22.0),
            60..89 => fb[k - 39].clone(),
            _ => blend(&fb[k - 39], &black(), (k - 89 + 1) as f64 / 11.0),
        };
        let p = psnr(frame, &want);
        assert!(
            p >= MIN_PSNR_DB,
            "frame {k}: PSNR {p:.1} dB against the expected blend"
        );
        if k == 49 {
            // The middle of the crossfade is half of each, not either one.
            let (pa, pb) = (psnr(frame, &fa[30 + k]), psnr(frame, &fb[k - 39]));
            eprintln!("mid-crossfade frame: {p:.1} dB vs the blend, {pa:.1} / {pb:.1} dB vs A / B");
            assert!(pa < 25.0 && pb < 25.0);
        }
    }
}

#[test]
fn overlays_match_ffmpegs_colorkey_and_alpha_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = obs_source(d, "a.mkv", "testsrc2", &tone(), 48_000, 3);
    // Colorkey overlay: a white box on black (lossless, so black stays exactly black).
    let key = d.join("key.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=black:s=64x64:r=60:d=2,drawbox=x=16:y=16:w=32:h=32:color=white:t=fill",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-pix_fmt",
        "yuv420p",
        &key.display().to_string(),
    ]);
    // Alpha overlay: half-transparent red with its own alpha channel (PNG in Matroska).
    let alpha = d.join("alpha.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=red@0.5:s=48x32:r=60:d=2,format=rgba",
        "-c:v",
        "png",
        &alpha.display().to_string(),
    ]);
    let out = d.join("out.mp4");
    let cut = json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "a.mkv", "sections": [{"startFrame": 30, "endFrame": 150}]},
            {"s3Location": "key.mkv", "sections": [{"startFrame": 0, "endFrame": 60}]},
            {"s3Location": "alpha.mkv", "sections": [{"startFrame": 5, "endFrame": 45}]}
        ],
        "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}],
        "overlayTracks": [
            {"startFrame": 30, "mediaIndex": 1, "sectionIndex": 0, "x": 40, "y": 20, "type": "colorkey"},
            {"startFrame": 10, "mediaIndex": 2, "sectionIndex": 0, "x": 200, "y": 100, "type": "alpha"}
        ]
    });
    // (Small regions of busy test pattern: a lower crf keeps the encoder's own loss out of the
    // way of the comparison.)
    render(cut, &[&a, &key, &alpha], &out, test_profile(10));
    let got = decode_frames(&out, W, H, None);
    assert_eq!(got.len(), 120);

    // The reference: FFmpeg's own filters, as the original rendered overlays.
    let reference = d.join("reference.mkv");
    ffmpeg(&[
        "-i",
        &a.display().to_string(),
        "-i",
        &key.display().to_string(),
        "-i",
        &alpha.display().to_string(),
        "-filter_complex",
        "[0:v]trim=start_frame=30:end_frame=150,setpts=N/(60*TB)[b];\
         [1:v]trim=start_frame=0:end_frame=60,setpts=(N+30)/(60*TB),colorkey=black,colorchannelmixer=aa=0.8,format=yuva420p[k];\
         [2:v]trim=start_frame=5:end_frame=45,setpts=(N+10)/(60*TB),scale=out_color_matrix=bt709:out_range=tv,format=yuva420p[al];\
         [b][k]overlay=x=40:y=20:eof_action=pass[bk];[bk][al]overlay=x=200:y=100:eof_action=pass,format=yuv420p",
        "-c:v",
        "rawvideo",
        &reference.display().to_string(),
    ]);
    let want = decode_frames(&reference, W, H, None);
    assert_eq!(want.len(), 120);
    let base = decode_frames(&a, W, H, None);
    // Luma of a rectangle (x, y, w, h) as bytes.
    let region = |f: &[u8], (x, y, w, h): (usize, usize, usize, usize)| -> Vec<u8> {
        (y..y + h)
            .flat_map(|r| f[r * W + x..r * W + x + w].to_vec())
            .collect()
    };
    let mean = |v: &[u8]| v.iter().map(|&b| f64::from(b)).sum::<f64>() / v.len() as f64;
    // Inside the white box (output (58..82, 38..62)), around it (the keyed-out black, a strip
    // above the box), inside the red rectangle (output (204..244, 104..128)).
    let (white, keyed, red) = ((58, 38, 24, 24), (42, 22, 60, 10), (204, 104, 40, 24));
    let mut worst = f64::MAX;
    for (k, frame) in got.iter().enumerate() {
        // Whole frame, and each overlay's area, against FFmpeg's composition.
        for (what, r) in [
            ("frame", (0, 0, W, H)),
            ("white box", white),
            ("keyed black", keyed),
            ("red", red),
        ] {
            let p = psnr(&region(frame, r), &region(&want[k], r));
            worst = worst.min(p);
            assert!(
                p >= MIN_PSNR_DB,
                "frame {k} {what}: PSNR {p:.1} dB against FFmpeg's overlay"
            );
        }
        // And against first principles: 80 % white (Y 235) inside the box during 30..90,
        // untouched black-keyed surroundings, half of red (alpha 127/255) during 10..50 — red
        // is Y 63 in the output's BT.709 (the source's tag), not BT.601's 81.
        let b = &base[30 + k];
        let (g_w, b_w) = (mean(&region(frame, white)), mean(&region(b, white)));
        let e_w = if (30..90).contains(&k) {
            0.2 * b_w + 0.8 * 235.0
        } else {
            b_w
        };
        assert!(
            (g_w - e_w).abs() < 3.0,
            "frame {k}: white box mean {g_w:.1}, expected {e_w:.1}"
        );
        let (g_k, b_k) = (mean(&region(frame, keyed)), mean(&region(b, keyed)));
        assert!(
            (g_k - b_k).abs() < 3.0,
            "frame {k}: keyed black mean {g_k:.1} vs base {b_k:.1}"
        );
        let (g_r, b_r) = (mean(&region(frame, red)), mean(&region(b, red)));
        let a = 127.0 / 255.0;
        let e_r = if (10..50).contains(&k) {
            (1.0 - a) * b_r + a * 63.0
        } else {
            b_r
        };
        assert!(
            (g_r - e_r).abs() < 3.0,
            "frame {k}: red mean {g_r:.1}, expected {e_r:.1} (base {b_r:.1})"
        );
    }
    eprintln!("overlays: worst PSNR against FFmpeg's overlay (frame or region) {worst:.1} dB");
}

#[test]
fn profile_size_and_rate_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let a = obs_source(dir.path(), "a.mkv", "testsrc2", &tone(), 48_000, 3);
    let out = dir.path().join("out.mp4");
    let cut = json!({
        "version": "1.0.0",
        "inputMedia": [{"s3Location": "a.mkv", "sections": [{"startFrame": 31, "endFrame": 151}]}],
        "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]
    });
    let profile = RenderProfile {
        width: Some(240),
        height: Some(240),
        fps: Some((30, 1)),
        ..test_profile(16)
    };
    let report = render(cut, &[&a], &out, profile);
    assert_eq!(
        (report.width, report.height, report.fps, report.frames),
        (240, 240, (30, 1), 60)
    );
    let got = decode_frames(&out, 240, 240, None);
    assert_eq!(got.len(), 60);
    let params = ffprobe(
        &out,
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "stream=width,height,r_frame_rate",
            "-of",
            "csv=p=0",
        ],
    );
    assert_eq!(params.trim(), "240,240,30/1");
    // 320×180 fits 240×240 as 240×136 (even), centred: rows 52..188, black bars around.
    let judge = decode_frames(&a, 240, 136, Some("scale=240:136:flags=bicubic"));
    let mut worst = f64::MAX;
    for (k, frame) in got.iter().enumerate() {
        let content = &frame[52 * 240..188 * 240];
        let src = 31 + 2 * k; // the nearest 60 fps source frame to 30 fps frame k
        let p = psnr(content, &judge[src][..240 * 136]);
        worst = worst.min(p);
        assert!(
            p >= MIN_PSNR_DB,
            "frame {k}: PSNR {p:.1} dB against source frame {src}"
        );
        let off = psnr(content, &judge[src + 1][..240 * 136]);
        assert!(
            off < p - 3.0,
            "frame {k}: the next source frame matches as well ({off:.1} dB)"
        );
        // Bars: black (Y 16), allowing the encoder's ringing in the two rows next to the picture.
        let bars = frame[..50 * 240].iter().chain(&frame[190 * 240..240 * 240]);
        let (lo, hi) = bars.fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(lo >= 12 && hi <= 20, "frame {k}: bars span Y {lo}..{hi}");
    }
    eprintln!("scaled/resampled output: worst luma PSNR {worst:.1} dB");
}

#[test]
fn an_unknown_encoder_is_invalid_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = obs_source(dir.path(), "a.mkv", "testsrc2", &tone(), 48_000, 1);
    let out = dir.path().join("out.mp4");
    let cut = cut_list(json!({
        "version": "1.0.0",
        "inputMedia": [{"s3Location": "a.mkv", "sections": [{"startFrame": 0, "endFrame": 30}]}],
        "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}]
    }));
    let profile = RenderProfile {
        encoder: "no_such_encoder".into(),
        ..test_profile(16)
    };
    let job = job(cut, &[&a], &out, profile);
    let plan = build_plan(&job).unwrap();
    let audio = render_audio(&plan, &job.profile).unwrap();
    match render_full(&plan, &job.profile, &audio, &out, &mut |_| {}) {
        Err(RenderError::InvalidInput(m)) => assert!(m.contains("no_such_encoder"), "{m}"),
        other => panic!("expected InvalidInput, got {:?}", other.map(|r| r.method)),
    }
    assert!(!out.exists());
}

#[test]
fn a_full_render_with_transitions_passes_verification() {
    // The whole path: plan, audio, full re-encode (transitions and an overlay rule out smart
    // cut), then the renderer's own verification of frames, timestamps and audio length.
    let dir = tempfile::tempdir().unwrap();
    let a = obs_source(dir.path(), "a.mkv", "testsrc2", &tone(), 48_000, 2);
    let b = obs_source(
        dir.path(),
        "b.mkv",
        "testsrc2,hue=h=120",
        &tone(),
        48_000,
        2,
    );
    let out = dir.path().join("out.mp4");
    let cut = cut_list(json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "a.mkv", "sections": [{"startFrame": 7, "endFrame": 70}]},
            {"s3Location": "b.mkv", "sections": [{"startFrame": 11, "endFrame": 80}, {"startFrame": 0, "endFrame": 20}]}
        ],
        "outputTrack": [
            {"mediaIndex": 0, "sectionIndex": 0, "transitionIn": {"type": "fade", "duration": 6}},
            {"mediaIndex": 1, "sectionIndex": 0, "transitionIn": {"type": "fade", "duration": 9},
             "transitionOut": {"type": "fade", "duration": 5}}
        ],
        "overlayTracks": [{"startFrame": 3, "mediaIndex": 1, "sectionIndex": 1, "x": 10, "y": 10, "type": "colorkey"}]
    }));
    let mut job = job(cut, &[&a, &b], &out, test_profile(20));
    job.force_full = false;
    let report = gt_render::render(&job, &mut |_| {}).expect("render");
    assert_eq!(report.method, RenderMethod::FullReencode);
    assert!(report.fallback_reason.is_some());
    // 63 + 69 − 9 frames.
    assert_eq!(report.frames, 123);
    assert_eq!(decode_frames(&out, W, H, None).len(), 123);
}

#[test]
fn a_30_fps_source_in_a_60_fps_output_repeats_frames_and_an_opaque_overlay_covers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = obs_source(d, "a.mkv", "testsrc2", &tone(), 48_000, 2);
    // 30 fps, 1 ms time base (frames 33/34 ms apart).
    let slow = d.join("slow.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=30:duration=2,hue=h=200",
        "-f",
        "lavfi",
        "-i",
        "sine=330:r=48000:d=2",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "12",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        &slow.display().to_string(),
    ]);
    // An overlay without an alpha channel, typed `alpha`: drawn opaque.
    let logo = d.join("logo.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=blue:s=32x32:r=60:d=1",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-pix_fmt",
        "yuv420p",
        &logo.display().to_string(),
    ]);
    let out = d.join("out.mp4");
    let cut = json!({
        "version": "1.0.0",
        "inputMedia": [
            {"s3Location": "a.mkv", "sections": [{"startFrame": 0, "endFrame": 30}]},
            {"s3Location": "slow.mkv", "sections": [{"startFrame": 9, "endFrame": 24}]},
            {"s3Location": "logo.mkv", "sections": [{"startFrame": 0, "endFrame": 60}]}
        ],
        "outputTrack": [{"mediaIndex": 0, "sectionIndex": 0}, {"mediaIndex": 1, "sectionIndex": 0}],
        "overlayTracks": [{"startFrame": 0, "mediaIndex": 2, "sectionIndex": 0, "type": "alpha"}]
    });
    let report = render(cut, &[&a, &slow, &logo], &out, test_profile(16));
    // 30 frames at 60 fps, then 15 frames at 30 fps = 30 output frames.
    assert_eq!(report.frames, 60);
    let got = decode_frames(&out, W, H, None);
    assert_eq!(got.len(), 60);
    let fs = decode_frames(&slow, W, H, None);
    // Outside the 32×32 logo in the top-left corner (at the default x = y = 0).
    let below_logo = |f: &[u8]| f[40 * W..H * W].to_vec();
    for (k, frame) in got.iter().enumerate().skip(30) {
        let j = (k - 30) as f64 / 2.0; // source frames past the section start
        let (lo, hi) = (9 + j.floor() as usize, 9 + j.ceil() as usize);
        let p = psnr(&below_logo(frame), &below_logo(&fs[lo]))
            .max(psnr(&below_logo(frame), &below_logo(&fs[hi])));
        assert!(
            p >= MIN_PSNR_DB,
            "frame {k}: PSNR {p:.1} dB against source frame {lo} or {hi}"
        );
    }
    for (k, frame) in got.iter().enumerate() {
        // Opaque blue (BT.709: Y 32) over the corner, whatever is under it.
        let y = frame[16 * W + 16];
        assert!((28..=36).contains(&y), "frame {k}: logo luma {y}");
    }
}
