//! `bench/vad`: voice-activity detection as media analysis runs it (gt-vad: Silero VAD v6 in
//! plain Rust, window features on the given threads, the LSTM in order) against the reference
//! implementation (the same official ONNX model in onnxruntime, driven window by window as
//! Silero's own wrapper does, with the same thread count), on 10 minutes of 16 kHz audio: a real
//! voice (LibriVox) alternating with music and noise. The probabilities are compared before any
//! timing (largest difference must stay under 1e-3). Ends with `vad ratio=X`.
//!
//!     cargo run --release -p gt-bench --bin vad
//!
//! GT_BENCH_RUNS (default 5), GT_BENCH_THREADS (default: the CPU count), GT_VAD_MODEL (default:
//! the model in `.venv`'s silero-vad wheel), GT_VOICE_DIR (`./gt test-tools` fetches the voices).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use gt_bench::{alternate, cache_dir, env_usize, ffmpeg, present, python_venv, run};
use gt_cli::media_gen::{RecordingSpec, Segment, generate};
use gt_tests::truth::silero_reference;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A Python with onnxruntime: `.venv`'s if it has it (`./gt test-tools`), else a venv in the
/// benchmark cache.
fn python() -> anyhow::Result<PathBuf> {
    let project = repo().join(".venv/bin/python");
    if project.is_file()
        && run(Command::new(&project).args(["-c", "import onnxruntime, numpy"])).is_ok()
    {
        return Ok(project);
    }
    python_venv("vad-venv", &["onnxruntime", "numpy"], "onnxruntime, numpy")
}

fn model() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("GT_VAD_MODEL") {
        return Ok(PathBuf::from(p));
    }
    let out = Command::new(repo().join(".venv/bin/python"))
        .args([
            "-c",
            "import importlib.util as u, os; print(os.path.join(u.find_spec('silero_vad').submodule_search_locations[0], 'data', 'silero_vad_16k_op15.onnx'))",
        ])
        .output()
        .context("finding the silero-vad wheel in .venv (run ./gt setup)")?;
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Ten minutes: a real voice for 20 s, music for 20 s, noise for 5 s, and again.
fn input(voices: &Path) -> anyhow::Result<PathBuf> {
    let wav = cache_dir().join("vad-10min.wav");
    if present(&wav) {
        return Ok(wav);
    }
    let mut utterances: Vec<PathBuf> = std::fs::read_dir(voices.join("librivox"))
        .with_context(|| format!("no voices in {} (./gt test-tools)", voices.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    utterances.sort();
    let mut segments = Vec::new();
    let mut total = 0.0;
    let mut i = 0;
    while total < 600.0 {
        for _ in 0..4 {
            segments.push(Segment::Recorded(utterances[i % utterances.len()].clone()));
            i += 1;
        }
        segments.push(Segment::Music(20.0));
        segments.push(Segment::QuietNoise(5.0));
        total += 45.0;
    }
    let mkv = cache_dir().join("vad-10min.mkv");
    generate(&RecordingSpec::mic(segments, None), &mkv)?;
    run(ffmpeg()
        .arg("-i")
        .arg(&mkv)
        .args(["-t", "600", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le"])
        .arg(&wav))?;
    Ok(wav)
}

fn main() -> anyhow::Result<()> {
    let runs = env_usize("GT_BENCH_RUNS", 5);
    let threads = env_usize("GT_BENCH_THREADS", gt_worker_kit::cpus());
    let voices = std::env::var("GT_VOICE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/glowing-telegram/voices")
        });
    let (python, model) = (python()?, model()?);
    let wav = input(&voices)?;
    let (_, pcm) = gt_worker_kit::wav::read_wav(&std::fs::read(&wav)?).context("a WAV")?;
    let pcm: Vec<f32> = pcm.into_iter().map(|s| f32::from(s) / 32768.0).collect();
    let audio_s = pcm.len() as f64 / 16_000.0;
    let vad = gt_vad::SileroVad::load(&model)?;

    let anchor = || silero_reference(&python, &model, &wav, threads);
    // Same answers first.
    let ours = vad.probabilities(&pcm, threads);
    let (_, theirs) = anchor()?;
    if ours.len() != theirs.len() {
        bail!("{} windows vs onnxruntime's {}", ours.len(), theirs.len());
    }
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let voiced = ours.iter().filter(|&&p| p >= 0.5).count() as f64 / ours.len() as f64;
    println!(
        "input: {} ({audio_s:.0} s, {} windows, {:.0} % voice); largest difference from onnxruntime {worst:.2e}",
        wav.display(),
        ours.len(),
        voiced * 100.0
    );
    if worst >= 1e-3 {
        bail!("gt-vad differs from the reference by {worst}");
    }

    // onnxruntime's own time excludes Python start-up and model loading, like ours.
    let mut anchor_times = Vec::new();
    let mut ours_job = || -> anyhow::Result<()> {
        std::hint::black_box(vad.probabilities(&pcm, threads));
        Ok(())
    };
    let mut anchor_job = || -> anyhow::Result<()> {
        let (secs, _) = anchor()?;
        anchor_times.push(secs);
        Ok(())
    };
    let m = alternate(
        runs,
        &mut [("gt-vad", &mut ours_job), ("onnxruntime", &mut anchor_job)],
    )?;
    anchor_times.remove(0); // the warm-up
    anchor_times.sort_by(f64::total_cmp);
    let theirs_s = anchor_times[anchor_times.len() / 2];
    let ours_s = m[0].as_secs_f64();
    println!(
        "gt-vad          median {ours_s:>7.3} s  ({:.0}x real time)",
        audio_s / ours_s
    );
    println!(
        "onnxruntime     median {theirs_s:>7.3} s  ({:.0}x real time, in-process time)",
        audio_s / theirs_s
    );
    println!("runs={runs} threads={threads}");
    println!("vad ratio={:.2}", theirs_s / ours_s);
    Ok(())
}
