//! Smart cut against real FFmpeg: OBS-like sources (H.264 closed GOP, keyint 2 s, B-frames,
//! 60 fps, Matroska's 1 ms time base, two AAC tracks) cut at non-keyframe points across two
//! files. The FFmpeg CLI generates the sources and is the judge: it decodes the output and the
//! sources, and hashes packets, independently of our report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gt_render::{RenderError, RenderJob, RenderMethod, RenderProfile, render};
use gt_types::records::CutList;
use serde_json::json;

const W: usize = 320;
const H: usize = 180;
const FRAME_BYTES: usize = W * H * 3 / 2;
/// Source GOP: keyint 120 at 60 fps = 2 s.
const GOP: u64 = 120;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-y", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("running ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ffprobe(args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .output()
        .expect("running ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An 8-second OBS-like recording: 320x180 60 fps H.264 (High, 3 B-frames, keyint 120),
/// two stereo AAC tracks, Matroska (1 ms time base).
fn make_source(path: &Path, video_filter: &str, x264_params: &str, tone: u32) {
    let v = format!("testsrc2=size={W}x{H}:rate=60:duration=8{video_filter}");
    let a1 = format!("sine=frequency={tone}:sample_rate=48000:duration=8");
    let a2 = format!(
        "sine=frequency={}:sample_rate=48000:duration=8",
        tone * 3 / 2
    );
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &v,
        "-f",
        "lavfi",
        "-i",
        &a1,
        "-f",
        "lavfi",
        "-i",
        &a2,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "3",
        "-pix_fmt",
        "yuv420p",
        "-x264-params",
        x264_params,
        "-c:a",
        "aac",
        "-ac",
        "2",
        "-b:a",
        "128k",
        path.to_str().unwrap(),
    ]);
}

struct Fixtures {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    a: PathBuf,
    b: PathBuf,
    open_gop: PathBuf,
    intra_refresh: PathBuf,
}

const CLOSED: &str = "keyint=120:min-keyint=120:scenecut=0:open-gop=0";

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let (a, b) = (dir.join("a.mkv"), dir.join("b.mkv"));
        let (o, i) = (dir.join("open.mkv"), dir.join("ir.mkv"));
        std::thread::scope(|s| {
            s.spawn(|| make_source(&a, "", CLOSED, 440));
            s.spawn(|| make_source(&b, ",negate", CLOSED, 330));
            s.spawn(|| {
                make_source(
                    &o,
                    "",
                    "keyint=120:min-keyint=120:scenecut=0:open-gop=1",
                    440,
                )
            });
            s.spawn(|| make_source(&i, "", "keyint=120:intra-refresh=1", 440));
        });
        Fixtures {
            _dir: d,
            dir,
            a,
            b,
            open_gop: o,
            intra_refresh: i,
        }
    })
}

fn cut_list(sections: &[(u64, u64, u64)], media: usize) -> CutList {
    // sections: (media index, start, end); each becomes its own section and output item.
    let mut inputs: Vec<Vec<serde_json::Value>> = vec![Vec::new(); media];
    let mut track = Vec::new();
    for &(m, s, e) in sections {
        let m = m as usize;
        track.push(json!({"mediaIndex": m, "sectionIndex": inputs[m].len()}));
        inputs[m].push(json!({"startFrame": s, "endFrame": e}));
    }
    serde_json::from_value(json!({
        "version": "1.0.0",
        "inputMedia": inputs.iter().enumerate().map(|(i, s)| json!({"s3Location": format!("s/{i}.mkv"), "sections": s})).collect::<Vec<_>>(),
        "outputTrack": track,
    }))
    .unwrap()
}

fn job(cut_list: CutList, sources: Vec<PathBuf>, output: PathBuf, force_full: bool) -> RenderJob {
    RenderJob {
        cut_list,
        sources,
        output,
        profile: RenderProfile::default(),
        force_full,
    }
}

/// All frames of `path` as raw yuv420p, decoded by the FFmpeg CLI (no frame-rate conversion).
fn decode_all(path: &Path) -> Vec<Vec<u8>> {
    let raw = path.with_extension(format!(
        "{}.yuv",
        path.extension().unwrap().to_str().unwrap()
    ));
    ffmpeg(&[
        "-i",
        path.to_str().unwrap(),
        "-map",
        "0:v",
        "-vsync",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        raw.to_str().unwrap(),
    ]);
    let data = std::fs::read(&raw).unwrap();
    assert_eq!(data.len() % FRAME_BYTES, 0);
    data.chunks(FRAME_BYTES).map(|c| c.to_vec()).collect()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    if se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / (se / a.len() as f64)).log10()
}

/// Video packets of `path` as ffprobe lists them: (pts seconds, keyframe, md5 of the data).
fn packets(path: &Path) -> Vec<(f64, bool, String)> {
    ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,flags,data_hash",
        "-show_data_hash",
        "md5",
        "-of",
        "csv=p=0",
        path.to_str().unwrap(),
    ])
    .lines()
    .filter(|l| !l.is_empty())
    .map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f[0].parse().unwrap(), f[1].contains('K'), f[2].to_string())
    })
    .collect()
}

/// Source frame number → md5 of its packet, and the keyframe numbers (frames from ffprobe's
/// timestamps, rounded at 60 fps; the stream starts at its first pts).
fn source_packets(path: &Path) -> (HashMap<u64, String>, Vec<u64>) {
    let p = packets(path);
    let start = p.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
    let mut by_frame = HashMap::new();
    let mut keys = Vec::new();
    for (t, k, h) in p {
        let f = ((t - start) * 60.0).round() as u64;
        by_frame.insert(f, h);
        if k {
            keys.push(f);
        }
    }
    keys.sort_unstable();
    (by_frame, keys)
}

fn duration(path: &Path, stream: &str) -> f64 {
    ffprobe(&[
        "-select_streams",
        stream,
        "-show_entries",
        "stream=duration",
        "-of",
        "csv=p=0",
        path.to_str().unwrap(),
    ])
    .trim()
    .parse()
    .unwrap()
}

#[test]
fn smart_cut_across_two_files_is_frame_exact_and_copies_whole_gops() {
    let f = fixtures();
    // Cuts at non-keyframe points (keyframes are every 120 frames): A 100..370 (head 100..120,
    // GOPs 120..360 copied, tail 360..370), B 35..290 (head, GOP 120..240, tail), and A 401..433
    // (inside one GOP: re-encoded whole).
    let sections = [(0, 100, 370), (1, 35, 290), (0, 401, 433)];
    let out = f.dir.join("smart.mp4");
    let mut last = 0.0;
    let report = render(
        &job(
            cut_list(&sections, 2),
            vec![f.a.clone(), f.b.clone()],
            out.clone(),
            false,
        ),
        &mut |p| {
            assert!(
                p >= last - 1e-9 && (0.0..=1.0).contains(&p),
                "progress {p} after {last}"
            );
            last = p;
        },
    )
    .unwrap();
    let planned: u64 = sections.iter().map(|s| s.2 - s.1).sum();
    assert_eq!(report.method, RenderMethod::SmartCut, "{report:?}");
    assert_eq!(report.fallback_reason, None);
    assert_eq!(report.frames, planned);
    assert_eq!(report.copied_packets, 240 + 120);
    assert_eq!(report.reencoded_frames, planned - 360);
    assert!((last - 1.0).abs() < 1e-9);

    // The judge: FFmpeg decodes the output and the sources.
    let got = decode_all(&out);
    assert_eq!(got.len() as u64, planned, "frame count");
    let src = [decode_all(&f.a), decode_all(&f.b)];
    let (a_pk, a_keys) = source_packets(&f.a);
    let (b_pk, b_keys) = source_packets(&f.b);
    assert_eq!(a_keys, vec![0, 120, 240, 360]);
    assert_eq!(b_keys, vec![0, 120, 240, 360]);
    let src_pk = [a_pk, b_pk];
    let out_pk = packets(&out);
    assert_eq!(out_pk.len() as u64, planned);
    let out_by_frame: HashMap<u64, &String> = out_pk
        .iter()
        .map(|(t, _, h)| (((t * 60.0).round()) as u64, h))
        .collect();
    // Presentation timestamps on the 60 fps grid from 0, within half a frame, no duplicates.
    assert_eq!(out_by_frame.len() as u64, planned);
    for (t, _, _) in &out_pk {
        assert!((t * 60.0 - (t * 60.0).round()).abs() < 0.5);
    }

    let mut o = 0usize;
    let (mut worst_edge, mut copied_checked, mut identical) = (f64::INFINITY, 0, 0);
    for &(m, s, e) in &sections {
        let m = m as usize;
        for sf in s..e {
            // Whole GOPs inside the section are copied; the rest is re-encoded.
            let gop = sf / GOP * GOP;
            let copied = gop >= s && gop + GOP <= e;
            let frame_psnr = psnr(&got[o], &src[m][sf as usize]);
            if copied {
                assert_eq!(
                    out_by_frame[&(o as u64)],
                    &src_pk[m][&sf],
                    "output frame {o} (source {m} frame {sf}) is not a byte-identical copy"
                );
                assert!(
                    frame_psnr.is_infinite(),
                    "copied frame {o} decodes differently"
                );
                copied_checked += 1;
            } else {
                worst_edge = worst_edge.min(frame_psnr);
                if frame_psnr.is_infinite() {
                    identical += 1;
                }
            }
            o += 1;
        }
        // Frame accuracy: the item's first and last frames are the planned source frames, not
        // their neighbours (round, never floor, on the 1 ms time base).
        let first = o - (e - s) as usize;
        for (out_i, sf) in [(first, s), (o - 1, e - 1)] {
            let here = psnr(&got[out_i], &src[m][sf as usize]);
            for n in [sf - 1, sf + 1] {
                let there = psnr(&got[out_i], &src[m][n as usize]);
                assert!(
                    here > there + 6.0,
                    "output frame {out_i}: {here:.1} dB vs source frame {sf}, {there:.1} dB vs {n}"
                );
            }
        }
    }
    assert_eq!(copied_checked, 360);
    eprintln!(
        "smart cut: {planned} frames, 360 copied bit-exact, worst re-encoded frame PSNR {worst_edge:.2} dB ({identical} identical)"
    );
    assert!(
        worst_edge >= 40.0,
        "worst edge frame PSNR {worst_edge:.2} dB"
    );

    // The full re-encode of the same cut list: same frame count, every frame at the same
    // position shows the same picture.
    let full_out = f.dir.join("full.mp4");
    let full = render(
        &job(
            cut_list(&sections, 2),
            vec![f.a.clone(), f.b.clone()],
            full_out.clone(),
            true,
        ),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(full.method, RenderMethod::FullReencode);
    let reference = decode_all(&full_out);
    assert_eq!(reference.len(), got.len());
    let worst_vs_full = got
        .iter()
        .zip(&reference)
        .map(|(a, b)| psnr(a, b))
        .fold(f64::INFINITY, f64::min);
    eprintln!("smart cut vs full re-encode: worst frame PSNR {worst_vs_full:.2} dB");
    assert!(worst_vs_full >= 30.0, "{worst_vs_full:.2} dB");

    // Audio lasts as long as the video.
    let (v, a) = (duration(&out, "v:0"), duration(&out, "a:0"));
    assert!((v - planned as f64 / 60.0).abs() < 0.02, "video {v} s");
    assert!((a - v).abs() < 0.03, "audio {a} s vs video {v} s");
    // No decoder complaints from FFmpeg itself.
    let log = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        log.status.success() && log.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
}

#[test]
fn open_gop_and_intra_refresh_sources_fall_back_with_the_reason() {
    let f = fixtures();
    for (src, why) in [
        (&f.open_gop, "open GOP"),
        (&f.intra_refresh, "intra refresh"),
    ] {
        let out = f
            .dir
            .join(format!("fallback-{}.mp4", why.replace(' ', "-")));
        let r = render(
            &job(
                cut_list(&[(0, 50, 300)], 1),
                vec![src.clone()],
                out.clone(),
                false,
            ),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(r.method, RenderMethod::FullReencode);
        let reason = r.fallback_reason.unwrap();
        assert!(reason.contains(why), "{why}: {reason}");
        assert_eq!(decode_all(&out).len(), 250);
    }
}

#[test]
fn a_different_output_size_falls_back() {
    let f = fixtures();
    let out = f.dir.join("scaled.mp4");
    let mut j = job(
        cut_list(&[(0, 10, 130)], 1),
        vec![f.a.clone()],
        out.clone(),
        false,
    );
    j.profile.width = Some(160);
    j.profile.height = Some(90);
    let r = render(&j, &mut |_| {}).unwrap();
    assert_eq!(r.method, RenderMethod::FullReencode);
    assert!(r.fallback_reason.unwrap().contains("size"));
    assert_eq!((r.width, r.height, r.frames), (160, 90, 120));
}

#[test]
fn a_cut_on_keyframes_copies_everything() {
    let f = fixtures();
    let out = f.dir.join("aligned.mp4");
    let r = render(
        &job(
            cut_list(&[(0, 120, 360)], 1),
            vec![f.a.clone()],
            out.clone(),
            false,
        ),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        (r.method, r.copied_packets, r.reencoded_frames),
        (RenderMethod::SmartCut, 240, 0)
    );
    let (src_pk, _) = source_packets(&f.a);
    for (t, _, h) in packets(&out) {
        let o = (t * 60.0).round() as u64;
        assert_eq!(h, src_pk[&(o + 120)], "frame {o}");
    }
}

#[test]
fn bad_cut_lists_are_invalid_input_and_write_nothing() {
    let f = fixtures();
    let out = f.dir.join("bad.mp4");
    let good = || cut_list(&[(0, 10, 100)], 1);
    let mut cases: Vec<(&str, CutList, Vec<PathBuf>)> = Vec::new();
    let mut v = good();
    v.version = "2.0.0".into();
    cases.push(("version", v, vec![f.a.clone()]));
    let mut v = good();
    v.output_track[0].media_index = 3;
    cases.push(("media index", v, vec![f.a.clone()]));
    let mut v = good();
    v.output_track[0].section_index = 1;
    cases.push(("section index", v, vec![f.a.clone()]));
    let mut v = good();
    v.input_media[0].sections[0].end_frame = 481;
    cases.push(("past the end", v, vec![f.a.clone()]));
    let mut v = good();
    v.input_media[0].sections[0].end_frame = 10;
    cases.push(("empty section", v, vec![f.a.clone()]));
    let mut v = good();
    v.output_track.clear();
    cases.push(("empty track", v, vec![f.a.clone()]));
    cases.push(("missing source", good(), vec![f.dir.join("nope.mkv")]));
    cases.push(("source count", good(), vec![f.a.clone(), f.b.clone()]));
    let text = f.dir.join("text.mkv");
    std::fs::write(&text, "not a video").unwrap();
    cases.push(("not media", good(), vec![text]));
    for (name, cl, sources) in cases {
        let e = render(&job(cl, sources, out.clone(), false), &mut |_| {}).unwrap_err();
        assert!(matches!(e, RenderError::InvalidInput(_)), "{name}: {e:?}");
        assert!(!out.exists(), "{name}: wrote an output");
    }
    // The last frame is fine.
    let mut v = good();
    v.input_media[0].sections[0].end_frame = 480;
    render(&job(v, vec![f.a.clone()], out.clone(), false), &mut |_| {}).unwrap();
}

#[test]
fn verification_decodes_everything_and_catches_a_changed_copied_packet() {
    use gt_render::verify::{VerifyDepth, verify_with};
    let f = fixtures();
    let out = f.dir.join("tamper.mp4");
    // 10..480: head 10..120 re-encoded, GOPs 120, 240, 360 copied (the middle one is the GOP
    // that edit-point verification does not decode).
    let j = job(
        cut_list(&[(0, 10, 480)], 1),
        vec![f.a.clone()],
        out.clone(),
        false,
    );
    let plan = gt_render::plan::build_plan(&j).unwrap();
    let audio = gt_render::audio::render_audio(&plan, &j.profile).unwrap();
    let index = gt_render::smart::eligibility(&plan).unwrap();
    let done = gt_render::smart::render_smart(&plan, &j.profile, index, &audio, &out, &mut |_| {})
        .unwrap();
    assert_eq!(done.copies.len(), 360);
    for depth in [VerifyDepth::Full, VerifyDepth::EditPoints] {
        verify_with(&plan, &audio, &out, &done.copies, depth).unwrap();
    }
    // Flip one byte in the middle of the packet showing output frame 290 (source frame 300).
    let listing = ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,pos,size",
        "-of",
        "csv=p=0",
        out.to_str().unwrap(),
    ]);
    // ffprobe prints the fields in its own order: pts_time, size, pos.
    let (size, pos) = listing
        .lines()
        .filter_map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            let t: f64 = v[0].parse().ok()?;
            ((t * 60.0).round() as u64 == 290)
                .then(|| (v[1].parse::<u64>().unwrap(), v[2].parse::<u64>().unwrap()))
        })
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&out).unwrap();
    bytes[(pos + size / 2) as usize] ^= 0x55;
    std::fs::write(&out, &bytes).unwrap();
    for depth in [VerifyDepth::Full, VerifyDepth::EditPoints] {
        let e = verify_with(&plan, &audio, &out, &done.copies, depth).unwrap_err();
        assert!(
            e.contains("differs from frame 300 of source 0"),
            "{depth:?}: {e}"
        );
    }
    // A plan with one frame more than the file is caught too.
    let mut longer = plan.clone();
    longer.total_frames += 1;
    std::fs::write(&out, {
        bytes[(pos + size / 2) as usize] ^= 0x55;
        &bytes
    })
    .unwrap();
    assert!(verify_with(&longer, &audio, &out, &done.copies, VerifyDepth::Full).is_err());
}
