//! `bench/silence`: our speech map against `ffmpeg -af silencedetect` and against FFmpeg's
//! decode-only bound, on a generated 1-hour 720p H.264 recording with two AAC tracks (game
//! audio, then speech with about 40 % pauses). Ends with `silence ratio=X`.
//!
//!     cargo run --release -p gt-bench --bin silence
//!
//! GT_BENCH_RUNS (default 5) sets the runs per variant; GT_BENCH_CACHE where the input is kept.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use gt_activities::media::audio::{ScanInput, ScanOptions, scan};
use gt_activities::media::silence::SilenceParams;
use gt_bench::{alternate, cache_dir, ffmpeg, present, run};

const HOURS_S: f64 = 3600.0;
const PARAMS: SilenceParams = SilenceParams {
    noise_db: -50.0,
    min_duration: 2.0,
};

/// The 1-hour recording, generated once.
fn recording() -> anyhow::Result<PathBuf> {
    let dir = cache_dir();
    let out = dir.join("silence-1h-720p-2aac.mkv");
    if present(&out) {
        return Ok(out);
    }
    eprintln!("generating {} (once; a few minutes)", out.display());
    let work = tempfile_dir(&dir)?;
    // Ten minutes of 720p30 video at ~3 Mb/s, looped six times by stream copy.
    let video = dir.join("video-10min-720p.mkv");
    if !present(&video) {
        run(ffmpeg()
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=30:duration=600",
            ])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "3000k",
                "-maxrate",
                "3000k",
            ])
            .args(["-bufsize", "6000k", "-g", "60", "-pix_fmt", "yuv420p"])
            .arg(&video))?;
    }
    let mic = mic_track(&work)?;
    let tmp = out.with_extension("partial.mkv");
    run(ffmpeg()
        .args(["-stream_loop", "5", "-i"])
        .arg(&video)
        .args([
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=0.08*sin(2*PI*(220+55*mod(floor(t/2)\\,5))*t)+0.05*sin(2*PI*330*t)|0.08*sin(2*PI*(277+55*mod(floor(t/2)\\,5))*t)+0.05*sin(2*PI*440*t):s=48000:d=3600",
        ])
        .arg("-i")
        .arg(&mic)
        .args(["-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "copy"])
        .args(["-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2"])
        .args(["-metadata:s:a:0", "title=Game", "-metadata:s:a:1", "title=Mic"])
        .args(["-t", "3600"])
        .arg(&tmp))?;
    std::fs::rename(&tmp, &out)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

fn tempfile_dir(base: &Path) -> anyhow::Result<PathBuf> {
    let d = base.join(format!("work-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// One hour of espeak-ng speech with pauses of 0.5–6 s (~40 % of the time), 48 kHz stereo.
fn mic_track(work: &Path) -> anyhow::Result<PathBuf> {
    let mut parts = Vec::new();
    for (i, s) in gt_cli::media_gen::SENTENCES.iter().enumerate() {
        let raw = work.join(format!("s{i}.raw.wav"));
        let wav = work.join(format!("s{i}.wav"));
        run(Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&raw)
            .arg(s))?;
        run(ffmpeg()
            .arg("-i")
            .arg(&raw)
            .args(["-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le"])
            .arg(&wav))?;
        parts.push((wav.clone(), gt_cli::media_gen::wav_duration(&wav)?));
    }
    let pauses = [1.0, 2.5, 4.0, 0.5, 6.0, 3.0, 2.2];
    let mut pause_files = Vec::new();
    for (i, p) in pauses.iter().enumerate() {
        let f = work.join(format!("p{i}.wav"));
        let src = if i % 3 == 2 {
            // Some pauses are quiet room noise (-62 dBFS), not digital silence.
            format!("anoisesrc=r=48000:c=white:a=0.0008:seed={i}")
        } else {
            "anullsrc=r=48000:cl=stereo".to_string()
        };
        run(ffmpeg()
            .args([
                "-f",
                "lavfi",
                "-i",
                &src,
                "-t",
                &p.to_string(),
                "-ac",
                "2",
                "-c:a",
                "pcm_s16le",
            ])
            .arg(&f))?;
        pause_files.push((f, *p));
    }
    let mut list = String::new();
    let (mut t, mut speech, mut i) = (0.0, 0.0, 0usize);
    while t < HOURS_S + 10.0 {
        let (f, d) = &parts[i % parts.len()];
        list.push_str(&format!("file '{}'\n", f.display()));
        t += d;
        speech += d;
        let (p, pd) = &pause_files[(i * 5 + i / 7) % pause_files.len()];
        list.push_str(&format!("file '{}'\n", p.display()));
        t += pd;
        i += 1;
    }
    eprintln!(
        "  mic track: {:.0} s, {:.0} % speech",
        t,
        100.0 * speech / t
    );
    let list_file = work.join("mic.txt");
    std::fs::write(&list_file, list)?;
    let mic = work.join("mic.wav");
    run(ffmpeg()
        .args(["-f", "concat", "-safe", "0", "-i"])
        .arg(&list_file)
        .args(["-c:a", "pcm_s16le"])
        .arg(&mic))?;
    Ok(mic)
}

fn ffmpeg_silencedetect(path: &Path) -> anyhow::Result<Vec<(f64, f64)>> {
    let log = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:a:1",
            "-af",
            "silencedetect=noise=-50dB:d=2",
            "-f",
            "null",
            "-",
        ]))?;
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for line in log.lines() {
        if let Some(v) = line.split("silence_start: ").nth(1) {
            starts.push(v.trim().parse::<f64>()?);
        }
        if let Some(v) = line.split("silence_end: ").nth(1) {
            ends.push(
                v.split_whitespace()
                    .next()
                    .context("silence_end")?
                    .parse::<f64>()?,
            );
        }
    }
    Ok(starts.into_iter().zip(ends).collect())
}

fn main() -> anyhow::Result<()> {
    let path = recording()?;
    let runs: usize = std::env::var("GT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let ours = |threads: usize, speech_audio: bool| {
        scan(
            &ScanInput {
                source: &path.as_path().into(),
                name: "bench",
                track: 1,
                progress: &|_| {},
            },
            &ScanOptions {
                params: PARAMS,
                threads,
                speech_audio,
            },
        )
    };

    // Correctness first: the same intervals as FFmpeg.
    let reference = ffmpeg_silencedetect(&path)?;
    let mine = ours(threads, false)?;
    let worst = mine
        .silence
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a.0 - b.0).abs().max((a.1 - b.1).abs()))
        .fold(0.0f64, f64::max);
    println!(
        "input: {} ({:.0} s of audio), {} silences; ours found {} (largest edge difference {:.3} ms, {} chunks)",
        path.display(),
        mine.end - mine.start,
        reference.len(),
        mine.silence.len(),
        worst * 1000.0,
        mine.chunks
    );
    anyhow::ensure!(
        mine.silence.len() == reference.len() && worst <= 0.010,
        "our intervals differ from FFmpeg's"
    );
    let audio_s = mine.end - mine.start;

    let cli = |args: &[&str]| {
        let mut c = Command::new("ffmpeg");
        c.args(["-hide_banner", "-nostats", "-i"])
            .arg(&path)
            .args(args);
        c
    };
    let medians = alternate(
        runs,
        &mut [
            ("ours", &mut || {
                ours(threads, false).map(drop).map_err(Into::into)
            }),
            ("ffmpeg silencedetect", &mut || {
                run(&mut cli(&[
                    "-map",
                    "0:a:1",
                    "-af",
                    "silencedetect=noise=-50dB:d=2",
                    "-f",
                    "null",
                    "-",
                ]))
                .map(drop)
            }),
            ("ffmpeg decode-only", &mut || {
                run(&mut cli(&["-map", "0:a:1", "-f", "null", "-"])).map(drop)
            }),
            ("ours, 1 thread", &mut || {
                ours(1, false).map(drop).map_err(Into::into)
            }),
            ("ours + 16 kHz speech audio", &mut || {
                ours(threads, true).map(drop).map_err(Into::into)
            }),
        ],
    )?;
    let names = [
        "ours",
        "ffmpeg silencedetect",
        "ffmpeg decode-only",
        "ours, 1 thread",
        "ours + 16 kHz speech audio",
    ];
    for (name, d) in names.iter().zip(&medians) {
        println!(
            "{name:<28} median {:>7.3} s  {:>7.1}x realtime",
            d.as_secs_f64(),
            audio_s / d.as_secs_f64()
        );
    }
    let ratio = |a: usize, b: usize| medians[b].as_secs_f64() / medians[a].as_secs_f64();
    println!("threads={threads} runs={runs}");
    println!("single_thread ratio={:.2}", ratio(3, 1));
    println!("decode_bound ratio={:.2}", ratio(0, 2));
    println!("silence ratio={:.2}", ratio(0, 1));
    Ok(())
}
