//! `bench/render`: rendering an episode by H.264 smart cut (copy whole GOPs, re-encode the edges)
//! against a full re-encode (libx264 at the profile's preset), both through `gt_render::render`
//! (audio mixed and encoded once, output verified) on the same cut list. Ends with
//! `render ratio=X` (full re-encode time ÷ smart cut time).
//!
//!     cargo run --release -p gt-bench --bin render [-- --minutes 60 --height 1080]
//!
//! Input: an OBS-like recording (H.264 High, CBR, keyint 2 s, 3 B-frames, 60 fps, two AAC
//! tracks, Matroska with its 1 ms time base), `--minutes` long at `--height` lines (16:9),
//! generated once under the bench cache. The episode keeps 2/3 of it in 12 sections whose
//! in and out points all fall between keyframes. GT_BENCH_RUNS (default 5) sets the runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use gt_bench::{alternate, cache_dir, ffmpeg, present, run};
use gt_render::{RenderJob, RenderMethod, RenderProfile, RenderReport, render};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Length of the source recording in minutes (the episode is 2/3 of it).
    #[arg(long, default_value_t = 60)]
    minutes: u32,
    /// Picture height of the source (width is 16:9).
    #[arg(long, default_value_t = 1080)]
    height: u32,
    /// Runs per variant (after a warm-up).
    #[arg(long, env = "GT_BENCH_RUNS", default_value_t = 5)]
    runs: usize,
}

const FPS: u64 = 60;
const SECTIONS: u64 = 12;
/// Minutes of unique video, looped by stream copy to the full length.
const CHUNK_MINUTES: u32 = 2;

fn even(x: u32) -> u32 {
    x / 2 * 2
}

/// The OBS-like recording, generated once.
fn recording(minutes: u32, height: u32) -> anyhow::Result<PathBuf> {
    let dir = cache_dir();
    let out = dir.join(format!("render-{minutes}min-{height}p60-2aac.mkv"));
    if present(&out) {
        return Ok(out);
    }
    let width = even(height * 16 / 9);
    // Bitrate as OBS would use for this size (6 Mb/s at 1080p60).
    let kbps = (6000.0 * f64::from(width * height) / (1920.0 * 1080.0)).max(300.0) as u32;
    let chunk = dir.join(format!("render-chunk-{CHUNK_MINUTES}min-{height}p60.mkv"));
    if !present(&chunk) {
        eprintln!(
            "generating {} (once; encodes {CHUNK_MINUTES} minutes of {width}x{height}p60)",
            chunk.display()
        );
        let tmp = chunk.with_extension("partial.mkv");
        let src = format!(
            "testsrc2=size={width}x{height}:rate={FPS}:duration={},noise=alls=12:allf=t",
            CHUNK_MINUTES * 60
        );
        run(ffmpeg()
            .args(["-f", "lavfi", "-i", &src])
            .args([
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            ])
            .args(["-b:v", &format!("{kbps}k"), "-maxrate", &format!("{kbps}k")])
            .args(["-bufsize", &format!("{}k", kbps * 2), "-bf", "3"])
            .args([
                "-x264-params",
                "keyint=120:min-keyint=120:scenecut=0:open-gop=0",
            ])
            .arg(&tmp))?;
        std::fs::rename(&tmp, &chunk)?;
    }
    eprintln!(
        "assembling {} ({minutes} min, two AAC tracks)",
        out.display()
    );
    // Whole chunks only: cutting the copied video with `-t` would leave a broken last GOP.
    let secs = minutes * 60;
    let loops = minutes / CHUNK_MINUTES - 1;
    let tmp = out.with_extension("partial.mkv");
    run(ffmpeg()
        .args(["-stream_loop", &loops.to_string(), "-i"])
        .arg(&chunk)
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("aevalsrc=0.1*sin(2*PI*(220+55*mod(floor(t/2)\\,5))*t)|0.1*sin(2*PI*(277+55*mod(floor(t/2)\\,5))*t):s=48000:d={secs}"),
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=523:sample_rate=48000:duration={secs}"),
        ])
        .args(["-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "copy"])
        .args(["-c:a", "aac", "-b:a", "160k", "-ac", "2"])
        .arg(&tmp))?;
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// 12 sections keeping 2/3 of the recording; every in and out point between keyframes
/// (keyframes every 120 frames).
fn cut_list(minutes: u32) -> serde_json::Value {
    let total = u64::from(minutes) * 60 * FPS;
    let slot = total / SECTIONS;
    let keep = slot * 2 / 3;
    let sections: Vec<_> = (0..SECTIONS)
        .map(|i| {
            // Offsets that are never a multiple of 120.
            let start = i * slot + 37 + (i * 13) % 50;
            let end = (start + keep).min(total - 1);
            let end = if end.is_multiple_of(120) {
                end - 7
            } else {
                end
            };
            json!({"startFrame": start, "endFrame": end})
        })
        .collect();
    json!({
        "version": "1.0.0",
        "inputMedia": [{"s3Location": "bench/recording.mkv", "sections": sections}],
        "outputTrack": (0..SECTIONS).map(|i| json!({"mediaIndex": 0, "sectionIndex": i})).collect::<Vec<_>>(),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.minutes >= CHUNK_MINUTES && args.minutes % CHUNK_MINUTES == 0 && args.height >= 144,
        "--minutes must be a multiple of {CHUNK_MINUTES}, --height at least 144"
    );
    let source = recording(args.minutes, args.height)?;
    let cut: gt_types::records::CutList = serde_json::from_value(cut_list(args.minutes))?;
    let work = tempfile::tempdir_in(cache_dir())?;
    let job = |force_full: bool, name: &str| RenderJob {
        cut_list: cut.clone(),
        sources: vec![source.clone()],
        output: work.path().join(name),
        profile: RenderProfile::default(),
        force_full,
    };
    let (smart_job, full_job) = (job(false, "smart.mp4"), job(true, "full.mp4"));

    // Correctness first: the smart cut must be a smart cut, and both outputs must agree.
    let smart = render(&smart_job, &mut |_| {})?;
    anyhow::ensure!(
        smart.method == RenderMethod::SmartCut,
        "smart cut fell back: {:?}",
        smart.fallback_reason
    );
    let episode_min = smart.duration_s / 60.0;
    println!(
        "input: {} ({} min, {}p60); episode {:.2} min, {} frames in {SECTIONS} sections",
        source.display(),
        args.minutes,
        args.height,
        episode_min,
        smart.frames
    );
    describe("smart cut", &smart);
    let mut last_full: Option<RenderReport> = None;
    let mut last_smart: Option<RenderReport> = None;
    let medians: Vec<Duration> = alternate(
        args.runs,
        &mut [
            ("smart cut", &mut || {
                last_smart = Some(render(&smart_job, &mut |_| {})?);
                Ok(())
            }),
            ("full re-encode", &mut || {
                last_full = Some(render(&full_job, &mut |_| {})?);
                Ok(())
            }),
        ],
    )?;
    let full = last_full.expect("ran");
    describe("full re-encode", &full);
    anyhow::ensure!(full.frames == smart.frames, "frame counts differ");
    let psnr = psnr_between(&smart_job.output, &full_job.output)?;
    println!("smart cut vs full re-encode: average PSNR {psnr}");
    for (name, d) in ["smart cut", "full re-encode"].iter().zip(&medians) {
        println!(
            "{name:<16} median {:>8.2} s  {:>7.2} s per output minute  {:>6.1}x realtime",
            d.as_secs_f64(),
            d.as_secs_f64() / episode_min,
            episode_min * 60.0 / d.as_secs_f64()
        );
    }
    println!(
        "threads={} runs={}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        args.runs
    );
    println!(
        "render ratio={:.2}",
        medians[1].as_secs_f64() / medians[0].as_secs_f64()
    );
    Ok(())
}

fn describe(name: &str, r: &RenderReport) {
    println!(
        "{name}: {:?}, {} frames, {} copied packets, {} re-encoded frames, {:.1} MB",
        r.method,
        r.frames,
        r.copied_packets,
        r.reencoded_frames,
        r.bytes as f64 / 1e6
    );
}

/// FFmpeg's average PSNR between the two renders (the same frames at the same positions).
fn psnr_between(a: &Path, b: &Path) -> anyhow::Result<String> {
    let log = run(std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"]))?;
    Ok(log
        .lines()
        .find_map(|l| l.split("average:").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("?")
        .to_string())
}
