//! Shared pieces of the benchmarks: cached fixtures, timing, and the result line.
//!
//! Conventions (BENCHMARKS.md): each benchmark runs our code and the anchor tool side by side on
//! the same input, alternating, at least five times each, and ends with one line
//! `NAME ratio=X` where X is our throughput divided by the anchor's (higher is better).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where generated benchmark inputs are kept between runs.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("GT_BENCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/glowing-telegram/bench"))
        })
        .unwrap_or_else(|| PathBuf::from("/tmp/gt-bench"));
    std::fs::create_dir_all(&base).expect("creating the benchmark cache");
    base
}

pub use gt_cli::media_gen::run;

pub fn ffmpeg() -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-y", "-loglevel", "error"]);
    c
}

/// Median of a list of durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Times `f`, returning its duration and value.
pub fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let v = f();
    (t.elapsed(), v)
}

/// Runs each named job `runs` times, interleaved (a, b, c, a, b, c, ...), after one warm-up
/// round; returns the median per job.
pub fn alternate(
    runs: usize,
    jobs: &mut [(&str, &mut dyn FnMut() -> anyhow::Result<()>)],
) -> anyhow::Result<Vec<Duration>> {
    for (name, job) in jobs.iter_mut() {
        eprintln!("  warm-up: {name}");
        job()?;
    }
    let mut times = vec![Vec::new(); jobs.len()];
    for round in 0..runs {
        for (i, (name, job)) in jobs.iter_mut().enumerate() {
            let (d, r) = timed(&mut *job);
            r?;
            eprintln!(
                "  run {}/{runs} {name}: {:.3} s",
                round + 1,
                d.as_secs_f64()
            );
            times[i].push(d);
        }
    }
    Ok(times.into_iter().map(median).collect())
}

/// A Python in its own venv under the benchmark cache (`name`) that can `import` what
/// `packages` provide; created and filled on first use.
pub fn python_venv(name: &str, packages: &[&str], import: &str) -> anyhow::Result<PathBuf> {
    let venv = cache_dir().join(name);
    let python = venv.join("bin/python");
    let check = format!("import {import}");
    if !python.is_file() || run(Command::new(&python).args(["-c", &check])).is_err() {
        eprintln!("installing {} into {}", packages.join(" "), venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(packages))?;
    }
    Ok(python)
}

/// `name` as a number from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether `path` exists and is not empty.
pub fn present(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.len() > 0)
        .unwrap_or(false)
}
